"""``embed``: a folder of spoken clips becomes a complete experiment, embedded by a real speech model.

Usage::

    python -m selection.embed --audio_dir DIR --outdir DIR [--targets w1,w2,...] [--eval_fraction 0.33]
        [--model speech_embedding|kws:MODEL_DIR|module:Class] [--seed 0] [--on_bad_audio fail|skip] [--overwrite]

Reads ``<audio_dir>/<word>/<clip>`` (the MSWC layout; wav, flac, ogg/opus, ... at any sample rate,
see :mod:`selection.speech.audio`), embeds every clip (:mod:`selection.speech.model`), splits each
word's clips into the allowed pool and the eval set (deterministic for ``--seed``), and writes
``train_embeddings/<word>.parquet``, ``eval_embeddings/<word>.parquet``,
``allowed_training_set.yaml``, ``eval.yaml``, ``embed_report.json`` and (if absent) a default
``dataperf_speech_config.yaml`` into ``--outdir``: ready for ``python -m selection.run --workspace``,
``select`` (also with ``--audio_dir`` at the same folder) and ``evaluate``. Words not in
``--targets`` are nontargets. Clip IDs are ``<word>/<file name>``.
"""

from __future__ import annotations

if __name__ == "__main__":
    from selection.cli import exit_quietly_on_ctrl_c

    exit_quietly_on_ctrl_c()

import json
import logging
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from selection.cli import run_command
from selection.inputs.errors import BadInputError
from selection.inputs.formats import NONTARGET
from selection.inputs.layout import EXPERIMENT_ITEMS
from selection.inputs.validation import check_clip_id, check_word
from selection.inputs.write import check_output_dir, nesting, write_default_config
from selection.progress import report_progress
from selection.speech.audio import BadAudioError, list_clips, read_clip
from selection.speech.model import DEFAULT_MODEL, embed_checked, load_model

log = logging.getLogger("dataperf")
BATCH_CLIPS = 256
EMBEDDING_FOLDERS = ("train_embeddings", "eval_embeddings")
OWN_ITEMS = (*EXPERIMENT_ITEMS, "embed_report.json")


def split_clips(clips: list[str], *, eval_fraction: float, seed: int, word: str) -> tuple[list[str], list[str]]:
    """``clips`` shuffled by (``seed``, ``word``) and split: (pool, eval), each non-empty when there are two or more."""
    order = np.random.default_rng([seed, zlib.crc32(word.encode())]).permutation(len(clips))
    shuffled = [clips[i] for i in order]
    held = int(round(eval_fraction * len(clips)))
    if len(clips) >= 2:
        held = min(max(held, 1), len(clips) - 1)
    return sorted(shuffled[held:]), sorted(shuffled[:held])


def embed_folder(
    audio_dir: Path,
    model,
    *,
    model_name: str,
    on_bad_audio: str,
) -> tuple[dict[str, list[str]], dict[str, np.ndarray], list[dict]]:
    """Every word's usable clip IDs, their vectors, and the skipped files with their reasons."""
    words = list_clips(audio_dir)
    skipped: list[dict] = []
    for word, paths in words.items():
        check_word(word, file=str(audio_dir), key=f"word folder {word!r}")
        if not paths:
            _bad(f"{audio_dir / word}: word folder holds no clips", on_bad_audio, skipped)
    todo = [(word, path) for word, paths in words.items() for path in paths]
    ids: dict[str, list[str]] = {word: [] for word in words}
    vectors: dict[str, list[np.ndarray]] = {word: [] for word in words}
    batch: list[tuple[str, str, np.ndarray]] = []
    lengths: set[int] = set()

    def flush() -> None:
        if batch:
            embedded = embed_checked(model, np.stack([wave for _, _, wave in batch]), name=model_name)
            lengths.add(embedded.shape[1])
            if len(lengths) > 1:
                raise BadInputError(
                    f"{model_name}.embed(): returned vectors of lengths {sorted(lengths)}; expected one length "
                    "for every clip"
                )
            for (word, clip_id, _), vector in zip(batch, embedded):
                ids[word].append(clip_id)
                vectors[word].append(vector)
            batch.clear()

    for word, path in report_progress(todo, desc="embedding", unit="clips"):
        clip_id = f"{word}/{path.name}"
        try:
            check_clip_id(clip_id, file=str(path), key="clip ID")
            wave = read_clip(path)
        except (BadAudioError, BadInputError) as error:
            _bad(str(error), on_bad_audio, skipped)
            continue
        batch.append((word, clip_id, wave))
        if len(batch) == BATCH_CLIPS:
            flush()
    flush()
    stacked = {word: np.stack(rows) for word, rows in vectors.items() if rows}
    return {word: ids[word] for word in stacked}, stacked, skipped


