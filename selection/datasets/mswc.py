"""Building an experiment (allowed pool + eval set) from MSWC-style sources.

Works on the real MSWC files and on the synthetic corpus alike:

- target words: their TRAIN clips form the allowed pool, DEV and TEST clips the eval set;
- "known" nontarget words (``known_words``, drawn with ``seed`` among words with more
  than ``clips_per_word`` clips): ``clips_per_word`` clips each, the first half (in
  parquet row order) to the pool and the rest to eval;
- "unknown" nontarget words (``unknown_words``): ``clips_per_word`` clips each, eval only.

The experiment is built in a temp folder and moved into ``outdir`` only when complete.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from selection.datasets.faults import POOL_FAULTS_FILE, write_pool_faults
from selection.inputs.layout import EXPERIMENT_ITEMS
from selection.inputs.validation import ID_COLUMN, BadInputError, check_word
from selection.inputs.write import write_embeddings
from selection.progress import report_progress


def read_metadata(path: str | Path, language: str) -> dict:
    """``{"wordcounts": {...}, "filenames": {...}}`` of one language from ``metadata.json.gz``."""
    path = Path(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            metadata = json.load(handle)
    except FileNotFoundError:
        raise BadInputError(f"{path}: file not found") from None
    except (OSError, EOFError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadInputError(f"{path}: not a gzipped JSON metadata file ({error})") from None
    if not isinstance(metadata, dict) or language not in metadata:
        raise BadInputError(f"{path}: language {language!r} not found")
    entry = metadata[language]
    for key in ("wordcounts", "filenames"):
        if not isinstance(entry, dict) or not isinstance(entry.get(key), dict):
            raise BadInputError(f"{path}: {language}.{key}: missing or not a mapping")
    return entry


def clip_id_of(link: str) -> str:
    """``word/common_voice_xx.opus`` (as MSWC lists clips) to ``word/common_voice_xx.wav``."""
    path = Path(link)
    return f"{path.parent.name}/{path.stem}.wav" if path.parent.name else f"{path.stem}.wav"


def read_target_splits(path: str | Path, targets: list[str]) -> dict[str, dict[str, list[str]]]:
    """Each target's clip IDs by split (``train``, ``dev``, ``test``) from an MSWC splits CSV."""
    path = Path(path)
    splits = {word: {"train": [], "dev": [], "test": []} for word in targets}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"SET", "LINK", "WORD"} - set(reader.fieldnames or [])
            if missing:
                raise BadInputError(f"{path}: header lacks column(s) {sorted(missing)}; expected SET,LINK,WORD,...")
            for line, row in enumerate(reader, start=2):
                word = row["WORD"]
                if word in splits:
                    split = (row["SET"] or "").strip().lower()
                    if split not in ("train", "dev", "test"):
                        raise BadInputError(f"{path}: line {line}: SET {row['SET']!r}; expected TRAIN, DEV or TEST")
                    splits[word][split].append(clip_id_of(row["LINK"]))
    except FileNotFoundError:
        raise BadInputError(f"{path}: file not found") from None
    return splits


def _read_subset(path: Path, wanted: list[str]) -> pa.Table:
    """The rows of ``wanted`` clips, in parquet row order."""
    if not path.is_file():
        raise BadInputError(f"{path}: file not found")
    table = pq.read_table(path)
    subset = table.filter(pc.is_in(table.column(ID_COLUMN), value_set=pa.array(wanted, pa.string())))
    if subset.num_rows != len(set(wanted)):
        found = set(subset.column(ID_COLUMN).to_pylist())
        missing = [clip_id for clip_id in wanted if clip_id not in found]
        raise BadInputError(f"{path}: {len(missing)} listed clip(s) not found, first {missing[:1]}")
    return subset


def _dump_yaml(path: Path, document: dict) -> None:
    path.write_text(yaml.safe_dump(document, default_flow_style=None, sort_keys=False, width=120))


