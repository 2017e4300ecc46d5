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

import hashlib
import json
import logging
import re
import tempfile
import time
from functools import partial
from pathlib import Path

from selection.cli import run_command
from selection.datasets.archives import DEFAULT_MAX_MB, check_base_url, check_destination, fetch, is_whole_zip, unpack
from selection.datasets.mswc import create_experiment
from selection.datasets.synthetic import FAULTS_FILE, CorpusParams, write_corpus
from selection.inputs.layout import EXPERIMENT_ITEMS, experiment_folder_name, experiment_present
from selection.inputs.validation import BadInputError, split_flag_list
from selection.inputs.write import check_output_dir, write_bytes_atomic, write_default_config

log = logging.getLogger("dataperf")

DATAPERF_BASE_URL = "https://dataperf.s3.amazonaws.com/speech-selection"
DATAPERF_ARCHIVES = {"en": "eng", "id": "ind", "pt": "por"}
DEFAULT_LANGUAGE = "en"


def _experiment_from_sources(corpus: Path, code: str, destination: Path, *, targets: list[str], **draw) -> dict:
    """One language's experiment from MSWC-format sources under ``corpus`` (either built-in corpus)."""
    faults_file = corpus / FAULTS_FILE
    faults = json.loads(faults_file.read_text()).get(code, {}) if faults_file.is_file() else None
    counts = create_experiment(
        metadata=corpus / "metadata.json.gz",
        language=code,
        splits_csv=corpus / "splits" / f"{code}_splits.csv",
        vectors_dir=corpus / "mswc_vectors" / code,
        target_words=targets,
        outdir=destination,
        faults=faults,
        **draw,
    )
    write_default_config(destination, writer="selection.download")
    return counts


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
            shown = False  # one progress bar per language (English is written twice: data_dir and the workspace)
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
                    progress=None if shown else f"{code} experiment: nontarget words",
                )
                shown = True
    log.info("synthetic dataset written in %.1f s", time.perf_counter() - started)
    return counts


def make_spoken(data_dir: Path, *, params, overwrite: bool = False, audio: bool = False) -> dict:
    """Synthesize and embed the spoken corpus in a temp folder and build one experiment per language.

    With ``audio``, every language's recordings end up in ``<data_dir>/audio/<language>/`` (written aside,
    then moved in whole; a language's recordings already there are kept unless ``overwrite``).
    """
    from dataclasses import replace

    from selection.datasets.spoken import SPOKEN_TARGETS, write_spoken_corpus

    log.info(
        "synthesizing the spoken-word corpus (%s) into %s with eSpeak NG, embedded by %s: "
        "about %d s per language on 2 cores",
        ", ".join(params.languages),
        data_dir,
        params.model,
        max(1, round(75 * params.scale)),
    )
    started = time.perf_counter()
    counts = {}
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".spoken-") as corpus:
        if audio:
            params = replace(params, audio_dir=str(Path(corpus) / "audio"))
        write_spoken_corpus(corpus, params)
        for code in params.languages if audio else ():
            recordings = data_dir / "audio" / code
            if recordings.exists() and not overwrite:
                continue
            recordings.parent.mkdir(parents=True, exist_ok=True)
            if recordings.exists():  # the old recordings go into the temp folder, removed with it
                recordings.rename(Path(corpus) / f"old-{code}")
            (Path(corpus) / "audio" / code).rename(recordings)
            log.info("%s recordings in %s", code, recordings)
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


def _check_whole(folder: Path, *, label: str) -> None:
    """Load every file of the experiment in ``folder`` and check it as ``select`` and ``evaluate`` will."""
    from selection.scoring.experiment import load_experiment

    load_experiment(folder, cache_dir="off", label=label).load()


def _folder_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (a file's own size; 0 when absent)."""
    if path.is_file():
        return path.stat().st_size
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file() and not entry.is_symlink())


DIGEST_RECORD = "dataperf_archives.sha256"


