"""The per-clip report: pool mode reads no eval data, eval mode equals evaluate, planted faults are found."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from selection import load_experiment
from selection.datasets.faults import POOL_FAULTS_FILE, read_pool_faults
from tests.conftest import console_errors, eval_args, headless_chromium, read_json, run_cli, write_config

SIZE = 25


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """A small built-in synthetic English experiment (with its fault truth), a config and a train.json."""
    from selection.datasets.synthetic import CorpusParams
    from selection.download import make_synthetic

    root = tmp_path_factory.mktemp("explain")
    make_synthetic(root, root / "data", params=CorpusParams(languages=("en",), scale=0.06))
    write_config(root / "dataperf_speech_config.yaml", train_set_size_limit=SIZE)
    experiment = load_experiment(root, config=root / "dataperf_speech_config.yaml", with_eval=False)
    experiment.write(experiment.select("clean_coverage", SIZE), root / "train.json")
    return root


@pytest.fixture
def workspace(corpus: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "ws"
    shutil.copytree(corpus, folder, ignore=shutil.ignore_patterns("data"))
    return folder


def explain_args(root: Path, *extra: str) -> list[str]:
    return [
        "-m", "selection.explain",
        "--allowed_training_set", str(root / "allowed_training_set.yaml"),
        "--train_embeddings_dir", str(root / "train_embeddings"),
        "--eval_file", str(root / "eval.yaml"),
        "--eval_embeddings_dir", str(root / "eval_embeddings"),
        "--train_file", str(root / "train.json"),
        "--config_file", str(root / "dataperf_speech_config.yaml"),
        *extra,
    ]  # fmt: skip


def test_download_writes_the_pool_fault_truth(corpus: Path):
    faults = read_pool_faults(corpus)
    document = read_json(corpus / POOL_FAULTS_FILE)
    allowed = load_experiment(corpus, with_eval=False).allowed
    pool = {clip for ids in allowed["targets"].values() for clip in ids} | set(allowed["nontargets"])
    assert faults and set(faults) <= pool
    assert document["pool_clips"] == len(pool)
    assert sum(document["counts"].values()) == len(faults)
    # the corpus plants 12% mislabeled and 8% badly cut clips (a few draw their own word and stay clean)
    assert 0.08 < document["counts"]["mislabeled"] / len(pool) < 0.16
    assert 0.04 < (document["counts"]["silence"] + document["counts"]["neighbour"]) / len(pool) < 0.12


def test_pool_mode_reads_no_eval_data(workspace: Path):
    shutil.rmtree(workspace / "eval_embeddings")
    (workspace / "eval.yaml").unlink()
    done = run_cli(*explain_args(workspace))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "against the allowed pool only: no eval data was read"
    report = read_json(workspace / "explain.json")
    assert (report["mode"], report["n_picks"]) == ("pool", SIZE)
    assert [clip["rank"] for clip in report["clips"]] == list(range(1, SIZE + 1))
    effects = [clip["effect"] for clip in report["clips"] if clip["effect"] is not None]
    assert effects == sorted(effects)
    assert sum(report["verdicts"].values()) == SIZE
    assert {word["word"] for word in report["words"]} == set(load_experiment(workspace, with_eval=False).class_names)
    for clip in report["clips"]:
        assert clip["verdict"] in ("suspect", "redundant", "ok")
        assert any(re.search(r"of its 10 nearest pool clips (is|are) labelled", reason) for reason in clip["reasons"])
    page = (workspace / "explain.html").read_text()
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "(allowed pool only)" in page


def test_eval_mode_is_evaluate_and_says_so(workspace: Path):
    done = run_cli(*explain_args(workspace, "--against", "eval", "--outdir", str(workspace / "out")))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("AGAINST THE EVAL SET")
    report = read_json(workspace / "out" / "explain.json")
    assert report["mode"] == "eval" and report["note"].startswith("AGAINST THE EVAL SET")
    assert "<title>Per-clip report (AGAINST THE EVAL SET)</title>" in (workspace / "out" / "explain.html").read_text()
    results = load_experiment(workspace, config=workspace / "dataperf_speech_config.yaml").score(
        workspace / "train.json"
    )
    assert report["estimate"]["score"] == results["score"]
    assert report["estimate"]["per_class"] == results["per_class"]
    assert report["estimate"]["n_clips"] == results["n_eval"]


def _planted(experiment, picked: dict, faults: dict, count: int) -> tuple[dict, list[str]]:
    """``picked`` with ``count`` target picks swapped for unpicked mislabeled clips of the same label."""
    taken = {clip for ids in picked["targets"].values() for clip in ids}
    targets = {word: list(ids) for word, ids in picked["targets"].items()}
    planted = []
    for word, ids in targets.items():
        wrong = [c for c in experiment.allowed["targets"][word] if faults.get(c) == "mislabeled" and c not in taken]
        for slot in range(min(len(ids), len(wrong), 2)):
            if len(planted) < count:
                ids[slot] = wrong[slot]
                planted.append(wrong[slot])
    return {"targets": targets, "nontargets": list(picked["nontargets"])}, planted


def test_planted_mislabeled_picks_are_found(corpus: Path):
    experiment = load_experiment(corpus, config=corpus / "dataperf_speech_config.yaml", with_eval=False)
    faults = read_pool_faults(corpus)
    selection, planted = _planted(experiment, read_json(corpus / "train.json"), faults, 4)
    assert len(planted) == 4
    report = experiment.explain(selection)
    flagged = {clip["id"] for clip in report["clips"][:8]} | {
        clip["id"] for clip in report["clips"] if clip["verdict"] == "suspect"
    }
    assert sum(clip in flagged for clip in planted) >= 3
    suspects = [clip for clip in report["clips"] if clip["verdict"] == "suspect"]
    # not everything is suspect: the default's own picks are clean here (it leaves faulty clips out),
    # so every suspect beyond the planted ones is a clean pick
    assert len(suspects) <= 0.4 * SIZE


def _exit_line(function, args: list[str], capsys) -> tuple[int, str]:
    """Run a command in-process as its ``__main__`` does: (exit code, last line on stderr)."""
    from selection.cli import run_command

    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        run_command(function, args)
    return stopped.value.code, capsys.readouterr().err.strip().splitlines()[-1]


def test_the_same_error_lines_as_evaluate(workspace: Path, capsys):
    from selection.evaluate import evaluate
    from selection.explain import explain

    document = read_json(workspace / "train.json")
    for broken in (
        {**document, "nontargets": document["nontargets"] + ["cat/common_voice_en_99999999.wav"]},
        {**document, "targets": {**document["targets"], "nosuchword": []}},
        [1, 2],
    ):
        (workspace / "train.json").write_text(json.dumps(broken))
        explained = _exit_line(explain, explain_args(workspace)[2:], capsys)
        evaluated = _exit_line(evaluate, eval_args(workspace)[1:], capsys)
        assert explained == evaluated and explained[0] == 2
    assert not (workspace / "explain.json").exists()
    (workspace / "train.json").write_text(json.dumps(document))
    for flags, message in (
        (("--against", "both"), "--against: unknown 'both'"),
        (("--repair", "-1"), "--repair: expected a number of picks"),
        (("--audio_dir", str(workspace / "nowhere")), "--audio_dir: not found"),
    ):
        code, line = _exit_line(explain, explain_args(workspace, *flags)[2:], capsys)
        assert code == 2 and message in line
    done = run_cli(*explain_args(workspace, "--against", "both"))
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_repair_writes_a_checked_selection_beside_and_never_over_the_input(workspace: Path, capsys):
    before = (workspace / "train.json").read_bytes()
    done = run_cli(*explain_args(workspace, "--repair", "3"))
    assert done.returncode == 0, done.stderr
    assert (workspace / "train.json").read_bytes() == before
    report = read_json(workspace / "explain.json")
    repaired = read_json(workspace / "repaired_train.json")
    experiment = load_experiment(workspace, config=workspace / "dataperf_speech_config.yaml")
    assert experiment.check(repaired) == repaired
    size = sum(map(len, repaired["targets"].values())) + len(repaired["nontargets"])
    assert size == SIZE and report["repair"]["file"] == str(workspace / "repaired_train.json")
    swapped = [swap for swap in report["repair"]["swaps"] if swap["kept"]]
    original = {c for ids in read_json(workspace / "train.json")["targets"].values() for c in ids}
    original |= set(read_json(workspace / "train.json")["nontargets"])
    assert all(swap["removed"] in original and swap["added"] not in original for swap in swapped)
    # the input is never the output
    (workspace / "repaired_train.json").replace(workspace / "mine.json")
    shutil.copy(workspace / "mine.json", workspace / "repaired_train.json")
    from selection.explain import explain

    args = explain_args(workspace, "--repair", "1")[2:]
    args[args.index("--train_file") + 1] = str(workspace / "repaired_train.json")
    code, line = _exit_line(explain, args, capsys)
    assert code == 2 and "is also the input --train_file" in line
    assert (workspace / "repaired_train.json").read_bytes() == (workspace / "mine.json").read_bytes()


def _wav(path: Path, seed: int) -> None:
    from scipy.io import wavfile

    path.parent.mkdir(parents=True, exist_ok=True)
    wavfile.write(path, 16000, (np.random.default_rng(seed).normal(0, 3000, 16000)).astype(np.int16))


def test_the_page_in_a_real_browser_has_players_and_the_json_ranking(workspace: Path):
    from selenium.webdriver.common.by import By

    document = read_json(workspace / "train.json")
    picks = [c for ids in document["targets"].values() for c in ids] + document["nontargets"]
    for seed, clip in enumerate(picks[:-1]):
        _wav(workspace / "audio" / clip, seed)
    done = run_cli(*explain_args(workspace, "--audio_dir", str(workspace / "audio")))
    assert done.returncode == 0, done.stderr
    assert "1 of 25 picks have no readable recording" in done.stderr
    report = read_json(workspace / "explain.json")
    with headless_chromium() as browser:
        browser.get((workspace / "explain.html").as_uri())
        assert browser.title == "Per-clip report (allowed pool only)"
        rows = browser.find_elements(By.CSS_SELECTOR, "#clips tbody tr")
        assert [row.get_attribute("data-clip") for row in rows] == [clip["id"] for clip in report["clips"]]
        ids = [row.find_element(By.CSS_SELECTOR, "td.id") for row in rows]
        assert [cell.text.replace("\n", "") for cell in ids] == [clip["id"] for clip in report["clips"]]
        # a clip ID breaks after its "/" if anywhere, never inside a name: each name is one line box
        names = browser.find_elements(By.CSS_SELECTOR, "td.id span.name")
        assert len(names) == 2 * SIZE
        assert all(browser.execute_script("return arguments[0].getClientRects().length", n) == 1 for n in names)
        assert [row.find_element(By.CSS_SELECTOR, "td.verdict").text for row in rows] == [
            clip["verdict"] for clip in report["clips"]
        ]
        players = browser.find_elements(By.TAG_NAME, "audio")
        assert len(players) == SIZE - 1
        assert all(player.get_attribute("src").startswith("data:audio/wav;base64,") for player in players)
        assert len(browser.find_elements(By.CSS_SELECTOR, "svg circle.pick")) == SIZE
        assert console_errors(browser) == []


def test_a_failure_before_the_last_output_leaves_none_of_them(workspace: Path, monkeypatch):
    """explain's outputs are written as a unit: a failure while making the page leaves no report or repair."""
    import selection.diagnosis.page
    from selection.explain import explain

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(selection.diagnosis.page, "render_page", broken)
    args = explain_args(workspace, "--repair", "2")[2:]
    flags = {args[i].removeprefix("--"): args[i + 1] for i in range(0, len(args), 2)}
    with pytest.raises(KeyboardInterrupt):
        explain(**{**flags, "repair": 2})
    assert not [p.name for p in workspace.iterdir() if p.name.startswith(("explain", "repaired", ".explain"))]


