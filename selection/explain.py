"""``explain``: why a selection scores what it does, clip by clip (``explain.json``, ``explain.html``).

Usage::

    python -m selection.explain [--language en|id|pt] [--train_file F] [--against pool|eval]
        [--outdir DIR] [--audio_dir DIR] [--repair N] [--nontarget_share S] [--train_size N] [--config_file F]
        [--workspace DIR] [--data_dir DIR] [--allowed_training_set F] [--train_embeddings_dir DIR]
        [--eval_file F] [--eval_embeddings_dir DIR] [--n_jobs N] [--cache_dir DIR|off]

The same path defaults and checks as ``evaluate``. ``--against pool`` (the default) never
opens ``eval.yaml`` or ``eval_embeddings/``: the figures are estimated on a held-out part
of the allowed pool (:mod:`selection.diagnosis.estimate`).
"""

from __future__ import annotations

if __name__ == "__main__":
    from selection.cli import exit_quietly_on_ctrl_c, skip_optional_imports

    exit_quietly_on_ctrl_c()
    skip_optional_imports("pandas")

import logging
from pathlib import Path

from selection.cli import print_output, run_command
from selection.inputs.errors import BadInputError
from selection.inputs.layout import check_language, experiment_paths, submission_file_name

log = logging.getLogger("dataperf")
AGAINST = ("pool", "eval")