def sha256_of(path: Path) -> str:
    """The SHA-256 digest of the file at ``path``, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def read_digests(path: Path, *, label: str) -> dict[str, str]:
    """``{archive name: digest}`` from a ``sha256sum``-style file (``<64 hex digits>  <file name>`` per line)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BadInputError(f"{path}: {label}: cannot be read ({getattr(error, 'strerror', None) or error})") from None
    digests = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"\s*([0-9a-fA-F]{64})\s+\*?(\S+)\s*", line)
        if match is None:
            raise BadInputError(f"{path}: {label}: line {number} is not '<64 hex digits>  <file name>'")
        digests[match.group(2)] = match.group(1).lower()
    return digests


def download_published(
    data_path: Path, *, base_url: str, timeout: float, max_bytes: int, overwrite: bool, sha256: str | None = None
) -> None:
    """Fetch (if missing or damaged) every archive, check each against its expected SHA-256, then unpack them.

    The expected digests are ``sha256``'s (a ``sha256sum`` file naming every archive) or, without it, those
    recorded in ``<data_dir>/dataperf_archives.sha256`` when the archives were first fetched and unpacked: a
    mirror that later serves other bytes under the same name is refused. A mismatch unpacks nothing, and an
    archive fetched by this run that does not match is not kept.
    """
    destinations = {language: data_path / experiment_folder_name(language) for language in DATAPERF_ARCHIVES}
    names = {language: f"dataperf_{code}_data.zip" for language, code in DATAPERF_ARCHIVES.items()}
    record = data_path / DIGEST_RECORD
    if sha256 is not None:
        expected, source = read_digests(Path(sha256), label="--sha256"), f"--sha256 {sha256}"
        missing = [name for name in names.values() if name not in expected]
        if missing:
            raise BadInputError(f"{sha256}: --sha256: names no digest for {', '.join(missing)}; nothing was fetched")
    elif record.is_file() and not record.is_symlink():
        expected, source = read_digests(record, label="recorded digests"), f"the digests recorded in {record}"
    else:
        expected, source = {}, None
    for destination in destinations.values():
        check_destination(destination, overwrite=overwrite)
    fetched = []
    for language in DATAPERF_ARCHIVES:
        archive = data_path / names[language]
        if archive.is_symlink() or (archive.exists() and not archive.is_file()):
            raise BadInputError(f"{archive}: is not a regular file (a link, folder or pipe); move it away")
        present = archive.exists()
        if present and is_whole_zip(archive):
            continue
        if present:
            log.info("%s is damaged; fetching it again (it is replaced only by a whole one)", archive)
        else:
            log.info("fetching %s/%s", base_url, archive.name)
        fetch(f"{base_url}/{archive.name}", archive, timeout=timeout, max_bytes=max_bytes)
        fetched.append(archive)
    digests = {name: sha256_of(data_path / name) for name in names.values()}
    wrong = [name for name in names.values() if name in expected and expected[name] != digests[name]]
    if wrong:
        for archive in fetched:
            archive.unlink(missing_ok=True)
        name = wrong[0]
        kept = "removed" if data_path / name in fetched else "kept, move it away to fetch it again"
        raise BadInputError(
            f"{data_path / name}: SHA-256 {digests[name]} is not the expected {expected[name]} ({source}); nothing "
            f"was unpacked; the archive was {kept}"
        )
    for language in DATAPERF_ARCHIVES:
        archive, destination = data_path / names[language], destinations[language]
        check = partial(_check_whole, label=language)
        if unpack(archive, destination, overwrite=overwrite, max_bytes=max_bytes, check=check):
            log.info("unpacked %s into %s and checked it as select and evaluate will", archive.name, destination)
    if source is None or sha256 is not None:
        lines = "".join(f"{digests[name]}  {name}\n" for name in sorted(digests))
        write_bytes_atomic(record, lines.encode())
        log.info("SHA-256 of the archives recorded in %s: a later download is checked against them", record)


