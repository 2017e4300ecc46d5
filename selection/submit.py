"""``submit``: a participant's whole submission in one command, checked and scored locally.

Usage::

    python -m selection.submit [--outdir submission/] [--languages en,id,pt] [--sizes 25,60]
        [--config_file workspace/dataperf_speech_config.yaml] [--data_dir workspace/data]
        [--baselines random,cross_validation]

For every leaderboard (language × size) it runs the configured algorithm as ``select``
would, checks the result as ``evaluate`` checks an uploaded file, writes
``<outdir>/{language}_{size}_train.json`` (the names the leaderboards expect), scores it
exactly as ``eval.py`` does, and scores the baselines on the same data. The scorecard goes
to ``<outdir>/scorecard.json`` and is printed as a Markdown table. ``<outdir>`` is what the
organisers' ``selection.leaderboard`` takes as one team's folder.
"""

from __future__ import annotations

if __name__ == "__main__":
    from selection.cli import exit_quietly_on_ctrl_c

    exit_quietly_on_ctrl_c()

import hashlib
import logging
import time
from pathlib import Path

from selection.cli import print_output, run_command
from selection.inputs.errors import BadInputError
from selection.inputs.layout import check_language, find_experiment, leaderboard_note, submission_file_name
from selection.inputs.load import load_config, read_json
from selection.inputs.validation import check_positive_int, split_flag_list
from selection.inputs.write import check_output_dir, write_json_atomic
from selection.plugins import add_plugin_dir, check_algorithm_names, load_algorithm_class
from selection.progress import report_progress
from selection.scoring.experiment import load_experiment
from selection.scoring.provenance import harness, recipe

log = logging.getLogger("dataperf")
SCORECARD = "scorecard.json"


def submit(
    outdir: str = "submission/",
    languages: str = "en,id,pt",
    sizes: str = "25,60",
    config_file: str = "workspace/dataperf_speech_config.yaml",
    data_dir: str = "workspace/data",
    baselines: str = "random,cross_validation",
    overwrite: bool = False,
    plugin_dir: str | None = None,
) -> None:
    """Write and check one train.json per leaderboard, score each next to the baselines.

    Parameters
    ----------
    outdir : str, default='submission/'
        Receives ``{language}_{size}_train.json`` for every leaderboard and ``scorecard.json``.
    languages : str, default='en,id,pt'
        Comma-separated language codes; each is ``<data_dir>/dataperf_{language}_data/``.
    sizes : str, default='25,60'
        Comma-separated sizes (the leaderboards' are 25 and 60).
    config_file : str
        The config whose algorithm is submitted (its ``train_set_size_limit`` is replaced by each size).
    data_dir : str, default='workspace/data'
        Where the languages' experiments are.
    baselines : str, default='random,cross_validation'
        Shipped algorithms scored beside yours on the same data; empty for none.
    overwrite : bool, default=False
        Replace files in ``outdir`` that an earlier ``submit`` did not write (its scorecard lists
        each file it wrote with its SHA-256); without it such a file stops the run before any work.
    plugin_dir : str, optional
        Folder put first on the import path, so that the config can name your algorithm's module
        kept there (as ``select --plugin_dir``); the algorithm is imported before any data is read.
    """
    if plugin_dir is not None:
        add_plugin_dir(plugin_dir)
    config = load_config(config_file)
    load_algorithm_class(config, file=str(config_file))  # before any data is read
    codes = [check_language(code, flag="--languages") for code in split_flag_list(languages, flag="--languages")]
    budgets = [
        check_positive_int(_size(text), file="command line", key="--sizes")
        for text in split_flag_list(sizes, flag="--sizes")
    ]
    for flag, given, value in (("--languages", codes, languages), ("--sizes", budgets, sizes)):
        if not given:
            raise BadInputError(f"command line: {flag}: {value!r} names none; expected a comma-separated list")
    compared = check_algorithm_names(split_flag_list(baselines, flag="--baselines"), flag="--baselines")
    folders = {code: find_experiment(data_dir, code) for code in codes}
    out = check_output_dir(outdir, create=True)
    written = _files_written_before(out, overwrite=overwrite)
    if not overwrite:
        _refuse_foreign_files(out, [submission_file_name(code, size) for code in codes for size in budgets], written)
    for size in budgets:
        if leaderboard_note(size):
            log.warning("warning: %s", leaderboard_note(size))
    algorithm = f"{config['selection_algorithm_module']}.{config['selection_algorithm_class']}"
    steps = [(code, size, name) for code in codes for size in budgets for name in ["yours", *compared]]
    rows: list[dict] = []
    scorecard = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "algorithm": algorithm,
        "metric": config["metric"],
        "config_file": str(config_file),
        "complete": False,
        "provenance": {**harness(), "recipe": recipe(), "eval_random_seeds": config["eval_random_seeds"]},
        "files": written,
        "rows": rows,
    }
    experiment, loaded = None, None
    try:
        for code, size, name in report_progress(steps, desc="selections", unit="runs"):
            if loaded != code:
                experiment, loaded = load_experiment(folders[code], config=config, label=code), code
            if name == "yours":
                rows.append(_submit_one(experiment, code, size, out, algorithm))
                written[rows[-1]["file"]] = rows[-1]["sha256"]
                write_json_atomic(out / SCORECARD, scorecard)
            else:
                picked = experiment.select(name, size)
                rows[-1]["baselines"][name] = _figures(experiment.score(picked, limit=size))
            log.info("%s %s at %d: %s", code, name, size, _describe(rows[-1], name))
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            f"the {len(rows)} train files finished ({', '.join(row['file'] for row in rows) or 'none'}) were kept in "
            f"{out}; {SCORECARD} lists them as incomplete; run the same command again for the whole submission"
        ) from None
    scorecard["complete"] = True
    write_json_atomic(out / SCORECARD, scorecard)
    log.info("wrote %d train files and %s to %s", len(rows), SCORECARD, out)
    print_output(format_scorecard(scorecard), written=str(out / SCORECARD))


