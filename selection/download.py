"""``download``: put a dataset in the workspace.

``--source synthetic`` (default; offline, seconds) writes the built-in default
dataset: the English experiment straight into the workspace (the layout the quick
start and ``mlcube.yaml`` use) and every language under ``<data_dir>/<lang>/``.
``--source dataperf`` fetches the three published DataPerf speech archives into
``<data_dir>/`` and unpacks them. Either way nothing partial is left behind:
files are built in temp folders and renamed into place only when complete.
"""

from __future__ import annotations

if __name__ == "__main__":
    from selection.cli import exit_quietly_on_ctrl_c

    exit_quietly_on_ctrl_c()

import logging
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from selection.cli import run_command
from selection.corpus import CorpusParams, write_corpus
from selection.experiment import create_experiment
from selection.layout import experiment_folder_name, experiment_present
from selection.validation import BadInputError
from selection.write import check_output_dir

log = logging.getLogger("dataperf")

DATAPERF_BASE_URL = "http://dataperf.s3.amazonaws.com/speech-selection"
DATAPERF_ARCHIVES = {"en": "eng", "id": "ind", "pt": "por"}
DEFAULT_LANGUAGE = "en"


def _experiment_from_sources(corpus: Path, code: str, destination: Path, *, targets: list[str], **draw) -> dict:
    """One language's experiment from MSWC-format sources under ``corpus`` (either built-in corpus)."""
    return create_experiment(
        metadata=corpus / "metadata.json.gz",
        language=code,
        splits_csv=corpus / "splits" / f"{code}_splits.csv",
        vectors_dir=corpus / "mswc_vectors" / code,
        target_words=targets,
        outdir=destination,
        **draw,
    )


