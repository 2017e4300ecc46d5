"""``bench``: compare selection algorithms on the default experiments with the frozen evaluator.

Usage::

    python -m selection.bench [--algorithms random,cross_validation,cleanlab,clean_coverage]
        [--languages en,pt,id] [--sizes 25,60] [--data_dir workspace/data]
        [--config_file workspace/dataperf_speech_config.yaml] [--metric macro_f1|balanced_accuracy]
        [--output bench_results.json] [--plot bench_results.png]
    python -m selection.bench --family [--half all|tune|report] [--members NAME,...]
        [--family_dir workspace/family] [--spoken_dir workspace/spoken] [--algorithms ...]

Each algorithm runs as ``select`` would run it (the plugin class, the config with
``train_set_size_limit`` set to the size), its result is checked like a ``train.json``,
and scored exactly as ``eval.py`` scores it (same row order, same seeds, same metric).
Prints a table (score mean and spread over the evaluation seeds, the other metric,
selection seconds), writes it as JSON and draws it as a PNG bar chart.

With ``--family`` the experiments are the evaluation family (:mod:`selection.datasets.family`), built on
first use, every cell (member × size × metric) also runs ``cross_validation``, and the figures
are each algorithm's margin over it: per cell, then min / median / max per half.
"""

from __future__ import annotations

if __name__ == "__main__":
    from selection.cli import exit_quietly_on_ctrl_c

    exit_quietly_on_ctrl_c()

import hashlib
import io
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from selection.cli import run_command
from selection.datasets.faults import fault_figures, read_fault_truth
from selection.inputs.layout import find_experiment
from selection.inputs.load import load_config
from selection.inputs.validation import BadInputError, check_config, split_flag_list
from selection.inputs.write import write_json_atomic
from selection.plugins import SHIPPED_ALGORITHMS, add_plugin_dir, check_algorithm_names, resolve_algorithm
from selection.scoring.experiment import load_experiment

log = logging.getLogger("dataperf")


def _as_list(value, flag: str = "a list flag") -> list[str]:
    return split_flag_list(value, flag=flag)


