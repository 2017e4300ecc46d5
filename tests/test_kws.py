"""The KWS trainer: the front end, BC-ResNet's sizes, augmentation, distillation, a real training run on the
built-in commands corpus, resume, ONNX parity through onnxruntime, ``embed --model kws:`` and bad inputs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, run_cli
from tests.test_bad_input import assert_clean_failure

PAPER_PARAMETERS = {1.0: 9232, 1.5: 17154, 2.0: 27284, 3.0: 54168, 6.0: 187812, 8.0: 321068}
SMALL = ("--epochs", "2", "--batch_size", "16")


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory) -> dict:
    """One persistent compilation cache for every training of this module (in-process and the commands'):
    the same step compiles once, not once per run (about 15 s each); the programs, and so the results, are the same."""
    import jax

    folder = str(tmp_path_factory.mktemp("jax-cache"))
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return {"JAX_COMPILATION_CACHE_DIR": folder, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A workspace holding a small commands corpus (10 speakers, 35 words)."""
    root = tmp_path_factory.mktemp("kws")
    done = run_cli("-m", "selection.download", "--source", "commands", "--workspace", str(root), "--scale", "0.05")
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture(scope="module")
def trained(workspace: Path, jax_cache: dict) -> Path:
    """BC-ResNet-1 trained for two epochs by the command, as a user runs it."""
    out = workspace / "models" / "first"
    done = run_cli(
        "-m", "selection.train_kws", "--workspace", str(workspace), "--outdir", str(out), *SMALL, env=jax_cache
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "precision" in done.stdout and "_silence_" in done.stdout  # the classification report
    return out


def test_log_mel_matches_the_frame_by_frame_definition():
    import jax.numpy as jnp

    from selection.kws.frontend import log_mel, log_mel_reference, mel_filterbank

    rng = np.random.default_rng(0)
    time = np.arange(16000) / 16000
    clips = np.stack([rng.normal(0, 0.1, 16000), 0.5 * np.sin(2 * np.pi * 1000 * time), np.zeros(16000)])
    reference = np.stack([log_mel_reference(clip) for clip in clips])
    assert reference.shape == (3, 40, 101)
    for found in (log_mel(clips.astype(np.float32)), np.asarray(log_mel(jnp.asarray(clips, jnp.float32), jnp)),
                  np.asarray(log_mel(jnp.asarray(clips, jnp.float32), jnp, use_fft=True))):  # fmt: skip
        assert found.shape == (3, 40, 101) and found.dtype == np.float32
        assert np.abs(found - reference).max() < 1e-3
    assert np.allclose(reference[2], np.log(1e-6))  # silence
    peak_band = int(np.argmax(reference[1][:, 50]))  # a 1 kHz tone lands in the band whose filter peaks nearest it
    assert peak_band == int(np.argmax(mel_filterbank()[int(round(1000 / 8000 * 256))]))


def test_the_step_is_compiled_by_the_measured_code_generator_unless_the_user_chose(monkeypatch):
    from selection.kws import codegen

    environ = {"XLA_FLAGS": "--xla_dump_to=/tmp/x"}
    assert codegen.use_loop_emitters(environ)
    assert environ["XLA_FLAGS"].split() == ["--xla_dump_to=/tmp/x", codegen.FLAG]
    chosen = {"XLA_FLAGS": "--xla_cpu_use_fusion_emitters=true"}
    assert not codegen.use_loop_emitters(chosen) and chosen["XLA_FLAGS"] == "--xla_cpu_use_fusion_emitters=true"
    monkeypatch.setattr(codegen, "MEASURED_JAXLIB", ("0.0.1",))  # another jaxlib may not know the flag
    other = {}
    assert not codegen.use_loop_emitters(other) and other == {}
    import os

    assert codegen.FLAG in os.environ["XLA_FLAGS"].split()  # this process's trainings too (tests/conftest.py)


KEPT_MEMORY_PROBE = r"""
import resource, sys, threading
import numpy as np
if sys.argv[1] == "command":  # what train_kws and distill_embedding do before they train
    from selection.train_kws import _require_training_stack
    _require_training_stack()
faults = []
def steps():  # what a training step does with its working memory: a large block, allocated, filled, freed
    for _ in range(3):
        block = np.ones(25_000_000, dtype=np.float32)
        del block
def measure():
    steps()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    steps()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
thread = threading.Thread(target=measure)  # XLA allocates on its worker threads
thread.start()
thread.join()
print(faults[0])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_the_training_commands_keep_freed_memory_mapped_for_the_next_step():
    """A large block freed and allocated again is served from memory already mapped (no page faults),
    where plain glibc malloc unmaps it on free and the kernel faults every page in again."""
    import platform

    from selection.kws import memory

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the C library is not glibc")
    environment = {key: value for key, value in os.environ.items() if key not in memory.USER_SETTINGS}
    environment["PYTHONPATH"] = str(REPO)
    faults = {}
    for mode in ("command", "plain"):
        done = subprocess.run([sys.executable, "-c", KEPT_MEMORY_PROBE, mode], env=environment, capture_output=True,
                              text=True, check=True)  # fmt: skip
        faults[mode] = int(done.stdout.split()[-1])
    assert faults["command"] <= 10 < 50 <= faults["plain"], faults
    assert not memory.keep_freed_memory({"MALLOC_ARENA_MAX": "8"})  # a user's own malloc settings win
    assert not memory.keep_freed_memory({"GLIBC_TUNABLES": "glibc.malloc.mmap_max=4"})


def test_training_and_inference_compute_the_same_network_and_gradients():
    """Training runs the 1×1 and head convolutions as matrix products with written-out gradients; inference
    and the export run XLA's own layers: the same outputs, and the gradients autodiff gives the plain layers."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from selection.kws.model import BCResNet, _head_patches, pointwise

    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(3, 4, 7, 5)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(5, 6)), jnp.float32)
    weights = jnp.asarray(rng.normal(size=(3, 4, 7, 6)), jnp.float32)
    custom = jax.grad(lambda x, k: jnp.sum(jnp.sin(pointwise(x, k)) * weights), argnums=(0, 1))(x, kernel)
    plain = jax.grad(lambda x, k: jnp.sum(jnp.sin(x @ k) * weights), argnums=(0, 1))(x, kernel)
    for mine, theirs in zip(custom, plain):
        assert np.allclose(mine, theirs, rtol=1e-5, atol=1e-5)
    model = BCResNet(1.0, 12, rngs=nnx.Rngs(0))
    features = jnp.asarray(rng.normal(size=(2, 40, 101)), jnp.float32)
    head = model.head[...]
    conv = jax.lax.conv_general_dilated(features[..., None], head, (2, 1), ((2, 2), (2, 2)),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))  # fmt: skip
    patches = pointwise(_head_patches(features), head.reshape(25, -1))
    assert patches.shape == conv.shape == (2, 20, 101, 16)
    assert np.abs(np.asarray(patches) - np.asarray(conv)).max() < 1e-5


