"""The evaluation family: experiments no algorithm setting is chosen on, made by the project's generators.

A default algorithm tuned on the three built-in experiments (one generator, one setting) can lead
there and nowhere else. The family varies what an algorithm meets in practice: how much words
overlap, the pool's size and fault rates, the number of target words (2 to 8), few to many
nontarget words, how much of the eval set's nontarget vocabulary the pool holds (half, or a
quarter to a third together with few targets), and real synthesized speech (the spoken corpus,
one member per language).

Members are split in two halves: settings are chosen on ``tune`` and figures are quoted on
``report``. Gaussian members are built at a reduced scale so that the cross-validation baseline,
which every cell is compared with, runs in seconds; the spoken members are the spoken corpus as
``download --source spoken`` writes it.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from selection.inputs.errors import BadInputError
from selection.inputs.layout import experiment_present, find_experiment

log = logging.getLogger("dataperf")

GAUSSIAN_SCALE = 0.25
HALVES = ("tune", "report")


@dataclass(frozen=True)
class Member:
    """One experiment of the family: a generator, the settings it changes, and its half."""

    name: str
    half: str
    source: str = "gaussian"
    language: str = "en"
    changes: dict = field(default_factory=dict)
    pool_coverage: float = 0.5  # share of the nontarget words that the pool holds (the rest are eval-only)


MEMBERS = (
    Member("gauss-seed1", "tune", changes={"seed": 1}),
    Member("gauss-seed2", "report", changes={"seed": 2}, language="pt"),
    Member("gauss-overlap-easy", "report", changes={"seed": 3, "clip_noise": 0.7, "speaker_scale": 0.6}),
    Member("gauss-overlap-hard", "tune", changes={"seed": 4, "clip_noise": 1.4, "close_scale": 0.25}),
    Member("gauss-overlap-harder", "report", changes={"seed": 5, "clip_noise": 1.7, "speaker_scale": 1.2}),
    Member("gauss-small-pool", "tune", changes={"seed": 6, "scale": 0.12}, language="id"),
    Member("gauss-large-pool", "report", changes={"seed": 7, "scale": 0.5}),
    Member("gauss-clean", "report", changes={"seed": 8, "mislabeled_fraction": 0.03, "badly_cut_fraction": 0.02}),
    Member("gauss-noisy", "tune", changes={"seed": 9, "mislabeled_fraction": 0.22, "badly_cut_fraction": 0.15}),
    Member("gauss-3-targets", "tune", changes={"seed": 10, "target_clips": (1800, 900, 500)}),
    Member(
        "gauss-8-targets",
        "report",
        changes={"seed": 11, "target_clips": (2000, 1500, 1100, 800, 600, 450, 350, 250)},
        language="pt",
    ),
    Member("gauss-few-nontargets", "tune", changes={"seed": 12, "nontarget_words": 40, "rare_words": 5}),
    Member("gauss-many-nontargets", "report", changes={"seed": 13, "nontarget_words": 400, "rare_words": 60}),
    # few targets, and a pool that holds only a small part of the eval set's nontarget vocabulary
    Member(
        "gauss-3-targets-low-coverage",
        "tune",
        changes={"seed": 14, "target_clips": (1800, 900, 500), "nontarget_words": 90, "rare_words": 10},
        pool_coverage=1 / 3,
    ),  # fmt: skip
    Member(
        "gauss-3-targets-low-coverage-b",
        "report",
        language="pt",
        changes={"seed": 15, "target_clips": (1500, 1000, 600), "nontarget_words": 120, "rare_words": 10},
        pool_coverage=0.25,
    ),  # fmt: skip
    Member(
        "gauss-2-targets-low-coverage",
        "tune",
        language="id",
        changes={"seed": 16, "target_clips": (1600, 700), "nontarget_words": 100, "rare_words": 10},
        pool_coverage=0.3,
    ),  # fmt: skip
    Member(
        "gauss-5-targets-low-coverage",
        "report",
        changes={"seed": 17, "nontarget_words": 90, "rare_words": 10},
        pool_coverage=1 / 3,
    ),  # fmt: skip
    Member("spoken-en", "tune", source="spoken", language="en"),
    Member("spoken-pt", "report", source="spoken", language="pt"),
    Member("spoken-id", "report", source="spoken", language="id"),
)


def members_named(names: list[str] | None = None, half: str = "all") -> list[Member]:
    """The members of ``half`` (``tune``, ``report`` or ``all``), or those named, in family order."""
    if half not in (*HALVES, "all"):
        raise BadInputError(f"command line: --half: {half!r} is not one of tune, report, all")
    by_name = {member.name: member for member in MEMBERS}
    unknown = [name for name in names or [] if name not in by_name]
    if unknown:
        raise BadInputError(
            f"command line: --members: unknown member {unknown[0]!r}; expected some of {', '.join(by_name)}"
        )
    chosen = [by_name[name] for name in names] if names else list(MEMBERS)
    return [member for member in chosen if half == "all" or member.half == half]


def member_experiment(
    member: Member, family_dir: str | Path, *, spoken_dir: str | Path = "workspace/spoken", scale: float = 1.0
) -> Path:
    """The folder of ``member``'s experiment, built first if it is not there.

    Gaussian members live in ``family_dir/<name>/``; spoken members are the spoken corpus under
    ``spoken_dir`` (where ``download --source spoken`` writes it). ``scale`` multiplies the
    member's own scale (tests use small families) and gives the folder an ``@scale`` suffix.
    Building writes to a temporary folder and renames it into place: an interrupted build leaves
    nothing behind.
    """
    family_dir = Path(family_dir)
    if member.source == "spoken":
        return _spoken_member(member, Path(spoken_dir), scale)
    folder = family_dir / (member.name if scale == 1.0 else f"{member.name}@{scale:g}")
    if experiment_present(folder):
        return folder
    if folder.exists():
        raise BadInputError(
            f"{folder}: exists but is not a whole experiment (allowed list, eval list and both embedding "
            "folders); move it away or choose another --family_dir"
        )
    from selection.datasets.synthetic import CorpusParams, write_corpus
    from selection.download import _experiment_from_sources

    params = replace(CorpusParams(), **{"scale": GAUSSIAN_SCALE, **member.changes}, languages=(member.language,))
    params = replace(params, scale=params.scale * scale)
    log.info("building family member %s in %s", member.name, folder)
    family_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=family_dir, prefix=f".{member.name}-") as staging:
        plans = write_corpus(Path(staging) / "corpus", params)
        built = Path(staging) / "experiment"
        _experiment_from_sources(
            Path(staging) / "corpus",
            member.language,
            built,
            targets=plans[member.language].targets,
            known_words=round(params.nontarget_words * member.pool_coverage),
            unknown_words=params.nontarget_words - round(params.nontarget_words * member.pool_coverage),
            clips_per_word=params.experiment_clips_per_word(),
        )
        built.rename(folder)
    return folder


def _spoken_member(member: Member, spoken_dir: Path, scale: float) -> Path:
    """The spoken corpus's experiment in ``member.language`` under ``spoken_dir`` (``spoken_dir@scale``)."""
    from selection.datasets.spoken import SpokenParams
    from selection.download import make_spoken

    data_dir = spoken_dir if scale == 1.0 else spoken_dir.with_name(f"{spoken_dir.name}@{scale:g}")
    try:
        return find_experiment(data_dir, member.language)
    except BadInputError:
        pass
    make_spoken(data_dir, params=SpokenParams(languages=(member.language,), scale=scale))
    return find_experiment(data_dir, member.language)