def _bad(message: str, on_bad_audio: str, skipped: list[dict]) -> None:
    if on_bad_audio == "fail":
        raise BadInputError(f"{message}; pass --on_bad_audio skip to leave such files out")
    log.warning("skipped: %s", message)
    skipped.append({"file": message.split(": ", 1)[0], "reason": message.split(": ", 1)[-1]})


def _harness_written(outdir: Path) -> list[str]:
    """The experiment items already in ``outdir``, refusing any that do not look like what ``embed`` writes."""
    existing = [item for item in OWN_ITEMS if (outdir / item).exists() or (outdir / item).is_symlink()]
    for item in existing:
        path = outdir / item
        if item in EMBEDDING_FOLDERS:
            shaped = not path.is_symlink() and path.is_dir()
            shaped = shaped and all(entry.is_file() and entry.suffix == ".parquet" for entry in path.iterdir())
        else:
            shaped = not path.is_symlink() and path.is_file()
        if not shaped:
            raise BadInputError(
                f"{path}: is not what embed writes (a folder of .parquet files, or a plain file); nothing was "
                "replaced; move it away or choose another --outdir"
            )
    return existing


def write_experiment(
    outdir: Path,
    ids: dict[str, list[str]],
    vectors: dict[str, np.ndarray],
    *,
    targets: list[str],
    eval_fraction: float,
    seed: int,
    report: dict,
    overwrite: bool,
) -> dict:
    """Split and write the experiment into a temp folder, check it as ``evaluate`` will, then swap it in whole.

    Only items ``embed`` itself writes are ever replaced, and only with ``overwrite``; if a
    rename fails half-way, the old items are put back.
    """
    import pyarrow as pa
    import yaml

    from selection.inputs.write import write_embeddings
    from selection.scoring.experiment import load_experiment

    existing = _harness_written(outdir)
    if existing and not overwrite:
        raise BadInputError(f"{outdir}: already holds {', '.join(existing)}; pass --overwrite to replace them")
    allowed: dict = {"targets": {}, "nontargets": []}
    evaluation: dict = {"targets": {}, "nontargets": []}
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outdir, prefix=".embed-") as temp:
        staging = Path(temp) / "new"
        for folder in EMBEDDING_FOLDERS:
            (staging / folder).mkdir(parents=True)
        for word in ids:
            row_of = {clip_id: row for row, clip_id in enumerate(ids[word])}
            pool, held = split_clips(ids[word], eval_fraction=eval_fraction, seed=seed, word=word)
            for folder, chosen in (("train_embeddings", pool), ("eval_embeddings", held)):
                if not chosen:
                    continue
                rows = vectors[word][[row_of[clip_id] for clip_id in chosen]]
                table = pa.table(
                    {
                        "clip_id": pa.array(chosen, pa.string()),
                        "mswc_embedding_vector": pa.array(list(rows), pa.list_(pa.float32())),
                    }
                )
                write_embeddings(table, staging / folder / f"{word}.parquet")
            if word in targets:
                allowed["targets"][word], evaluation["targets"][word] = pool, held
            else:
                allowed["nontargets"] += pool
                evaluation["nontargets"] += held
        (staging / "allowed_training_set.yaml").write_text(yaml.safe_dump(allowed, sort_keys=False))
        (staging / "eval.yaml").write_text(yaml.safe_dump(evaluation, sort_keys=False))
        counts = {
            "pool_targets": sum(map(len, allowed["targets"].values())),
            "pool_nontargets": len(allowed["nontargets"]),
            "eval_targets": sum(map(len, evaluation["targets"].values())),
            "eval_nontargets": len(evaluation["nontargets"]),
        }
        (staging / "embed_report.json").write_text(json.dumps({**report, **counts}, indent=2) + "\n")
        try:
            load_experiment(staging, cache_dir="off", label="written").load()
        except BadInputError as error:
            raise BadInputError(f"{outdir}: the experiment made from the clips would be refused: {error}") from None
        _swap_items(staging, outdir, Path(temp) / "previous", existing)
    return counts


def _swap_items(staging: Path, outdir: Path, previous: Path, existing: list[str]) -> None:
    """Move the old items aside and the new ones in; on any failure, put the old ones back."""
    previous.mkdir()
    moved_out, moved_in = [], []
    try:
        for item in existing:
            (outdir / item).rename(previous / item)
            moved_out.append(item)
        for item in OWN_ITEMS:
            (staging / item).rename(outdir / item)
            moved_in.append(item)
    except BaseException:
        for item in moved_in:
            (outdir / item).rename(staging / item)
        for item in moved_out:
            (previous / item).rename(outdir / item)
        raise


def _check_apart(source: Path, out: Path) -> None:
    """Refuse an ``--outdir`` that is the audio folder, inside it, or holds it: replacing items would hit recordings."""
    relation = nesting(out, source)
    if relation in ("same", "inside"):
        raise BadInputError(
            f"{out}: --outdir: is inside --audio_dir ({source}); the experiment would be mixed with the "
            "recordings; expected a folder outside it"
        )
    if relation == "holds":
        raise BadInputError(
            f"{out}: --outdir: holds --audio_dir ({source}); replacing the experiment could reach the recordings; "
            "expected separate folders"
        )


