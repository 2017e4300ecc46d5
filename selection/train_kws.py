"""``train_kws``: train a BC-ResNet keyword spotter on spoken words, into a model folder.

Usage::

    python -m selection.train_kws [--workspace W | --audio_dir DIR] [--outdir MODEL_DIR] [--task 12|35|all]
        [--width 1] [--epochs 30] [--seed 0] [--batch_size 100] [--teacher MODEL_DIR]
        [--distill_alpha 0.5] [--temperature 3] [--resume] [--summary]

Reads ``<audio_dir>/<word>/<clip>.wav`` (default: the built-in commands corpus in
``<workspace>/commands``, made by ``python -m selection.download --source commands``), trains
BC-ResNet-τ with the paper's recipe (:mod:`selection.kws.train`) and writes the model folder
(:mod:`selection.kws.folder`): weights, config, ``report.json``, ``training.png`` and
``model.onnx``, which ``embed --model kws:MODEL_DIR`` uses.

``--width 1,1.5,2,3`` trains several models one after the other into ``<outdir>/bc-resnet-<τ>/``:
the widest first, then every other width twice, plainly and distilled from the widest, and writes
``<outdir>/widths.json`` and ``widths.md``, one row per model. ``--summary`` prints each width's
parameters and multiply-adds and writes nothing.

Needs the training stack (``pip install -r requirements-kws.txt``); ``select``, ``evaluate`` and
the leaderboard never import it.
"""

from __future__ import annotations

if __name__ == "__main__":
    from selection.cli import exit_quietly_on_ctrl_c

    exit_quietly_on_ctrl_c()

import logging
from pathlib import Path

from selection.cli import run_command
from selection.inputs.errors import BadInputError
from selection.inputs.write import write_bytes_atomic, write_json_atomic

log = logging.getLogger("dataperf")

WIDTH_CHOICES = (1.0, 1.5, 2.0, 3.0, 6.0, 8.0)
TASK_CLASSES = {"12": 12, "35": 35}
INSTALL_HINT = "pip install -r requirements-kws.txt"


def _parse_widths(width) -> list[float]:
    parts = [part.strip() for part in str(width).split(",") if part.strip()]
    try:
        values = [float(part) for part in parts]
    except ValueError:
        values = []
    if not values or any(value not in WIDTH_CHOICES for value in values) or len(set(values)) != len(values):
        raise BadInputError(
            f"command line: --width: {str(width)[:60]!r}; expected one or more distinct widths of "
            f"{', '.join(f'{w:g}' for w in WIDTH_CHOICES)}, comma-separated"
        )
    return values