def test_parameter_counts_match_the_papers_table():
    from flax import nnx

    from selection.kws.model import BCResNet, count_multiplies, count_parameters

    macs = []
    for width, expected in PAPER_PARAMETERS.items():
        shapes = nnx.eval_shape(lambda width=width: BCResNet(width, 12, rngs=nnx.Rngs(0)))
        assert count_parameters(shapes) == expected
        macs.append(count_multiplies(width, 12))
    assert macs == sorted(macs) and 2e6 < macs[0] < 3.2e6 and 8e7 < macs[-1] < 9e7


def test_summary_prints_every_widths_counts_and_writes_nothing(tmp_path: Path):
    done = run_cli("-m", "selection.train_kws", "--summary", "--width", "1,1.5,2,3,6,8", "--workspace", str(tmp_path))
    assert done.returncode == 0, done.stderr
    for count in PAPER_PARAMETERS.values():
        assert f"{count:,}" in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_augmentation_is_a_function_of_the_key():
    import jax
    import jax.numpy as jnp

    from selection.kws.augment import mix_noise, spec_augment

    rng = np.random.default_rng(1)
    waves = jnp.asarray(rng.normal(0, 0.1, (6, 16000)), jnp.float32).at[5].set(0.0)
    silent = jnp.asarray([False] * 5 + [True])
    noise = jnp.asarray(rng.normal(0, 0.3, (2, 48000)), jnp.float32)
    key, other = jax.random.key(3), jax.random.key(4)
    first, again = mix_noise(waves, silent, noise, key, train=True), mix_noise(waves, silent, noise, key, train=True)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, mix_noise(waves, silent, noise, other, train=True))
    assert float(jnp.abs(first[5]).max()) > 0 and float(jnp.abs(first).max()) <= 1.0  # silence always gets noise
    held_out = mix_noise(waves, silent, noise, key, train=False)
    assert np.array_equal(held_out[:5], waves[:5]) and float(jnp.abs(held_out[5]).max()) > 0
    features = jnp.ones((64, 40, 101))
    masked = spec_augment(features, key, frequency_width=7)
    assert np.array_equal(masked, spec_augment(features, key, frequency_width=7))
    zero = np.asarray(masked) == 0
    time_masked = zero.all(axis=1).sum(axis=1)  # frames zeroed in every band
    assert time_masked.max() <= 2 * 19 and time_masked.max() > 0
    band_masked = zero.all(axis=2).sum(axis=1)
    assert band_masked.max() <= 2 * 6 and band_masked.max() > 0
    assert not np.asarray(spec_augment(features, key, frequency_width=0) == 0).all(axis=2).any()


