"""The model report: one offline HTML page per trained model version.

Built from what the registry keeps (manifest and test scores), with the evaluation report's
page style, figure embedding and charts (:mod:`vigil.evaluate.report`,
:mod:`vigil.evaluate.charts`): ROC and precision–recall curves on the test part, feature
importance, score distributions of fraud and legitimate rows, and card precision@k by day.
plotly.js is inlined once; nothing is fetched from the network.

>>> import tempfile, polars as pl
>>> from datetime import datetime, UTC
>>> from pathlib import Path
>>> t = datetime(2022, 1, 1, tzinfo=UTC)
>>> scores = pl.DataFrame({"timestamp": [t] * 4, "card_id": ["a", "b", "c", "d"],
...                        "label": [1, 0, 0, 1], "score": [0.9, 0.2, 0.4, 0.7]})
>>> manifest = {"name": "transaction", "version": "v0001", "kind": "lightgbm",
...             "metrics": {"test": {"roc_auc": 1.0}}, "importance": {"amount_z": 3.0},
...             "parameters": {"k": 2}}
>>> out = write_model_report(manifest, scores, Path(tempfile.mkdtemp()) / "r.html")
>>> html = out.read_text()
>>> [t in html for t in ("ROC curve (test part)", "Score distribution: fraud vs legitimate",
...                      "Feature importance", "Card precision@k per day (test part)")]
[True, True, True, True]
>>> html.count('class="plotly-graph-div"'), "vigil model transaction v0001 (lightgbm)" in html
(5, True)
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.offline
import polars as pl

from vigil.evaluate import charts
from vigil.evaluate.ranking import precision_recall_curve
from vigil.evaluate.report import _CSS, _figure, _table
from vigil.models.metrics import card_precision_at_k

_TOP_FEATURES = 25


def roc_points(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates at each distinct score, from (0, 0), with thresholds.

    The threshold sweep is :func:`vigil.evaluate.ranking.precision_recall_curve`, the one the
    metrics use: its recall is the true-positive rate, and the rows flagged at each threshold
    give the false positives. Its trapezoid area is the ROC AUC of the metrics.

    >>> fpr, tpr, _ = roc_points(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    >>> fpr.tolist(), tpr.tolist(), float(np.trapezoid(tpr, fpr))
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0], 0.75)
    """
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    _, recall, thresholds = precision_recall_curve(y, s)
    positives, negatives = int(y.sum()), int((~y).sum())
    flagged = np.searchsorted(np.sort(-s), -thresholds, side="right")
    false_pos = flagged - np.rint(recall * positives)
    fpr = np.r_[0.0, false_pos / max(negatives, 1)]
    return fpr, np.r_[0.0, recall], np.r_[np.inf, thresholds]


def roc_curve(scores: pl.DataFrame) -> go.Figure:
    """True-positive rate against false-positive rate over every score threshold."""
    fig = go.Figure()
    y = scores.get_column("label").cast(pl.Int8).to_numpy()
    if 0 < y.sum() < y.size:
        fpr, tpr, thresholds = roc_points(y, scores.get_column("score").to_numpy())
        fpr, tpr, thresholds = charts._thin(fpr, tpr, np.clip(thresholds, 0, 1))
        fig.add_scatter(
            x=fpr,
            y=tpr,
            customdata=thresholds,
            mode="lines",
            name="model",
            line={"color": "#34495e", "width": 2},
            hovertemplate="score ≥ %{customdata:.3f}<br>FPR %{x:.4f}, TPR %{y:.3f}<extra></extra>",
        )
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"color": charts.MUTED, "dash": "dot"}
    )
    fig.update_xaxes(title="false-positive rate", range=[0, 1])
    fig.update_yaxes(title="true-positive rate", range=[0, 1.02])
    return charts._layout(fig, "ROC curve (test part)")


def importance(values: dict[str, float], title: str = "Feature importance") -> go.Figure:
    """Features by importance (LightGBM gain, or |coefficient| for logistic regression)."""
    ranked = sorted(values.items(), key=lambda kv: kv[1])[-_TOP_FEATURES:]
    fig = go.Figure(
        go.Bar(
            x=[v for _, v in ranked],
            y=[k for k, _ in ranked],
            orientation="h",
            marker={"color": "#34495e"},
            hovertemplate="%{y}: %{x:.4g}<extra></extra>",
        )
    )
    fig.update_xaxes(title="importance")
    return charts._layout(fig, title, height=max(300, 60 + 22 * len(ranked)))


def precision_by_day(per_day: pl.DataFrame) -> go.Figure:
    """Card precision@k each day of the test part, with the day's compromised cards."""
    fig = go.Figure()
    if not per_day.is_empty():
        k = int(per_day.get_column("k")[0])
        fig.add_bar(
            x=per_day.get_column("day"),
            y=per_day.get_column("precision"),
            name=f"card precision@{k}",
            marker={"color": charts.FRAUD, "opacity": 0.7},
            customdata=per_day.select("hits", "compromised").to_numpy(),
            hovertemplate="%{x}: %{y:.2f} (%{customdata[0]} hits, "
            "%{customdata[1]} compromised cards)<extra></extra>",
        )
    fig.update_yaxes(title="precision", range=[0, 1.05])
    fig.update_xaxes(title="day")
    return charts._layout(fig, "Card precision@k per day (test part)")


def _metric_rows(metrics: dict[str, Any]) -> list[list[str]]:
    names = sorted({m for part in metrics.values() if isinstance(part, dict) for m in part})
    rows = []
    for name in names:
        cells = [escape(name)]
        for part in ("train", "validation", "test"):
            value = metrics.get(part, {}).get(name)
            cells.append(
                "—"
                if value is None
                else (f"{value:,}" if isinstance(value, int) else f"{value:.4f}")
            )
        rows.append(cells)
    return rows


def write_model_report(manifest: dict[str, Any], scores: pl.DataFrame, path: Path) -> Path:
    """Write the report of one model version to ``path`` (via a temporary file)."""
    k = int(manifest.get("parameters", {}).get("k", 10))
    figures = [roc_curve(scores)]
    units = scores.select(pl.col("label").cast(pl.Boolean).alias("fraud"), "score")
    figures.append(charts.precision_recall(units, {}))
    figures.append(charts.score_histogram(units))
    figures.append(importance(manifest.get("importance", {})))
    shap = manifest.get("parameters", {}).get("mean_abs_contribution")
    if shap:
        figures.append(importance(shap, "Mean |TreeSHAP contribution| on the test part"))
    if "card_id" in scores.columns and "timestamp" in scores.columns:
        figures.append(precision_by_day(card_precision_at_k(scores, k=k)))
    title = f"vigil model {manifest.get('name')} {manifest.get('version')} ({manifest.get('kind')})"
    head = [("metric", False), ("train", True), ("validation", True), ("test", True)]
    table = _table(head, _metric_rows(manifest.get("metrics", {})))
    details = {
        key: manifest.get(key)
        for key in ("training_data", "parameters", "calibration", "created_at", "status", "seconds")
    }
    html = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{_CSS}</style>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script></head>
<body><header><h1>{escape(title)}</h1>
<p>{len(manifest.get("features", [])) or len(manifest.get("importance", {}))} features ·
test scores are calibrated probabilities</p></header>
<main><h2>Metrics</h2>{table}
<h2>Curves and distributions</h2>
<div class="grid">{"".join(_figure(f, f"figure-{i}") for i, f in enumerate(figures))}</div>
<h2>Manifest</h2><pre>{escape(json.dumps(details, indent=2, default=str))}</pre>
</main></body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path
