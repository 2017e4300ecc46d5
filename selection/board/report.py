"""The leaderboard's outputs: ranked rows as JSON and CSV, and one self-contained HTML page.

The page works offline (no script, no external asset): a table per leaderboard ranked by
score (ties share a rank, as in "1, 2, 2, 4"), baseline rows marked, the rejected and failed
submissions with their one-line reasons, and an SVG bar chart of each leaderboard's scores.

Both are safe to publish whatever the teams named their folders: every value that reaches
the page is HTML-escaped (not only names and reasons), and every CSV cell that a
spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a CR)
gets a leading apostrophe, the usual neutralisation; rows end in CRLF, so a cell holding a
line break is quoted and never splits a row.
"""

from __future__ import annotations

import csv
import html
import io
import time
from pathlib import Path

from selection.inputs.write import write_bytes_atomic, write_json_atomic

COLUMNS = (
    "team",
    "language",
    "size",
    "status",
    "reason",
    "score",
    "score_std",
    "macro_f1",
    "balanced_accuracy",
    "n_train",
    "rank",
    "ci_low",
    "ci_high",
    "rank_low",
    "rank_high",
    "tie_group",
    "seconds",
    "baseline",
    "same_file_as",
    "file",
)


def rank_rows(rows: list[dict]) -> list[dict]:
    """The board's rows with ``rank`` set among the teams of each (language, size) leaderboard.

    Equal scores share a rank ("1, 2, 2, 4"). Baselines are shown in score order for reference but
    take no rank, so adding a baseline never moves a team. ``same_file_as`` names the other teams
    whose file on that leaderboard has the same bytes (the same SHA-256). Rows come out grouped by
    leaderboard, best first; rows that were not scored follow, unranked.
    """
    boards: dict[tuple, list[dict]] = {}
    unscored = []
    digests: dict[tuple, dict[str, list[str]]] = {}
    for row in rows:
        entry = {column: row.get(column) for column in COLUMNS}
        if row.get("status") == "scored":
            boards.setdefault((row["language"], row["size"]), []).append(entry)
            digest = (row.get("provenance") or {}).get("train_file_sha256")
            if digest and not row.get("baseline"):
                digests.setdefault((row["language"], row["size"]), {}).setdefault(digest, []).append(row["team"])
                entry["_digest"] = digest
        else:
            unscored.append(entry)
    ranked = []
    for board in sorted(boards):
        ordered = sorted(boards[board], key=lambda entry: (-entry["score"], entry["team"]))
        previous = None
        for position, entry in enumerate(e for e in ordered if not e["baseline"]):
            tied = previous is not None and entry["score"] == previous["score"]
            entry["rank"] = previous["rank"] if tied else position + 1
            previous = entry
        for entry in ordered:
            digest = entry.pop("_digest", None)
            twins = [team for team in digests.get(board, {}).get(digest, []) if team != entry["team"]]
            entry["same_file_as"] = ", ".join(sorted(twins)) or None
            ranked.append(entry)
    return ranked + sorted(unscored, key=lambda entry: (entry["team"], str(entry["file"])))


def _relative(text, root: str | None):
    """``text`` with the organiser's ``--submissions`` folder left out of every path in it."""
    if not isinstance(text, str) or not root:
        return text
    return text.replace(root.rstrip("/") + "/", "")


