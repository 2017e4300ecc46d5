"""A synthetic, MSWC-like corpus: the built-in default dataset, made offline in seconds.

It writes what the real Multilingual Spoken Words Corpus offers, in its formats:

- ``mswc_vectors/<lang>/<word>.parquet``: ``clip_id`` (``<word>/common_voice_<lang>_<n>.wav``)
  and ``mswc_embedding_vector`` (1024 float32), one file per word;
- ``metadata.json.gz``: per language ``wordcounts`` ``{word: n}`` and ``filenames``
  ``{word: [<word>/common_voice_<lang>_<n>.opus, ...]}``;
- ``splits/<lang>_splits.csv``: ``SET,LINK,WORD,VALID,SPEAKER,GENDER`` rows, SET in TRAIN/DEV/TEST.

The vectors imitate a KWS model's penultimate layer (the model is documented in
docs/internals.md, section "The synthetic corpus"): each clip has a latent code
``z = word prototype + speaker offset + clip noise``, mapped to 1024 dimensions by a
fixed random layer followed by a ReLU, so vectors are non-negative and sparse-ish.
Speakers are shared across words (a nuisance common to all classes); some target
words sit close to another target or to a nontarget word; pool sizes are
imbalanced; and, as forced alignment does, a fraction of every word's clips are
really another word and a fraction are badly cut (mostly silence, or mostly a
neighbouring word).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from selection.inputs.validation import EMBEDDING_DIM, ID_COLUMN, VECTOR_COLUMN
from selection.inputs.write import write_embeddings
from selection.progress import report_progress

FAULTS_FILE = "faults.json"

TARGET_WORDS = {
    "en": ["episode", "fifty", "job", "restaurant", "route"],
    "pt": ["andar", "belo", "cidade", "ficar", "nunca"],
    "id": ["baru", "dengan", "kita", "pergi", "tahun"],
}
_SYLLABLES = {
    "en": "ba be bi bo da de di do fa fe fi ka ke ki ko la le li lo ma me mi mo na ne ni no pa pe "
    "pi po ra re ri ro sa se si so ta te ti to va ve wi wo".split(),
    "pt": "ba be bi bo ca ce ci co da de di do fa fe fi ga go ja je la le li lo ma me mi mo na ne "
    "ni no pa pe pi po ra re ri ro sa se si so ta te ti to va ve vi vo".split(),
    "id": "ba bi bu da di du ga gi gu ja ji ka ki ku la li lu ma mi mu na ni nu pa pi pu ra ri ru "
    "sa si su ta ti tu wa wi ya yu".split(),
}


@dataclass
class CorpusParams:
    """Every knob of the synthetic corpus (see docs/internals.md for what each one models).

    Counts are per language. ``scale`` shrinks every count (for tests); 1.0 gives
    the full-scale corpus with counts like the real DataPerf English experiment.
    """

    seed: int = 0
    languages: tuple[str, ...] = ("en", "pt", "id")
    scale: float = 1.0
    target_clips: tuple[int, ...] = (2500, 1700, 1000, 650, 400)  # one per target word; past five, made-up words
    nontarget_words: int = 220
    nontarget_clips_min: int = 201
    nontarget_clips_max: int = 260
    rare_words: int = 30
    rare_clips_max: int = 150
    split_fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    latent_dim: int = 48
    prototype_scale: float = 1.0
    speakers: int = 600
    speaker_scale: float = 0.9
    clip_noise: float = 1.0
    close_scale: float = 0.35
    close_to_target: int = 1
    close_to_nontarget: int = 2
    mislabeled_fraction: float = 0.12
    badly_cut_fraction: float = 0.08
    relu_bias: float = -0.4
    output_scale: float = 0.6

    def scaled(self, count: int, minimum: int = 1) -> int:
        return max(minimum, int(round(count * self.scale)))

    def experiment_clips_per_word(self) -> int:
        """Clips drawn per nontarget word for an experiment: 200 at full scale, as DataPerf does."""
        return 200 if self.scale == 1.0 else self.scaled(200, minimum=4) - 1


@dataclass
class Language:
    """One language's vocabulary and latent structure (kept for documentation and tests)."""

    code: str
    targets: list[str]
    nontargets: list[str]
    counts: dict[str, int]
    close_pairs: list[tuple[str, str]] = field(default_factory=list)


