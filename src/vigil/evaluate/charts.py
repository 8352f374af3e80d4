"""The report's plotly figures. Data are binned or thinned here so the page stays small.

The terminal map is a plain longitude/latitude scatter: no tile server, no topojson, nothing
fetched from the network.

>>> from vigil.evaluate.results import PatternResult
>>> p = PatternResult(pattern="card_cloning", units=4, alerts=3, recall=0.75, episodes=2,
...     episodes_caught=2, episode_recall=1.0, delay_median_seconds=30.0, delay_p90_seconds=54.0,
...     units_before_first_alert_median=0.5, units_before_first_alert_mean=0.5,
...     units_without_decision=0)
>>> recall_by_pattern({"card_cloning": p}).data[0].x
(0.75,)
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import polars as pl

from vigil.evaluate.ranking import precision_recall_curve
from vigil.evaluate.results import OperatingPoint, PatternResult

FRAUD = "#c0392b"
LEGIT = "#2e86c1"
MUTED = "#95a5a6"
FALSE_ALARM = "#e67e22"
ACTION_COLOURS = {"step_up": "#f1c40f", "review": "#e67e22", "block": "#8e1b10"}
_FONT = {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", "size": 13}
_MAX_CURVE_POINTS = 2000


def _layout(fig: go.Figure, title: str, height: int = 380) -> go.Figure:
    """The report's look. The legend sits above the plot, under the title (below it, it met
    the x axis's title); axes grow their margins to fit their labels (automargin), so no
    category name is cut."""
    fig.update_layout(
        # The empty template keeps plotly's per-trace-type defaults (geo, map, 3-D) out of
        # every figure on the page; the look is set here instead.
        template="none",
        title={"text": title, "x": 0.01, "y": 0.98, "yanchor": "top", "font": {"size": 15}},
        font=_FONT,
        height=height,
        margin={"l": 60, "r": 20, "t": 90, "b": 50},
        plot_bgcolor="#ffffff",
        paper_bgcolor="#ffffff",
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.02, "yanchor": "bottom"},
    )
    axes = {
        "gridcolor": "#ecf0f1",
        "zeroline": False,
        "linecolor": "#bdc3c7",
        "showline": True,
        "automargin": True,
    }
    fig.update_xaxes(**axes)
    fig.update_yaxes(**axes)
    return fig


def score_histogram(units: pl.DataFrame, bins: int = 50) -> go.Figure:
    """Unit scores of fraud and legitimate units, counts on a log scale."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure()
    for fraud, name, colour in ((False, "legitimate", LEGIT), (True, "fraud", FRAUD)):
        scores = units.filter(pl.col("fraud") == fraud).get_column("score").to_numpy()
        counts, _ = np.histogram(scores, bins=edges)
        shown = counts > 0  # a log axis cannot show zero
        fig.add_bar(
            x=centres[shown],
            y=counts[shown],
            width=1.0 / bins,
            name=f"{name} ({scores.size:,})",
            marker={"color": colour, "opacity": 0.6},
            hovertemplate="score %{x:.2f}: %{y:,} units<extra>" + name + "</extra>",
        )
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title="unit score", range=[0, 1])
    fig.update_yaxes(title="units (log scale)", type="log", dtick=1)  # powers of ten only
    return _layout(fig, "Score distribution: fraud vs legitimate")