def write_reports(
    rows: list[dict],
    outdir: Path,
    *,
    metric: str,
    config_file: str,
    provenance: dict | None = None,
    submissions_root: str | None = None,
) -> dict:
    """Write ``leaderboard.json``, ``leaderboard.csv`` and ``leaderboard.html`` into ``outdir``; return the board.

    Paths are shown relative to ``submissions_root`` (and the config by its name): the published
    files hold no path of the organiser's machine.
    """
    ranked = rank_rows(rows)
    for row in ranked:
        row["file"] = _relative(row["file"], submissions_root)
        row["reason"] = _relative(row["reason"], submissions_root)
    board = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "metric": metric,
        "config_file": Path(config_file).name,
        "provenance": provenance or {},
        "rows": ranked,
    }
    write_json_atomic(outdir / "leaderboard.json", board)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows({column: _csv_cell(value) for column, value in row.items()} for row in board["rows"])
    write_bytes_atomic(outdir / "leaderboard.csv", text.getvalue().encode("utf-8"))
    write_bytes_atomic(outdir / "leaderboard.html", render_html(board).encode("utf-8"))
    return board


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value):
    """A string a spreadsheet would evaluate, made inert with a leading apostrophe; other values as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _number(value, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""


def _interval(row: dict) -> str:
    low, high = row.get("ci_low"), row.get("ci_high")
    return f"{_number(low)}–{_number(high)}" if isinstance(low, float) and isinstance(high, float) else ""


def _rank_range(row: dict) -> str:
    low, high = row.get("rank_low"), row.get("rank_high")
    if not isinstance(low, int) or not isinstance(high, int):
        return ""
    return str(low) if low == high else f"{low}–{high}"


def _text(value) -> str:
    return html.escape("" if value is None else str(value))


def _chart(rows: list[dict]) -> str:
    """Horizontal bars of one leaderboard's scores, as inline SVG (0 to 1)."""
    width, bar, gap, label = 640, 18, 6, 200
    height = len(rows) * (bar + gap) + 24
    parts = [
        f'<svg role="img" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    span = width - label - 60
    for index, row in enumerate(rows):
        y = index * (bar + gap)
        length = max(1.0, span * max(0.0, min(1.0, row["score"])))
        colour = "#9aa0a6" if row["baseline"] else "#1a73e8"
        name = html.escape(str(row["team"]))
        parts.append(f'<text x="{label - 8}" y="{y + bar - 4}" text-anchor="end" font-size="12">{name}</text>')
        parts.append(f'<rect x="{label}" y="{y}" width="{length:.1f}" height="{bar}" fill="{colour}"/>')
        if isinstance(row.get("ci_low"), float) and isinstance(row.get("ci_high"), float):
            low, high = (label + span * max(0.0, min(1.0, row[key])) for key in ("ci_low", "ci_high"))
            middle = y + bar / 2
            parts.append(
                f'<path class="interval" d="M{low:.1f} {middle:.1f}H{high:.1f}M{low:.1f} {y + 4}V{y + bar - 4}'
                f'M{high:.1f} {y + 4}V{y + bar - 4}" stroke="#202124" stroke-width="1.5" fill="none"/>'
            )
        high = row.get("ci_high") if isinstance(row.get("ci_high"), float) else 0.0
        right = max(label + length, label + span * max(0.0, min(1.0, high)))
        parts.append(f'<text x="{right + 6:.1f}" y="{y + bar - 4}" font-size="12">{_number(row["score"])}</text>')
    axis_y = len(rows) * (bar + gap) + 14
    parts.append(f'<text x="{label}" y="{axis_y}" font-size="11" fill="#555">0</text>')
    parts.append(f'<text x="{label + span}" y="{axis_y}" font-size="11" fill="#555" text-anchor="end">1</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(board: dict) -> str:
    """The board as one self-contained HTML page."""
    scored = [row for row in board["rows"] if row["status"] == "scored"]
    others = [row for row in board["rows"] if row["status"] != "scored"]
    boards: dict[tuple, list[dict]] = {}
    for row in scored:
        boards.setdefault((row["language"], row["size"]), []).append(row)
    metric = _text(board["metric"])
    sections = []
    for (language, size), rows in boards.items():
        body = []
        for row in rows:
            marker = ' class="baseline"' if row["baseline"] else ""
            team = _text(row["team"]) + (" <small>(baseline)</small>" if row["baseline"] else "")
            if row.get("same_file_as"):
                team += f' <small class="same-file">(same file as {_text(row["same_file_as"])})</small>'
            body.append(
                f'<tr{marker}><td class="rank">{_text(row["rank"])}</td><td class="team">{team}</td>'
                f'<td class="score">{_number(row["score"])}</td><td class="interval">{_interval(row)}</td>'
                f'<td class="ranks">{_rank_range(row)}</td><td class="tie">{_text(row.get("tie_group"))}</td>'
                f"<td>{_number(row['score_std'])}</td>"
                f"<td>{_number(row['macro_f1'])}</td><td>{_number(row['balanced_accuracy'])}</td>"
                f"<td>{_text(row['n_train'])}</td></tr>"
            )
        language, size = _text(language), _text(size)
        sections.append(
            f'<section class="board" id="board-{language}-{size}" data-language="{language}" data-size="{size}">'
            f"<h2>{language}, {size} clips</h2>"
            f"<table><thead><tr><th>rank</th><th>team</th><th>score ({metric})</th><th>95% interval</th>"
            f"<th>rank range</th><th>tie group</th><th>std over seeds</th>"
            f"<th>macro F1</th><th>balanced accuracy</th><th>clips</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>{_chart(rows)}</section>"
        )
    problems = "".join(
        f'<tr class="{_text(row["status"])}"><td>{_text(row["team"])}</td>'
        f"<td>{_text(Path(str(row['file'])).name)}</td><td>{_text(row['status'])}</td>"
        f"<td>{_text(row['reason'])}</td></tr>"
        for row in others
    )
    problems_section = (
        '<section id="problems"><h2>Rejected and failed submissions</h2><table><thead><tr><th>team</th>'
        f"<th>file</th><th>status</th><th>reason</th></tr></thead><tbody>{problems}</tbody></table></section>"
        if others
        else '<section id="problems"><h2>Rejected and failed submissions</h2><p>None.</p></section>'
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>dataperf-speech leaderboard</title>
<link rel="icon" href="data:,">
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #202124; }}
table {{ border-collapse: collapse; margin: 0.5rem 0 1rem; }}
th, td {{ border-bottom: 1px solid #dadce0; padding: 0.3rem 0.8rem; text-align: right; }}
th:nth-child(2), td:nth-child(2), #problems td, #problems th {{ text-align: left; }}
tr.baseline {{ color: #5f6368; font-style: italic; }}
tr.rejected td, tr.failed td {{ color: #a50e0e; }}
section {{ margin-bottom: 2rem; }}
small {{ color: #5f6368; }}
td.interval, td.ranks {{ white-space: nowrap; }}
path.interval {{ stroke: #202124; }}
</style>
</head>
<body>
<h1>dataperf-speech leaderboard</h1>
<p>Scored {_text(board["created"])} with the frozen evaluator; metric: {metric}
(config {_text(board["config_file"])}). <b>Rank</b> is a team's place by score among the teams (equal
scores share a rank; baselines, in grey, are shown for reference and take no rank); the <b>rank range</b> is
the ranks it takes in the middle 95% of {_text(board.get("provenance", {}).get("bootstrap", {}).get("resamples"))}
bootstrap resamples of the eval clips, and a team starts a new <b>tie group</b> only where it is significantly
behind the team above (5%): two ranks in one tie group are not a real difference. The 95% interval is the
score's own. Seed-to-seed variation is the separate "std over seeds". Harness
{_text(board.get("provenance", {}).get("harness_version"))}, scikit-learn
{_text(board.get("provenance", {}).get("recipe", {}).get("scikit_learn"))}.</p>
{"".join(sections) or "<p>No scored submissions.</p>"}
{problems_section}
</body>
</html>
"""