def _require_training_stack() -> None:
    import selection.kws  # noqa: F401 (sets XLA's code generator, selection.kws.codegen, before JAX is imported)
    from selection.kws.memory import keep_freed_memory

    keep_freed_memory()  # before JAX starts the threads that allocate each step's working memory

    # JAX logs, as a warning, each accelerator backend it looks for and does not find
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.ERROR)
    missing = []
    for module in ("jax", "flax", "optax", "jax2onnx", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise BadInputError(f"the KWS trainer needs {', '.join(missing)}, which are not installed; {INSTALL_HINT}")


def require_audio_folder(source: Path, *, workspace: str, audio_dir: str | None) -> None:
    """``source`` (``--audio_dir``, or the built-in corpus in ``<workspace>/commands``) must be a folder."""
    if not source.is_dir():
        flag = "--audio_dir" if audio_dir is not None else "--workspace"
        hint = "python -m selection.download --source commands"
        hint += f" --workspace {workspace}" if audio_dir is None else ""
        raise BadInputError(
            f"{source}: {flag}: no such folder; expected spoken words (make the built-in corpus: {hint})"
        )


def _summary(widths: list[float], classes: int, task: str) -> None:
    from selection.kws.model import channels, count_multiplies

    print(f"BC-ResNet on 40 x 101 log-mel inputs, task {task} ({classes} classes)")
    print(f"{'width':>6} {'c':>4} {'parameters':>11} {'multiply-adds':>14}")
    for width in widths:
        print(f"{width:>6g} {channels(width)[1]:>4d} {_parameters(width, classes):>11,d} "
              f"{count_multiplies(width, classes):>14,d}")  # fmt: skip


def _parameters(width: float, classes: int) -> int:
    from flax import nnx

    from selection.kws.model import BCResNet, count_parameters

    return count_parameters(nnx.eval_shape(lambda: BCResNet(width, classes, rngs=nnx.Rngs(0))))


def _table(rows: list[dict]) -> str:
    lines = [
        "| width | distilled | params | multiply-adds | validation | test | training s | s/epoch |",
        "|---:|:---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['width']:g} | {'yes' if row['distilled'] else 'no'} | {row['params']:,} | {row['macs']:,} | "
            f"{row['validation_accuracy']:.4f} | {row['test_accuracy']:.4f} | {row['seconds']:.0f} | "
            f"{row['seconds_per_epoch']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def train_kws(
    workspace: str = "workspace/",
    audio_dir: str | None = None,
    outdir: str | None = None,
    task: str = "12",
    width: str = "1",
    epochs: int = 30,
    seed: int = 0,
    batch_size: int = 100,
    teacher: str | None = None,
    distill_alpha: float = 0.5,
    temperature: float = 3.0,
    resume: bool = False,
    summary: bool = False,
) -> None:
    """Train BC-ResNet keyword spotters.

    Parameters
    ----------
    workspace : str, default='workspace/'
        Where the built-in commands corpus is (``<workspace>/commands``) and where models go by default.
    audio_dir : str, optional
        Your own ``<word>/<clip>.wav`` folder (16 kHz, one second) instead of the built-in corpus.
    outdir : str, optional
        The model folder (several widths: the folder of their folders); default
        ``<workspace>/models/bc-resnet-<width>`` (``<workspace>/models/widths`` for several widths).
    task : {'12', '35', 'all'}, default='12'
        ``12``: ten command words, ``_unknown_`` and ``_silence_``; ``35``: Speech Commands' 35 words;
        ``all``: every word folder a class.
    width : str, default='1'
        τ, one of 1, 1.5, 2, 3, 6, 8; several comma-separated train one after the other.
    epochs : int, default=30
        Epochs (the paper trains 200).
    seed : int, default=0
        Seed of the initial weights, the batch order, augmentation and dropout.
    batch_size : int, default=100
        Clips per step (the paper's 100).
    teacher : str, optional
        A model folder of the same task and front end to distil from.
    distill_alpha : float, default=0.5
        Weight of the teacher's term in the loss (with ``--teacher``, or for the distilled rows of a sweep).
    temperature : float, default=3.0
        Softmax temperature of distillation.
    resume : bool, default=False
        Continue the interrupted run in ``--outdir`` (same flags) from its last finished epoch.
    summary : bool, default=False
        Print each width's parameters and multiply-adds for the task, and write nothing.
    """
    widths = _parse_widths(width)
    if str(task) not in ("12", "35", "all"):
        raise BadInputError(f"command line: --task: {task!r}; expected 12, 35 or all")
    task = str(task)
    for name, value, low, high in (("--epochs", epochs, 1, 10000), ("--batch_size", batch_size, 2, 4096),
                                   ("--seed", seed, 0, 2**32 - 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise BadInputError(f"command line: {name}: {value!r}; expected a whole number from {low} to {high}")
    if not 0 <= distill_alpha <= 1:
        raise BadInputError(f"command line: --distill_alpha: {distill_alpha!r}; expected a number from 0 to 1")
    if not temperature > 0:
        raise BadInputError(f"command line: --temperature: {temperature!r}; expected a positive number")
    if teacher is not None and len(widths) > 1:
        raise BadInputError("command line: --teacher: one width at a time; a sweep distils from its widest model")
    if resume and len(widths) > 1:
        raise BadInputError("command line: --resume: one width at a time (resume each model folder of a sweep)")
    source = Path(audio_dir) if audio_dir is not None else Path(workspace) / "commands"
    _require_training_stack()
    if summary:
        if task == "all":
            from selection.kws.data import plan_corpus

            classes = len(plan_corpus(source, task)[0])
        else:
            classes = TASK_CLASSES[task]
        _summary(widths, classes, task)
        return
    require_audio_folder(source, workspace=workspace, audio_dir=audio_dir)

    from selection.kws import folder as model_folder
    from selection.kws.data import load_corpus, plan_corpus

    classes, _ = plan_corpus(source, task)  # every check that needs no decoding, before any output
    default_name = f"bc-resnet-{widths[0]:g}" if len(widths) == 1 else "widths"
    out = Path(outdir) if outdir is not None else Path(workspace) / "models" / default_name
    teacher_classes = None
    if teacher is not None:
        document = model_folder.read_config(teacher, flag="--teacher")
        if document["frontend"] != model_folder.frontend_settings():
            raise BadInputError(f"{teacher}: --teacher: its front end differs from this trainer's; expected the same")
        teacher_classes = document["train"].get("classes")
        if document.get("kind") != "classifier" or teacher_classes != classes:
            raise BadInputError(
                f"{teacher}: --teacher: trained for other classes ({len(teacher_classes or [])} of task "
                f"{document['train'].get('task')!r}); expected task {task!r}'s {len(classes)} classes"
            )
        if not (Path(teacher) / model_folder.WEIGHTS).is_file():
            raise BadInputError(f"{teacher}: --teacher: holds no {model_folder.WEIGHTS}; expected a trained model")
    if len(widths) == 1:
        model_folder.check_outdir(out, resume=resume)
    else:
        for value in widths:
            model_folder.check_outdir(out / f"bc-resnet-{value:g}", resume=False)
            if value != max(widths):
                model_folder.check_outdir(out / f"bc-resnet-{value:g}-distilled", resume=False)

    from selection.kws.fit import fit
    from selection.kws.train import TrainConfig

    corpus = load_corpus(source, task, seed=seed)

    def config_for(value: float, distilled: bool) -> TrainConfig:
        return TrainConfig(
            width=value, task=task, classes=tuple(corpus.classes), epochs=epochs, seed=seed, batch_size=batch_size,
            distill_alpha=distill_alpha if distilled else 0.0, temperature=temperature if distilled else 1.0,
            teacher={"folder": str(teacher)} if (distilled and teacher) else {},
        )  # fmt: skip

    if len(widths) == 1:
        report = fit(corpus, config_for(widths[0], teacher is not None), out, resume=resume, teacher_dir=teacher)
        log.info(
            "BC-ResNet-%g: validation accuracy %.4f, test accuracy %.4f; model folder %s",
            widths[0], report["accuracy"]["validation"], report["accuracy"]["test"], out,
        )  # fmt: skip
        return

    rows = []
    widest = max(widths)
    order = [widest] + [value for value in sorted(widths) if value != widest]
    for value in order:
        runs = [(False, out / f"bc-resnet-{value:g}")]
        if value != widest:
            runs.append((True, out / f"bc-resnet-{value:g}-distilled"))
        for distilled, folder in runs:
            config = config_for(value, distilled)
            if distilled:
                config = TrainConfig(**{**config.__dict__, "teacher": {"folder": str(out / f"bc-resnet-{widest:g}")}})
            report = fit(corpus, config, folder, teacher_dir=str(out / f"bc-resnet-{widest:g}") if distilled else None)
            rows.append({
                "width": value, "distilled": distilled, "params": report["params"], "macs": report["macs"],
                "validation_accuracy": report["accuracy"]["validation"], "test_accuracy": report["accuracy"]["test"],
                "seconds": report["seconds"], "seconds_per_epoch": report["seconds_per_epoch"],
                "folder": folder.name,
            })  # fmt: skip
    document = {"task": task, "epochs": epochs, "seed": seed, "teacher": f"bc-resnet-{widest:g}", "rows": rows}
    write_json_atomic(out / "widths.json", document)
    write_bytes_atomic(out / "widths.md", _table(rows).encode())
    print(_table(rows), end="")
    log.info("%d models and their table (widths.json, widths.md) in %s", len(rows), out)


if __name__ == "__main__":
    run_command(train_kws)