def make_synthetic(
    workspace: Path,
    data_dir: Path,
    *,
    params: CorpusParams | None = None,
    overwrite: bool = False,
) -> dict:
    """Generate the corpus in a temp folder and build one experiment per language from it."""
    params = params or CorpusParams()
    log.info(
        "generating the built-in synthetic dataset (%s) in %s: about %d s on 2 cores, once",
        ", ".join(params.languages),
        workspace,
        max(1, round(30 * params.scale)),
    )
    started = time.perf_counter()
    counts = {}
    with tempfile.TemporaryDirectory(dir=workspace, prefix=".corpus-") as corpus:
        plans = write_corpus(corpus, params)
        for code in params.languages:
            targets = plans[code].targets
            destinations = [data_dir / experiment_folder_name(code)]
            destinations += [workspace] if code == DEFAULT_LANGUAGE else []
            for destination in destinations:
                if experiment_present(destination) and not overwrite:
                    continue
                counts[str(destination)] = _experiment_from_sources(
                    Path(corpus),
                    code,
                    destination,
                    targets=targets,
                    known_words=min(100, params.nontarget_words // 2),
                    unknown_words=min(100, params.nontarget_words // 2),
                    clips_per_word=params.experiment_clips_per_word(),
                    overwrite=overwrite,
                )
    log.info("synthetic dataset written in %.1f s", time.perf_counter() - started)
    return counts


def make_spoken(data_dir: Path, *, params, overwrite: bool = False) -> dict:
    """Synthesize and embed the spoken corpus in a temp folder and build one experiment per language."""
    from selection.spoken_corpus import SPOKEN_TARGETS, write_spoken_corpus

    log.info(
        "synthesizing the spoken-word corpus (%s) into %s with eSpeak NG and the speech-embedding model: "
        "about %d s per language on 2 cores",
        ", ".join(params.languages),
        data_dir,
        max(1, round(75 * params.scale)),
    )
    started = time.perf_counter()
    counts = {}
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".spoken-") as corpus:
        write_spoken_corpus(corpus, params)
        for code in params.languages:
            destination = data_dir / experiment_folder_name(code)
            if experiment_present(destination) and not overwrite:
                continue
            counts[str(destination)] = _experiment_from_sources(
                Path(corpus),
                code,
                destination,
                targets=SPOKEN_TARGETS[code],
                known_words=params.known_words(),
                unknown_words=params.nontarget_words - params.known_words(),
                clips_per_word=params.experiment_clips_per_word(),
                overwrite=overwrite,
            )
    log.info("spoken-word corpus written in %.1f s", time.perf_counter() - started)
    return counts


def _is_whole_zip(path: Path) -> bool:
    """Whether ``path`` is a zip archive whose every member reads back with the right CRC."""
    try:
        with zipfile.ZipFile(path) as bundle:
            return bundle.testzip() is None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return False


def _fetch(url: str, destination: Path, *, timeout: float) -> None:
    """Download ``url`` to ``destination`` through a temp file renamed only when complete and a whole zip."""
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
        if not _is_whole_zip(temp):
            raise BadInputError(f"{url}: what arrived is not a whole zip archive; nothing was kept, run again")
        temp.replace(destination)
    except (TimeoutError, urllib.error.URLError, ConnectionError, OSError) as error:
        reason = getattr(error, "reason", None) or error
        raise BadInputError(f"{url}: cannot be fetched ({reason}); the workspace was left as it was") from None
    finally:
        temp.unlink(missing_ok=True)


def _experiment_root(folder: Path) -> Path | None:
    """``folder`` if it holds an experiment, else its only subfolder that does (an archive's top folder)."""
    if experiment_present(folder):
        return folder
    inside = [path for path in folder.iterdir() if path.is_dir() and experiment_present(path)]
    return inside[0] if len(inside) == 1 else None


def _unpack(archive: Path, destination: Path, *, overwrite: bool) -> bool:
    """Unpack ``archive``'s experiment into ``destination`` via a temp folder; refuse entries that leave it.

    The archive may hold the experiment at its top or inside one folder. An experiment
    already at ``destination`` is kept unless ``overwrite``. Returns whether it unpacked.
    """
    if experiment_present(destination) and not overwrite:
        log.info("%s already holds the experiment; pass --overwrite to unpack %s again", destination, archive.name)
        return False
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".unpack-") as temp:
        try:
            with zipfile.ZipFile(archive) as bundle:
                for name in bundle.namelist():
                    if name.startswith("/") or ".." in Path(name).parts:
                        raise BadInputError(f"{archive}: entry {name!r} would be written outside {destination}")
                bundle.extractall(temp)
        except zipfile.BadZipFile as error:
            raise BadInputError(f"{archive}: not a zip archive ({error})") from None
        root = _experiment_root(Path(temp))
        if root is None:
            raise BadInputError(
                f"{archive}: holds no experiment (train_embeddings/, eval_embeddings/, allowed_training_set.yaml, "
                "eval.yaml) at its top or in one folder"
            )
        previous = Path(temp) / ".previous"
        if destination.exists():
            destination.replace(previous)
        root.replace(destination)
    return True


