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

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from selection.cli import run_command
from selection.errors import BadInputError
from selection.layout import LEADERBOARD_SIZES, SUBMISSION_NAME, find_experiment, languages_in, results_file_name
from selection.write import check_output_dir, write_json_atomic

log = logging.getLogger("dataperf")
RESULTS_DIR = "results"
BASELINE_TEAM = "baseline"
RESULT_FORMAT = 1


@dataclass(frozen=True)
class Submission:
    """One file to score: ``team``'s ``file`` for the (``language``, ``size``) leaderboard."""

    team: str
    file: str
    language: str | None
    size: int | None
    problem: str | None = None
    baseline: str | None = None


def find_submissions(submissions: Path, languages: list[str]) -> list[Submission]:
    """Every team folder's ``*_train.json`` entries; names that match no leaderboard carry their problem."""
    found = []
    for team_dir in sorted(path for path in submissions.iterdir() if path.is_dir() and not path.name.startswith(".")):
        for entry in sorted(team_dir.iterdir()):
            if not entry.name.endswith("_train.json"):
                continue
            match = SUBMISSION_NAME.fullmatch(entry.name)
            language = match["language"] if match else None
            size = int(match["size"]) if match else None
            problem = None
            if match is None:
                problem = f"{entry}: file name matches no leaderboard; expected <language>_<size>_train.json"
            elif language not in languages:
                problem = (
                    f"{entry}: no leaderboard for language {language!r}; "
                    f"expected one of {', '.join(languages) or '(no data)'}"
                )
            elif size < 1:
                problem = f"{entry}: size 0 in the file name; expected a positive size"
            found.append(Submission(team_dir.name, str(entry), language, size, problem))
    return found


def eval_set_identity(folder: Path) -> str:
    """A digest of a language's data files' identities (path, size, modification time): changes when they do."""
    parts = []
    for path in sorted([*folder.rglob("*.parquet"), *folder.glob("*.yaml")]):
        info = path.stat()
        parts.append(f"{path.relative_to(folder)}:{info.st_size}:{info.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def submission_key(submission: Submission, data_identity: dict[str, str], scoring: dict) -> str:
    """What a stored result depends on: the file's bytes, the eval set's identity and the scoring config."""
    digest = hashlib.sha256()
    if submission.baseline:
        digest.update(f"baseline:{submission.baseline}:{json.dumps(scoring.get('algorithm_config'))}".encode())
    else:
        try:
            digest.update(Path(submission.file).read_bytes() if Path(submission.file).is_file() else b"<not a file>")
        except OSError as error:
            digest.update(f"<unreadable: {error.strerror}>".encode())
    digest.update(data_identity.get(submission.language or "", "").encode())
    digest.update(json.dumps({**scoring, "size": submission.size, "format": RESULT_FORMAT}, sort_keys=True).encode())
    return digest.hexdigest()


# --- on the workers ------------------------------------------------------------------------------

_LOADED: dict[str, object] = {}
_LOADS = [0]


def _experiment(folder: str):
    """This worker process's loaded experiment for ``folder``: read and checked once, kept for every submission."""
    if folder not in _LOADED:
        from selection.bench import load_experiment

        _LOADED[folder] = load_experiment(Path(folder))
        _LOADS[0] += 1
    return _LOADED[folder]


def score_submission(submission: Submission, folder: str, scoring: dict, key: str) -> dict:
    """Score one submission exactly as ``eval.py`` would; a submission at fault gives a ``rejected`` row.

    Runs on a Dask worker. Never raises for the submission's faults; a harness bug raises.
    """
    started = time.perf_counter()
    row = {"team": submission.team, "language": submission.language, "size": submission.size}
    row.update(file=submission.file, key=key, baseline=submission.baseline)
    try:
        if submission.problem:
            raise BadInputError(submission.problem)
        experiment = _experiment(folder)
        config = {"eval_random_seeds": scoring["eval_random_seeds"], "metric": scoring["metric"]}
        if submission.baseline:
            from selection.bench import resolve_algorithm, select_and_score

            module, class_name = resolve_algorithm(submission.baseline)
            algorithm_config = {
                **scoring["algorithm_config"],
                **config,
                "selection_algorithm_module": module,
                "selection_algorithm_class": class_name,
                "train_set_size_limit": submission.size,
            }
            train_set, results, _ = select_and_score(experiment, algorithm_config)
        else:
            from selection.bench import score_train_set
            from selection.documents import read_json
            from selection.validation import check_train_set

            train_set, warnings = check_train_set(
                read_json(submission.file),
                file=submission.file,
                allowed=experiment.allowed,
                limit=submission.size,
                eval_set=experiment.evaluation_ids,
            )
            results = score_train_set(experiment, train_set, config)
            row["warnings"] = warnings
    except BadInputError as error:
        from selection.cli import one_line

        return {**row, "status": "rejected", "reason": one_line(str(error)), "seconds": _since(started)}
    results.update(
        n_train=sum(map(len, train_set["targets"].values())) + len(train_set["nontargets"]),
        n_eval=len(experiment.evaluation.ids),
        train_set_size_limit=submission.size,
        train_file=submission.file,
        seconds=_since(started),
    )
    return {**results, **row, "status": "scored"}


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


def _result_path(outdir: Path, submission: Submission) -> Path:
    team = f"{BASELINE_TEAM}-{submission.baseline}" if submission.baseline else submission.team
    language, size = submission.language or "unknown", submission.size if submission.size is not None else 0
    if submission.problem and SUBMISSION_NAME.fullmatch(Path(submission.file).name) is None:
        return outdir / RESULTS_DIR / team / (Path(submission.file).name[: -len("_train.json")] + "_results.json")
    return outdir / RESULTS_DIR / team / results_file_name(language, size)


def _stored(path: Path, key: str) -> dict | None:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) and document.get("key") == key else None


