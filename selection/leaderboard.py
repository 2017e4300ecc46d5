"""``leaderboard``: score every team's submission on every leaderboard, on one machine or a Dask cluster.

Usage::

    python -m selection.leaderboard --submissions DIR --data_dir DIR --outdir DIR
        [--config_file F] [--scheduler tcp://host:8786] [--n_workers N]
        [--baselines random,cross_validation] [--timeout 30]

Submissions are ``<submissions>/<team>/<language>_<size>_train.json`` (the names the
reference's ``select`` writes; what ``selection.submit`` makes). Every language with an
experiment under ``<data_dir>`` (``dataperf_<language>_data/`` or ``<language>/``) is a
leaderboard; a file's size limit is the size in its name. Scores are exactly ``eval.py``'s.

The engine is Dask: without ``--scheduler`` a local cluster of ``--n_workers`` single-threaded
worker processes (libsvm's random generator is process-wide, so SVCs are never fit in parallel
threads of one process); with it, an existing cluster. Each worker reads and checks a
language's data once and keeps it for all that language's submissions. A bad submission is a
``rejected`` row with eval.py's one-line reason, a task lost with its worker is rescheduled by
Dask or ends as a ``failed`` row, and each result is written as soon as it arrives, so a rerun
(after Ctrl-C, say) scores only what is new or changed.
"""

from __future__ import annotations

if __name__ == "__main__":
    from selection.cli import exit_quietly_on_ctrl_c

    exit_quietly_on_ctrl_c()

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import operator
import os
import pydoc
import re
import threading
import time
from pathlib import Path

from selection.board.entries import BASELINE_TEAM, Submission, find_submissions, visible
from selection.board.uncertainty import BOOTSTRAP_SEED, MAX_RESAMPLES, MIN_RESAMPLES
from selection.cli import run_command
from selection.inputs.documents import MAX_TRAIN_FILE_BYTES, read_bytes
from selection.inputs.errors import BadInputError
from selection.inputs.layout import LEADERBOARD_SIZES, find_experiment, languages_in, results_file_name
from selection.inputs.validation import split_flag_list
from selection.inputs.write import check_output_dir, nesting, write_json_atomic
from selection.plugins import check_algorithm_names, resolve_algorithm

log = logging.getLogger("dataperf")
RESULTS_DIR = "results"
LOCK_FILE = ".leaderboard.lock"
RESULT_FORMAT = 2
PREDICTIONS = "_predictions"  # a scored row's per-seed predictions, on their way from a worker to their own file
MAX_RESULT_BYTES = 4 * 1024 * 1024
WORKERS_PER_CORE = 2
SCHEDULER_ADDRESS = re.compile(r"(?:(?:tcp|tls|ws|wss|ucx|inproc)://)?[A-Za-z0-9._\-\[\]:]+:[0-9]{1,5}")


def eval_set_identity(folder: Path) -> str:
    """A digest of a language's data files' contents (and names): changes when any byte of them does.

    Sizes and modification times are not enough: data rewritten in place with the same size and a
    reset time would keep stale results. Hashing is about a second per GB.
    """
    digest = hashlib.sha256()
    for path in sorted([*folder.rglob("*.parquet"), *folder.glob("*.yaml")]):
        with open(path, "rb") as handle:
            digest.update(f"{path.relative_to(folder)}:{hashlib.file_digest(handle, 'sha256').hexdigest()}\n".encode())
    return digest.hexdigest()


def submission_key(submission: Submission, data_identity: dict[str, str], scoring: dict) -> str:
    """What a stored result depends on: the file's bytes, the eval set's identity and the scoring config."""
    digest = hashlib.sha256()
    if submission.baseline:
        digest.update(f"baseline:{submission.baseline}:{json.dumps(scoring.get('algorithm_config'))}".encode())
    elif submission.problem is None:
        try:
            digest.update(read_bytes(submission.file, max_bytes=MAX_TRAIN_FILE_BYTES, follow_links=False))
        except BadInputError as error:
            digest.update(f"<unreadable: {error}>".encode())
    else:
        digest.update(f"<rejected: {submission.problem}>".encode())
    digest.update(data_identity.get(submission.language or "", "").encode())
    from selection.scoring.provenance import harness, recipe

    identity = {**scoring, "size": submission.size, "format": RESULT_FORMAT, "recipe": recipe()}
    identity["harness_version"] = harness()["harness_version"]
    digest.update(json.dumps(identity, sort_keys=True).encode())
    return digest.hexdigest()


