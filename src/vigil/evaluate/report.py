"""``write_report``: evaluation.json and a self-contained, offline HTML report.

plotly.js is embedded once, inline; nothing on the page is fetched from the network. Both
files are written to temporary names first and moved into place together, so a failure
leaves no half-written report.

>>> import tempfile, polars as pl
>>> from datetime import datetime, UTC
>>> from pathlib import Path
>>> from vigil.evaluate import evaluate
>>> t = datetime(2022, 1, 1, tzinfo=UTC)
>>> e = evaluate(pl.DataFrame({"event_id": ["e1", "e2"], "event_time": [t, t],
...     "score": [0.9, 0.1], "action": ["block", "allow"]}),
...     pl.DataFrame({"event_id": ["e1"], "pattern": ["amount_spike"]}))
>>> with tempfile.TemporaryDirectory() as out:
...     json_path, html_path = write_report(e, Path(out))
...     json_path.name, html_path.name, html_path.stat().st_size > 1_000_000
('evaluation.json', 'report.html', True)
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path

import plotly.graph_objects as go
import plotly.offline
import polars as pl

from vigil import files
from vigil.evaluate import charts
from vigil.evaluate.inputs import normalise_terminals
from vigil.evaluate.results import Evaluation

TOP_ALERTS = 50

_CSS = """
:root { --ink:#1f2d3d; --muted:#6b7b8c; --line:#e3e8ee; --bg:#f5f7fa; --fraud:#c0392b;
        --ok:#1e8449; --warn:#b9770e; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; }
header { background:#1f2d3d; color:#fff; padding:22px 32px; }
header h1 { margin:0; font-size:22px; font-weight:600; }
header p { margin:4px 0 0; color:#c5d0db; }
main { max-width:1280px; margin:0 auto; padding:20px 32px 40px; }
h2 { font-size:17px; margin:28px 0 10px; }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(160px,1fr)); gap:12px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.card .v { font-size:24px; font-weight:600; }
.card .k { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.panel { background:#fff; border:1px solid var(--line); border-radius:8px; padding:8px;
         margin-top:12px; }
/* auto-fill, not auto-fit: the columns exist before the figures that fill them, so a figure
   drawn while the page is still arriving is sized to its own column, not the whole row. */
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(520px,1fr)); gap:12px; }
.grid > .panel { min-width:0; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line);
        border-radius:8px; overflow:hidden; }
th, td { padding:7px 10px; border-bottom:1px solid var(--line); text-align:left;
         vertical-align:top; }