def test_terminal_escapes_in_clip_ids_are_shown_escaped(workspace: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    train = read_json(workspace / "train.json")
    word, picked = next(iter(train["targets"].items()))
    old = picked[0]
    new = f"{word}/evil\x1b[31m\u202eclip.wav"
    allowed_file = workspace / "allowed_training_set.yaml"
    allowed = yaml.safe_load(allowed_file.read_text())
    allowed["targets"][word] = [new if clip == old else clip for clip in allowed["targets"][word]]
    allowed_file.write_text(yaml.safe_dump(allowed, sort_keys=False))
    table = pq.read_table(workspace / "train_embeddings" / f"{word}.parquet")
    ids = [new if clip == old else clip for clip in table.column("clip_id").to_pylist()]
    column = table.column_names.index("clip_id")
    pq.write_table(table.set_column(column, "clip_id", pa.array(ids, pa.string())),
                   workspace / "train_embeddings" / f"{word}.parquet")  # fmt: skip
    train["targets"][word] = [new if clip == old else clip for clip in picked]
    (workspace / "train.json").write_text(json.dumps(train))
    done = run_cli(*explain_args(workspace), "--against", "pool")
    assert done.returncode == 0, done.stderr
    page = (workspace / "explain.html").read_text()
    for text in (done.stdout, done.stderr, page):
        assert "\x1b" not in text and "\u202e" not in text
    assert "evil\\x1b[31m\\u202eclip.wav" in page


def test_the_largest_fault_is_named_first_and_the_repair_that_follows_it_raises_the_real_score(corpus: Path):
    """A selection of targets only (nontargets at 1 of 25 picks, against two thirds of the pool): the first advice
    is to add nontargets, with a positive pool-only estimate; ``repair`` follows it; the eval set agrees."""
    experiment = load_experiment(corpus, config=corpus / "dataperf_speech_config.yaml")
    pool = experiment.pool
    rng = np.random.default_rng(4)
    rows = [int(rng.choice(np.flatnonzero(pool.labels == 0)))]
    for label in range(1, int(pool.labels.max()) + 1):
        rows += [int(row) for row in rng.choice(np.flatnonzero(pool.labels == label), 5, replace=False)]
    from selection.selection import Pool

    chosen = Pool(pool.matrix, pool.labels, pool.ids, experiment.class_names).to_training_set(rows[:SIZE])
    selection = experiment.check({"targets": chosen.targets, "nontargets": chosen.nontargets})
    report = experiment.explain(selection, repair=12)
    first = report["advice"][0]
    assert first["kind"] == "class balance" and "add nontargets" in first["text"] and first["effect"] > 0
    assert report["repair"]["class_moves"] and report.repaired is not None
    repaired = report.repaired
    assert len(repaired["nontargets"]) > len(selection["nontargets"])
    assert experiment.score(repaired).score > experiment.score(selection).score
    assert all(clip["decided_by"] for clip in report["clips"] if clip["verdict"] != "ok")


def test_a_pick_beyond_the_spread_of_harm_is_never_ok():
    """However well its neighbours vouch for it (badly cut clips sit together), a pick whose leave-one-out effect is
    far beyond the others' spread is called harmful (not faulty: nothing says the clip is), decided by its estimated
    effect; with label doubt as well it is suspect, and both kinds of evidence are named."""
    from selection.diagnosis.evidence import Evidence, judged

    n = 12
    evidence = Evidence(
        neighbour_labels=np.ones((n, 10), dtype=int), agreement=np.ones(n), own_probability=np.full(n, 0.95),
        predicted=np.ones(n, dtype=int), predicted_probability=np.full(n, 0.95), duplicate_of=np.full(n, -1),
        duplicate_distance=np.zeros(n), duplicate_threshold=1.0,
    )  # fmt: skip
    effects = np.random.default_rng(0).normal(0.002, 0.001, n)
    effects[3] = -0.05
    decisions = judged(evidence, effects)
    assert decisions[3] == ("harmful", ["estimated effect"])
    assert all(decision == ("ok", []) for index, decision in enumerate(decisions) if index != 3)
    evidence.own_probability[3] = 0.001
    assert judged(evidence, effects)[3] == ("suspect", ["out-of-fold probability", "estimated effect"])


def test_a_clip_the_word_model_takes_for_another_word_is_suspect_even_where_its_class_is_right():
    """A nontarget clip of another nontarget word (its class right, its word wrong) is suspect by the word model
    when none of its nearest pool clips is of its own word either; with one that is, the word model (which learns
    a nontarget word from a few clips) is not trusted alone. Where the other word is of another class (a target
    taken for a nontarget word), the word model decides alone. A merely unsure word model leaves a clip ok."""
    from selection.diagnosis.evidence import Evidence, judged

    n = 6
    evidence = Evidence(
        neighbour_labels=np.zeros((n, 10), dtype=int), agreement=np.ones(n), own_probability=np.full(n, 0.99),
        predicted=np.zeros(n, dtype=int), predicted_probability=np.full(n, 0.99), duplicate_of=np.full(n, -1),
        duplicate_distance=np.zeros(n), duplicate_threshold=1.0, word_probability=np.full(n, 0.6),
        other_word=["baku"] * n, other_word_probability=np.full(n, 0.3),
        other_word_same_class=np.ones(n, dtype=bool), word_neighbours=np.full(n, 3),
    )  # fmt: skip
    for index in (1, 3, 4):
        evidence.word_probability[index], evidence.other_word_probability[index] = 0.01, 0.97
    evidence.word_probability[2], evidence.other_word_probability[2] = 0.01, 0.5
    evidence.word_neighbours[1] = 0  # no clip of its own word near it
    evidence.other_word_same_class[4] = False  # the other word is of another class
    decisions = judged(evidence, np.zeros(n))
    assert decisions[1] == ("suspect", ["another word"])
    assert decisions[2] == ("ok", [])
    assert decisions[3] == ("ok", [])  # its own word's clips are among its neighbours
    assert decisions[4] == ("suspect", ["another word"])


def test_a_flag_the_combined_evidence_does_not_bear_out_is_dropped():
    """A pick one rule flags but whose evidence taken together gives it less than a 2% chance of being faulty is ok
    (harmful where its effect says so), decided by the combined evidence; above 2% the rule's verdict stands. The
    combined evidence itself puts a typical clip far below a clip its neighbours and the models doubt."""
    from selection.diagnosis.evidence import (
        CLEARED_BELOW,
        Evidence,
        combined_fault_probability,
        combined_features,
        judged,
    )  # fmt: skip

    n = 8
    evidence = Evidence(
        neighbour_labels=np.ones((n, 10), dtype=int), agreement=np.ones(n), own_probability=np.full(n, 0.95),
        predicted=np.ones(n, dtype=int), predicted_probability=np.full(n, 0.95), duplicate_of=np.full(n, -1),
        duplicate_distance=np.zeros(n), duplicate_threshold=1.0, off_centre=np.zeros(n), weakness=np.zeros(n),
        fault_probability=np.full(n, 0.3),
    )  # fmt: skip
    evidence.off_centre[[0, 1, 2]] = 1.8  # off its word's centre: badly cut?
    evidence.fault_probability[[0, 2, 3]] = CLEARED_BELOW / 2  # ... but not by the evidence taken together
    effects = np.random.default_rng(0).normal(0.002, 0.001, n)
    effects[2] = -0.05  # far beyond the others' spread
    decisions = judged(evidence, effects)
    assert decisions[0] == ("ok", ["combined evidence"])
    assert decisions[1] == ("badly cut?", ["off its word's centre"])
    assert decisions[2] == ("harmful", ["combined evidence", "estimated effect"])
    assert decisions[3] == ("ok", [])  # nothing flagged it: nothing to clear

    typical, doubted = combined_fault_probability(
        combined_features(
            agreement=[1.0, 0.0], own_probability=[0.99, 0.01], word_probability=[0.99, 0.01],
            other_word_probability=[0.001, 0.97], off_centre=[-0.5, 1.0], weakness=[0.0, 0.0],
            word_neighbours=[10, 0], nontarget=[False, False],
        )
    )  # fmt: skip
    assert typical < CLEARED_BELOW < 0.5 < doubted


def test_word_probabilities_find_a_clip_of_another_word_filed_under_a_nontarget_word():
    """The out-of-fold word model, on words that sit apart: a clip of word B filed under word A gets a low
    probability of A and a high one of B, while its class (both nontargets) keeps a probability near 1."""
    from selection.diagnosis.evidence import gather_evidence

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (4, 24))
    labels, ids, vectors = [], [], []
    for word in range(4):
        for k in range(40):
            name = "target" if word == 0 else f"w{word}"
            labels.append(0 if word == 0 else 1)
            ids.append(f"{name}/clip_{word}_{k}.wav")
            vectors.append(centres[word] + 0.3 * rng.normal(0, 1, 24))
    matrix = np.asarray(vectors, dtype=np.float32)
    matrix[ids.index("w1/clip_1_0.wav")] = centres[2] + 0.3 * rng.normal(0, 1, 24)  # word w2 filed under w1
    labels = np.asarray(labels)
    rows = np.array([ids.index("w1/clip_1_0.wav"), ids.index("w1/clip_1_1.wav"), ids.index("target/clip_0_0.wav")])
    evidence = gather_evidence(matrix, labels, rows, 2, pool_ids=ids, nontarget=1, class_names=["target", "nontarget"])
    assert evidence.word_probability[0] < 0.05 and evidence.other_word[0] == "w2"
    assert evidence.other_word_probability[0] > 0.9 and evidence.own_probability[0] > 0.9
    assert evidence.word_probability[1] > 0.9 and evidence.own_probability[2] > 0.9
    assert evidence.other_word_same_class[0] and evidence.word_neighbours[0] == 0  # among w2's clips
    assert evidence.word_neighbours[1] == 10 and evidence.word_neighbours[2] == 10


