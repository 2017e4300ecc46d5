"""``explain.html``: the per-clip report as one self-contained page (no scripts, no external assets).

Every text that comes from a file (clip IDs, words, paths) is escaped; a Content-Security-Policy
allows only the page's own styles and ``data:`` images and audio, so injected markup cannot run.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from selection.diagnosis.evidence import NEIGHBOURS, verdict_counts

PALETTE = ("#1a73e8", "#e8710a", "#188038", "#9334e6", "#c5221f", "#12b5cb", "#b06000", "#e52592", "#5f6368")
NONTARGET_COLOUR = "#bdc1c6"
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; media-src data:"
VERDICT_COLOURS = {
    "suspect": "#c5221f",
    "badly cut?": "#a142f4",
    "harmful": "#e37400",
    "redundant": "#b06000",
    "ok": "#188038",
}


def _text(value) -> str:
    """``value`` safe in the page: terminal escapes, bidi overrides and line breaks shown escaped, markup quoted."""
    from selection.board.entries import visible

    return html.escape(visible(str(value)), quote=True)


def _clip_id(clip_id: str) -> str:
    """A clip ID that may break after a ``/`` and nowhere else: each component is kept on one line."""
    parts = [f'<span class="name">{_text(part)}</span>' for part in str(clip_id).split("/")]
    return "/<wbr>".join(parts)


def _verdict_class(verdict: str) -> str:
    """A verdict as a CSS class name: ``badly cut?`` -> ``badly-cut``."""
    return verdict.rstrip("?").replace(" ", "-")


def _number(value, digits: int = 4, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def audio_data_uri(path: Path) -> str | None:
    """A 16 kHz 16-bit wav of the clip's first second as a ``data:`` URI, or None if it cannot be read."""
    from scipy.io import wavfile

    from selection.speech.audio import BadAudioError, read_clip

    try:
        samples = read_clip(path)
    except (BadAudioError, OSError, ValueError):
        return None
    buffer = io.BytesIO()
    wavfile.write(buffer, 16000, (np.clip(samples, -1.0, 1.0) * 32767).astype(np.int16))
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _colours(class_names: list[str]) -> dict[str, str]:
    from selection.inputs.formats import NONTARGET

    targets = [name for name in class_names if name != NONTARGET]
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(targets)}
    colours[NONTARGET] = NONTARGET_COLOUR
    return colours


def _map_svg(document: dict, colours: dict[str, str]) -> str:
    sample = document["map"]["sample"]
    picks = [(clip["map"], clip) for clip in document["clips"]]
    xs = [p[0] for p in sample] + [m[0] for m, _ in picks]
    ys = [p[1] for p in sample] + [m[1] for m, _ in picks]
    if not xs:
        return ""
    width, height, pad = 720, 480, 16
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)

    def place(x: float, y: float) -> tuple[float, float]:
        px = pad + (x - x0) / max(x1 - x0, 1e-9) * (width - 2 * pad)
        py = height - pad - (y - y0) / max(y1 - y0, 1e-9) * (height - 2 * pad)
        return round(px, 1), round(py, 1)

    dots = []
    for x, y, word in sample:
        px, py = place(x, y)
        dots.append(f'<circle cx="{px}" cy="{py}" r="1.8" fill="{colours.get(word, "#000")}" fill-opacity="0.5"/>')
    for (x, y), clip in picks:
        px, py = place(x, y)
        if clip["verdict"] in ("suspect", "badly cut?"):
            dots.append(f'<circle cx="{px}" cy="{py}" r="10" fill="none" stroke="#202124" stroke-width="2.5"/>')
        dots.append(
            f'<circle class="pick {_verdict_class(clip["verdict"])}" cx="{px}" cy="{py}" r="5" '
            f'fill="{colours.get(clip["label"], "#000")}" stroke="#202124" stroke-width="1.5">'
            f"<title>#{clip['rank']} {_text(clip['id'])} ({_text(clip['label'])}, {_text(clip['verdict'])})</title>"
            "</circle>"
        )
    legend = " ".join(
        f'<span class="key"><span class="swatch" style="background:{colour}"></span>{_text(word)}</span>'
        for word, colour in colours.items()
    )
    variance = document["map"]["explained_variance"]
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="map of the pool">{"".join(dots)}</svg>'
        f"<p>{legend}</p><p><small>{_text(document['map']['method'])}; the axes show "
        f"{variance[0]:.0%} and {variance[1] if len(variance) > 1 else 0:.0%} of the variance. "
        "Small dots: pool clips; large dots: picks; a wide ring marks a suspect or badly cut pick.</small></p>"
    )


