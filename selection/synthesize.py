"""``synthesize``: recordings of words of your choice, spoken by the bundled eSpeak NG, in ``embed``'s layout.

Usage::

    python -m selection.synthesize --words yes,no,maybe,later --outdir my_clips/ [--speakers 40]
        [--language en|pt|id] [--seed 0] [--snr_db 8,40] [--overwrite]

Writes ``<outdir>/<word>/<speaker>_nohash_<take>.wav`` (one second, 16 kHz, mono, 16-bit): every
speaker says every word once, a quarter of them twice. A speaker is an eSpeak NG voice of the
language, a voice variant (male, female, whisper, croak, ...), a speaking rate, a pitch and a pitch
range; each clip puts the word at a random level near the middle of the second, over white noise and
hum at a random signal-to-noise ratio (the machinery of the built-in corpora). Also written:
``validation_list.txt`` and ``testing_list.txt`` (10% of the speakers each, so that ``train_kws
--audio_dir`` splits by speaker) and ``synthesize_report.json`` (the words, the speakers and their
voices, the counts). The same flags give the same files, bit for bit.
"""

from __future__ import annotations

if __name__ == "__main__":
    from selection.cli import exit_quietly_on_ctrl_c

    exit_quietly_on_ctrl_c()

import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

from selection.cli import run_command
from selection.inputs.errors import BadInputError
from selection.inputs.validation import check_word, split_flag_list

log = logging.getLogger("dataperf")
REPORT = "synthesize_report.json"
MAX_WORDS = 500
MAX_SPEAKERS = 2000


def _check_snr(snr_db) -> tuple[float, float]:
    parts = split_flag_list(snr_db, flag="--snr_db") if isinstance(snr_db, str) else list(snr_db)
    try:
        low, high = (float(part) for part in parts)
    except (TypeError, ValueError):
        raise BadInputError(f"command line: --snr_db: {snr_db!r}; expected LOW,HIGH in decibels, e.g. 8,40") from None
    if not -20 <= low <= high <= 80:
        raise BadInputError(f"command line: --snr_db: {snr_db!r}; expected -20 <= LOW <= HIGH <= 80 (decibels)")
    return low, high


def _check_outdir(outdir: Path, overwrite: bool) -> None:
    if outdir.is_symlink() or (outdir.exists() and not outdir.is_dir()):
        raise BadInputError(f"{outdir}: --outdir: exists and is not a folder (or is a link); nothing was touched")
    if outdir.is_dir() and any(outdir.iterdir()):
        if not (outdir / REPORT).is_file():
            raise BadInputError(
                f"{outdir}: --outdir: holds files that synthesize did not write; nothing was touched; choose an "
                "empty or new folder"
            )
        if not overwrite:
            raise BadInputError(f"{outdir}: --outdir: holds recordings already; pass --overwrite to replace them")


def synthesize(
    words: str,
    outdir: str,
    speakers: int = 40,
    language: str = "en",
    seed: int = 0,
    snr_db: str = "8,40",
    overwrite: bool = False,
) -> None:
    """Write one-second recordings of ``words`` by ``speakers`` synthetic speakers into ``outdir``.

    Parameters
    ----------
    words : str
        Comma-separated words (or short phrases) to record, at least two; each becomes a folder.
    outdir : str
        Receives ``<word>/<speaker>_nohash_<take>.wav``, ``validation_list.txt``, ``testing_list.txt`` and
        ``synthesize_report.json``: a new or empty folder, or one this command wrote (with ``--overwrite``).
    speakers : int, default=40
        Number of synthetic speakers (10 to 2000); each says every word once, a quarter of them twice.
    language : {'en', 'pt', 'id'}, default='en'
        Whose eSpeak NG voices speak: English (7 accents), Portuguese (European, Brazilian) or Indonesian
        (Indonesian, Malay).
    seed : int, default=0
        Seed of the speakers, levels, placements and noise: the same flags give the same files.
    snr_db : str, default='8,40'
        Range of the signal-to-noise ratio in decibels (``LOW,HIGH``), drawn per clip.
    overwrite : bool, default=False
        Replace recordings this command wrote earlier in ``outdir``.
    """
    from selection.datasets.commands import CommandsParams, speakers_of, write_commands_corpus
    from selection.datasets.spoken import VOICES

    started = time.perf_counter()
    chosen = split_flag_list(words, flag="--words") if isinstance(words, str) else list(words or [])
    chosen = [str(word).strip() for word in chosen]
    for word in chosen:
        check_word(word, file="command line", key="--words")
        if word.startswith((".", "_")):
            raise BadInputError(f"command line: --words: {word!r} starts with '.' or '_'; embed would not read it")
    if len(chosen) < 2:
        raise BadInputError("command line: --words: expected at least two comma-separated words, e.g. yes,no")
    if len(chosen) > MAX_WORDS:
        raise BadInputError(f"command line: --words: {len(chosen)} words; expected at most {MAX_WORDS}")
    if len({word.lower() for word in chosen}) < len(chosen):
        raise BadInputError("command line: --words: a word is named twice (case aside)")
    if isinstance(speakers, bool) or not isinstance(speakers, int) or not 10 <= speakers <= MAX_SPEAKERS:
        raise BadInputError(
            f"command line: --speakers: {speakers!r}; expected a whole number from 10 to {MAX_SPEAKERS}"
        )
    if language not in VOICES:
        raise BadInputError(f"command line: --language: {language!r}; expected one of {', '.join(VOICES)}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
        raise BadInputError(f"command line: --seed: {seed!r}; expected a whole number from 0 to 2147483647")
    low, high = _check_snr(snr_db)
    target = Path(outdir)
    _check_outdir(target, overwrite)

    params = CommandsParams(
        seed=seed, speakers=speakers, words=tuple(chosen), voices=tuple(VOICES[language]), snr_db_range=(low, high)
    )
    log.info("synthesizing %d words by %d speakers (%s voices) into %s", len(chosen), speakers, language, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as staging:
        built = Path(staging) / "recordings"
        counts = write_commands_corpus(built, params, noise=False, desc="recordings")
        report = {
            "clips": counts["clips"], "validation_clips": counts["validation"], "test_clips": counts["test"],
            "words": chosen, "language": language, "seed": seed, "snr_db": [low, high],
            "speakers": speakers_of(params),
        }  # fmt: skip
        (built / REPORT).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
        if target.exists():
            target.rename(Path(staging) / "previous")
        built.rename(target)
        shutil.rmtree(Path(staging) / "previous", ignore_errors=True)
    log.info(
        "%d clips of %d words in %s (%.0f s); next: python -m selection.embed --audio_dir %s --outdir EXPERIMENT",
        counts["clips"], len(chosen), target, time.perf_counter() - started, target,
    )  # fmt: skip


if __name__ == "__main__":
    run_command(synthesize)