def test_a_word_with_too_few_clips_to_learn_is_not_judged_by_the_word_model():
    """A nontarget word with fewer than 8 pool clips besides the picks: the word model cannot say its clip is not
    that word, so the clip's word probability is unknown (null in the JSON) and it is never called another word."""
    from selection.diagnosis.evidence import Evidence, gather_evidence, judged

    rng = np.random.default_rng(1)
    centres = rng.normal(0, 1, (3, 16))
    sizes = {"target": 40, "w1": 40, "w2": 5}
    labels, ids, vectors = [], [], []
    for word, (name, size) in enumerate(sizes.items()):
        for k in range(size):
            labels.append(0 if name == "target" else 1)
            ids.append(f"{name}/clip_{k}.wav")
            vectors.append(centres[word] + 0.3 * rng.normal(0, 1, 16))
    matrix, labels = np.asarray(vectors, dtype=np.float32), np.asarray(labels)
    rows = np.array([ids.index("w2/clip_0.wav"), ids.index("w1/clip_0.wav"), ids.index("target/clip_0.wav")])
    evidence = gather_evidence(matrix, labels, rows, 2, pool_ids=ids, nontarget=1, class_names=["target", "nontarget"])
    assert np.isnan(evidence.word_probability[0]) and evidence.word_probability[1] > 0.5
    assert isinstance(evidence, Evidence) and judged(evidence, np.zeros(3))[0][0] != "suspect"