def bench(
    algorithms: str = ",".join(SHIPPED_ALGORITHMS),
    languages: str = "en,pt,id",
    sizes: str = "25,60",
    data_dir: str = "workspace/data",
    config_file: str = "workspace/dataperf_speech_config.yaml",
    metric: str | None = None,
    output: str | None = None,
    plot: str | None = None,
    family: bool = False,
    half: str = "all",
    members: str = "",
    family_dir: str = "workspace/family",
    spoken_dir: str = "workspace/spoken",
    family_scale: float = 1.0,
    reuse: str = "",
    plugin_dir: str | None = None,
) -> None:
    """Run every named algorithm at every size on every language's default experiment (or the family).

    Parameters
    ----------
    algorithms : str
        Comma-separated names from ``selection.plugins.SHIPPED_ALGORITHMS`` or ``module:Class`` references.
    languages : str
        Comma-separated language codes; each is ``<data_dir>/dataperf_<lang>_data/`` (or ``<data_dir>/<lang>/``).
    sizes : str
        Comma-separated selection budgets.
    data_dir : str
        Where ``download`` put the experiments.
    config_file : str
        Base config (seeds, metric, the algorithms' own keys); the algorithm keys are replaced.
    metric : {'macro_f1', 'balanced_accuracy'}, optional
        Overrides the config's metric (for scoring and for the algorithms that read it).
    output : str, optional
        The JSON table; default ``bench_results.json`` (``family_results.json`` with ``--family``).
    plot : str, optional
        The PNG chart (default ``bench_results.png`` or ``family_results.png``); an empty string draws none.
    family : bool
        Run on the evaluation family (:mod:`selection.datasets.family`) instead: every member, both metrics
        (or ``--metric``'s only), and report each algorithm's margin over ``cross_validation``.
    half : {'all', 'tune', 'report'}
        With ``--family``: the members of one half only.
    members : str
        With ``--family``: comma-separated member names (default every member of ``--half``).
    family_dir, spoken_dir : str
        With ``--family``: where Gaussian members and the spoken corpus are (built if missing).
    family_scale : float
        With ``--family``: multiplies every member's size (small families for tests).
    reuse : str
        With ``--family``: an earlier ``family_results.json`` whose ``cross_validation`` rows are
        taken instead of rerun where member, scale, size, metric, config and data files match (the baseline's
        runs are most of the family's time, and they do not change when another algorithm does).
    plugin_dir : str, optional
        Folder put first on the import path, so that ``--algorithms`` can name ``module:Class`` of a
        module kept there (as ``select --plugin_dir``); every algorithm is imported before any work.
    """
    if plugin_dir is not None:
        add_plugin_dir(plugin_dir)
    algorithm_names = check_algorithm_names(_as_list(algorithms, "--algorithms"), flag="--algorithms")
    size_values = []
    for text in _as_list(sizes, "--sizes"):
        if not (text.isascii() and text.isdigit() and 0 < int(text) < 10**6):
            raise BadInputError(f"command line: --sizes: {text[:30]!r}; expected positive sizes such as 25,60")
        size_values.append(int(text))
    language_codes = _as_list(languages, "--languages")
    stem = "family_results" if family else "bench_results"
    output = f"{stem}.json" if output is None else output
    plot = f"{stem}.png" if plot is None else plot
    if family:
        from selection.datasets.family import members_named

        chosen = members_named(_as_list(members, "--members"), half)
        base_config = load_config(config_file)
        names = list(algorithm_names)
        if "cross_validation" not in names:
            names.append("cross_validation")
        metrics = [metric] if metric is not None else ["macro_f1", "balanced_accuracy"]
        bench_family(
            chosen, names, size_values, metrics, base_config,
            family_dir=family_dir, spoken_dir=spoken_dir, scale=family_scale, output=output, plot=plot,
            reused=_reusable_rows(reuse),
        )  # fmt: skip
        return
    base_config = load_config(config_file)
    if metric is not None:
        base_config = check_config({**base_config, "metric": metric}, file="command line")
    rows_out = []
    total = len(language_codes) * len(algorithm_names) * len(size_values)
    for language in language_codes:
        experiment = load_experiment(find_experiment(data_dir, language), config=base_config, label=language)
        truth = read_fault_truth(experiment.paths["allowed_training_set"].parent)
        for name in algorithm_names:
            module, class_name = resolve_algorithm(name)
            for size in size_values:
                config = {
                    **base_config,
                    "selection_algorithm_module": module,
                    "selection_algorithm_class": class_name,
                    "train_set_size_limit": size,
                }
                picked = experiment.select(config=config)
                results = experiment.score(picked, limit=size)
                seconds = picked.seconds
                other = "balanced_accuracy" if config["metric"] == "macro_f1" else "macro_f1"
                row = {
                    "language": language,
                    "algorithm": name,
                    "size": size,
                    "metric": config["metric"],
                    "score": results["score"],
                    "score_std": results["score_std"],
                    other: results[other],
                    "selection_seconds": round(seconds, 2),
                    "n_train": picked.size,
                    **fault_figures(truth, picked),
                }
                rows_out.append(row)
                print(
                    f"[{len(rows_out)}/{total}] {language:<4}{name:<18}{size:>5}  "
                    f"{row['score']:.3f} ± {row['score_std']:.3f}  "
                    f"{other} {row[other]:.3f}  {seconds:7.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    write_json_atomic(output, {"created": time.strftime("%Y-%m-%d"), "rows": rows_out})
    if plot:
        draw_chart(rows_out, plot)
    print(format_table(rows_out))
    log.info("wrote %s%s", output, f" and {plot}" if plot else "")


def draw_chart(rows: list[dict], path: str) -> None:
    """Bars of score (mean, with the spread over seeds) per algorithm, grouped by language and size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from selection.inputs.write import write_bytes_atomic

    groups = list(dict.fromkeys((row["language"], row["size"]) for row in rows))
    algorithms = list(dict.fromkeys(row["algorithm"] for row in rows))
    by_key = {(row["language"], row["size"], row["algorithm"]): row for row in rows}
    width = 0.8 / max(1, len(algorithms))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.4 * len(groups) + 2), 4.2), dpi=110)
    for index, algorithm in enumerate(algorithms):
        found = [by_key.get((language, size, algorithm)) for language, size in groups]
        positions = [g + (index - (len(algorithms) - 1) / 2) * width for g in range(len(groups))]
        axes.bar(
            positions,
            [row["score"] if row else 0.0 for row in found],
            width,
            yerr=[row["score_std"] if row else 0.0 for row in found],
            capsize=2,
            label=algorithm,
        )
    axes.set_xticks(range(len(groups)), [f"{language} @ {size}" for language, size in groups])
    axes.set_ylabel(rows[0]["metric"] if rows else "score")
    axes.set_ylim(0, 1)
    axes.set_title("selection algorithms, scored by the frozen evaluator (mean ± std over seeds)")
    axes.legend(fontsize="small", ncols=min(4, len(algorithms)))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    write_bytes_atomic(path, buffer.getvalue())


def format_table(rows: list[dict]) -> str:
    """The bench rows as a Markdown table."""
    if not rows:
        return ""
    metric = rows[0]["metric"]
    other = "balanced_accuracy" if metric == "macro_f1" else "macro_f1"
    truth = any("faulty_picks" in row for row in rows)
    lines = [
        f"| language | algorithm | size | {metric} (mean ± std over seeds) | {other} | selection s |"
        + (" faulty picks (pool) | badly cut picks (pool) |" if truth else ""),
        "| --- | --- | ---: | ---: | ---: | ---: |" + (" ---: | ---: |" if truth else ""),
    ]
    for row in rows:
        lines.append(
            f"| {row['language']} | {row['algorithm']} | {row['size']} | {row['score']:.3f} ± {row['score_std']:.3f} "
            f"| {row[other]:.3f} | {row['selection_seconds']:.1f} |" + (_fault_cells(row) if truth else "")
        )
    return "\n".join(lines)


def _fault_cells(row: dict) -> str:
    """The faulty-picks cells of a table row: share of picks (pool's share), or n/a where no truth exists."""
    if "faulty_picks" not in row:
        return " n/a | n/a |"
    return (
        f" {row['faulty_picks']:.1%} ({row['pool_faulty']:.1%}) |"
        f" {row['badly_cut_picks']:.1%} ({row['pool_badly_cut']:.1%}) |"
    )


def bench_family(
    members: list,
    algorithms: list[str],
    sizes: list[int],
    metrics: list[str],
    base_config: dict,
    *,
    family_dir: str,
    spoken_dir: str,
    scale: float,
    output: str,
    plot: str,
    reused: dict | None = None,
) -> dict:
    """Every algorithm on every member × size × metric; margins over ``cross_validation``; JSON and PNG."""
    from selection.datasets.family import member_experiment

    reused = reused or {}
    rows: list[dict] = []
    total = len(members) * len(sizes) * len(metrics) * len(algorithms)
    for member in members:
        folder = member_experiment(member, family_dir, spoken_dir=spoken_dir, scale=scale)
        experiment = load_experiment(folder, config=base_config, label=member.name)
        data_digest = _folder_digest(folder)
        truth = read_fault_truth(folder)
        for size in sizes:
            for metric_name in metrics:
                cell = []
                for name in algorithms:
                    module, class_name = resolve_algorithm(name)
                    config = check_config(
                        {
                            **base_config,
                            "metric": metric_name,
                            "selection_algorithm_module": module,
                            "selection_algorithm_class": class_name,
                            "train_set_size_limit": size,
                        },
                        file="command line",
                    )
                    config_digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
                    key = (member.name, scale, config_digest, data_digest)
                    if name == "cross_validation" and key in reused:
                        row, note = dict(reused[key]), "  (reused)"
                    else:
                        picked = experiment.select(config=config)
                        results = experiment.score(picked, metric=metric_name, limit=size)
                        seconds = picked.seconds
                        row = {
                            "member": member.name,
                            "half": member.half,
                            "scale": scale,
                            "algorithm": name,
                            "size": size,
                            "metric": metric_name,
                            "score": results["score"],
                            "selection_seconds": round(seconds, 2),
                            "config_digest": config_digest,
                            "data_digest": data_digest,
                            **fault_figures(truth, picked),
                        }
                        note = ""
                    cell.append(row)
                    print(
                        f"[{len(rows) + len(cell)}/{total}] {member.name:<24}{size:>4} {metric_name:<18}"
                        f"{name:<18}{row['score']:.3f}  {row['selection_seconds']:6.1f} s{note}",
                        file=sys.stderr,
                        flush=True,
                    )
                baseline = next(row["score"] for row in cell if row["algorithm"] == "cross_validation")
                for row in cell:
                    row["margin"] = round(row["score"] - baseline, 6)
                rows.extend(cell)
    summary = summarize_margins(rows)
    document = {"created": time.strftime("%Y-%m-%d"), "rows": rows, "summary": summary}
    write_json_atomic(output, document)
    if plot:
        draw_margins(rows, plot)
    print(format_family(rows, summary))
    log.info("wrote %s%s", output, f" and {plot}" if plot else "")
    return document


def _reusable_rows(path: str) -> dict:
    """``cross_validation`` rows of an earlier family run, by (member, scale, config digest)."""
    if not path:
        return {}
    from selection.inputs.documents import read_json

    document = read_json(path)
    rows = document.get("rows") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise BadInputError(f"{path}: not a family_results.json (no list under 'rows')")
    return {
        (row["member"], row.get("scale", 1.0), row["config_digest"], row["data_digest"]): row
        for row in rows
        if isinstance(row, dict) and row.get("algorithm") == "cross_validation" and "data_digest" in row
    }


def _folder_digest(folder: Path) -> str:
    """SHA-256 over every file of an experiment folder (names and bytes), for reusing baseline rows."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def summarize_margins(rows: list[dict]) -> dict:
    """Per algorithm and half: min, median and max margin over the cells, the worst cell, time over CV's."""
    summary: dict = {}
    for algorithm in dict.fromkeys(row["algorithm"] for row in rows):
        if algorithm == "cross_validation":
            continue
        summary[algorithm] = {}
        for half in ("tune", "report", "all"):
            own = [r for r in rows if r["algorithm"] == algorithm and half in ("all", r["half"])]
            if not own:
                continue
            margins = np.array([r["margin"] for r in own])
            worst = own[int(np.argmin(margins))]
            cv_seconds = sum(
                r["selection_seconds"]
                for r in rows
                if r["algorithm"] == "cross_validation" and half in ("all", r["half"])
            )
            summary[algorithm][half] = {
                "cells": len(own),
                "min": round(float(margins.min()), 4),
                "median": round(float(np.median(margins)), 4),
                "max": round(float(margins.max()), 4),
                "worst_cell": f"{worst['member']} @ {worst['size']} {worst['metric']}",
                "seconds_over_cv": round(sum(r["selection_seconds"] for r in own) / max(cv_seconds, 1e-9), 3),
            }
            truth = [r for r in own if r.get("pool_badly_cut")]
            if truth:
                # the worst cell's badly cut share of the picks over the pool's own share (below 1: fewer than the pool)
                summary[algorithm][half]["badly_cut_over_pool_max"] = round(
                    max(r["badly_cut_picks"] / r["pool_badly_cut"] for r in truth), 3
                )
    return summary


def format_family(rows: list[dict], summary: dict) -> str:
    """Markdown: one line per cell (CV's score, each algorithm's margin), then the summary."""
    algorithms = [a for a in dict.fromkeys(row["algorithm"] for row in rows) if a != "cross_validation"]
    header = "| member | half | size | metric | cross_validation | " + " | ".join(f"{a} margin" for a in algorithms)
    lines = [header + " |", "| --- | --- | ---: | --- | ---: |" + " ---: |" * len(algorithms)]
    cells = dict.fromkeys((r["member"], r["half"], r["size"], r["metric"]) for r in rows)
    by_key = {(r["member"], r["size"], r["metric"], r["algorithm"]): r for r in rows}
    for member, half, size, metric_name in cells:
        baseline = by_key[(member, size, metric_name, "cross_validation")]["score"]
        margins = " | ".join(f"{by_key[(member, size, metric_name, a)]['margin']:+.3f}" for a in algorithms)
        lines.append(f"| {member} | {half} | {size} | {metric_name} | {baseline:.3f} | {margins} |")
    lines += [
        "",
        "| algorithm | half | cells | min | median | max | worst cell | time / CV's "
        "| badly cut picks / pool rate, max |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |",
    ]
    for algorithm, halves in summary.items():
        for half, figures in halves.items():
            ratio = figures.get("badly_cut_over_pool_max")
            lines.append(
                f"| {algorithm} | {half} | {figures['cells']} | {figures['min']:+.3f} | {figures['median']:+.3f} "
                f"| {figures['max']:+.3f} | {figures['worst_cell']} | {figures['seconds_over_cv']:.2f} | "
                f"{'n/a' if ratio is None else f'{ratio:.2f}'} |"
            )
    return "\n".join(lines)


def draw_margins(rows: list[dict], path: str) -> None:
    """Each algorithm's margins over CV, one dot per cell, tune and report halves side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from selection.inputs.write import write_bytes_atomic

    algorithms = [a for a in dict.fromkeys(row["algorithm"] for row in rows) if a != "cross_validation"]
    figure, axes = plt.subplots(figsize=(max(6.0, 1.8 * len(algorithms) + 2), 4.2), dpi=110)
    for offset, (half, colour) in zip((-0.15, 0.15), (("tune", "tab:blue"), ("report", "tab:orange"))):
        for index, algorithm in enumerate(algorithms):
            margins = [r["margin"] for r in rows if r["algorithm"] == algorithm and r["half"] == half]
            spread = np.linspace(-0.08, 0.08, len(margins)) if len(margins) > 1 else np.zeros(len(margins))
            axes.scatter(
                index + offset + spread, margins, s=14, color=colour, label=half if index == 0 else None, alpha=0.8
            )
    axes.axhline(0.0, color="black", linewidth=0.8)
    axes.axhline(0.05, color="grey", linewidth=0.8, linestyle="--")
    axes.set_xticks(range(len(algorithms)), algorithms)
    axes.set_ylabel("score - cross_validation's score")
    axes.set_title("margin over the CV baseline, one dot per member × size × metric")
    axes.legend(fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    write_bytes_atomic(path, buffer.getvalue())


if __name__ == "__main__":
    run_command(bench)
