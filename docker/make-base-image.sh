#!/usr/bin/env bash
# Build a local stand-in for python:3.11-slim from Debian bookworm packages (Python 3.11), for
# machines that reach Debian's package archive but no container registry. Uses the machine's own
# apt sources. Usage: docker/make-base-image.sh [TAG]   (default dataperf-base:bookworm)
set -euo pipefail
tag="${1:-dataperf-base:bookworm}"
if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag already present"; exit 0
fi
command -v mmdebstrap >/dev/null || { echo "needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 2; }
mmdebstrap --variant=apt --include=python3,python3-venv,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    bookworm - | docker import - "$tag"
echo "built $tag"