def test_distillation_loss_is_cross_entropy_plus_the_scaled_kl_divergence():
    import jax.numpy as jnp

    from selection.kws.train import distillation_loss

    rng = np.random.default_rng(2)
    student, teacher = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    labels = np.array([0, 1, 2, 3, 1])

    def log_softmax(x):
        x = x - x.max(axis=1, keepdims=True)
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))

    cross_entropy = -log_softmax(student)[np.arange(5), labels].mean()
    temperature = 3.0
    p, q = log_softmax(teacher / temperature), log_softmax(student / temperature)
    kl = (np.exp(p) * (p - q)).sum(axis=1).mean()
    for alpha in (0.0, 0.3, 1.0):
        found = float(distillation_loss(jnp.asarray(student), jnp.asarray(teacher), jnp.asarray(labels),
                                        alpha=alpha, temperature=temperature))  # fmt: skip
        assert found == pytest.approx((1 - alpha) * cross_entropy + alpha * temperature**2 * kl, rel=1e-5)
    same = float(distillation_loss(jnp.asarray(student), jnp.asarray(student), jnp.asarray(labels), alpha=1.0,
                                   temperature=2.0))  # fmt: skip
    assert same == pytest.approx(0.0, abs=1e-6)


def test_the_commands_corpus_splits_by_speaker_and_is_deterministic(workspace: Path, tmp_path: Path):
    from selection.kws.data import ALL_35

    corpus = workspace / "commands"
    assert sorted(path.name for path in corpus.iterdir() if path.is_dir()) == sorted([*ALL_35, "_background_noise_"])
    assert len(list((corpus / "_background_noise_").glob("*.wav"))) == 6
    lists = {name: (corpus / f"{name}_list.txt").read_text().split() for name in ("validation", "testing")}
    speakers = {name: {Path(clip).name.split("_nohash_")[0] for clip in clips} for name, clips in lists.items()}
    everyone = {path.name.split("_nohash_")[0] for path in (corpus / "yes").glob("*.wav")}
    assert speakers["validation"] and speakers["testing"] and not speakers["validation"] & speakers["testing"]
    assert everyone - speakers["validation"] - speakers["testing"]  # someone trains
    for clips in lists.values():  # every clip of a held-out speaker is listed
        held = {Path(clip).name.split("_nohash_")[0] for clip in clips}
        assert {f"{p.parent.name}/{p.name}" for p in corpus.glob("*/*.wav") if p.name.split("_nohash_")[0] in held
                and p.parent.name != "_background_noise_"} == set(clips)  # fmt: skip
    import soundfile

    info = soundfile.info(next((corpus / "go").glob("*.wav")))
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 16000, "PCM_16")
    done = run_cli("-m", "selection.download", "--source", "commands", "--workspace", str(tmp_path), "--scale", "0.05")
    assert done.returncode == 0, done.stderr

    def digest(root: Path) -> str:
        files = sorted(path for path in root.rglob("*") if path.is_file())
        return hashlib.sha256(b"".join(str(p.relative_to(root)).encode() + p.read_bytes() for p in files)).hexdigest()

    assert digest(tmp_path / "commands") == digest(corpus)