def _thin(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    size = arrays[0].size
    if size <= _MAX_CURVE_POINTS:
        return arrays
    keep = np.unique(np.linspace(0, size - 1, _MAX_CURVE_POINTS).astype(int))
    return tuple(a[keep] for a in arrays)


def precision_recall(units: pl.DataFrame, points: dict[str, OperatingPoint]) -> go.Figure:
    """The score's precision–recall curve with the actions' operating points."""
    fig = go.Figure()
    fraud = units.get_column("fraud").to_numpy()
    if fraud.any():
        precision, recall, thresholds = precision_recall_curve(
            fraud, units.get_column("score").to_numpy()
        )
        precision, recall, thresholds = _thin(precision, recall, thresholds)
        fig.add_scatter(
            x=recall,
            y=precision,
            customdata=thresholds,
            mode="lines",
            name="score threshold",
            line={"color": "#34495e", "width": 2},
            hovertemplate="score ≥ %{customdata:.3f}<br>recall %{x:.3f}, precision %{y:.3f}"
            "<extra></extra>",
        )
    for action, point in points.items():
        if point.precision is None or point.recall is None:
            continue
        fig.add_scatter(
            x=[point.recall],
            y=[point.precision],
            mode="markers",  # named in the legend: text beside close points overlapped
            name=f"action ≥ {action} ({point.alerts:,} alerts)",
            marker={"size": 13, "color": ACTION_COLOURS.get(action, FRAUD), "symbol": "diamond"},
            hovertemplate=f"≥ {action}: recall %{{x:.3f}}, precision %{{y:.3f}}<extra></extra>",
        )
    fig.update_xaxes(title="recall", range=[0, 1.02])
    fig.update_yaxes(title="precision", range=[0, 1.05])
    return _layout(fig, "Precision–recall of the score, and of the actions")


def recall_by_pattern(patterns: dict[str, PatternResult]) -> go.Figure:
    """Recall of each injected pattern, worst at the top so misses stand out."""
    rows = sorted(
        (p for p in patterns.values() if p.recall is not None),
        key=lambda p: (p.recall or 0.0, p.pattern),
        reverse=True,
    )
    fig = go.Figure(
        go.Bar(
            x=tuple(p.recall for p in rows),
            y=tuple(p.pattern for p in rows),
            orientation="h",
            text=[f"{p.recall:.0%}  ({p.alerts:,}/{p.units:,})" for p in rows],
            # At the bar's start: the 95% target line crossed the labels at its end.
            textposition="inside",
            insidetextanchor="start",
            marker={"color": [FRAUD if (p.recall or 0) < 0.95 else "#27ae60" for p in rows]},
            hovertemplate="%{y}: recall %{x:.3f}<extra></extra>",
        )
    )
    fig.add_vline(x=0.95, line={"dash": "dot", "color": MUTED})
    fig.update_xaxes(title="recall (fraud units alerted)", range=[0, 1.05])
    height = max(260, 60 + 40 * len(rows))
    fig = _layout(fig, "Recall per injected pattern (target 95%)", height=height)
    return fig.update_layout(margin={"t": 50})  # no legend to make room for


def _sizes(counts: np.ndarray) -> np.ndarray:
    return 8 + 6 * np.sqrt(counts)


def terminal_map(
    units: pl.DataFrame, legs: pl.DataFrame, terminals: pl.DataFrame | None
) -> go.Figure:
    """Terminals, flagged transactions per terminal (sized by count), impossible-travel legs."""
    fig = go.Figure()
    if terminals is None or terminals.is_empty():
        fig.add_annotation(
            text="no terminal coordinates given", showarrow=False, x=0.5, y=0.5, xref="paper"
        )
        return _layout(fig, "Terminals and flagged transactions", height=520)
    located = terminals.select("terminal_id", "latitude", "longitude")
    with_city = pl.concat_str(pl.col("terminal_id"), pl.col("city"), separator=" · ")
    labels = terminals.select(
        "terminal_id",
        pl.coalesce(with_city, pl.col("terminal_id")).alias("label"),
        pl.col("internal"),
    )
    internal = pl.col("internal").fill_null(False)
    for name, symbol, which in (
        ("bank ATM", "square", internal),
        ("other ATM", "circle", ~internal),
    ):
        group = labels.filter(which).join(located, on="terminal_id", how="inner")
        if group.is_empty():
            continue
        fig.add_scatter(
            x=group.get_column("longitude"),
            y=group.get_column("latitude"),
            mode="markers",
            name=name,
            text=group.get_column("label"),
            marker={"size": 7, "color": MUTED, "symbol": symbol, "line": {"width": 0}},
            hovertemplate="%{text}<extra></extra>",
        )

    flagged = (
        units.filter(pl.col("alerted") & pl.col("terminal_id").is_not_null())
        .group_by("terminal_id", "fraud")
        .len()
        .join(located, on="terminal_id", how="inner")
        .join(labels.select("terminal_id", "label"), on="terminal_id", how="left")
    )
    for fraud, name, colour in (
        (True, "fraud alerts", FRAUD),
        (False, "false alarms", FALSE_ALARM),
    ):
        group = flagged.filter(pl.col("fraud") == fraud)
        if group.is_empty():
            continue
        counts = group.get_column("len").to_numpy()
        fig.add_scatter(
            x=group.get_column("longitude"),
            y=group.get_column("latitude"),
            mode="markers",
            name=name,
            customdata=counts,
            text=group.get_column("label").fill_null(group.get_column("terminal_id")),
            marker={"size": _sizes(counts), "color": colour, "opacity": 0.55},
            hovertemplate="%{text}<br>%{customdata:,} " + name + "<extra></extra>",
        )

    ends = legs.join(
        located.rename({"terminal_id": "from_terminal", "latitude": "lat0", "longitude": "lon0"}),
        on="from_terminal",
        how="inner",
    ).join(
        located.rename({"terminal_id": "to_terminal", "latitude": "lat1", "longitude": "lon1"}),
        on="to_terminal",
        how="inner",
    )
    if not ends.is_empty():
        # One trace with gaps keeps thousands of legs cheap to draw.
        lon: list[float | None] = []
        lat: list[float | None] = []
        for lon0, lat0, lon1, lat1 in ends.select("lon0", "lat0", "lon1", "lat1").iter_rows():
            lon += [lon0, lon1, None]
            lat += [lat0, lat1, None]
        fig.add_scatter(
            x=lon,
            y=lat,
            mode="lines",
            name=f"impossible-travel legs ({ends.height:,})",
            line={"color": "#8e44ad", "width": 1.5},
            opacity=0.7,
            hoverinfo="skip",
        )
    mid_lat = float(located.get_column("latitude").mean() or 0.0)
    # Equal distances look equal: one degree of longitude is cos(latitude) of one of latitude.
    fig.update_yaxes(
        title="latitude",
        scaleanchor="x",
        scaleratio=1 / max(math.cos(math.radians(mid_lat)), 0.1),
    )
    fig.update_xaxes(title="longitude")
    return _layout(fig, "Terminals, flagged transactions and impossible-travel legs", height=560)