def download(
    source: str = "synthetic",
    workspace: str = "workspace/",
    data_dir: str | None = None,
    overwrite: bool = False,
    scale: float = 1.0,
    seed: int = 0,
    timeout: float = 10.0,
    base_url: str = DATAPERF_BASE_URL,
    languages: str = "en,pt,id",
) -> None:
    """Put a dataset into the workspace.

    Parameters
    ----------
    source : {'synthetic', 'spoken', 'dataperf'}, default='synthetic'
        ``synthetic``: the built-in Gaussian corpus, offline, seconds. ``spoken``: the built-in
        spoken-word corpus (eSpeak NG speech embedded by a speech model), offline, minutes; it goes
        to ``<workspace>/spoken/`` unless ``--data_dir``. ``dataperf``: the published DataPerf
        speech archives (needs network).
    workspace : str, default='workspace/'
        Receives the default English experiment (synthetic source).
    data_dir : str, optional
        Receives every language's experiment as ``dataperf_{language}_data/`` (the final
        benchmark's layout); default ``<workspace>/data``.
    overwrite : bool, default=False
        Replace a dataset already present (otherwise it is kept and nothing is done).
    scale : float, default=1.0
        Shrinks the synthetic corpus (tests use small scales).
    seed : int, default=0
        Seed of the synthetic corpus.
    timeout : float, default=10.0
        Seconds to wait for the network before giving up (dataperf source).
    base_url : str
        Where the DataPerf archives are fetched from (a mirror may be given).
    languages : str, default='en,pt,id'
        Comma-separated languages of the spoken corpus.
    """
    workspace_path = check_output_dir(workspace, create=True)
    default_data = workspace_path / ("spoken" if source == "spoken" else "data")
    data_path = check_output_dir(data_dir or default_data, create=True)
    if source not in ("synthetic", "spoken", "dataperf"):
        raise BadInputError(
            f"command line: --source: unknown source {source!r}; expected synthetic, spoken or dataperf"
        )
    try:
        workspace_path.mkdir(parents=True, exist_ok=True)
        data_path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInputError(f"{error.filename}: output folder cannot be created ({error.strerror})") from None
    if source == "synthetic":
        if not isinstance(scale, (int, float)) or not 0 < scale <= 1:
            raise BadInputError(f"command line: --scale: expected a number in (0, 1]; got {scale!r}")
        params = CorpusParams(seed=int(seed), scale=float(scale))
        languages_present = [experiment_present(data_path / experiment_folder_name(code)) for code in params.languages]
        if not overwrite and experiment_present(workspace_path) and all(languages_present):
            log.info("synthetic dataset already present in %s; pass --overwrite to rebuild it", workspace_path)
            return
        make_synthetic(workspace_path, data_path, params=params, overwrite=overwrite)
        log.info("default experiment in %s; every language under %s", workspace_path, data_path)
    elif source == "spoken":
        from selection.spoken_corpus import SPOKEN_TARGETS, SpokenParams

        codes = tuple(code.strip() for code in languages.split(",") if code.strip())
        unknown = [code for code in codes if code not in SPOKEN_TARGETS]
        if not codes or unknown:
            raise BadInputError(
                f"command line: --languages: {', '.join(unknown) or 'none given'}; expected some of "
                f"{', '.join(SPOKEN_TARGETS)}"
            )
        if not isinstance(scale, (int, float)) or not 0 < scale <= 1:
            raise BadInputError(f"command line: --scale: expected a number in (0, 1]; got {scale!r}")
        params = SpokenParams(seed=int(seed), scale=float(scale), languages=codes)
        if not overwrite and all(experiment_present(data_path / experiment_folder_name(code)) for code in codes):
            log.info("spoken-word corpus already present in %s; pass --overwrite to rebuild it", data_path)
            return
        make_spoken(data_path, params=params, overwrite=overwrite)
        log.info("spoken-word experiments under %s (select/evaluate --language L --data_dir %s)", data_path, data_path)
    elif source == "dataperf":
        for language, name in DATAPERF_ARCHIVES.items():
            archive = data_path / f"dataperf_{name}_data.zip"
            if archive.exists() and not _is_whole_zip(archive):
                log.info("%s is damaged; fetching it again (it is replaced only by a whole one)", archive)
                _fetch(f"{base_url.rstrip('/')}/{archive.name}", archive, timeout=timeout)
            elif not archive.exists():
                _fetch(f"{base_url.rstrip('/')}/{archive.name}", archive, timeout=timeout)
            destination = data_path / experiment_folder_name(language)
            if _unpack(archive, destination, overwrite=overwrite):
                log.info("unpacked %s into %s", archive.name, destination)
    else:
        raise BadInputError(f"command line: --source: unknown source {source!r}; expected synthetic or dataperf")


if __name__ == "__main__":
    run_command(download)