def _files_written_before(out: Path, *, overwrite: bool) -> dict[str, str]:
    """``{file name: SHA-256}`` of the train files an earlier ``submit`` wrote into ``out`` (its scorecard's list)."""
    card = out / SCORECARD
    if not (card.exists() or card.is_symlink()):
        return {}
    try:
        files = read_json(card, follow_links=False)["files"]
        if isinstance(files, dict) and all(isinstance(value, str) for value in files.values()):
            return dict(files)
    except (BadInputError, KeyError, TypeError):
        pass
    if overwrite:
        return {}
    raise BadInputError(
        f"{card}: exists and is not a scorecard that submit wrote; pass --overwrite to replace it, "
        "or choose another --outdir"
    )


def _refuse_foreign_files(out: Path, names: list[str], written: dict[str, str]) -> None:
    """Refuse to replace a train file in ``out`` that no earlier ``submit`` wrote (as its scorecard records)."""
    for name in names:
        path = out / name
        if not (path.exists() or path.is_symlink()):
            continue
        try:
            ours = path.is_file() and not path.is_symlink() and written.get(name) == _sha256(path)
        except OSError:
            ours = False
        if not ours:
            raise BadInputError(
                f"{path}: exists and was not written by submit (its scorecard does not list these bytes); "
                "pass --overwrite to replace it, or choose another --outdir"
            )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _size(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _submit_one(experiment, language: str, size: int, out: Path, algorithm: str) -> dict:
    """Select, write, re-read and check the file as ``evaluate`` would, then score it."""
    started = time.perf_counter()
    picked = experiment.select(size=size)
    path = out / submission_file_name(language, size)
    experiment.write(picked, path, limit=size)
    digest = _sha256(path)
    results = experiment.score(path, limit=size)
    return {
        "language": language,
        "size": size,
        "file": path.name,
        "sha256": digest,
        "algorithm": algorithm,
        **_figures(results),
        "n_train": results["n_train"],
        "selection_seconds": round(picked.seconds, 2),
        "seconds": round(time.perf_counter() - started, 2),
        "baselines": {},
    }


def _figures(results: dict) -> dict:
    return {
        "score": results["score"],
        "score_std": results["score_std"],
        "macro_f1": results["macro_f1"],
        "balanced_accuracy": results["balanced_accuracy"],
    }


def _describe(row: dict, name: str) -> str:
    figures = row if name == "yours" else row["baselines"][name]
    return (
        f"score {figures['score']:.4f} (macro_f1 {figures['macro_f1']:.4f}, "
        f"balanced_accuracy {figures['balanced_accuracy']:.4f})"
    )


def format_scorecard(scorecard: dict) -> str:
    """The scorecard as a Markdown table: each leaderboard, your score, each baseline's, both metrics."""
    rows = scorecard["rows"]
    baselines = list(dict.fromkeys(name for row in rows for name in row["baselines"]))
    header = ["leaderboard", "file", "yours: macro_f1", "yours: balanced_accuracy"]
    for name in baselines:
        header += [f"{name}: macro_f1", f"{name}: balanced_accuracy"]
    lines = [
        f"{scorecard['algorithm']}, scored as the leaderboards score it ({scorecard['metric']}):",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(["---", "---"] + ["---:"] * (len(header) - 2)) + " |",
    ]
    for row in rows:
        cells = [
            f"{row['language']} {row['size']}",
            row["file"],
            f"{row['macro_f1']:.4f}",
            f"{row['balanced_accuracy']:.4f}",
        ]
        for name in baselines:
            figures = row["baselines"].get(name)
            cells += [f"{figures['macro_f1']:.4f}", f"{figures['balanced_accuracy']:.4f}"] if figures else ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    run_command(submit)