def _pseudo_words(code: str, count: int, taken: set[str], rng: np.random.Generator) -> list[str]:
    syllables = _SYLLABLES[code]
    words: list[str] = []
    while len(words) < count:
        word = "".join(rng.choice(syllables, size=int(rng.integers(2, 4))))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


def _plan_language(code: str, params: CorpusParams, rng: np.random.Generator) -> Language:
    targets = TARGET_WORDS[code][: len(params.target_clips)]
    taken = set(TARGET_WORDS[code])
    targets += _pseudo_words(code, len(params.target_clips) - len(targets), taken, rng)
    nontargets = _pseudo_words(code, params.nontarget_words + params.rare_words, taken, rng)
    counts = {w: params.scaled(n, minimum=10) for w, n in zip(targets, params.target_clips)}
    minimum = params.nontarget_clips_min
    for word in nontargets[: params.nontarget_words]:
        counts[word] = int(rng.integers(minimum, params.nontarget_clips_max + 1))
    for word in nontargets[params.nontarget_words :]:
        counts[word] = int(rng.integers(20, params.rare_clips_max + 1))
    if params.scale != 1.0:
        for word in nontargets[: params.nontarget_words]:
            counts[word] = params.scaled(counts[word], minimum=4)
    return Language(code=code, targets=list(targets), nontargets=nontargets, counts=counts)


def generate_language(code: str, params: CorpusParams) -> tuple[Language, dict[str, dict]]:
    """Make one language's clips in memory.

    Returns
    -------
    language : Language
    clips : dict
        ``{word: {"ids", "vectors" (n, 1024) float32, "speakers", "genders", "sets", "faults"}}``; a
        clip's fault is ``clean``, ``mislabeled`` (another word's clip), ``silence`` or ``neighbour``.
    """
    rng = np.random.default_rng([params.seed, sum(map(ord, code))])
    language = _plan_language(code, params, rng)
    vocabulary = language.targets + language.nontargets
    latent = params.latent_dim
    prototypes = {w: rng.normal(0, params.prototype_scale, latent) for w in vocabulary}
    known_pool = language.nontargets[: params.nontarget_words]
    close_order = rng.permutation(len(language.targets))
    for i in close_order[: params.close_to_target]:
        word, other = language.targets[i], language.targets[close_order[-1 - i]]
        prototypes[word] = prototypes[other] + rng.normal(0, params.close_scale * 1.5, latent)
        language.close_pairs.append((word, other))
    for i in close_order[params.close_to_target : params.close_to_target + params.close_to_nontarget]:
        word, other = language.targets[i], str(rng.choice(known_pool))
        prototypes[other] = prototypes[word] + rng.normal(0, params.close_scale * 2.5, latent)
        language.close_pairs.append((word, other))
    silence = rng.normal(0, params.prototype_scale * 0.3, latent)
    layer = rng.normal(0, 1 / np.sqrt(latent), (latent, EMBEDDING_DIM))
    bias = rng.normal(params.relu_bias, 0.3, EMBEDDING_DIM)
    speaker_offsets = rng.normal(0, params.speaker_scale, (params.speakers, latent))
    speaker_weights = 1 / np.arange(1, params.speakers + 1) ** 0.8
    speaker_weights /= speaker_weights.sum()
    genders = rng.choice(["MALE", "FEMALE", "NAN"], size=params.speakers, p=[0.55, 0.35, 0.10])

    clips: dict[str, dict] = {}
    serial = 0
    for word in vocabulary:
        n = language.counts[word]
        speakers = rng.choice(params.speakers, size=n, p=speaker_weights)
        codes = prototypes[word] + speaker_offsets[speakers] + rng.normal(0, params.clip_noise, (n, latent))
        kind = rng.random(n)
        wrong = kind < params.mislabeled_fraction
        cut = (kind >= params.mislabeled_fraction) & (kind < params.mislabeled_fraction + params.badly_cut_fraction)
        faults = ["clean"] * n
        for row in np.flatnonzero(wrong):
            other = vocabulary[int(rng.integers(len(vocabulary)))]
            codes[row] = prototypes[other] + speaker_offsets[speakers[row]] + rng.normal(0, params.clip_noise, latent)
            faults[row] = "mislabeled" if other != word else "clean"
        for row in np.flatnonzero(cut):
            if rng.random() < 0.5:
                codes[row] = silence + 0.3 * speaker_offsets[speakers[row]] + rng.normal(0, params.clip_noise, latent)
                faults[row] = "silence"
            else:
                other = vocabulary[int(rng.integers(len(vocabulary)))]
                codes[row] = 0.35 * codes[row] + 0.65 * prototypes[other]
                faults[row] = "neighbour" if other != word else "clean"
        vectors = np.maximum(codes @ layer + bias, 0) * params.output_scale
        numbers = serial + rng.permutation(n) * 7 + int(rng.integers(10**6))
        serial += 8 * n
        ids = [f"{word}/common_voice_{code}_{int(k):08d}.wav" for k in numbers]
        sets = rng.choice(["TRAIN", "DEV", "TEST"], size=n, p=list(params.split_fractions))
        clips[word] = {
            "ids": ids,
            "vectors": vectors.astype(np.float32),
            "speakers": [f"spk_{code}_{s:04d}" for s in speakers],
            "genders": [str(genders[s]) for s in speakers],
            "sets": [str(s) for s in sets],
            "faults": faults,
        }
    return language, clips