def test_a_trained_model_folder_is_complete_and_its_onnx_file_matches_the_model(trained: Path):
    from selection.kws.export import inference_function, run_onnx
    from selection.kws.fit import load_model_state

    assert sorted(path.name for path in trained.iterdir()) == sorted(
        ["config.json", "weights.npz", "model.onnx", "report.json", "training.png", "checkpoint.npz",
         "checkpoint.json"]
    )  # fmt: skip
    report = json.loads((trained / "report.json").read_text())
    assert report["params"] == 9232 and report["embedding_dims"] == 32 and len(report["history"]) == 2
    assert set(report["accuracy"]) == {"train", "validation", "test"}
    assert len(report["test"]["confusion_matrix"]) == 12 and set(report["test"]["per_class"]) == set(report["classes"])
    assert (trained / "training.png").read_bytes()[:4] == b"\x89PNG"
    _, graph, params, stats = load_model_state(trained, flag="test")
    rng = np.random.default_rng(5)
    audio = rng.normal(0, 0.2, (7, 16000)).astype(np.float32)
    onnx_logits, onnx_embedding = run_onnx(trained / "model.onnx", audio)
    logits, embedding = inference_function(graph, params, stats)(audio)
    assert onnx_logits.shape == (7, 12) and onnx_embedding.shape == (7, 32)
    assert np.abs(onnx_logits - np.asarray(logits)).max() <= 1e-4
    assert np.abs(onnx_embedding - np.asarray(embedding)).max() <= 1e-4


def test_an_interrupted_run_resumes_exactly(trained: Path, workspace: Path, tmp_path: Path, monkeypatch):
    import selection.progress
    from selection.kws.data import load_corpus
    from selection.kws.fit import fit
    from selection.kws.train import TrainConfig

    corpus = load_corpus(workspace / "commands", "12", seed=0)
    config = TrainConfig(width=1.0, task="12", classes=tuple(corpus.classes), epochs=2, seed=0, batch_size=16)
    real_progress = selection.progress.report_progress
    from selection.kws.folder import check_outdir

    def stop_at(epoch: int):
        def progress(iterable, **kwargs):
            if str(kwargs.get("desc", "")).startswith(f"epoch {epoch}/"):
                raise KeyboardInterrupt
            return real_progress(iterable, **kwargs)

        return progress

    out = tmp_path / "model"
    monkeypatch.setattr(selection.progress, "report_progress", stop_at(1))
    with pytest.raises(KeyboardInterrupt):  # stopped before any epoch finished: nothing to resume from yet
        fit(corpus, config, out)
    assert sorted(path.name for path in out.iterdir()) == ["config.json"]
    check_outdir(out, resume=True)  # and --resume is still the way on, from epoch 1
    monkeypatch.setattr(selection.progress, "report_progress", stop_at(2))
    with pytest.raises(KeyboardInterrupt):
        fit(corpus, config, out, resume=True)
    monkeypatch.setattr(selection.progress, "report_progress", real_progress)
    assert json.loads((out / "checkpoint.json").read_text())["history"][0]["epoch"] == 1
    assert not (out / "model.onnx").exists()
    check_outdir(out, resume=True)  # what the command checks first
    fit(corpus, config, out, resume=True)
    for name in ("weights.npz", "checkpoint.npz"):
        with np.load(out / name) as resumed, np.load(trained / name) as straight:
            assert resumed.files == straight.files
            for key in resumed.files:
                assert np.array_equal(resumed[key], straight[key]), (name, key)