def test_a_pool_too_small_to_separate_effects_gets_a_warning_instead_of_verdicts(workspace: Path, capsys):
    """A researcher's handful of recordings per word: the first line says the figures mean nothing, no clip is
    judged, the page carries the warning, and --repair writes nothing it cannot justify."""
    import yaml

    allowed = yaml.safe_load((workspace / "allowed_training_set.yaml").read_text())
    small = {"targets": {w: ids[:6] for w, ids in allowed["targets"].items()}, "nontargets": allowed["nontargets"][:30]}
    (workspace / "allowed_training_set.yaml").write_text(yaml.safe_dump(small))
    picked = {"targets": {w: ids[:2] for w, ids in small["targets"].items()}, "nontargets": small["nontargets"][:8]}
    (workspace / "train.json").write_text(json.dumps(picked))
    done = run_cli(*explain_args(workspace, "--repair", "2"))
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("WARNING: too small to judge") and "fewer than 5" in first
    report = read_json(workspace / "explain.json")
    assert report["limits"] == first.removeprefix("WARNING: ")
    assert {clip["verdict"] for clip in report["clips"]} == {"not judged"} and report["advice"] == []
    assert report["repair"]["skipped"].startswith("no repair") and not (workspace / "repaired_train.json").exists()
    assert "too small to judge" in (workspace / "explain.html").read_text()