def _open_client(scheduler: str | None, n_workers: int, timeout: float):
    from distributed import Client, LocalCluster

    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if scheduler:
        try:
            return Client(scheduler, timeout=f"{timeout}s"), None
        except (OSError, TimeoutError) as error:
            raise BadInputError(
                f"command line: --scheduler: {scheduler} did not answer within {timeout:g} s ({error}); "
                "expected the address of a running Dask scheduler"
            ) from None
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
    baselines: str = "",
    timeout: float = 30.0,
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
        arrives), ``leaderboard.json``, ``leaderboard.csv`` and ``leaderboard.html``.
    config_file : str
        ``metric`` and ``eval_random_seeds`` come from it (the size limit from each file name).
    scheduler : str, optional
        Address of an existing Dask scheduler (``tcp://host:8786``); default a local cluster.
    n_workers : int, default=2
        Worker processes of the local cluster (one thread each).
    baselines : str, default=''
        Comma-separated shipped algorithms (``random``, ``cross_validation``, ...) run on each
        leaderboard's allowed pool and ranked with the teams, marked as baselines.
    timeout : float, default=30.0
        Seconds to wait for ``--scheduler`` to answer.
    """
    from selection.bench import resolve_algorithm
    from selection.load import load_config
    from selection.report import write_reports

    config = load_config(config_file)
    submissions_path, data_path = Path(submissions), Path(data_dir)
    if not submissions_path.is_dir():
        raise BadInputError(f"{submissions_path}: --submissions: not a folder; expected a folder of team folders")
    languages = languages_in(data_path)
    if not languages:
        raise BadInputError(
            f"{data_path}: --data_dir: no language's experiment found; expected dataperf_<language>_data/ folders "
            "as download writes them"
        )
    if n_workers < 1:
        raise BadInputError(f"command line: --n_workers: expected a positive integer; got {n_workers}")
    out = check_output_dir(outdir, create=True)
    folders = {language: str(find_experiment(data_path, language)) for language in languages}
    identity = {language: eval_set_identity(Path(folder)) for language, folder in folders.items()}
    algorithm_keys = {k: v for k, v in config.items() if k not in ("eval_random_seeds", "metric")}
    scoring = {"metric": config["metric"], "eval_random_seeds": config["eval_random_seeds"]}
    work = find_submissions(submissions_path, languages)
    compared = [name for name in baselines.split(",") if name.strip()] if baselines else []
    for name in compared:
        resolve_algorithm(name.strip())
    sizes = sorted(
        {*LEADERBOARD_SIZES, *(item.size for item in work if item.problem is None and Path(item.file).is_file())}
    )
    for name in compared:
        for language in languages:
            for size in sizes:
                work.append(Submission(f"{BASELINE_TEAM}:{name}", f"<{name}>", language, size, baseline=name.strip()))
    log.info(
        "%d submissions from %d teams, %d baseline runs; leaderboards: %s × sizes %s",
        sum(1 for item in work if not item.baseline),
        len({item.team for item in work if not item.baseline}),
        sum(1 for item in work if item.baseline),
        ", ".join(languages),
        ", ".join(map(str, sizes)),
    )
    rows, pending = [], []
    for item in work:
        item_scoring = {**scoring, "algorithm_config": algorithm_keys} if item.baseline else scoring
        key = submission_key(item, identity, item_scoring)
        stored = _stored(_result_path(out, item), key)
        if stored is not None:
            rows.append(stored)
        else:
            pending.append((item, key, item_scoring))
    log.info("%d already scored (kept), %d to score", len(rows), len(pending))
    if pending:
        rows += _score_all(pending, folders, out, scheduler=scheduler, n_workers=n_workers, timeout=timeout)
    board = write_reports(rows, out, metric=config["metric"], config_file=str(config_file))
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


def _score_all(pending: list, folders: dict, out: Path, *, scheduler, n_workers: int, timeout: float) -> list[dict]:
    """Fan the pending submissions out to Dask; write each result as it arrives; return their rows."""
    import sys

    from distributed import as_completed
    from tqdm import tqdm

    # By reference from the importable module, never from __main__ (``python -m``): cloudpickle would ship
    # a copy of the function with its globals, and every task would load the data anew and keep it.
    from selection.leaderboard import _worker_stats as worker_stats
    from selection.leaderboard import score_submission as task

    client, cluster = _open_client(scheduler, n_workers, timeout)
    rows = []
    try:
        futures = {}
        for item, key, item_scoring in pending:
            folder = folders.get(item.language or "", "")
            future = client.submit(
                task, item, folder, item_scoring, key, key=f"score-{key[:16]}-{len(futures)}", pure=False
            )
            futures[future] = (item, key)
        rejected = 0
        bar = tqdm(total=len(futures), desc="submissions", unit=" files", file=sys.stderr, mininterval=1.0)
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
                write_json_atomic(_result_path(out, item), row)
            rows.append(row)
            bar.set_postfix(rejected=rejected, refresh=False)
            bar.update()
        bar.close()
        stats = sorted(client.run(worker_stats).values(), reverse=True)
        log.info("peak memory per worker: %s MB", ", ".join(f"{peak:.0f}" for peak, _ in stats))
        log.info("data sets loaded per worker: %s", ", ".join(str(loads) for _, loads in stats))
    finally:
        for name in ("distributed", "tornado", "asyncio"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        client.close()
        if cluster is not None:
            cluster.close()
    return rows


if __name__ == "__main__":
    run_command(build_leaderboard)