def explain(
    train_file: str | None = None,
    against: str = "pool",
    outdir: str | None = None,
    audio_dir: str | None = None,
    repair: int = 0,
    nontarget_share: float = 0.96,
    language: str | None = None,
    data_dir: str | None = None,
    config_file: str | None = None,
    train_size: int | None = None,
    allowed_training_set: str | None = None,
    train_embeddings_dir: str | None = None,
    eval_file: str | None = None,
    eval_embeddings_dir: str | None = None,
    n_jobs: int = -1,
    cache_dir: str | None = None,
    workspace: str = "workspace/",
) -> None:
    """Write the per-clip report of a train.json: every pick's effect, evidence and verdict.

    Parameters
    ----------
    train_file : str, optional
        The selection, checked as ``evaluate`` checks it; default ``workspace/train.json``, or
        ``workspace/{language}_{train_size}_train.json`` with ``language``.
    against : {'pool', 'eval'}, default='pool'
        ``pool``: estimate on a held-out part of the allowed pool, reading no eval data (what a
        participant may do during a challenge). ``eval``: score on the eval set (organisers after
        a challenge, research); the outputs say so in their first line and title.
    outdir : str, optional
        Receives ``explain.json``, ``explain.html`` (and ``repaired_train.json``); default the
        train file's folder.
    audio_dir : str, optional
        Recordings at ``<audio_dir>/<clip_id>`` (as ``select --audio_dir``): each listed clip
        gets a player in the page, and each pick's speech is measured against its word's recordings
        in the pool (a pick far shorter is ``badly cut?``).
    repair : int, default=0
        Swap up to this many suspect or redundant picks for the best unpicked pool clips under
        the same estimate, and write the result as ``repaired_train.json`` (checked like any
        submission; the input is never overwritten).
    nontarget_share : float, default=0.96
        ``--against pool``: the eval set's share of nontarget clips, which the held-out pool clips
        are weighted to (0.96 in the benchmark's construction and the built-in corpora; for an
        ``embed`` experiment, its pool's own share). Balanced accuracy does not depend on it.
    language, data_dir, config_file, train_size : optional
        As in ``evaluate``.
    allowed_training_set, train_embeddings_dir, eval_file, eval_embeddings_dir : str, optional
        As in ``evaluate``; the eval paths are used only with ``--against eval``.
    n_jobs : int, default=-1
        Threads for the scorings; the figures do not depend on it.
    workspace : str, default='workspace/'
        The experiment folder the defaults come from (its ``train.json``, its config, its
        experiment or ``<workspace>/data``), as ``run --workspace``: a folder made by ``embed`` or
        ``download`` needs this one flag.
    cache_dir : str, optional
        ``evaluate``'s cache (see ``evaluate``).
    """
    from selection.board.entries import visible
    from selection.diagnosis.evidence import TYPICAL_MIN_CLIPS
    from selection.diagnosis.page import audio_data_uri, render_page
    from selection.diagnosis.report import format_report
    from selection.inputs.load import DOWNLOAD_HINT, SELECT_HINT, load_config, require_inputs
    from selection.inputs.validation import check_fraction, check_n_jobs, check_positive_int
    from selection.inputs.write import check_output_dir, check_output_file, json_bytes, write_files_together
    from selection.scoring.experiment import load_experiment

    if against not in AGAINST:
        raise BadInputError(f"command line: --against: unknown {against!r}; expected pool or eval")
    if isinstance(repair, bool) or not isinstance(repair, int) or repair < 0:
        raise BadInputError(f"command line: --repair: expected a number of picks (0 or more); got {repair!r}")
    nontarget_share = check_fraction(nontarget_share, file="command line", key="--nontarget_share")
    if language is not None:
        language = check_language(language)
    root = Path(workspace)
    config_file = config_file or str(root / "dataperf_speech_config.yaml")
    defaults = experiment_paths(language, workspace=root, data_dir=data_dir)
    allowed_training_set = allowed_training_set or str(defaults["allowed_training_set"])
    train_embeddings_dir = train_embeddings_dir or str(defaults["train_embeddings_dir"])
    needed = {
        "--allowed_training_set": allowed_training_set,
        "--train_embeddings_dir": train_embeddings_dir,
        "--config_file": config_file,
    }
    with_eval = against == "eval"
    if with_eval:
        eval_file = eval_file or str(defaults["eval_file"])
        eval_embeddings_dir = eval_embeddings_dir or str(defaults["eval_embeddings_dir"])
        needed.update({"--eval_file": eval_file, "--eval_embeddings_dir": eval_embeddings_dir})
    require_inputs(needed, hint=DOWNLOAD_HINT)
    config = load_config(config_file)
    if train_size is not None:
        config["train_set_size_limit"] = check_positive_int(train_size, file="command line", key="--train_size")
    limit = config["train_set_size_limit"]
    if train_file is None:
        name = submission_file_name(language, limit) if language is not None else "train.json"
        train_file = str(root / name)
    require_inputs({"--train_file": train_file}, hint=SELECT_HINT)
    if audio_dir is not None:
        require_inputs({"--audio_dir": audio_dir}, hint="pass the folder of recordings")
        if not Path(audio_dir).is_dir():
            raise BadInputError(f"{audio_dir}: --audio_dir: is not a folder")
    n_jobs = check_n_jobs(n_jobs, file="command line", key="--n_jobs")
    folder = check_output_dir(outdir if outdir is not None else Path(train_file).parent, create=True)
    inputs = {"--train_file": train_file, "--allowed_training_set": allowed_training_set, "--config_file": config_file}
    if with_eval:
        inputs["--eval_file"] = eval_file
    outputs = {
        name: check_output_file(folder / name, inputs=inputs, flag="--outdir")
        for name in ("explain.json", "explain.html") + (("repaired_train.json",) if repair else ())
    }
    experiment = load_experiment(
        allowed_training_set=allowed_training_set,
        train_embeddings_dir=train_embeddings_dir,
        eval_embeddings_dir=eval_embeddings_dir if with_eval else None,
        eval_file=eval_file if with_eval else None,
        config=config,
        cache_dir=cache_dir,
        with_eval=with_eval,
    )
    report = experiment.explain(
        train_file, against=against, repair=repair, nontarget_share=nontarget_share, n_jobs=n_jobs, audio_dir=audio_dir
    )
    shown_train_file = visible(str(train_file))  # a name that is not UTF-8 is shown escaped, never a crash
    document = dict(report)
    document = {"mode": document.pop("mode"), "note": document.pop("note"), "train_file": shown_train_file, **document}
    written = [outputs["explain.json"], outputs["explain.html"]]
    files = {}
    if report.repaired is not None:
        checked = experiment.checked_document(report.repaired, outputs["repaired_train.json"], limit=limit)
        document["repair"]["file"] = visible(str(outputs["repaired_train.json"]))
        files[outputs["repaired_train.json"]] = json_bytes(checked)
        written.append(outputs["repaired_train.json"])
    audio = None
    if audio_dir is not None:
        audio = {clip["id"]: audio_data_uri(Path(audio_dir) / clip["id"]) for clip in document["clips"]}
        missing = sum(1 for uri in audio.values() if uri is None)
        if missing:
            log.warning("warning: --audio_dir: %d of %d picks have no readable recording there", missing, len(audio))
        unjudged = sum(
            1 for clip in document["clips"] if clip.get("speech_seconds") is not None and clip["speech_length"] is None
        )
        if unjudged:
            log.warning(
                "warning: --audio_dir: the speech of %d picks is not judged: their words have fewer than %d readable "
                "recordings there (the pool's recordings are what a pick is compared with)",
                unjudged, TYPICAL_MIN_CLIPS,
            )  # fmt: skip
    files[outputs["explain.json"]] = json_bytes(document)
    page = render_page(document, train_file=shown_train_file, audio=audio)
    files[outputs["explain.html"]] = page.encode("utf-8", "surrogateescape")
    write_files_together(files)  # all outputs, or none: never a page beside another run's report
    log.info("wrote %s", ", ".join(map(str, written)))
    print_output(format_report(document), written=str(outputs["explain.json"]))


if __name__ == "__main__":
    run_command(explain)
