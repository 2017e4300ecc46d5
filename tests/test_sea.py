"""Specialized Embedding Approximation: the subset samplers, the reduction, the MSE target, a real distillation
run whose ONNX file ``embed`` uses, resume, and the bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import read_json, run_cli
from tests.test_bad_input import assert_clean_failure

SMALL = ("--epochs", "2", "--batch_size", "16", "--dims", "8", "--sample_size", "40")
TEACHER = "tests.plugins:BandEnergies"  # a user's 16-value model: fast, and any model embed accepts is a teacher


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory) -> dict:
    """One persistent compilation cache for the module's runs (the same step compiles once)."""
    folder = str(tmp_path_factory.mktemp("jax-cache"))
    return {"JAX_COMPILATION_CACHE_DIR": folder, "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """Five words by 12 synthetic speakers, with speaker-disjoint split lists."""
    out = tmp_path_factory.mktemp("sea") / "clips"
    done = run_cli("-m", "selection.synthesize", "--words", "yes,no,maybe,later,never", "--outdir", str(out),
                   "--speakers", "12")  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def _student_flags(clips: Path, out: Path) -> tuple[str, ...]:
    return ("--audio_dir", str(clips), "--outdir", str(out), "--sample", "dpp", *SMALL)


@pytest.fixture(scope="module")
def student(clips: Path, jax_cache: dict, tmp_path_factory) -> Path:
    """A student of the real speech-embedding model (the default teacher)."""
    out = tmp_path_factory.mktemp("student") / "model"
    done = run_cli("-m", "selection.distill_embedding", *_student_flags(clips, out), env=jax_cache)
    assert done.returncode == 0, done.stderr
    return out


def _clusters(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    big = rng.normal(0, 0.3, size=(300, 6))
    small = rng.normal(0, 0.3, size=(12, 6)) + 6.0  # a small, far region of the space
    return np.concatenate([big, small]).astype(np.float32)


@pytest.mark.parametrize("method", ["random", "kmeans", "dpp"])
def test_every_sampler_gives_distinct_sorted_rows_deterministically(method: str):
    from selection.sea.subset import sample_subset

    points = _clusters()
    first = sample_subset(points, 20, method=method, seed=3)
    assert len(first) == 20 and len(set(first.tolist())) == 20 and np.all(np.diff(first) > 0)
    assert first.min() >= 0 and first.max() < len(points)
    assert np.array_equal(first, sample_subset(points, 20, method=method, seed=3))


def test_diversity_samplers_reach_a_small_far_region_that_random_sampling_misses():
    from selection.sea.subset import sample_subset

    points = _clusters()
    far = lambda rows: int(np.sum(rows >= 300))  # noqa: E731
    assert far(sample_subset(points, 8, method="dpp", seed=0)) >= 1
    assert far(sample_subset(points, 8, method="kmeans", seed=0)) >= 1
    random_hits = [far(sample_subset(points, 8, method="random", seed=seed)) for seed in range(20)]
    assert np.mean(random_hits) < 1  # 8 of 312 rows: about 0.3 expected


def test_the_pca_reduction_and_the_target_scale():
    from sklearn.decomposition import PCA

    from selection.sea.reduce import fit_reduction, target_scale

    vectors = np.random.default_rng(1).normal(size=(200, 12)) * np.arange(1, 13)
    reduction = fit_reduction(vectors[:80], method="pca", dims=4, seed=0)
    reference = PCA(n_components=4, random_state=0).fit(vectors[:80])
    assert reduction.explained_variance == pytest.approx(reference.explained_variance_ratio_.sum())
    projected = reduction.transform(vectors)
    assert projected.shape == (200, 4)
    assert np.allclose(projected, reference.transform(vectors), atol=1e-4)
    scaled = projected / target_scale(projected)
    assert np.mean(np.var(scaled, axis=0)) == pytest.approx(1.0, rel=1e-5)


def test_umap_targets_are_centred_and_pca_targets_are_left_as_they_are():
    """UMAP's coordinates sit around arbitrary values; a student starting near zero would diverge on them."""
    from selection.sea.reduce import Reduction, target_offset

    projected = np.random.default_rng(2).normal(10.0, 1.0, size=(50, 3)).astype(np.float32)
    assert np.allclose(target_offset(Reduction("umap", 3, None, None), projected), projected.mean(axis=0))
    assert not np.any(target_offset(Reduction("pca", 3, None, 0.9), projected))


def test_the_regression_step_minimises_the_mean_squared_error_to_the_targets():
    """One compiled step's loss is the MSE of the network's outputs (in training mode) to the targets, its batch
    statistics move, and repeated steps on one batch bring the loss down.

    The step is what is tested, on a small network with BC-ResNet's calling convention and its batch norm (the
    step takes any such network; a BC-ResNet's step compiles for 20 s, and the student fixture trains one).
    """
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from selection.kws.frontend import log_mel
    from selection.kws.model import Norm
    from selection.kws.train import TrainConfig, features_of, make_optimizer, make_regression_step

    class Small(nnx.Module):
        def __init__(self, outputs: int, rngs: nnx.Rngs) -> None:
            self.norm = Norm((40,))
            self.dense = nnx.Linear(40, outputs, rngs=rngs)

        def __call__(self, features, *, train: bool = False, key=None):
            bands = jnp.mean(features, axis=2)  # (batch, 40): each band's mean over time
            if train and key is not None:
                bands = bands * jax.random.bernoulli(key, 0.9, bands.shape) / 0.9
            embedding = self.norm(bands, train=train)
            return self.dense(embedding), embedding

    config = TrainConfig(objective="regress", outputs=3, batch_size=8, epochs=4, warmup_epochs=0)
    graph, params, stats = nnx.split(Small(3, nnx.Rngs(0)), nnx.Param, nnx.BatchStat)
    rng = np.random.default_rng(0)
    waves = (rng.normal(0, 3000, size=(8, 16000))).astype(np.int16)
    targets = rng.normal(size=(8, 3)).astype(np.float32)
    key = jax.random.key(5)

    @jax.jit
    def forward(params, stats):
        model = nnx.merge(graph, params, stats)
        return model(log_mel(features_of(waves), jax.numpy, use_fft=True), train=True, key=key)[0]

    expected = float(np.mean((np.asarray(forward(params, stats)) - targets) ** 2))
    first_mean = np.asarray(jax.tree.leaves(stats)[0]).copy()
    optimizer = make_optimizer(config, steps_per_epoch=1)
    step = make_regression_step(graph, optimizer)
    state = (params, stats, optimizer.init(params))
    state, metrics = step(state, waves, targets, key)
    assert float(metrics["loss"]) == pytest.approx(expected, rel=1e-4)
    assert not np.array_equal(np.asarray(jax.tree.leaves(state[1])[0]), first_mean)  # the running statistics moved
    for _ in range(5):
        state, metrics = step(state, waves, targets, key)
    assert float(metrics["loss"]) < expected


def test_the_student_folder_and_onnx_parity(student: Path, clips: Path):
    for name in ("config.json", "weights.npz", "model.onnx", "report.json", "training.png"):
        assert (student / name).is_file(), name
    report = read_json(student / "report.json")
    assert report["dims"] == 8 and report["embedding_dims"] == 8
    assert report["reduction"] == "pca" and 0 < report["reduction_explained_variance"] <= 1
    assert report["subset"] == {"method": "dpp", "size": 40}
    assert report["teacher"] == "speech_embedding" and report["teacher_params"] > 10 * report["params"] > 0
    assert set(report["held_out"]) == {"validation", "test"}
    test = report["held_out"]["test"]
    assert test["mse"] == pytest.approx(test["mse_scaled"] * report["target_scale"] ** 2)
    assert report["onnx_max_abs_difference"]["embedding"] <= 1e-4
    config = json.loads((student / "config.json").read_text())
    assert config["kind"] == "embedding-student" and config["train"]["objective"] == "regress"

    from selection.kws.export import inference_function, run_onnx
    from selection.kws.fit import load_model_state
    from selection.speech.audio import read_clip

    waves = np.stack([read_clip(path) for path in sorted((clips / "maybe").glob("*.wav"))[:5]])
    _, graph, params, stats = load_model_state(student, flag="test")
    expected, _ = inference_function(graph, params, stats, regression=True)(waves)
    logits, embedding = run_onnx(student / "model.onnx", waves)
    assert embedding.shape == (5, 8)
    assert np.abs(embedding - np.asarray(expected)).max() <= 1e-4 and np.array_equal(logits, embedding)


def test_embed_uses_the_student(student: Path, clips: Path, tmp_path: Path):
    done = run_cli("-m", "selection.embed", "--audio_dir", str(clips), "--outdir", str(tmp_path / "experiment"),
                   "--model", f"kws:{student}", "--targets", "yes,no")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert read_json(tmp_path / "experiment" / "embed_report.json")["dim"] == 8


def test_a_finished_student_is_kept_unless_resumed_with_the_same_flags(student: Path, clips: Path, jax_cache: dict):
    before = (student / "weights.npz").read_bytes()
    flags = _student_flags(clips, student)
    assert_clean_failure(run_cli("-m", "selection.distill_embedding", *flags, env=jax_cache), "--outdir", "--resume")
    changed = list(flags)
    changed[changed.index("dpp")] = "random"
    refused = run_cli("-m", "selection.distill_embedding", *changed, "--resume", env=jax_cache)
    assert_clean_failure(refused, "--resume", "other settings")
    assert (student / "weights.npz").read_bytes() == before


@pytest.mark.parametrize(
    ("flags", "named", "says"),
    [
        (("--teacher", "no_such_module:Model"), "--teacher", "cannot be imported"),
        (("--teacher", TEACHER, "--dims", "20", "--sample_size", "30"), "--dims", "teacher's 16 dimensions"),
        (("--teacher", TEACHER, "--dims", "8", "--sample_size", "4"), "--dims", "more than --sample_size"),
        (("--teacher", TEACHER, "--dims", "4", "--sample_size", "5000"), "--sample_size", "training clips"),
        (("--sample", "greedy"), "--sample", "random, kmeans or dpp"),
        (("--reduce", "tsne"), "--reduce", "pca or umap"),
        (("--width", "5"), "--width", "expected one of"),
    ],
)
def test_bad_inputs_are_one_line_and_leave_nothing(clips: Path, tmp_path: Path, flags, named: str, says: str):
    out = tmp_path / "model"
    done = run_cli("-m", "selection.distill_embedding", "--audio_dir", str(clips), "--outdir", str(out), *flags)
    assert_clean_failure(done, named, says)
    assert not out.exists()


def test_umap_without_the_package_says_how_to_install_it(clips: Path, tmp_path: Path):
    try:
        from umap import UMAP  # noqa: F401

        pytest.skip("umap-learn is installed here")
    except ImportError:
        pass
    done = run_cli("-m", "selection.distill_embedding", "--audio_dir", str(clips), "--outdir", str(tmp_path / "m"),
                   "--reduce", "umap")  # fmt: skip
    assert_clean_failure(done, "--reduce umap", "pip install umap-learn")
    assert not (tmp_path / "m").exists()