# --- on the workers ------------------------------------------------------------------------------

# From this many submissions to score a board is big: each worker compiles the scoring loops (about
# 4 s) while it loads, and reads the whole allowed pool once (each submission's picks then come from
# memory, not from parquet): at 2 workers each then scores about 20 or more, each about 0.2 s faster
# through the compiled loops and 0.1 s faster for the reads.
BIG_BOARD_SUBMISSIONS = 40
_LOADED: dict[str, object] = {}
_LOADS = [0]


def _experiment(folder: str, big_board: bool = False):
    """This worker process's loaded experiment for ``folder``: read and checked once, kept for every submission.

    On a big board (:data:`BIG_BOARD_SUBMISSIONS`) the first load also compiles the scoring loops, in a
    thread beside the loading, so that no scoring runs through libsvm's loops first, and each load
    reads the allowed pool's vectors too. A pool that does not load (an unreadable parquet file, a
    missing clip) is left unread: each submission then reads only its own picks, as ``eval.py`` does,
    and only the submissions that pick a faulty clip are rejected for it. The scores do not depend on
    either (the same float32 vectors, the same bits).
    """
    if folder not in _LOADED:
        import threading

        from selection.scoring import fast_predict
        from selection.scoring.experiment import load_experiment

        compiling = None
        if big_board and not _LOADED:
            compiling = threading.Thread(target=fast_predict.compile_loops, name="compile-scoring-loops")
            compiling.start()
        experiment = load_experiment(Path(folder))
        if big_board:
            try:
                experiment.pool  # noqa: B018 - loads and keeps the pool's vectors
            except BadInputError:
                pass
        _LOADED[folder] = experiment
        _LOADS[0] += 1
        if compiling is not None:
            compiling.join()
    return _LOADED[folder]


def score_submission(
    submission: Submission | dict, folder: str, scoring: dict, key: str, n_jobs: int = 1, big_board: bool = False
) -> dict:
    """Score one submission exactly as ``eval.py`` would; a submission at fault gives a ``rejected`` row.

    Runs on a Dask worker. Never raises for the submission's faults; a harness bug raises. ``n_jobs``
    is the scorer's threads (the results do not depend on it): the machine's cores shared among the
    local cluster's workers, 1 on an existing cluster, whose machines the harness does not know.
    ``big_board``: compile the scoring loops and read the allowed pool when this worker first loads
    data (see :func:`_experiment`); the results do not depend on it either.
    """
    started = time.perf_counter()
    if isinstance(submission, dict):
        submission = Submission(**submission)
    row = {"team": submission.team, "language": submission.language, "size": submission.size}
    row.update(file=submission.file, key=key, baseline=submission.baseline)
    try:
        if submission.problem:
            raise BadInputError(submission.problem)
        experiment = _experiment(folder, big_board)
        seeds, metric = scoring["eval_random_seeds"], scoring["metric"]
        if submission.baseline:
            module, class_name = resolve_algorithm(submission.baseline)
            algorithm_config = {
                **scoring["algorithm_config"],
                "eval_random_seeds": seeds,
                "metric": metric,
                "selection_algorithm_module": module,
                "selection_algorithm_class": class_name,
            }
            train_set = experiment.select(size=submission.size, config=algorithm_config)
            results = experiment.score(
                train_set, metric=metric, seeds=seeds, limit=submission.size, n_jobs=n_jobs, keep_predictions=True
            )
        else:
            found: list[str] = []
            results = experiment.score(
                submission.file, metric=metric, seeds=seeds, limit=submission.size, n_jobs=n_jobs, warnings=found,
                follow_links=False, keep_predictions=True,
            )  # fmt: skip
            row["warnings"] = found
    except BadInputError as error:
        from selection.cli import one_line

        return {**row, "status": "rejected", "reason": one_line(str(error)), "seconds": _since(started)}
    results.update(train_file=submission.file, seconds=_since(started))
    return {**results.to_dict(), **row, "status": "scored", PREDICTIONS: results.predictions}