th { background:#eef2f6; font-weight:600; font-size:12px; text-transform:uppercase;
     letter-spacing:.03em; color:#44546a; }
td.n, th.n { text-align:right; font-variant-numeric:tabular-nums; }
tr:last-child td { border-bottom:none; }
.good { color:var(--ok); font-weight:600; } .bad { color:var(--fraud); font-weight:600; }
.tag { display:inline-block; background:#eef2f6; border-radius:10px; padding:1px 8px;
       margin:1px 2px; font-size:12px; }
.fraud-tag { background:#fdecea; color:var(--fraud); }
.action-block { color:#8e1b10; font-weight:600; } .action-review { color:var(--warn); }
.warning { background:#fff4e5; border:1px solid #f0c36d; border-radius:8px; padding:10px 14px;
           margin-top:14px; }
footer { color:var(--muted); font-size:12px; margin-top:28px; }
footer dt { font-weight:600; color:var(--ink); } footer dd { margin:0 0 6px; }
"""


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ratio_class(value: float | None, target: float) -> str:
    if value is None:
        return ""
    return "good" if value >= target else "bad"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _table(head: list[tuple[str, bool]], rows: list[list[str]]) -> str:
    """``head`` is (title, numeric); cells are already escaped HTML."""
    ths = "".join(
        f'<th class="n">{escape(t)}</th>' if n else f"<th>{escape(t)}</th>" for t, n in head
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{cell}</td>' if numeric else f"<td>{cell}</td>"
            for cell, (_, numeric) in zip(row, head, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    if not rows:
        body = f'<tr><td colspan="{len(head)}">none</td></tr>'
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{body}</tbody></table>"


def _tags(values: list[str] | None) -> str:
    return "".join(f'<span class="tag">{escape(v)}</span>' for v in values or [])


def _cards(evaluation: Evaluation) -> str:
    h = evaluation.overall
    cards = [
        ("Precision", _pct(h.precision), _ratio_class(h.precision, 0.9)),
        ("Recall", _pct(h.recall), _ratio_class(h.recall, 0.95)),
        ("Case recall (with linked)", _pct(h.case_recall), _ratio_class(h.case_recall, 0.95)),
        ("ROC AUC", _num(h.roc_auc, 3), ""),
        ("Average precision", _num(h.average_precision, 3), ""),
        ("False alarms / 1,000 legit", _num(h.false_positives_per_1000_legitimate, 2), ""),
        ("Alerts", _num(h.alerts), ""),
        ("True / false positives", f"{h.true_positives:,} / {h.false_positives:,}", ""),
        ("Units (fraud)", f"{h.units:,} ({h.fraud_units:,})", ""),
    ]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="k">{escape(k)}</div>'
            f'<div class="v {cls}">{escape(v)}</div></div>'
            for k, v, cls in cards
        )
        + "</div>"
    )


def _pattern_table(evaluation: Evaluation) -> str:
    head = [
        ("pattern", False),
        ("units", True),
        ("caught", True),
        ("recall", True),
        ("linked", True),
        ("case recall", True),
        ("episodes caught", True),
        ("median delay", True),
        ("p90 delay", True),
        ("units before 1st alert (median)", True),
        ("not decided", True),
    ]
    rows = [
        [
            escape(p.pattern),
            _num(p.units),
            _num(p.alerts),
            f'<span class="{_ratio_class(p.recall, 0.95)}">{_pct(p.recall)}</span>',
            _num(p.linked),
            f'<span class="{_ratio_class(p.case_recall, 0.95)}">{_pct(p.case_recall)}</span>',
            f"{p.episodes_caught:,}/{p.episodes:,} ({_pct(p.episode_recall)})",
            _duration(p.delay_median_seconds),
            _duration(p.delay_p90_seconds),
            _num(p.units_before_first_alert_median, 1),
            _num(p.units_without_decision),
        ]
        for p in sorted(evaluation.patterns.values(), key=lambda p: p.pattern)
    ]
    return _table(head, rows)


def _reason_table(evaluation: Evaluation) -> str:
    head = [
        ("reason", False),
        ("alerts", True),
        ("true pos.", True),
        ("false pos.", True),
        ("precision", True),
        ("patterns caught", False),
    ]
    reasons = sorted(evaluation.reasons.values(), key=lambda r: (-r.alerts, r.code))
    rows = [
        [
            escape(r.code),
            _num(r.alerts),
            _num(r.true_positives),
            _num(r.false_positives),
            f'<span class="{_ratio_class(r.precision, 0.9)}">{_pct(r.precision)}</span>',
            " ".join(f"{escape(p)}&nbsp;({n:,})" for p, n in r.patterns.items()) or "—",
        ]
        for r in reasons
    ]
    return _table(head, rows)


def _top_alerts(evaluation: Evaluation) -> str:
    top = (
        evaluation.units.filter(pl.col("alerted"))
        .sort(["score", "severity", "start_time", "unit_id"], descending=[True, True, False, False])
        .head(TOP_ALERTS)
    )
    head = [
        ("time (UTC)", False),
        ("unit", False),
        ("kind", False),
        ("card / user", False),
        ("terminal", False),
        ("amount", True),
        ("score", True),
        ("action", False),
        ("reasons", False),
        ("truth", False),
    ]
    rows = []
    for u in top.iter_rows(named=True):
        kind = u["type"] or u["event_kind"] or ""
        truth = (
            f'<span class="tag fraud-tag">{escape(u["pattern"])}</span>'
            if u["pattern"]
            else "legitimate"
        )
        rows.append(
            [
                escape(u["start_time"].strftime("%Y-%m-%d %H:%M:%S")),
                escape(u["unit_id"]),
                escape(kind),
                escape(" / ".join(x for x in (u["card_id"], u["user_id"]) if x)),
                escape(u["terminal_id"] or ""),
                _num(u["amount"], 2),
                f"{u['score']:.3f}",
                f'<span class="action-{escape(u["action"])}">{escape(u["action"])}</span>',
                _tags(u["alert_reasons"]),
                truth,
            ]
        )
    return _table(head, rows)


def _figure(fig: go.Figure, div_id: str) -> str:
    html = fig.to_html(
        full_html=False,
        div_id=div_id,  # fixed ids keep the page the same for the same evaluation
        include_plotlyjs=False,
        include_mathjax=False,
        config={"displaylogo": False, "responsive": True},
    )
    return f'<div class="panel">{html}</div>'


def _locations(evaluation: Evaluation, terminals: pl.DataFrame | None) -> pl.DataFrame | None:
    if terminals is not None:
        return normalise_terminals(terminals)
    if evaluation.terminal_locations is None:
        return None
    return evaluation.terminal_locations.with_columns(
        pl.lit(None, pl.String).alias("city"), pl.lit(None, pl.Boolean).alias("internal")
    )


_DEFINITIONS = [
    ("Unit", "a transaction (its start and end events together) or a login."),
    ("Alert", "a unit with at least one decision other than allow; its score is the highest."),
    ("Recall", "fraud units alerted ÷ fraud units. Precision: fraud units alerted ÷ alerts."),
    (
        "Episode",
        "one pattern's fraud units on one customer with no quiet gap over 24 h; the delay runs "
        "from its first unit's start to the first alerting decision.",
    ),
    (
        "Reasons",
        "only reasons of the alerting decisions are credited; per-pattern precision is not "
        "shown because a false alarm belongs to no pattern.",
    ),
]


def _html(evaluation: Evaluation, terminals: pl.DataFrame | None, title: str) -> str:
    h = evaluation.overall
    units = evaluation.units
    period = " – ".join(x[:19].replace("T", " ") for x in (h.period_start, h.period_end) if x)
    subtitle = f"{period} UTC · {h.units:,} units · ranking metrics by {h.metrics_backend}"
    warning = ""
    if h.labelled_units_without_decision:
        warning = (
            f'<div class="warning">{h.labelled_units_without_decision:,} labelled fraud '
            "unit(s) have no decision and are left out of every figure (see the "
            "<em>not decided</em> column).</div>"
        )
    figures = [
        charts.score_histogram(units),
        charts.precision_recall(units, evaluation.operating_points),
        charts.recall_by_pattern(evaluation.patterns),
    ]
    terminal_map = charts.terminal_map(units, evaluation.legs, _locations(evaluation, terminals))
    definitions = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in _DEFINITIONS)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{_CSS}</style>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>
</head>
<body>
<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>
<main>
{_cards(evaluation)}
{warning}
<h2>Per injected pattern</h2>
{_pattern_table(evaluation)}
<h2>Per reason code</h2>
{_reason_table(evaluation)}
<h2>Scores and recall</h2>
<div class="grid">{"".join(_figure(f, f"figure-{i}") for i, f in enumerate(figures))}</div>
<h2>Where the alerts happened</h2>
{_figure(terminal_map, "figure-map")}
<h2>Top {TOP_ALERTS} alerts by score</h2>
{_top_alerts(evaluation)}
<footer><dl>{definitions}</dl></footer>
</main>
</body>
</html>
"""


def write_report(
    evaluation: Evaluation,
    out_dir: Path,
    *,
    terminals: pl.DataFrame | None = None,
    title: str = "vigil evaluation",
) -> tuple[Path, Path]:
    """Write ``evaluation.json`` and ``report.html`` into ``out_dir``; return both paths.

    ``terminals`` (``terminal_id, latitude, longitude, city, internal``) places the map;
    without it the coordinates seen in the event stream given to ``evaluate`` are used.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    documents = {
        out_dir / "evaluation.json": json.dumps(evaluation.as_dict(), indent=2, allow_nan=False),
        out_dir / "report.html": _html(evaluation, terminals, title),
    }
    staged: list[tuple[str, Path]] = []
    try:
        for path, text in documents.items():
            handle, temporary = files.staged(path)  # the user's ordinary mode, not mkstemp's 0600
            staged.append((temporary, path))
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text + ("\n" if not text.endswith("\n") else ""))
        for temporary, path in staged:
            os.replace(temporary, path)
    finally:
        for temporary, _ in staged:
            if os.path.exists(temporary):
                os.unlink(temporary)
    return out_dir / "evaluation.json", out_dir / "report.html"
