"""Plots as inline SVG, sized by their own viewBox (so they scale with their column and never
overflow it), with every label inside the drawing: bars with their category names in a left
gutter sized to the longest name, columns over time stacked by series, and a 24-hour strip.
Each carries a <title> for screen readers and the numbers as text.

>>> "<svg" in hbars([("new_device", 12), ("velocity", 3)], title="Top reasons")
True
>>> hbars([], title="Nothing") == Markup('<p class="muted">No data yet.</p>')
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

PALETTE = {
    "block": "#b42318",
    "review": "#b54708",
    "step_up": "#6941c6",
    "allow": "#2e7d32",
}
_DEFAULT = "#1f5fbf"
_CHAR = 6.6  # px per character at font-size 11, a safe over-estimate for the gutter
_NONE = Markup('<p class="muted">No data yet.</p>')


def _open(width: int, height: int, title: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    )


def hbars(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = 560,
    fmt: str = "{:,.0f}",
    domain: float | None = None,
    colour: str = _DEFAULT,
) -> Markup:
    """Horizontal bars, one per ``(name, value)``, the names in full left of them."""
    if not items:
        return _NONE
    row = 22
    gutter = int(min(width * 0.45, 12 + _CHAR * max(len(n) for n, _ in items)))
    value_room = 64
    top = max(domain or 0.0, max(v for _, v in items)) or 1.0
    span = width - gutter - value_room
    height = row * len(items) + 8
    parts = [_open(width, height, title)]
    for i, (name, value) in enumerate(items):
        y = 4 + i * row
        w = max(1.0, span * value / top) if value else 0.0
        parts.append(
            f'<text x="{gutter - 6}" y="{y + 15}" font-size="11" text-anchor="end" '
            f'fill="#1d2433">{escape(name)}</text>'
            f'<rect x="{gutter}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{colour}"/>'
            f'<text x="{gutter + w + 4:.1f}" y="{y + 15}" font-size="11" '
            f'fill="#5b6475">{escape(fmt.format(value))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def stacked_columns(
    buckets: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    title: str,
    width: int = 640,
    height: int = 220,
    y_title: str = "",
) -> Markup:
    """Columns over ``buckets`` (labels along the bottom, some skipped when crowded), each
    stacked from ``series`` (name → one value per bucket), with a legend above the plot."""
    if not buckets or not any(any(v) for v in series.values()):
        return _NONE
    left, right, top, bottom = 48, 10, 34, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(s[i] for s in series.values()) for i in range(len(buckets))]
    # An even whole number on top, so the three gridlines (0, half, top) are whole numbers.
    peak = float(max(2, math.ceil(max(totals) / 2) * 2))
    step = plot_w / len(buckets)
    parts = [_open(width, height, title)]
    for frac in (0.0, 0.5, 1.0):  # gridlines with values
        y = top + plot_h * (1 - frac)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e3e8ef"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end" '
            f'fill="#5b6475">{peak * frac:,.0f}</text>'
        )
    for i in range(len(buckets)):
        base = 0.0
        for name, values in series.items():
            v = values[i]
            if not v:
                continue
            h = plot_h * v / peak
            y = top + plot_h * (1 - (base + v) / peak)
            parts.append(
                f'<rect x="{left + i * step + 1:.1f}" y="{y:.1f}" width="{max(1.0, step - 2):.1f}" '
                f'height="{h:.1f}" fill="{PALETTE.get(name, _DEFAULT)}"><title>'
                f"{escape(buckets[i])} {escape(name)}: {v:,.0f}</title></rect>"
            )
            base += v
    every = max(1, math.ceil(len(buckets) / (plot_w / 60)))
    for i in range(0, len(buckets), every):
        parts.append(
            f'<text x="{left + (i + 0.5) * step:.1f}" y="{height - bottom + 14}" font-size="10" '
            f'text-anchor="middle" fill="#5b6475">{escape(buckets[i])}</text>'
        )
    x = left
    for name in series:  # the legend, above the plot: it covers neither bars nor axis titles
        parts.append(
            f'<rect x="{x}" y="8" width="10" height="10" fill="{PALETTE.get(name, _DEFAULT)}"/>'
            f'<text x="{x + 14}" y="17" font-size="11" fill="#1d2433">{escape(name)}</text>'
        )
        x += 24 + int(_CHAR * len(name))
    if y_title:
        parts.append(
            f'<text x="{width - right}" y="17" font-size="10" text-anchor="end" '
            f'fill="#5b6475">{escape(y_title)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def hours(counts: Sequence[int], *, title: str = "Events by hour of day (UTC)") -> Markup:
    """A 24-column strip of activity by hour, labelled every three hours."""
    if not any(counts):
        return _NONE
    width, height, bottom = 360, 90, 16
    peak = max(counts)
    step = width / 24
    parts = [_open(width, height, title)]
    for h, n in enumerate(counts):
        bar = (height - bottom - 6) * n / peak
        parts.append(
            f'<rect x="{h * step + 1:.1f}" y="{height - bottom - bar:.1f}" '
            f'width="{step - 2:.1f}" height="{bar:.1f}" fill="#1f5fbf"><title>{h:02d}:00 '
            f"{n}</title></rect>"
        )
        if h % 3 == 0:
            parts.append(
                f'<text x="{h * step + step / 2:.1f}" y="{height - 3}" font-size="10" '
                f'text-anchor="middle" fill="#5b6475">{h:02d}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))