def test_distillation_from_a_teacher_trains_a_student(trained: Path, workspace: Path, jax_cache: dict):
    out = workspace / "models" / "student"
    done = run_cli(
        "-m", "selection.train_kws", "--workspace", str(workspace), "--outdir", str(out), "--epochs", "1",
        "--batch_size", "16", "--teacher", str(trained), "--distill_alpha", "0.7", "--temperature", "2", env=jax_cache,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["distillation"] == {"teacher": str(trained), "alpha": 0.7, "temperature": 2.0}
    config = json.loads((out / "config.json").read_text())["train"]
    assert config["distill_alpha"] == 0.7 and config["teacher"] == {"folder": str(trained)}


def test_embed_with_a_trained_model_makes_an_experiment_that_run_scores(trained: Path, workspace: Path):
    experiment = workspace / "own-model-experiment"
    done = run_cli("-m", "selection.embed", "--audio_dir", str(workspace / "commands"), "--outdir", str(experiment),
                   "--model", f"kws:{trained}", "--targets", "yes,no,left")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "32-d" in done.stderr
    done = run_cli("-m", "selection.run", "--workspace", str(experiment))
    assert done.returncode == 0, done.stderr
    results = json.loads((experiment / "results.json").read_text())
    assert 0 <= results["score"] <= 1
    embed_report = json.loads((experiment / "embed_report.json").read_text())
    assert embed_report["model"] == f"kws:{trained}" and embed_report["dim"] == 32


def _words(root: Path, counts: dict[str, int], rate: int = 16000) -> Path:
    import soundfile

    rng = np.random.default_rng(0)
    for word, count in counts.items():
        (root / word).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            samples = rng.normal(0, 0.1, rate).astype(np.float32)
            soundfile.write(root / word / f"s{index:02d}_nohash_0.wav", samples, rate)
    return root


@pytest.mark.parametrize(
    "case, fragments",
    [
        ("one_word", ("1 word folder(s)", "at least two words")),
        ("one_clip", ("beta: 1 clip(s)", "at least two clips")),
        ("unreadable", ("not readable as audio",)),
        ("wrong_rate", ("8000 samples per second", "expected 16000")),
        ("no_commands", ("--task 12", "no folder for yes")),
    ],
)
def test_bad_recordings_are_one_line_and_write_nothing(tmp_path: Path, case: str, fragments: tuple[str, ...]):
    counts = {"alpha": 30, "beta": 30}
    task = "all"
    if case == "one_word":
        counts = {"alpha": 30}
    elif case == "one_clip":
        counts["beta"] = 1
    elif case == "no_commands":
        task = "12"
    recordings = _words(tmp_path / "rec", counts)
    if case == "unreadable":
        (recordings / "alpha" / "s00_nohash_0.wav").write_bytes(b"RIFF....not audio")
    if case == "wrong_rate":
        _words(recordings, {"alpha": 1}, rate=8000)
    out = tmp_path / "model"
    done = run_cli("-m", "selection.train_kws", "--audio_dir", str(recordings), "--outdir", str(out), "--task", task,
                   "--epochs", "1")  # fmt: skip
    assert_clean_failure(done, *fragments)
    assert not out.exists()


def test_bad_flags_teachers_and_folders_are_refused_and_nothing_is_lost(trained: Path, workspace: Path, tmp_path: Path):
    base = ("-m", "selection.train_kws", "--workspace", str(workspace))
    for flags, fragments in (
        (("--width", "4"), ("--width", "1, 1.5, 2, 3, 6, 8")),
        (("--width", "1,1"), ("--width",)),
        (("--task", "20"), ("--task", "12, 35 or all")),
        (("--epochs", "0"), ("--epochs",)),
        (("--distill_alpha", "1.5"), ("--distill_alpha",)),
    ):
        assert_clean_failure(run_cli(*base, "--outdir", str(tmp_path / "never"), *flags), *fragments)
    assert not (tmp_path / "never").exists()

    other_task = tmp_path / "other-task"
    shutil.copytree(trained, other_task)
    config = json.loads((other_task / "config.json").read_text())
    config["train"]["classes"] = ["a", "b"]
    (other_task / "config.json").write_text(json.dumps(config))
    done = run_cli(*base, "--outdir", str(tmp_path / "student"), "--teacher", str(other_task), *SMALL)
    assert_clean_failure(done, "--teacher", "other classes")
    assert not (tmp_path / "student").exists()

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me\n")
    assert_clean_failure(run_cli(*base, "--outdir", str(mine), *SMALL), "holds something else", "notes.txt")
    assert (mine / "notes.txt").read_text() == "keep me\n" and len(list(mine.iterdir())) == 1

    before = {path.name: path.read_bytes() for path in trained.iterdir()}
    assert_clean_failure(run_cli(*base, "--outdir", str(trained), *SMALL), "already holds a model", "--resume")
    done = run_cli(*base, "--outdir", str(trained), "--resume", "--epochs", "3", "--batch_size", "16")
    assert_clean_failure(done, "--resume", "epochs")
    assert {path.name: path.read_bytes() for path in trained.iterdir()} == before