def _worker_stats() -> tuple[float, int]:
    """This worker process's peak resident memory (Linux ``VmHWM``, MB) and how many data sets it loaded."""
    peak = float("nan")
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak, _LOADS[0]


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)


# --- on the client -------------------------------------------------------------------------------


def write_result(out: Path, path: Path, row: dict) -> None:
    """Write one result (and a scored row's predictions beside it) under ``out``, never through a symbolic link."""
    import io

    import numpy as np

    from selection.inputs.write import write_bytes_atomic

    _check_no_links(out, path)
    predictions = row.pop(PREDICTIONS, None)
    if predictions is not None:
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(predictions, dtype=np.int8), allow_pickle=False)
        write_bytes_atomic(predictions_path(path), buffer.getvalue())
    write_json_atomic(path, row)


def predictions_path(result: Path) -> Path:
    """``<language>_<size>_predictions.npy`` beside ``<language>_<size>_results.json``: int8, (n_seeds, n_eval)."""
    return result.with_name(result.name.removesuffix("_results.json") + "_predictions.npy")


def _check_no_links(out: Path, path: Path) -> None:
    for folder in (out / RESULTS_DIR, path.parent.parent, path.parent):
        if folder.is_symlink():
            raise BadInputError(f"{folder}: is a symbolic link; results are written only into real folders")


def _result_path(outdir: Path, submission: Submission) -> Path:
    """Where a row is kept: baselines in ``results/.baselines/`` (no team folder is read from a dot-folder, so
    no team can share their files); a rejected entry under its own file name, apart from the canonical one."""
    if submission.baseline:
        return (
            outdir
            / RESULTS_DIR
            / ".baselines"
            / submission.baseline
            / results_file_name(submission.language, submission.size)
        )
    team = _stored_name(submission.team)
    if submission.problem:
        stem = _stored_name(Path(submission.file).name.removesuffix("_train.json"))
        return outdir / RESULTS_DIR / team / f"{stem}_rejected.json"
    return outdir / RESULTS_DIR / team / results_file_name(submission.language, submission.size)


def _stored_name(name: str) -> str:
    """``name`` as a file or folder name of the results: as it is when short, else its start and a digest.

    A team's legal 255-byte file name plus a suffix, or an escaped name, would exceed the file
    system's limit and stop the whole board; a shortened name keeps it one team's row.
    """
    import hashlib

    if len(name.encode("utf-8", "surrogateescape")) <= 120:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{name[:40]}...{digest}"


