"""Great-circle distance on the Earth, for scalars and numpy arrays alike.

>>> round(haversine_km(6.4541, 3.3947, 12.0022, 8.5920))  # Lagos to Kano
840
>>> import numpy as np
>>> haversine_km(np.array([0.0, 0.0]), np.array([0.0, 0.0]), np.array([0.0, 1.0]), 0.0).round(1)
array([  0. , 111.2])
"""

from __future__ import annotations

import math
from typing import overload

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)

ArrayLike = float | npt.NDArray[np.floating]


@overload
def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float: ...
@overload
def haversine_km(
    lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike
) -> npt.NDArray[np.float64]: ...
def haversine_km(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> ArrayLike:
    """Distance in km between points given in degrees; broadcasts like numpy.

    Returns a plain ``float`` when every argument is a scalar; that case takes a pure-``math``
    path because the engine calls it once per event, where numpy's per-call overhead dominates.
    """
    if type(lat1) is float and type(lon1) is float and type(lat2) is float and type(lon2) is float:
        return _haversine_scalar(lat1, lon1, lat2, lon2)
    phi1, lam1, phi2, lam2 = (
        np.radians(np.asarray(v, dtype=np.float64)) for v in (lat1, lon1, lat2, lon2)
    )
    a = (
        np.sin((phi2 - phi1) / 2) ** 2
        + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2) ** 2
    )
    # Rounding can push `a` a hair past 1 for antipodal points; arcsin would then return nan.
    d = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return float(d) if d.ndim == 0 else d


def _haversine_scalar(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((phi2 - phi1) / 2) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(max(a, 0.0), 1.0)))