def _clip_rows(document: dict, audio: dict[str, str | None]) -> str:
    rows = []
    for clip in document["clips"]:
        player = ""
        if clip["id"] in audio:
            uri = audio[clip["id"]]
            player = f'<audio controls preload="none" src="{uri}"></audio>' if uri else "<small>unreadable</small>"
        reasons = "".join(f"<li>{_text(reason)}</li>" for reason in clip["reasons"])
        rows.append(
            f'<tr class="{_verdict_class(clip["verdict"])}" data-rank="{clip["rank"]}" '
            f'data-clip="{_text(clip["id"])}">'
            f'<td>{clip["rank"]}</td><td class="id">{_clip_id(clip["id"])}</td><td>{_text(clip["label"])}</td>'
            f'<td class="verdict">{_text(clip["verdict"])}</td><td>{_number(clip["effect"], signed=True)}</td>'
            f"<td>{clip['neighbour_agreement']:.0%}</td><td>{clip['own_probability']:.2f}</td>"
            f'<td class="why"><ul>{reasons}</ul></td>' + (f"<td>{player}</td>" if audio else "") + "</tr>"
        )
    return "".join(rows)


def _word_rows(document: dict) -> str:
    rows = []
    for word in document["words"]:
        without = word.get("without_suspects")
        rows.append(
            f"<tr><td>{_text(word['word'])}</td><td>{word['picks']}</td><td>{word['picks_share']:.1%}</td>"
            f"<td>{word['pool']}</td><td>{word['pool_share']:.1%}</td><td>{word['precision']:.3f}</td>"
            f"<td>{word['recall']:.3f}</td><td>{word['f1']:.3f}</td>"
            f"<td>{_number(without['f1'] if without else None, 3)}</td></tr>"
        )
    return "".join(rows)


def render_page(document: dict, *, train_file: str, audio: dict[str, str | None] | None = None) -> str:
    """The page's HTML. ``audio`` maps clip IDs to ``data:`` URIs (players appear only with it)."""
    audio = audio or {}
    estimate = document["estimate"]
    eval_mode = document["mode"] == "eval"
    title = "Per-clip report" + (" (AGAINST THE EVAL SET)" if eval_mode else " (allowed pool only)")
    colours = _colours([word["word"] for word in document["words"]])
    what_if = ""
    if document["without_suspects"]:
        what_if += (
            f"<li>without the {document['without_suspects']['removed']} flagged picks (suspect or badly cut?): "
            f"{document['without_suspects']['score']:.4f}</li>"
        )
    if document["repair"] and document["repair"].get("skipped"):
        what_if += f"<li>{_text(document['repair']['skipped'])}</li>"
    elif document["repair"]:
        repaired = document["repair"]
        swaps = "".join(
            f"<li>{_text(swap['removed'])} → {_text(swap['added']) if swap['added'] else 'kept (no better candidate)'}"
            f" ({_text(swap['label'])}; estimate then {swap['score_after']:.4f})</li>"
            for swap in repaired["swaps"]
        )
        moved = sum(move["moved"] for move in repaired.get("class_moves", []))
        what_if += (
            f"<li>repaired ({moved} picks moved between classes, {repaired['swapped']} of {len(repaired['swaps'])} "
            f"picks swapped, written as repaired_train.json): {repaired['estimate']['score']:.4f}<ul>{swaps}</ul></li>"
        )
    tally = document["verdicts"]
    advice = "".join(
        f'<li data-kind="{_text(item["kind"])}">{_text(item["text"])}</li>' for item in document.get("advice") or []
    )
    advice_section = f'<h2>What to change first</h2>\n<ol id="advice">{advice}</ol>' if advice else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_text(title)}</title>
