"""The evaluation family: members built from the generators' settings, margins over the CV baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from selection.datasets.family import HALVES, MEMBERS
from selection.datasets.synthetic import TARGET_WORDS, CorpusParams, generate_language
from tests.conftest import REPO, run_cli
from tests.test_bad_input import assert_clean_failure

CONFIG = str(REPO / "workspace" / "dataperf_speech_config.yaml")
SCALE = "0.1"  # members at a tenth of their size keep these tests fast
MEMBER_FOLDER = f"gauss-3-targets@{SCALE}"
pytestmark = pytest.mark.xdist_group("family")  # one worker builds the module's family run once


def test_the_family_has_both_halves_and_every_kind_of_member():
    assert len(MEMBERS) >= 12
    assert {member.half for member in MEMBERS} == set(HALVES)
    assert {member.language for member in MEMBERS if member.source == "spoken"} == {"en", "pt", "id"}
    target_counts = {len(member.changes.get("target_clips", CorpusParams().target_clips)) for member in MEMBERS}
    assert min(target_counts) == 2 and max(target_counts) == 8
    assert {member.half for member in MEMBERS if member.pool_coverage < 0.5} == set(HALVES)


def test_target_word_count_follows_target_clips():
    language, clips = generate_language("en", CorpusParams(languages=("en",), scale=0.02, target_clips=(900,) * 8))
    assert language.targets[:5] == TARGET_WORDS["en"] and len(set(language.targets)) == 8
    assert not set(language.targets) & set(language.nontargets)
    three, _ = generate_language("en", CorpusParams(languages=("en",), scale=0.02, target_clips=(900, 500, 300)))
    assert three.targets == TARGET_WORDS["en"][:3]


@pytest.fixture(scope="module")
def family_run(tmp_path_factory) -> tuple[Path, object]:
    """One family run; the CV baseline tries 3 x 3 candidates instead of 10 x 10 (what it picks is not tested here)."""
    root = tmp_path_factory.mktemp("family")
    config = yaml.safe_load(Path(CONFIG).read_text())
    (root / "config.yaml").write_text(yaml.safe_dump({**config, "cv_target_splits": 3, "cv_nontarget_splits": 3}))
    done = run_cli(
        "-m", "selection.bench", "--family", "--members", "gauss-3-targets",
        "--family_scale", SCALE, "--sizes", "25", "--algorithms", "random,clean_coverage",
        "--family_dir", str(root / "family"), "--config_file", str(root / "config.yaml"), cwd=root,
    )  # fmt: skip
    return root, done


def test_family_bench_reports_margins_over_cross_validation(family_run):
    root, done = family_run
    assert done.returncode == 0, done.stderr
    document = json.loads((root / "family_results.json").read_text())
    assert (root / "family_results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = document["rows"]
    cells = {(row["member"], row["size"], row["metric"]) for row in rows}
    assert cells == {("gauss-3-targets", 25, metric) for metric in ("macro_f1", "balanced_accuracy")}
    for row in rows:
        baseline = next(
            r["score"]
            for r in rows
            if r["algorithm"] == "cross_validation" and (r["member"], r["metric"]) == (row["member"], row["metric"])
        )
        assert row["margin"] == pytest.approx(row["score"] - baseline, abs=1e-6)
    summary = document["summary"]["clean_coverage"]
    assert set(summary) == {"tune", "report", "all"} - {"report"}  # both members are in the tune half
    margins = sorted(r["margin"] for r in rows if r["algorithm"] == "clean_coverage")
    assert summary["all"]["min"] == pytest.approx(margins[0], abs=1e-4)
    assert summary["all"]["max"] == pytest.approx(margins[-1], abs=1e-4)
    assert "| clean_coverage | all | 2 |" in done.stdout
    three = yaml.safe_load((root / "family" / MEMBER_FOLDER / "allowed_training_set.yaml").read_text())
    assert len(three["targets"]) == 3


def test_family_bench_reuses_baseline_rows_only_for_the_same_data(family_run):
    root, _ = family_run
    again = run_cli(
        "-m", "selection.bench", "--family", "--members", "gauss-3-targets", "--family_scale", SCALE,
        "--sizes", "25", "--algorithms", "random", "--family_dir", str(root / "family"),
        "--config_file", str(root / "config.yaml"), "--reuse", str(root / "family_results.json"),
        "--output", str(root / "again.json"), "--plot", "", cwd=root,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("(reused)") == 2
    first = json.loads((root / "family_results.json").read_text())["rows"]
    second = json.loads((root / "again.json").read_text())["rows"]
    key = lambda row: (row["member"], row["algorithm"], row["metric"])  # noqa: E731
    earlier = {key(row): row["score"] for row in first}
    assert all(earlier[key(row)] == row["score"] for row in second)
    eval_list = root / "family" / MEMBER_FOLDER / "eval.yaml"
    eval_list.write_text(eval_list.read_text() + "\n")
    changed = run_cli(
        "-m", "selection.bench", "--family", "--members", "gauss-3-targets", "--family_scale", SCALE,
        "--sizes", "25", "--metric", "macro_f1", "--algorithms", "random", "--family_dir", str(root / "family"),
        "--config_file", str(root / "config.yaml"), "--reuse", str(root / "family_results.json"),
        "--output", str(root / "changed.json"),
        "--plot", "", cwd=root,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    assert "(reused)" not in changed.stderr


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        (("--members", "gauss-nope"), "unknown member 'gauss-nope'"),
        (("--half", "middle"), "--half"),
    ],
)
def test_family_bench_refuses_unknown_members_and_halves(tmp_path, flags, fragment):
    done = run_cli(
        "-m", "selection.bench", "--family", *flags, "--family_dir", str(tmp_path), "--config_file", CONFIG,
        cwd=tmp_path,
    )  # fmt: skip
    assert_clean_failure(done, fragment)
    assert list(tmp_path.iterdir()) == []


def test_family_bench_never_replaces_a_folder_it_did_not_build(tmp_path):
    foreign = tmp_path / "family" / MEMBER_FOLDER
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine\n")
    done = run_cli(
        "-m", "selection.bench", "--family", "--members", "gauss-3-targets", "--family_scale", SCALE,
        "--family_dir", str(tmp_path / "family"), "--config_file", CONFIG, cwd=tmp_path,
    )  # fmt: skip
    assert_clean_failure(done, str(foreign), "not a whole experiment")
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert (foreign / "notes.txt").read_text() == "mine\n"