def write_vectors(path: Path, ids: list[str], vectors: np.ndarray) -> None:
    """One ``<word>.parquet`` in the benchmark's two-column layout."""
    flat = pa.array(vectors.reshape(-1), type=pa.float32())
    offsets = pa.array(np.arange(0, vectors.size + 1, vectors.shape[1], dtype=np.int32))
    table = pa.table({ID_COLUMN: pa.array(ids, pa.string()), VECTOR_COLUMN: pa.ListArray.from_arrays(offsets, flat)})
    write_embeddings(table, path)


def write_corpus(outdir: str | Path, params: CorpusParams | None = None) -> dict[str, Language]:
    """Write the synthetic corpus (vectors, metadata, splits) under ``outdir``; deterministic.

    Returns the languages' plans, by language code.
    """
    params = params or CorpusParams()
    languages = {}

    def generate(code: str) -> dict[str, dict]:
        languages[code], clips = generate_language(code, params)
        return clips

    write_sources(outdir, params.languages, generate, asdict(params))
    return languages


def write_sources(outdir: str | Path, codes, generate, params: dict) -> None:
    """MSWC-format sources under ``outdir``: ``mswc_vectors/``, ``metadata.json.gz``, ``splits/``.

    ``generate(code)`` gives one language's ``{word: {"ids", "vectors", "speakers", "genders", "sets"}}``,
    and optionally ``"faults"`` (one kind per clip): then ``faults.json`` records the faulty clips
    (``{language: {clip_id: kind}}``), the ground truth that ``download`` copies beside each experiment.
    """
    outdir = Path(outdir)
    (outdir / "splits").mkdir(parents=True, exist_ok=True)
    metadata: dict[str, dict] = {}
    faults: dict[str, dict[str, str]] = {}
    for code in codes:
        clips = generate(code)
        for clip in clips.values():
            if "faults" in clip:
                faults.setdefault(code, {}).update(
                    (clip_id, kind) for clip_id, kind in zip(clip["ids"], clip["faults"]) if kind != "clean"
                )
        vector_dir = outdir / "mswc_vectors" / code
        vector_dir.mkdir(parents=True, exist_ok=True)
        for word, clip in report_progress(clips.items(), desc=f"writing {code} vectors", unit="words"):
            write_vectors(vector_dir / f"{word}.parquet", clip["ids"], clip["vectors"])
        metadata[code] = {
            "wordcounts": {word: len(clip["ids"]) for word, clip in clips.items()},
            "filenames": {
                word: [clip_id[: -len(".wav")] + ".opus" for clip_id in clip["ids"]] for word, clip in clips.items()
            },
        }
        rows = io.StringIO()
        writer = csv.writer(rows, lineterminator="\n")
        writer.writerow(["SET", "LINK", "WORD", "VALID", "SPEAKER", "GENDER"])
        for word, clip in clips.items():
            for clip_id, split, speaker, gender in zip(clip["ids"], clip["sets"], clip["speakers"], clip["genders"]):
                writer.writerow([split, clip_id[: -len(".wav")] + ".opus", word, "True", speaker, gender])
        (outdir / "splits" / f"{code}_splits.csv").write_text(rows.getvalue())
    if faults:
        (outdir / FAULTS_FILE).write_text(json.dumps(faults, sort_keys=True) + "\n")
    with open(outdir / "metadata.json.gz", "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as handle:
            handle.write(json.dumps(metadata, sort_keys=False).encode("utf-8"))
    (outdir / "corpus_params.json").write_text(json.dumps(params, indent=2) + "\n")