def _stored(path: Path, key: str, submission: Submission, truth: tuple | None = None) -> dict | None:
    """The result stored for ``submission`` at ``path`` if it is one this harness wrote for this very key, else None.

    A stored result is somebody's file until proven otherwise: it is read only if it is a
    regular file of at most :data:`MAX_RESULT_BYTES`, and used only if every field the board
    shows has the type and range the harness writes; anything else is rescored.
    """
    try:
        document = json.loads(read_bytes(path, max_bytes=MAX_RESULT_BYTES, follow_links=False))
    except (BadInputError, ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or document.get("key") != key:
        return None
    if document.get("status") == "scored" and not _predictions_present(path, document):
        return None
    if not _valid_row(document, submission):
        return None
    if document.get("status") == "scored" and truth is not None and not _agrees(path, document, *truth):
        return None
    return document


def _agrees(path: Path, row: dict, labels, n_classes: int, metric: str, provenance: dict) -> bool:
    """Whether a stored row's score is what its stored predictions give, and its provenance the harness's own.

    A row edited by hand (a forged score, another recipe or seed list in its provenance) is rescored.
    """
    import numpy as np

    from selection.board.uncertainty import _metric

    stored = row.get("provenance")
    if not isinstance(stored, dict) or any(stored.get(name) != value for name, value in provenance.items()):
        return False
    predictions = _load_predictions(predictions_path(path), len(labels), n_classes)
    if predictions is None or len(predictions) != len(row["per_seed"]):
        return False
    confusion = np.zeros((len(predictions), n_classes, n_classes))
    for seed, predicted in enumerate(predictions):
        np.add.at(confusion[seed], (labels, predicted.astype(np.int64)), 1)
    per_seed = _metric(confusion, metric)
    try:
        stored_per_seed = np.array([float(entry["score"]) for entry in row["per_seed"]])
    except (TypeError, KeyError, ValueError):
        return False
    return (
        bool(np.allclose(per_seed, stored_per_seed, rtol=0, atol=1e-9)) and abs(per_seed.mean() - row["score"]) <= 1e-9
    )


def _predictions_present(path: Path, row: dict) -> bool:
    """Whether a scored row's predictions file is a regular file of the size its row implies (int8, seeds × clips)."""
    import stat

    try:
        info = os.lstat(predictions_path(path))
        expected = len(row["per_seed"]) * int(row["n_eval"])
    except (OSError, KeyError, TypeError, ValueError):
        return False
    return stat.S_ISREG(info.st_mode) and expected <= info.st_size <= expected + 4096


def _is_fraction(value) -> bool:
    return type(value) is float and math.isfinite(value) and 0.0 <= value <= 1.0


def _valid_row(row: dict, submission: Submission) -> bool:
    """Whether a stored row has exactly the identity of ``submission`` and fields of the types the harness writes."""
    expected = {"team": submission.team, "language": submission.language, "size": submission.size}
    expected.update(file=submission.file, baseline=submission.baseline)
    if any(row.get(name) != value or type(row.get(name)) is not type(value) for name, value in expected.items()):
        return False
    if row.get("status") == "rejected":
        return isinstance(row.get("reason"), str)
    if row.get("status") != "scored":
        return False
    figures = ("score", "macro_f1", "balanced_accuracy")
    std = row.get("score_std")
    n_train = row.get("n_train")
    return (
        all(_is_fraction(row.get(name)) for name in figures)
        and type(std) is float
        and math.isfinite(std)
        and 0.0 <= std <= 1.0
        and type(n_train) is int
        and 0 <= n_train <= (submission.size or 0)
        and type(row.get("seconds", 0.0)) in (int, float)
    )


def _call_on_worker(path: str):
    """Call the function at dotted ``path`` on a worker (``client.run`` ships this by reference)."""
    return pydoc.locate(path)()


def _ship_harness(client) -> None:
    """Give every worker of an existing cluster the harness, through Dask's own ``upload_file``.

    Workers started with only the requirements installed (no checkout, no ``PYTHONPATH``) get
    the ``selection`` package as a zip that Dask puts on their import path, now and on every
    worker that joins later. Workers that already import the harness are told nothing new.
    """
    import tempfile
    import zipfile

    package = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory(prefix="dataperf-harness-") as folder:
        archive = Path(folder) / "dataperf_speech_harness.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            for path in sorted(package.rglob("*.py")):
                bundle.write(path, str(path.relative_to(package.parent)))
        try:
            client.upload_file(str(archive))
        except Exception as error:  # noqa: BLE001 - a worker's own failure, reported in one line
            raise BadInputError(
                f"command line: --scheduler: the workers could not be given the harness ({type(error).__name__}: "
                f"{str(error)[:160]}); install it on them (pip install . from this repository)"
            ) from None


def _connect(scheduler: str, timeout: float):
    """A client of the Dask scheduler at ``scheduler``, or a one-line error within about ``timeout`` seconds.

    The connection is made in a daemon thread: a server that accepts the connection but is
    not a Dask scheduler can keep the client waiting (or make it read garbage) far past its
    own timeout, and the board must still stop when ``--timeout`` says.
    """
    from distributed import Client

    outcome: dict = {}

    def connect() -> None:
        try:
            outcome["client"] = Client(scheduler, timeout=f"{timeout}s")
        except BaseException as error:  # noqa: BLE001 - whatever a stranger's server makes the client raise
            outcome["error"] = error

    thread = threading.Thread(target=connect, name="connect-scheduler", daemon=True)
    thread.start()
    thread.join(timeout + 2)
    if "client" in outcome:
        return outcome["client"]
    error = outcome.get("error")
    reason = f"{type(error).__name__}: {str(error)[:160]}" if error is not None else "no Dask handshake"
    raise BadInputError(
        f"command line: --scheduler: {scheduler} did not answer as a Dask scheduler within {timeout:g} s ({reason}); "
        "expected the address of a running Dask scheduler (dask scheduler prints it)"
    )


def _open_client(scheduler: str | None, n_workers: int, timeout: float):
    from distributed import Client, LocalCluster

    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if scheduler:
        return _connect(scheduler, timeout), None
    # Worker processes read their log levels from the environment when they start: a heartbeat that races
    # the shutdown would otherwise print a traceback. Task errors still reach the client as rows.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "critical")
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.CRITICAL,
        worker_class="distributed.Nanny",
    )
    return Client(cluster), cluster