def make_commands(workspace: Path, *, scale: float, seed: int, overwrite: bool) -> None:
    """Write the spoken-commands corpus to ``<workspace>/commands/`` (built aside, then moved in whole)."""
    from selection.datasets.commands import FOLDER, CommandsParams, write_commands_corpus

    target = workspace / FOLDER
    if target.exists() and not overwrite:
        if (target / "validation_list.txt").is_file():
            log.info("commands corpus already present in %s; pass --overwrite to rebuild it", target)
            return
        raise BadInputError(f"{target}: exists and is not a commands corpus; expected a free folder name")
    params = CommandsParams(seed=seed, scale=scale)
    log.info(
        "synthesizing the spoken-commands corpus (35 words, %d speakers) into %s: about %d s on 2 cores, once",
        params.n_speakers(), target, max(5, round(15 * scale)),
    )  # fmt: skip
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=workspace, prefix=".commands-") as staging:
        counts = write_commands_corpus(Path(staging) / FOLDER, params)
        if target.exists():
            old = Path(staging) / "previous"
            target.rename(old)
        (Path(staging) / FOLDER).rename(target)
    log.info(
        "commands corpus in %s: %d clips of %d words by %d speakers (%d validation, %d test clips) in %.0f s",
        target, counts["clips"], counts["words"], counts["speakers"], counts["validation"], counts["test"],
        time.perf_counter() - started,
    )  # fmt: skip


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
    max_mb: int = DEFAULT_MAX_MB,
    sha256: str | None = None,
    model: str = "speech_embedding",
    audio: bool = False,
) -> None:
    """Put a dataset into the workspace.

    Each experiment folder of the built-in corpora also gets the harness's default config where it has none
    (a user's is kept), so that ``run --workspace`` and ``explain --workspace`` need no other flag for it.

    Parameters
    ----------
    source : {'synthetic', 'spoken', 'commands', 'dataperf'}, default='synthetic'
        ``synthetic``: the built-in Gaussian corpus, offline, seconds. ``spoken``: the built-in
        spoken-word corpus (eSpeak NG speech embedded by a speech model), offline, minutes; it goes
        to ``<workspace>/spoken/`` unless ``--data_dir``. ``commands``: the built-in spoken-commands
        corpus for the KWS trainer (Speech Commands' 35 words, audio), offline, minutes; it goes to
        ``<workspace>/commands/``. ``dataperf``: the published DataPerf speech archives (needs network).
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
        Seconds any wait on the network may take (connecting, each read), and the window in
        which a transfer must make progress (dataperf source).
    base_url : str
        Where the DataPerf archives are fetched from: an ``http``, ``https`` or ``file`` URL (a mirror).
    languages : str, default='en,pt,id'
        Comma-separated languages of the spoken corpus.
    max_mb : int, default=2048
        Largest archive fetched, and largest file unpacked, in MB (the published archives are
        far smaller); at most four times that is unpacked in all (dataperf source).
    sha256 : str, optional
        A ``sha256sum``-style file (``<digest>  <archive name>`` per line) naming the expected SHA-256 of
        every archive (dataperf source); a mismatch unpacks nothing. Without it, the digests recorded in
        ``<data_dir>/dataperf_archives.sha256`` at the first download are expected.
    model : str, default='speech_embedding'
        The spoken corpus's embedding model: any model ``embed`` accepts (``speech_embedding``,
        ``kws:MODEL_DIR``, ``module:Class``); the clips and their faults do not depend on it (spoken source).
    audio : bool, default=False
        Also keep every clip's recording, as 16-bit WAV at ``<data_dir>/audio/<language>/<clip id>``
        (spoken source; about 240 MB per language): ``explain --audio_dir`` then plays the picks and judges
        how much of each is speech. Asked for when the experiments are present, it synthesizes the corpus
        again to write the recordings, and keeps the experiments.
    """
    if source not in ("synthetic", "spoken", "dataperf", "commands"):
        raise BadInputError(
            f"command line: --source: unknown source {source!r}; expected synthetic, spoken, commands or dataperf"
        )
    if not timeout > 0:
        raise BadInputError(f"command line: --timeout: expected a positive number of seconds; got {timeout:g}")
    if seed < 0 or seed >= 2**32:
        raise BadInputError(f"command line: --seed: expected an integer from 0 to 4294967295; got {seed}")
    if max_mb < 1:
        raise BadInputError(f"command line: --max_mb: expected a positive number of MB; got {max_mb}")
    if source == "dataperf":
        base_url = check_base_url(base_url)
    elif sha256 is not None:
        raise BadInputError("command line: --sha256: applies to --source dataperf only")
    if audio and source != "spoken":
        raise BadInputError("command line: --audio: applies to --source spoken only")
    if model != "speech_embedding":
        if source != "spoken":
            raise BadInputError("command line: --model: applies to --source spoken only")
        from selection.speech.model import load_model

        load_model(model)  # a model that cannot be loaded: one line before any work
    workspace_path = check_output_dir(workspace, create=True)
    default_data = workspace_path / ("spoken" if source == "spoken" else "data")
    data_path = check_output_dir(data_dir or default_data, create=True)
    try:
        workspace_path.mkdir(parents=True, exist_ok=True)
        if source != "commands":
            data_path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BadInputError(f"{error.filename}: output folder cannot be created ({error.strerror})") from None
    if source == "synthetic":
        if not isinstance(scale, (int, float)) or not 0 < scale <= 1:
            raise BadInputError(f"command line: --scale: expected a number in (0, 1]; got {scale!r}")
        params = CorpusParams(seed=int(seed), scale=float(scale))
        languages_present = [experiment_present(data_path / experiment_folder_name(code)) for code in params.languages]
        if not overwrite and experiment_present(workspace_path) and all(languages_present):
            for folder in [workspace_path, *(data_path / experiment_folder_name(code) for code in params.languages)]:
                write_default_config(folder, writer="selection.download")  # a folder made before configs were
            log.info("synthetic dataset already present in %s; pass --overwrite to rebuild it", workspace_path)
            return
        make_synthetic(workspace_path, data_path, params=params, overwrite=overwrite)
        written = _folder_bytes(data_path) + sum(_folder_bytes(workspace_path / item) for item in EXPERIMENT_ITEMS)
        log.info(
            "the English experiment (the default) is in %s; every language's (en, pt, id) is under %s (%.0f MB "
            "in all); --overwrite rebuilds them, and deleting them is safe (this command makes them again)",
            workspace_path, data_path, written / 1e6,
        )  # fmt: skip
    elif source == "spoken":
        from selection.datasets.spoken import SPOKEN_TARGETS, SpokenParams

        codes = tuple(split_flag_list(languages, flag="--languages"))
        unknown = [code for code in codes if code not in SPOKEN_TARGETS]
        if not codes or unknown:
            raise BadInputError(
                f"command line: --languages: {', '.join(unknown) or 'none given'}; expected some of "
                f"{', '.join(SPOKEN_TARGETS)}"
            )
        if not isinstance(scale, (int, float)) or not 0 < scale <= 1:
            raise BadInputError(f"command line: --scale: expected a number in (0, 1]; got {scale!r}")
        params = SpokenParams(seed=int(seed), scale=float(scale), languages=codes, model=model)
        audio_present = not audio or all((data_path / "audio" / code).is_dir() for code in codes)
        experiments_present = all(experiment_present(data_path / experiment_folder_name(code)) for code in codes)
        if not overwrite and experiments_present and audio_present:
            for code in codes:
                write_default_config(data_path / experiment_folder_name(code), writer="selection.download")
            log.info("spoken-word corpus already present in %s; pass --overwrite to rebuild it", data_path)
            return
        make_spoken(data_path, params=params, overwrite=overwrite, audio=bool(audio))
        log.info("spoken-word experiments under %s (select/evaluate --language L --data_dir %s)", data_path, data_path)
    elif source == "commands":
        if not isinstance(scale, (int, float)) or not 0 < scale <= 1:
            raise BadInputError(f"command line: --scale: expected a number in (0, 1]; got {scale!r}")
        make_commands(workspace_path, scale=float(scale), seed=int(seed), overwrite=overwrite)
    elif source == "dataperf":
        download_published(
            data_path, base_url=base_url, timeout=timeout, max_bytes=max_mb << 20, overwrite=overwrite, sha256=sha256
        )
    else:
        raise BadInputError(f"command line: --source: unknown source {source!r}; expected synthetic or dataperf")


if __name__ == "__main__":
    run_command(download)