def create_experiment(
    *,
    metadata: str | Path,
    language: str,
    splits_csv: str | Path,
    vectors_dir: str | Path,
    target_words: list[str],
    outdir: str | Path,
    known_words: int = 100,
    unknown_words: int = 100,
    clips_per_word: int = 200,
    seed: int = 0,
    overwrite: bool = False,
    faults: dict[str, str] | None = None,
    progress: str | None = "nontarget words",
) -> dict:
    """Write ``train_embeddings/``, ``eval_embeddings/``, ``allowed_training_set.yaml`` and ``eval.yaml``.

    Parameters
    ----------
    metadata : path
        MSWC ``metadata.json.gz``.
    language : str
        Language code in the metadata (``en``).
    splits_csv : path
        MSWC splits CSV of that language.
    vectors_dir : path
        Folder of per-word parquet vectors of that language.
    target_words : list of str
    outdir : path
        Receives the four experiment items; created if missing.
    known_words, unknown_words, clips_per_word, seed : int
        The nontarget draw (see the module docstring).
    overwrite : bool, default=False
        Replace experiment items already in ``outdir``; otherwise they are an error.
    faults : dict, optional
        ``{clip_id: kind}`` of the corpus's planted faults (built-in corpora): written as
        ``pool_faults.json`` for the allowed pool (:mod:`selection.datasets.faults`). Without it a
        ``pool_faults.json`` left from an earlier experiment is removed, so no stale truth remains.
    progress : str, optional
        Label of the progress bar over nontarget words; None shows none.

    Returns
    -------
    dict
        Counts: pool and eval clips by kind.
    """
    vectors_dir, outdir = Path(vectors_dir), Path(outdir)
    targets = [check_word(w, file="target_words", key=str(i)) for i, w in enumerate(target_words)]
    if len(set(targets)) != len(targets) or not targets:
        raise BadInputError(f"target_words: expected distinct words, at least one; got {targets}")
    outdir.mkdir(parents=True, exist_ok=True)
    existing = [item for item in EXPERIMENT_ITEMS if (outdir / item).exists()]
    if existing and not overwrite:
        raise BadInputError(f"{outdir}: already holds {', '.join(existing)}; remove them or pass --overwrite")
    entry = read_metadata(metadata, language)
    splits = read_target_splits(splits_csv, targets)
    for word in targets:
        if not splits[word]["train"]:
            raise BadInputError(f"{splits_csv}: target word {word!r} has no TRAIN clips")

    candidates = [w for w, count in entry["wordcounts"].items() if count > clips_per_word and w not in set(targets)]
    needed = known_words + unknown_words
    if len(candidates) < needed:
        raise BadInputError(
            f"{metadata}: {language}: {len(candidates)} nontarget words have more than {clips_per_word} "
            f"clips; expected at least {needed}"
        )
    rng = np.random.default_rng(seed)
    drawn = [candidates[i] for i in rng.choice(len(candidates), size=needed, replace=False)]
    nontarget_clips = {}
    for word in drawn:
        names = entry["filenames"].get(word) or []
        picks = rng.choice(len(names), size=clips_per_word, replace=False) if len(names) >= clips_per_word else []
        if len(picks) < clips_per_word:
            raise BadInputError(f"{metadata}: {language}.filenames.{word}: fewer than {clips_per_word} clips")
        nontarget_clips[word] = [clip_id_of(names[i]) for i in sorted(picks)]

    temp = Path(tempfile.mkdtemp(dir=outdir, prefix=".experiment-"))
    try:
        train_dir, eval_dir = temp / "train_embeddings", temp / "eval_embeddings"
        train_dir.mkdir()
        eval_dir.mkdir()
        allowed = {"targets": {}, "nontargets": []}
        evaluation = {"targets": {}, "nontargets": []}
        for word in report_progress(targets, desc="target words", unit="words"):
            source = vectors_dir / f"{word}.parquet"
            train = _read_subset(source, splits[word]["train"])
            held = _read_subset(source, splits[word]["dev"] + splits[word]["test"])
            write_embeddings(train, train_dir / f"{word}.parquet")
            write_embeddings(held, eval_dir / f"{word}.parquet")
            allowed["targets"][word] = train.column(ID_COLUMN).to_pylist()
            evaluation["targets"][word] = held.column(ID_COLUMN).to_pylist()
        words = report_progress(drawn, desc=progress, unit="words") if progress else drawn
        for index, word in enumerate(words):
            table = _read_subset(vectors_dir / f"{word}.parquet", nontarget_clips[word])
            if index < known_words:
                half = table.num_rows // 2
                pool_part, eval_part = table.slice(0, half), table.slice(half)
                write_embeddings(pool_part, train_dir / f"{word}.parquet")
                allowed["nontargets"].extend(pool_part.column(ID_COLUMN).to_pylist())
            else:
                eval_part = table
            write_embeddings(eval_part, eval_dir / f"{word}.parquet")
            evaluation["nontargets"].extend(eval_part.column(ID_COLUMN).to_pylist())
        _dump_yaml(temp / "allowed_training_set.yaml", allowed)
        _dump_yaml(temp / "eval.yaml", evaluation)
        if faults is not None:
            write_pool_faults(temp, allowed, faults)
        for item in EXPERIMENT_ITEMS:
            if (outdir / item).is_dir():
                shutil.rmtree(outdir / item)
            (temp / item).replace(outdir / item)
        if faults is not None:
            (temp / POOL_FAULTS_FILE).replace(outdir / POOL_FAULTS_FILE)
        else:
            (outdir / POOL_FAULTS_FILE).unlink(missing_ok=True)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return {
        "pool_targets": sum(map(len, allowed["targets"].values())),
        "pool_nontargets": len(allowed["nontargets"]),
        "eval_targets": sum(map(len, evaluation["targets"].values())),
        "eval_nontargets": len(evaluation["nontargets"]),
    }