def build_leaderboard(
    submissions: str,
    data_dir: str,
    outdir: str,
    config_file: str = "workspace/dataperf_speech_config.yaml",
    scheduler: str | None = None,
    n_workers: int = 2,
    baselines: str = "random,cross_validation",
    timeout: float = 30.0,
    sizes: str = ",".join(map(str, LEADERBOARD_SIZES)),
    bootstrap: int = 1000,
) -> None:
    """Score every submission (and the baselines) on every leaderboard and write the ranked board.

    Parameters
    ----------
    submissions : str
        Folder of team folders, each holding ``<language>_<size>_train.json`` files.
    data_dir : str
        Folder of the languages' experiments (``dataperf_<language>_data/`` or ``<language>/``),
        each as ``download`` writes it.
    outdir : str
        Receives ``results/<team>/<language>_<size>_results.json`` (one per submission, as each
        arrives), ``leaderboard.json``, ``leaderboard.csv`` and ``leaderboard.html``. It may not
        be inside ``--submissions`` (a team could plant results there), nor hold it.
    config_file : str
        ``metric`` and ``eval_random_seeds`` come from it (the size limit from each file name).
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``); default a local cluster.
    n_workers : int, default=2
        Worker processes of the local cluster (one thread each), at most two per core: each
        holds the languages' eval sets, so more only costs memory.
    baselines : str, default='random,cross_validation'
        Comma-separated shipped algorithms (``random``, ``cross_validation``, ...) run on each
        leaderboard's allowed pool and shown beside the teams as ``baseline:<name>``, with scores
        and intervals but no rank (the same default as ``run`` and ``submit``); empty for none.
    timeout : float, default=30.0
        Seconds to wait for ``--scheduler`` to answer as a Dask scheduler.
    sizes : str, default='25,60'
        The leaderboards' sizes; a file for any other size is a rejected row.
    bootstrap : int, default=1000
        Resamples of the paired bootstrap over eval clips (:mod:`selection.board.uncertainty`):
        each score's 95% interval, each entry's rank interval and tie groups; 0 turns it off, else
        200 to 10000. Memory: the clips' resample counts (n_clips × resamples bytes, 4x where that
        fits in 512 MB) plus 12 bytes per entry and resample.
    """
    from selection.board.report import write_reports
    from selection.inputs.load import load_config

    config = load_config(config_file)
    submissions_path, data_path = Path(submissions), Path(data_dir)
    if not submissions_path.is_dir():
        raise BadInputError(f"{submissions_path}: --submissions: not a folder; expected a folder of team folders")
    board_sizes = _check_sizes(sizes)
    if not (bootstrap == 0 or MIN_RESAMPLES <= bootstrap <= MAX_RESAMPLES):
        raise BadInputError(
            f"command line: --bootstrap: {bootstrap}; expected 0 (off) or {MIN_RESAMPLES} to {MAX_RESAMPLES} "
            "resamples (fewer cannot give a 95% interval)"
        )
    _check_runner(scheduler, n_workers, timeout)
    languages = languages_in(data_path)
    if not languages:
        raise BadInputError(
            f"{data_path}: --data_dir: no language's experiment found; expected dataperf_<language>_data/ folders "
            "as download writes them"
        )
    out = check_output_dir(outdir, create=True)
    _check_apart(out, submissions_path)
    with _outdir_lock(out):  # one board at a time writes --outdir
        folders = {language: str(find_experiment(data_path, language)) for language in languages}
        identity = {language: eval_set_identity(Path(folder)) for language, folder in folders.items()}
        algorithm_keys = {k: v for k, v in config.items() if k not in ("eval_random_seeds", "metric")}
        scoring = {"metric": config["metric"], "eval_random_seeds": config["eval_random_seeds"]}
        work = find_submissions(submissions_path, languages, board_sizes)
        compared = check_algorithm_names(split_flag_list(baselines or "", flag="--baselines"), flag="--baselines")
        for name in compared:
            for language in languages:
                for size in board_sizes:
                    work.append(Submission(f"{BASELINE_TEAM}:{name}", f"<{name}>", language, size, baseline=name))
        log.info(
            "%d submissions from %d teams, %d baseline runs; leaderboards: %s × sizes %s",
            sum(1 for item in work if not item.baseline),
            len({item.team for item in work if not item.baseline}),
            sum(1 for item in work if item.baseline),
            ", ".join(languages),
            ", ".join(map(str, board_sizes)),
        )
        from selection.scoring.provenance import harness, recipe

        rows, pending = [], []
        stale = 0
        truths: dict[str, tuple] = {}
        expected_provenance = {
            "harness_version": harness()["harness_version"], "recipe": recipe(),
            "metric": config["metric"], "eval_random_seeds": config["eval_random_seeds"],
        }  # fmt: skip
        for item in work:
            item_scoring = {**scoring, "algorithm_config": algorithm_keys} if item.baseline else scoring
            key = submission_key(item, identity, item_scoring)
            truth = None
            if item.language in folders and not item.problem:
                truth = (*_eval_truth(truths, folders, item.language), config["metric"], expected_provenance)
            stored = _stored(_result_path(out, item), key, item, truth)
            if stored is not None:
                rows.append(stored)
            else:
                stale += os.path.lexists(_result_path(out, item))
                pending.append((item, key, item_scoring))
        if stale:
            log.info(
                "%d stored results are rescored: their file, the data, the config or the scoring recipe changed, or "
                "they did not pass the checks",
                stale,
            )
        for item, _, _ in pending:
            _check_no_links(out, _result_path(out, item))
        log.info("%d already scored (kept), %d to score", len(rows), len(pending))
        if pending:
            written = [0]
            try:
                rows += _score_all(
                    pending, folders, out, scheduler=scheduler, n_workers=n_workers, timeout=timeout, written=written
                )
            except KeyboardInterrupt:
                raise KeyboardInterrupt(
                    f"{written[0]} results finished in this run were kept in {out / RESULTS_DIR} (with {len(rows)} "
                    "from earlier runs); run the same command again to score the rest"
                ) from None
        if bootstrap:
            started = time.perf_counter()
            _attach_uncertainty(rows, out, folders, truths, resamples=bootstrap, metric=config["metric"])
            log.info("bootstrap: %d resamples of the eval clips per leaderboard in %.1f s", bootstrap, _since(started))
        from selection.scoring.provenance import eval_set_identity as eval_set_identity_of

        provenance = {
            **harness(),
            "recipe": recipe(),
            "metric": config["metric"],
            "eval_random_seeds": config["eval_random_seeds"],
            "eval_sets": {
                language: eval_set_identity_of(Path(folder) / "eval.yaml", Path(folder) / "eval_embeddings")
                for language, folder in folders.items()
            },
            "bootstrap": {"resamples": bootstrap, "seed": BOOTSTRAP_SEED, "level": 0.95},
        }
        board = write_reports(
            rows, out, metric=config["metric"], config_file=str(config_file), provenance=provenance,
            submissions_root=visible(str(submissions_path)),
        )  # fmt: skip
        scored = sum(1 for row in board["rows"] if row["status"] == "scored")
        rejected = sum(1 for row in board["rows"] if row["status"] == "rejected")
        failed = sum(1 for row in board["rows"] if row["status"] == "failed")
        log.info(
            "board: %d scored, %d rejected, %d failed; wrote %s, leaderboard.csv and leaderboard.html",
            scored,
            rejected,
            failed,
            out / "leaderboard.json",
        )


