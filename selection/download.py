"""``download``: put a dataset in the workspace.

``--source synthetic`` (default; offline, seconds) writes the built-in default
dataset: the English experiment straight into the workspace (the layout the quick
start and ``mlcube.yaml`` use) and every language under ``<data_dir>/<lang>/``.
``--source dataperf`` fetches the three published DataPerf speech archives into
``<data_dir>/`` and unpacks them. Either way nothing partial is left behind:
files are built in temp folders and renamed into place only when complete.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from selection.cli import run_command
from selection.corpus import TARGET_WORDS, CorpusParams, write_corpus
from selection.experiment import EXPERIMENT_ITEMS, create_experiment
from selection.validation import BadInputError
from selection.write import check_output_dir

log = logging.getLogger("dataperf")

DATAPERF_BASE_URL = "http://dataperf.s3.amazonaws.com/speech-selection"
DATAPERF_ARCHIVES = ("eng", "ind", "por")
DEFAULT_LANGUAGE = "en"


def experiment_present(folder: Path) -> bool:
    """Whether all four experiment items are in ``folder``."""
    return all((folder / item).exists() for item in EXPERIMENT_ITEMS)


def make_synthetic(
    workspace: Path,
    data_dir: Path,
    *,
    params: CorpusParams | None = None,
    overwrite: bool = False,
) -> dict:
    """Generate the corpus in a temp folder and build one experiment per language from it."""
    params = params or CorpusParams()
    started = time.perf_counter()
    counts = {}
    with tempfile.TemporaryDirectory(dir=workspace, prefix=".corpus-") as corpus:
        write_corpus(corpus, params)
        for code in params.languages:
            targets = TARGET_WORDS[code]
            destinations = [data_dir / code] + ([workspace] if code == DEFAULT_LANGUAGE else [])
            for destination in destinations:
                if experiment_present(destination) and not overwrite:
                    continue
                counts[str(destination)] = create_experiment(
                    metadata=Path(corpus) / "metadata.json.gz",
                    language=code,
                    splits_csv=Path(corpus) / "splits" / f"{code}_splits.csv",
                    vectors_dir=Path(corpus) / "mswc_vectors" / code,
                    target_words=targets,
                    outdir=destination,
                    known_words=min(100, params.nontarget_words // 2),
                    unknown_words=min(100, params.nontarget_words // 2),
                    clips_per_word=params.experiment_clips_per_word(),
                    overwrite=overwrite,
                )
    log.info("synthetic dataset written in %.1f s", time.perf_counter() - started)
    return counts


def _fetch(url: str, destination: Path, *, timeout: float) -> None:
    """Download ``url`` to ``destination`` through a temp file renamed only when complete."""
    temp = destination.with_name(f".{destination.name}.part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, temp.open("wb") as handle:
            total = int(response.headers.get("Content-Length") or 0)
            done, last = 0, 0.0
            while chunk := response.read(1 << 20):
                handle.write(chunk)
                done += len(chunk)
                if time.monotonic() - last > 1:
                    of = f" of {total / 1e6:.0f}" if total else ""
                    print(f"\r{destination.name}: {done / 1e6:.0f}{of} MB", end="", file=sys.stderr, flush=True)
                    last = time.monotonic()
            print(f"\r{destination.name}: {done / 1e6:.0f} MB done", file=sys.stderr)
        if total and done != total:
            raise BadInputError(f"{url}: download ended after {done} of {total} bytes")
        temp.replace(destination)
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise BadInputError(f"{url}: cannot be fetched ({reason}); the workspace was left as it was") from None
    finally:
        temp.unlink(missing_ok=True)


def _unpack(archive: Path, data_dir: Path) -> list[str]:
    """Unpack ``archive`` into ``data_dir`` via a temp folder; refuse entries that leave it."""
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".unpack-") as temp:
        try:
            with zipfile.ZipFile(archive) as bundle:
                for name in bundle.namelist():
                    if name.startswith("/") or ".." in Path(name).parts:
                        raise BadInputError(f"{archive}: entry {name!r} would be written outside {data_dir}")
                bundle.extractall(temp)
        except zipfile.BadZipFile as error:
            raise BadInputError(f"{archive}: not a zip archive ({error})") from None
        placed = []
        for item in sorted(Path(temp).iterdir()):
            target = data_dir / item.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            item.replace(target)
            placed.append(str(target))
        return placed


def download(
    source: str = "synthetic",
    workspace: str = "workspace/",
    data_dir: str | None = None,
    overwrite: bool = False,
    scale: float = 1.0,
    seed: int = 0,
    timeout: float = 10.0,
    base_url: str = DATAPERF_BASE_URL,
) -> None:
    """Put a dataset into the workspace.

    Parameters
    ----------
    source : {'synthetic', 'dataperf'}, default='synthetic'
        ``synthetic``: the built-in corpus, offline. ``dataperf``: the published
        DataPerf speech archives (needs network).
    workspace : str, default='workspace/'
        Receives the default English experiment (synthetic source).
    data_dir : str, optional
        Receives every language's data; default ``<workspace>/data``.
    overwrite : bool, default=False
        Replace a synthetic dataset already present (otherwise it is kept and nothing is done).
    scale : float, default=1.0
        Shrinks the synthetic corpus (tests use small scales).
    seed : int, default=0
        Seed of the synthetic corpus.
    timeout : float, default=10.0
        Seconds to wait for the network before giving up (dataperf source).
    base_url : str
        Where the DataPerf archives are fetched from (a mirror may be given).
    """
    workspace_path = check_output_dir(workspace, create=True)
    data_path = check_output_dir(data_dir or workspace_path / "data", create=True)
    if source == "synthetic":
        if not isinstance(scale, (int, float)) or not 0 < scale <= 1:
            raise BadInputError(f"command line: --scale: expected a number in (0, 1]; got {scale!r}")
        params = CorpusParams(seed=int(seed), scale=float(scale))
        languages_present = [experiment_present(data_path / code) for code in params.languages]
        if not overwrite and experiment_present(workspace_path) and all(languages_present):
            log.info("synthetic dataset already present in %s; pass --overwrite to rebuild it", workspace_path)
            return
        make_synthetic(workspace_path, data_path, params=params, overwrite=overwrite)
        log.info("default experiment in %s; every language under %s", workspace_path, data_path)
    elif source == "dataperf":
        for name in DATAPERF_ARCHIVES:
            archive = data_path / f"dataperf_{name}_data.zip"
            if not archive.exists():
                _fetch(f"{base_url.rstrip('/')}/{archive.name}", archive, timeout=timeout)
            for placed in _unpack(archive, data_path):
                log.info("unpacked %s", placed)
    else:
        raise BadInputError(f"command line: --source: unknown source {source!r}; expected synthetic or dataperf")


if __name__ == "__main__":
    run_command(download)