<link rel="icon" href="data:,">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #202124; max-width: 90rem; }}
.banner {{ padding: 0.6rem 1rem; border-radius: 4px; background: #e6f4ea; }}
.banner.eval {{ background: #fce8e6; color: #a50e0e; font-weight: bold; }}
.banner.limits {{ background: #fef7e0; color: #7a4f01; font-weight: bold; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1rem; }}
th, td {{ border-bottom: 1px solid #dadce0; padding: 0.3rem 0.6rem; text-align: right; vertical-align: top; }}
td.id, td.why, th.left {{ text-align: left; }}
td.id {{ font-family: ui-monospace, monospace; font-size: 0.85rem; }}
td.id .name, td.verdict {{ white-space: nowrap; }}
td.why ul {{ margin: 0; padding-left: 1rem; font-size: 0.85rem; }}
tr.suspect td.verdict {{ color: {VERDICT_COLOURS["suspect"]}; font-weight: bold; }}
tr.harmful td.verdict {{ color: {VERDICT_COLOURS["harmful"]}; }}
tr.redundant td.verdict {{ color: {VERDICT_COLOURS["redundant"]}; }}
tr.badly-cut td.verdict {{ color: {VERDICT_COLOURS["badly cut?"]}; font-weight: bold; }}
.key {{ margin-right: 0.8rem; white-space: nowrap; }}
.swatch {{ display: inline-block; width: 0.8rem; height: 0.8rem; margin-right: 0.25rem; border-radius: 50%; }}
small {{ color: #5f6368; }}
</style>
</head>
<body>
<h1>{_text(title)}</h1>
{f'<p class="banner limits">{_text(document["limits"])}</p>' if document.get("limits") else ""}
<p class="banner{" eval" if eval_mode else ""}">{_text(document["note"])}</p>
<p>Selection <code>{_text(train_file)}</code>: {document["n_picks"]} picks,
{_text(estimate["description"])}.</p>
{advice_section}
<h2>Estimate</h2>
<ul>
<li>{_text(document["metric"])}: <b>{estimate["score"]:.4f}</b> (std {estimate["score_std"]:.4f} over seeds);
macro F1 {estimate["macro_f1"]:.4f}, balanced accuracy {estimate["balanced_accuracy"]:.4f}</li>
{what_if}
</ul>
<p>Verdicts: {_text(verdict_counts(tally))}.</p>
<h2>Picks, most harmful first</h2>
<p><small>Effect: the estimate with every pick minus the estimate without this one (negative: the
selection does better without it). Neighbours: the share of its {NEIGHBOURS} nearest pool clips with its label.
Own p: the out-of-fold probability of its label.</small></p>
<table id="clips"><thead><tr><th>rank</th><th class="left">clip</th><th>label</th><th>verdict</th>
<th>effect</th><th>neighbours</th><th>own p</th><th class="left">why</th>{"<th>listen</th>" if audio else ""}</tr>
</thead><tbody>{_clip_rows(document, audio)}</tbody></table>
<h2>Words</h2>
<table id="words"><thead><tr><th class="left">word</th><th>picks</th><th>picks share</th><th>pool</th>
<th>pool share</th><th>precision</th><th>recall</th><th>F1</th><th>F1 without suspects</th></tr></thead>
<tbody>{_word_rows(document)}</tbody></table>
<h2>Map of the pool</h2>
{_map_svg(document, colours)}
<p><small>Harness {_text(document["harness"].get("harness_version"))}; {document["seconds"]["total"]:.1f} s.</small></p>
</body>
</html>
"""