@contextlib.contextmanager
def _outdir_lock(out: Path):
    """An exclusive lock on ``--outdir`` for this run, released however the run ends.

    Two boards writing one folder at once would interleave their results and pages. A folder this
    run created and left holding nothing but the lock is removed again: a refused run leaves no trace.
    """
    import fcntl

    created = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = open(out / LOCK_FILE, "a+")  # noqa: SIM115 - held open for the whole run
    except OSError as error:
        raise BadInputError(f"{out}: --outdir: cannot be locked ({error.strerror})") from None
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            created = False
            raise BadInputError(
                f"{out}: --outdir: another leaderboard run is writing this folder; wait for it, or choose another"
            ) from None
        yield
    finally:
        handle.close()
        if created and sorted(os.listdir(out)) == [LOCK_FILE]:
            (out / LOCK_FILE).unlink(missing_ok=True)
            out.rmdir()


def _eval_truth(truths: dict, folders: dict, language: str) -> tuple:
    """(eval labels, number of classes) of a language, read once per run into ``truths``."""
    if language not in truths:
        from selection.scoring.experiment import load_experiment

        experiment = load_experiment(Path(folders[language]), label=language)
        truths[language] = (experiment.evaluation_labels, len(experiment.class_names))
    return truths[language]


def _attach_uncertainty(
    rows: list[dict], out: Path, folders: dict, truths: dict, *, resamples: int, metric: str
) -> None:
    """Add each scored row's 95% interval, rank interval and tie group (a paired bootstrap per leaderboard)."""
    import numpy as np

    from selection.board.uncertainty import board_uncertainty, resample_counts, resampled_scores

    boards: dict[tuple, list[dict]] = {}
    for row in rows:
        if row.get("status") == "scored":
            boards.setdefault((row["language"], row["size"]), []).append(row)
    for (language, size), entries in sorted(boards.items()):
        truth, n_classes = _eval_truth(truths, folders, language)
        counts = resample_counts(len(truth), resamples, board=f"{language}-{size}")
        kept, resampled = [], []
        for row in entries:
            submission = Submission(row["team"], row["file"], language, size, baseline=row.get("baseline"))
            predictions = _load_predictions(predictions_path(_result_path(out, submission)), len(truth), n_classes)
            if predictions is None:
                log.warning("warning: %s: no usable stored predictions; its row has no interval", row["file"])
                continue
            resampled.append(resampled_scores(truth, predictions, counts, n_classes=n_classes, metric=metric))
            kept.append(row)
        if kept:
            figures = board_uncertainty(np.array([row["score"] for row in kept]), np.array(resampled))
            for row, found in zip(kept, figures):  # every entry's own 95% interval
                row.update(ci_low=found["ci_low"], ci_high=found["ci_high"], rank_low=None, rank_high=None,
                           tie_group=None)  # fmt: skip
            teams = [index for index, row in enumerate(kept) if not row.get("baseline")]
            if teams:  # rank ranges and tie groups among the teams only, as their ranks are
                figures = board_uncertainty(
                    np.array([kept[index]["score"] for index in teams]), np.array([resampled[i] for i in teams])
                )
                for index, found in zip(teams, figures):
                    kept[index].update(found)