def test_a_badly_cut_pick_that_its_neighbours_vouch_for_is_called_badly_cut(corpus: Path):
    """Badly cut clips of every word sit together, so neighbour labels vouch for them; the typicality evidence
    (direction and strength against the word's own clips, no other clip's label) still names them."""
    from selection.datasets.faults import BADLY_CUT

    experiment = load_experiment(corpus, config=corpus / "dataperf_speech_config.yaml", with_eval=False)
    faults = read_pool_faults(corpus)
    picked = experiment.select("clean_coverage", SIZE)
    chosen = {c for ids in picked["targets"].values() for c in ids}
    targets = {word: list(ids) for word, ids in picked["targets"].items()}
    planted = []
    for word, ids in targets.items():
        cut = [c for c in experiment.allowed["targets"][word] if faults.get(c) in BADLY_CUT and c not in chosen]
        if cut and len(ids) > 1:
            ids[0] = cut[0]
            planted.append(cut[0])
    assert len(planted) >= 2
    report = experiment.explain({"targets": targets, "nontargets": picked["nontargets"]}, limit=SIZE)
    verdicts = {clip["id"]: clip for clip in report["clips"]}
    assert all(verdicts[c]["verdict"] in ("badly cut?", "suspect") for c in planted)
    cut = [verdicts[c] for c in planted if verdicts[c]["verdict"] == "badly cut?"]
    assert all(set(c["decided_by"]) <= {"off its word's centre", "weak vector"} and c["decided_by"] for c in cut)
    assert all(any("typical clips" in r or "weaker" in r for r in c["reasons"]) for c in cut)
    clean = [clip for clip in report["clips"] if clip["id"] not in faults]
    assert sum(clip["verdict"] == "badly cut?" for clip in clean) <= 1


