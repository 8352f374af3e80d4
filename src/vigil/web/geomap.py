"""A map of an entity's recent places, drawn as inline SVG on their coordinates (no tiles, no
requests to anyone): each place a dot, each move between consecutive places a leg labelled with
its distance and the speed it implies, the case's own event ringed.

Coordinates are projected equirectangularly around the places' mean latitude (distances look
right at a city's or a country's scale) and fitted to the drawing with a margin; a faint grid
every whole degree (or tenth) gives scale without a base map.

>>> from datetime import UTC, datetime
>>> at = lambda h: datetime(2024, 5, 1, h, tzinfo=UTC)
>>> places = [Place("e1", at(10), 6.45, 3.39, "ATM-1"), Place("e2", at(11), 9.07, 7.49, "ATM-2")]
>>> m = draw(places, focus="e2")
>>> [(round(leg.km), round(leg.kmh)) for leg in m.legs]
[(537, 537)]
>>> "<svg" in m.svg and "537 km" in m.svg
True
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

from vigil.config import ImpossibleTravelConfig
from vigil.geo import haversine_km

WIDTH, HEIGHT, MARGIN = 640, 360, 40


@dataclass(frozen=True, slots=True)
class Place:
    event_id: str
    at: datetime
    latitude: float
    longitude: float
    label: str
    flagged: bool = False


@dataclass(frozen=True, slots=True)
class Leg:
    start: Place
    end: Place
    km: float
    hours: float
    # Impossible by the travel detector's own limits: drawn in the alert colour.
    impossible: bool = False

    @property
    def kmh(self) -> float:
        return self.km / self.hours if self.hours > 0 else (math.inf if self.km > 0.5 else 0.0)


@dataclass(frozen=True, slots=True)
class Map:
    svg: Markup
    legs: list[Leg]


def legs_of(places: Sequence[Place], travel: ImpossibleTravelConfig) -> list[Leg]:
    """Moves between consecutive places (in time order) that changed place, each marked
    impossible as the travel detector would judge it (``detectors.impossible_travel``)."""
    out = []
    for a, b in itertools.pairwise(places):
        km = float(haversine_km(a.latitude, a.longitude, b.latitude, b.longitude))
        if km >= 0.5:
            leg = Leg(a, b, km, max(0.0, (b.at - a.at).total_seconds() / 3600))
            if km >= travel.min_distance_km and leg.kmh > travel.max_speed_kmh:
                leg = Leg(a, b, leg.km, leg.hours, impossible=True)
            out.append(leg)
    return out


def speed(leg: Leg) -> str:
    """>>> from datetime import UTC, datetime
    >>> p = Place("a", datetime(2024, 1, 1, tzinfo=UTC), 0, 0, "x")
    >>> speed(Leg(p, p, 10.0, 0.0)), speed(Leg(p, p, 10.0, 2.0))
    ('instant', '5.0 km/h')
    """
    if math.isinf(leg.kmh):
        return "instant"
    return f"{leg.kmh:,.1f} km/h" if leg.kmh < 10 else f"{leg.kmh:,.0f} km/h"


def draw(
    places: Sequence[Place],
    *,
    focus: str | None = None,
    travel: ImpossibleTravelConfig | None = None,
) -> Map:
    """The map of ``places`` (time order), with the event ``focus`` ringed, and the legs the
    travel detector (``travel``: its settings) would call impossible in the alert colour."""
    located = [p for p in places if p.latitude is not None and p.longitude is not None]
    legs = legs_of(located, travel or ImpossibleTravelConfig())
    if not located:
        return Map(Markup(""), [])
    mean_lat = math.radians(sum(p.latitude for p in located) / len(located))
    xs = [p.longitude * math.cos(mean_lat) for p in located]
    ys = [p.latitude for p in located]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 0.02)
    scale = min((WIDTH - 2 * MARGIN) / span, (HEIGHT - 2 * MARGIN) / span)
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2

    def xy(p: Place) -> tuple[float, float]:
        x = WIDTH / 2 + (p.longitude * math.cos(mean_lat) - cx) * scale
        y = HEIGHT / 2 - (p.latitude - cy) * scale
        return round(x, 1), round(y, 1)

    parts = [
        f'<svg class="map" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="map-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="map-title">Map of {len(located)} recent places and {len(legs)} moves</title>',
    ]
    parts += _grid(cx, cy, scale, mean_lat)
    boxes: list[tuple[float, float, float, float]] = []  # labels placed so far

    def free(x: float, y: float, text: str, anchor: str = "middle") -> bool:
        """Claim room for ``text`` at (x, y) unless another label has it, or it leaves the map."""
        w = 6.2 * len(text) + 4
        left = x - w / 2 if anchor == "middle" else (x if anchor == "start" else x - w)
        box = (left, y - 11, left + w, y + 3)
        if box[0] < 2 or box[2] > WIDTH - 2 or box[1] < 2 or box[3] > HEIGHT - 2:
            return False
        if any(
            not (box[2] < b[0] or box[0] > b[2] or box[3] < b[1] or box[1] > b[3]) for b in boxes
        ):
            return False
        boxes.append(box)
        return True

    parts.append(
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
        'markerHeight="6" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#5b6475"/></marker></defs>'
    )
    for leg in legs:
        (x1, y1), (x2, y2) = xy(leg.start), xy(leg.end)
        colour = "#b42318" if leg.impossible else "#1f5fbf"
        dash = ' stroke-dasharray="6 3"' if leg.impossible else ""
        parts.append(
            f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{colour}" '
            f'stroke-width="2"{dash} marker-end="url(#arrow)"/>'
        )
    # Places: one dot per distinct spot, labelled once where there is room.
    spots: dict[tuple[float, float], list[Place]] = {}
    for p in located:
        spots.setdefault(xy(p), []).append(p)
    for (x, y), here in spots.items():
        fill = "#b42318" if any(p.flagged for p in here) else "#1d2433"
        names = ", ".join(sorted({p.label for p in here}))
        parts.append(
            f'<circle cx="{x}" cy="{y}" r="5" fill="{fill}"><title>{escape(names)}: '
            f"{len(here)} event(s)</title></circle>"
        )
        if any(p.event_id == focus for p in here):
            parts.append(
                f'<circle cx="{x}" cy="{y}" r="11" fill="none" stroke="#f5a623" stroke-width="3"/>'
            )
    for (x, y), here in sorted(spots.items(), key=lambda s: -len(s[1])):
        names = ", ".join(sorted({p.label for p in here}))
        for dx, dy, anchor in (
            (9, 14, "start"),
            (-9, 14, "end"),
            (9, -8, "start"),
            (-9, -8, "end"),
        ):
            if free(x + dx, y + dy, names, anchor):
                parts.append(
                    f'<text x="{x + dx}" y="{y + dy}" font-size="11" text-anchor="{anchor}" '
                    f'fill="#1d2433" stroke="#f8fafc" stroke-width="3" paint-order="stroke">'
                    f"{escape(names)}</text>"
                )
                break
    # Legs: distance and speed at the middle where there is room (the table lists them all).
    for leg in legs:
        (x1, y1), (x2, y2) = xy(leg.start), xy(leg.end)
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2 - 6
        text = f"{leg.km:,.0f} km · {speed(leg)}"
        if free(mx, my, text):
            colour = "#b42318" if leg.impossible else "#1f5fbf"
            parts.append(
                f'<text x="{mx:.1f}" y="{my:.1f}" font-size="11" text-anchor="middle" '
                f'fill="{colour}" stroke="#f8fafc" stroke-width="3" paint-order="stroke">'
                f"{escape(text)}</text>"
            )
    parts.append("</svg>")
    return Map(Markup("".join(parts)), legs)


def _grid(cx: float, cy: float, scale: float, mean_lat: float) -> list[str]:
    """Faint lines every whole degree (a tenth when the places are close)."""
    span_deg = WIDTH / scale
    step = 1.0 if span_deg > 3 else 0.1
    if span_deg > 40:
        step = 10.0
    lines = []
    cos = math.cos(mean_lat)
    lon_lo = (cx - WIDTH / 2 / scale) / cos
    lon_hi = (cx + WIDTH / 2 / scale) / cos
    lat_lo, lat_hi = cy - HEIGHT / 2 / scale, cy + HEIGHT / 2 / scale
    lon = math.floor(lon_lo / step) * step
    while lon <= lon_hi:
        x = WIDTH / 2 + (lon * cos - cx) * scale
        lines.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{HEIGHT}" stroke="#e3e8ef"/>')
        lon += step
    lat = math.floor(lat_lo / step) * step
    while lat <= lat_hi:
        y = HEIGHT / 2 - (lat - cy) * scale
        lines.append(f'<line x1="0" y1="{y:.1f}" x2="{WIDTH}" y2="{y:.1f}" stroke="#e3e8ef"/>')
        lat += step
    lines.append(
        f'<text x="{WIDTH - 6}" y="{HEIGHT - 6}" font-size="10" text-anchor="end" '
        f'fill="#8a94a6">grid every {step:g}°</text>'
    )
    return lines