def _load_predictions(path: Path, n_clips: int, n_classes: int):
    """A stored predictions array, or None if it is not an int8 (seeds, n_clips) array of class ids."""
    import io

    import numpy as np

    try:
        stream = io.BytesIO(read_bytes(path, max_bytes=64 << 20, follow_links=False))
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(stream)
        body = len(stream.getbuffer()) - stream.tell()
        if dtype != np.int8 or len(shape) != 2 or shape[1] != n_clips or shape[0] * shape[1] != body:
            return None  # checked from the header, before numpy allocates what the header claims
        stream.seek(0)
        array = np.load(stream, allow_pickle=False)
    except (BadInputError, ValueError, OSError, EOFError):
        return None
    if array.dtype != np.int8 or array.ndim != 2 or array.shape[1] != n_clips or array.size == 0:
        return None
    if array.min() < 0 or array.max() >= n_classes:
        return None
    return array


def _check_sizes(sizes: str) -> list[int]:
    """The board's sizes from ``--sizes``: distinct positive integers."""
    parts = [part.strip() for part in str(sizes).split(",") if part.strip()]
    if not parts or not all(part.isdigit() and part.isascii() and 0 < int(part) < 10**6 for part in parts):
        raise BadInputError(f"command line: --sizes: {sizes!r}; expected comma-separated positive sizes such as 25,60")
    return sorted({int(part) for part in parts})