def embed(
    audio_dir: str,
    outdir: str,
    targets: str | None = None,
    eval_fraction: float = 0.33,
    model: str = DEFAULT_MODEL,
    seed: int = 0,
    on_bad_audio: str = "fail",
    overwrite: bool = False,
) -> None:
    """Embed ``<audio_dir>/<word>/<clip>`` and write a complete experiment into ``outdir``.

    Parameters
    ----------
    audio_dir : str
        Folder of word folders of clips (the MSWC layout).
    outdir : str
        Receives ``train_embeddings/``, ``eval_embeddings/``, ``allowed_training_set.yaml``,
        ``eval.yaml`` and ``embed_report.json``.
    targets : str, optional
        Comma-separated target words; default the five words with the most clips. The others
        are nontargets.
    eval_fraction : float, default=0.33
        Share of each word's clips held out for the eval set.
    model : str, default='speech_embedding'
        ``speech_embedding``, ``kws:MODEL_DIR`` (a model folder made by ``train_kws``) or ``module:Class``
        (see :mod:`selection.speech.model`).
    seed : int, default=0
        Seed of the pool/eval split.
    on_bad_audio : {'fail', 'skip'}, default='fail'
        What a clip that cannot be read does: stop with its one-line reason, or be left out
        (counted, listed on stderr and in ``embed_report.json``).
    overwrite : bool, default=False
        Replace an experiment already in ``outdir``.
    """
    started = time.perf_counter()
    source = Path(audio_dir)
    if not source.is_dir():
        raise BadInputError(f"{source}: --audio_dir: not a folder; expected <audio_dir>/<word>/<clip> files")
    if on_bad_audio not in ("fail", "skip"):
        raise BadInputError(f"command line: --on_bad_audio: {on_bad_audio!r}; expected fail or skip")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise BadInputError(f"command line: --seed: {seed!r}; expected a whole number from 0 to 4294967295")
    if not 0 < eval_fraction < 1:
        raise BadInputError(f"command line: --eval_fraction: {eval_fraction}; expected a number between 0 and 1")
    out = check_output_dir(outdir, create=True)
    _check_apart(source, out)
    word_clips = list_clips(source)
    if len(word_clips) < 2:
        raise BadInputError(f"{source}: {len(word_clips)} word folder(s); expected at least two (targets and others)")
    if targets:
        chosen = [word.strip() for word in targets.split(",") if word.strip()]
        if not chosen:
            raise BadInputError(f"command line: --targets: {targets!r} names no word; expected w1,w2,...")
        repeated = sorted({word for word in chosen if chosen.count(word) > 1})
        if repeated:
            raise BadInputError(f"command line: --targets: {', '.join(map(repr, repeated))} named twice; expected "
                                "each word once")  # fmt: skip
        if NONTARGET in chosen:
            raise BadInputError(f"command line: --targets: {NONTARGET!r} is the name of the other class; expected "
                                "another word")  # fmt: skip
        unknown = [word for word in chosen if word not in word_clips]
        if unknown:
            raise BadInputError(f"command line: --targets: no folder for {', '.join(map(repr, unknown))} in {source}")
    else:
        chosen = sorted(sorted(word_clips), key=lambda word: -len(word_clips[word]))[:5]
    if len(chosen) >= len(word_clips):
        raise BadInputError("command line: --targets: every word is a target; expected at least one other word")
    speech_model = load_model(model)
    ids, vectors, skipped = embed_folder(source, speech_model, model_name=model, on_bad_audio=on_bad_audio)
    missing = [word for word in chosen if word not in ids]
    if missing:
        raise BadInputError(f"{source}: target word(s) {', '.join(map(repr, missing))} have no usable clip")
    dims = {vector.shape[1] for vector in vectors.values()}
    clips = sum(map(len, ids.values()))
    seconds = time.perf_counter() - started
    report = {
        "audio_dir": str(source),
        "model": model,
        "dim": dims.pop(),
        "targets": chosen,
        "eval_fraction": eval_fraction,
        "seed": seed,
        "clips": clips,
        "skipped": skipped,
        "seconds": round(seconds, 2),
        "clips_per_second": round(clips / seconds, 1) if seconds else None,
    }
    counts = write_experiment(
        out, ids, vectors, targets=chosen, eval_fraction=eval_fraction, seed=seed, report=report, overwrite=overwrite
    )
    write_default_config(out, writer="selection.embed")
    log.info(
        "embedded %d clips (%d-d, %.0f clips/s)%s; wrote the experiment to %s: %s",
        clips,
        report["dim"],
        report["clips_per_second"] or 0,
        f", skipped {len(skipped)}" if skipped else "",
        out,
        ", ".join(f"{key} {value}" for key, value in counts.items()),
    )


if __name__ == "__main__":
    run_command(embed)
