"""Places for the synthetic bank: points inside city bounding boxes, and distances between them.

>>> import numpy as np
>>> box = np.array([[6.40, 6.68, 3.15, 3.65]])
>>> lat, lon = points_in_boxes(np.random.default_rng(1), box, np.zeros(3, dtype=np.int64))
>>> bool(((lat >= 6.40) & (lat <= 6.68) & (lon >= 3.15) & (lon <= 3.65)).all())
True
>>> travel_seconds(np.array([[0.0, 50.0]]), 50.0).tolist()
[[0, 3600]]
"""

from __future__ import annotations

import numpy as np

from vigil.geo import haversine_km
from vigil.simulate.records import Floats, Ints


def points_in_boxes(rng: np.random.Generator, box: Floats, which: Ints) -> tuple[Floats, Floats]:
    """One uniform point inside ``box[which[i]]`` (lat_min, lat_max, lon_min, lon_max) per i."""
    b = box[which]
    lat = b[:, 0] + rng.random(len(which)) * (b[:, 1] - b[:, 0])
    lon = b[:, 2] + rng.random(len(which)) * (b[:, 3] - b[:, 2])
    return np.round(lat, 6), np.round(lon, 6)


def distance_matrix(lat_a: Floats, lon_a: Floats, lat_b: Floats, lon_b: Floats) -> Floats:
    """Kilometres from every point a (rows) to every point b (columns)."""
    return haversine_km(lat_a[:, None], lon_a[:, None], lat_b[None, :], lon_b[None, :])


def travel_seconds(km: Floats, speed_kmh: float) -> Ints:
    """Whole seconds needed to cover ``km`` at ``speed_kmh`` (rounded up, never short)."""
    return np.ceil(km / speed_kmh * 3600.0).astype(np.int64)