def _check_runner(scheduler: str | None, n_workers: int, timeout: float) -> None:
    """Refuse a scheduler address Dask cannot use, a non-positive timeout, and more workers than the cores carry."""
    if not timeout > 0:
        raise BadInputError(f"command line: --timeout: expected a positive number of seconds; got {timeout:g}")
    if scheduler is not None and not SCHEDULER_ADDRESS.fullmatch(scheduler):
        raise BadInputError(
            f"command line: --scheduler: {scheduler[:200]!r} is not a Dask scheduler address; expected "
            "tcp://host:port (as dask scheduler prints it)"
        )
    limit = WORKERS_PER_CORE * (os.cpu_count() or 1)
    if n_workers < 1 or n_workers > limit:
        raise BadInputError(
            f"command line: --n_workers: {n_workers}; expected 1 to {limit} ({WORKERS_PER_CORE} per core: each "
            "worker is a process holding the eval sets, so more only adds memory); for more, use --scheduler"
        )


def _check_apart(out: Path, submissions: Path) -> None:
    """Refuse an ``--outdir`` inside ``--submissions`` (teams could plant results) or the reverse."""
    relation = nesting(out, submissions)
    if relation in ("same", "inside"):
        raise BadInputError(
            f"{out}: --outdir: is inside --submissions ({submissions}); a team could plant results there; "
            "expected a folder of the organisers' own"
        )
    if relation == "holds":
        raise BadInputError(f"{out}: --outdir: holds --submissions ({submissions}); expected separate folders")


def _score_all(
    pending: list, folders: dict, out: Path, *, scheduler, n_workers: int, timeout: float, written: list[int]
) -> list[dict]:
    """Fan the pending submissions out to Dask; write each result as it arrives (counted in ``written``)."""
    import sys

    from distributed import as_completed
    from tqdm import tqdm

    client, cluster = _open_client(scheduler, n_workers, timeout)
    rows = []
    try:
        if cluster is None:
            _ship_harness(client)
        # The tasks name the harness's function by its dotted path (pydoc.locate, on the worker) and carry only
        # plain data, so the scheduler, which unpickles every task, never needs the harness itself; the function
        # then runs from its module, so the worker keeps each loaded experiment for every later task.
        task = client.submit(pydoc.locate, "selection.leaderboard.score_submission", key="harness-score-task")
        threads = max(1, len(os.sched_getaffinity(0)) // n_workers) if cluster is not None else 1
        big_board = len(pending) >= BIG_BOARD_SUBMISSIONS
        futures = {}
        for item, key, item_scoring in pending:
            folder = folders.get(item.language or "", "")
            future = client.submit(
                operator.call, task, dataclasses.asdict(item), folder, item_scoring, key, threads, big_board,
                key=f"score-{key[:16]}-{len(futures)}", pure=False,
            )  # fmt: skip
            futures[future] = (item, key)
        rejected = 0
        with tqdm(total=len(futures), desc="submissions", unit=" files", file=sys.stderr, mininterval=1.0) as bar:
            for future in as_completed(futures):
                item, key = futures[future]
                try:
                    row = future.result()
                except Exception as error:  # noqa: BLE001 - a lost worker, a harness bug on a worker: a failed row
                    from selection.cli import one_line

                    row = {
                        "team": item.team,
                        "language": item.language,
                        "size": item.size,
                        "file": item.file,
                        "key": key,
                        "baseline": item.baseline,
                        "status": "failed",
                        "reason": one_line(f"{type(error).__name__}: {error}"),
                    }
                rejected += row["status"] == "rejected"
                if row["status"] != "failed":
                    write_result(out, _result_path(out, item), row)
                    written[0] += 1
                rows.append(row)
                bar.set_postfix(rejected=rejected, refresh=False)
                bar.update()
        try:
            stats = sorted(client.run(_call_on_worker, "selection.leaderboard._worker_stats").values(), reverse=True)
            log.info("peak memory per worker: %s MB", ", ".join(f"{peak:.0f}" for peak, _ in stats))
            log.info("data sets loaded per worker: %s", ", ".join(str(loads) for _, loads in stats))
        except Exception as error:  # noqa: BLE001 - the figures are a courtesy; the board is already built
            log.info("worker statistics unavailable (%s)", type(error).__name__)
    finally:
        for name in ("distributed", "tornado", "asyncio"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        client.close()
        if cluster is not None:
            cluster.close()
    return rows


if __name__ == "__main__":
    run_command(build_leaderboard)