@pytest.mark.parametrize("against", ["pool", "eval"])
def test_every_leave_one_out_figure_is_a_fresh_scorings_bit_for_bit(corpus: Path, against: str, monkeypatch):
    """The report's shared work (kept distances, precomputed-kernel seed fits, two scorings at once) changes no
    figure: each pick's score without it equals that of a scoring that shares nothing, every bit."""
    from selection.diagnosis.estimate import Estimate, eval_estimate, leave_one_out, pool_estimate
    from selection.inputs.rows import selection_rows
    from selection.scoring import precomputed_fits
    from selection.scoring.evaluation import score_predictions
    from selection.scoring.fast_predict import predict_shared

    experiment = load_experiment(corpus, config=corpus / "dataperf_speech_config.yaml")
    pool, names = experiment.pool, experiment.class_names
    rows = selection_rows(experiment.check(read_json(corpus / "train.json")), pool)
    if against == "pool":
        estimate = pool_estimate(pool, rows, experiment.config, names)
    else:
        estimate = eval_estimate(experiment.evaluation, rows, len(pool.ids), experiment.config, names)
    fast_fits = []
    honest = precomputed_fits.seed_fits
    monkeypatch.setattr(precomputed_fits, "seed_fits", lambda *a: fast_fits.append(honest(*a)) or fast_fits[-1])
    shared = leave_one_out(estimate, pool, rows)
    assert fast_fits and all(fits is not None for fits in fast_fits)  # the precomputed fits did run
    assert isinstance(estimate, Estimate) and estimate.shared  # and the kept distances
    for index in range(len(rows)):
        trial = np.delete(rows, index)
        predictions = predict_shared(
            pool.matrix[trial], pool.labels[trial], estimate.scored_on.matrix, estimate.seeds, compiled=False
        )
        fresh = score_predictions(
            estimate.scored_on.labels, predictions, seeds=estimate.seeds, metric=estimate.metric,
            class_names=names, class_weights=estimate.class_weights,
        )["score"]  # fmt: skip
        assert shared[index] == fresh, index


def test_pool_figures_are_kept_for_as_long_as_the_pool_lives():
    import gc

    from selection.diagnosis import memo

    matrix = np.arange(12.0).reshape(4, 3)
    calls = []
    compute = lambda: calls.append(1) or 66.0  # noqa: E731
    assert memo.per_pool(matrix, "sum", compute) == memo.per_pool(matrix, "sum", compute) == 66.0
    assert len(calls) == 1
    other = matrix.copy()  # the same numbers, another pool: its own figures
    memo.per_pool(other, "sum", compute)
    assert len(calls) == 2
    name = id(matrix)
    del matrix, compute
    gc.collect()
    assert name not in memo._entries


def test_a_report_leaves_the_callers_warning_filters_as_they_were(corpus: Path):
    """Its threads each set and restore the process-wide warnings filter; the caller's comes back."""
    import warnings

    experiment = load_experiment(corpus, config=corpus / "dataperf_speech_config.yaml", with_eval=False)
    before = list(warnings.filters)
    experiment.explain(read_json(corpus / "train.json"))
    assert warnings.filters == before
