# One image, three tasks: download, select, evaluate (see selection/entrypoint.py).
# Real users build FROM python:3.11-slim. Where no registry is reachable, build a stand-in
# locally from Debian packages (docker/make-base-image.sh) and pass --build-arg BASE_IMAGE=...;
# wheels placed in docker/wheels/ are then installed without network.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# DATAPERF_CACHE_DIR=off: a container's home is gone when it exits, so evaluate's cache would only
# cost a write per run; pass --cache_dir=<a mounted folder> to keep one across runs.
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/venv/bin:$PATH MPLCONFIGDIR=/tmp HOME=/tmp \
    DATAPERF_CACHE_DIR=off

COPY requirements.txt /app/requirements.txt
COPY docker/wheels/ /tmp/wheels/
RUN python3 -m venv /opt/venv \
    && if ls /tmp/wheels/*.whl >/dev/null 2>&1; then \
         pip install --no-cache-dir --no-index --find-links /tmp/wheels -r /app/requirements.txt; \
       else \
         pip install --no-cache-dir -r /app/requirements.txt; \
       fi \
    && rm -rf /tmp/wheels

# The harness is installed as a package, as `pip install .` installs it anywhere (its dependencies are
# the pinned requirements above): the `dataperf-speech` command and `python3 -m selection.<command>`.
COPY pyproject.toml README.md /app/
COPY selection/ /app/selection/
COPY eval.py /app/eval.py
RUN pip install --no-cache-dir --no-deps --no-build-isolation --no-index /app \
    && rm -rf /app/build /app/*.egg-info
COPY workspace/dataperf_speech_config.yaml /app/workspace/dataperf_speech_config.yaml

RUN useradd --uid 10001 --create-home --home-dir /home/dataperf dataperf
USER 10001
# Every command's default paths are workspace/...: with the workspace mounted at /workspace they
# resolve to it, so `docker run -v $PWD/workspace:/workspace IMAGE select` needs no flags.
WORKDIR /
ENTRYPOINT ["dataperf-speech"]
