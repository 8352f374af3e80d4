from __future__ import annotations

import math

import numpy as np
import pytest

from vigil.geo import haversine_km
from vigil.simulate.geo import points_in_boxes, travel_seconds
from vigil.simulate.reference import load_reference


def test_haversine_known_distances() -> None:
    # One degree of latitude is 111.2 km; Lagos (Marina) to Abuja is about 535 km by air.
    assert haversine_km(0.0, 0.0, 1.0, 0.0) == pytest.approx(111.19, abs=0.01)
    assert haversine_km(6.4541, 3.3947, 9.0579, 7.4951) == pytest.approx(535, abs=5)
    assert haversine_km(6.5, 3.3, 6.5, 3.3) == 0.0
    assert isinstance(haversine_km(1.0, 2.0, 3.0, 4.0), float)


def test_haversine_broadcasts_and_matches_scalars() -> None:
    lat = np.array([6.45, 9.06, 12.0])
    lon = np.array([3.39, 7.49, 8.59])
    out = haversine_km(lat, lon, 6.45, 3.39)
    assert out.shape == (3,)
    for k in range(3):
        assert out[k] == pytest.approx(haversine_km(float(lat[k]), float(lon[k]), 6.45, 3.39))
    # Antipodes: half the circumference, no nan from rounding.
    assert haversine_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * 6371.0088)


def test_points_stay_inside_their_city() -> None:
    ref = load_reference()
    which = np.repeat(np.arange(len(ref.cities)), 200)
    lat, lon = points_in_boxes(np.random.default_rng(3), ref.city_box, which)
    box = ref.city_box[which]
    assert ((lat >= box[:, 0]) & (lat <= box[:, 1]) & (lon >= box[:, 2]) & (lon <= box[:, 3])).all()


def test_city_boxes_are_in_nigeria_and_far_apart_where_expected() -> None:
    ref = load_reference()
    assert ((ref.city_box[:, :2] > 4.0) & (ref.city_box[:, :2] < 14.0)).all()
    assert ((ref.city_box[:, 2:] > 2.6) & (ref.city_box[:, 2:] < 14.7)).all()
    centre = {c: ref.city_box[i].reshape(2, 2).mean(axis=1) for i, c in enumerate(ref.cities)}
    lagos, kano = centre["Lagos"], centre["Kano"]
    assert 750 < haversine_km(lagos[0], lagos[1], kano[0], kano[1]) < 900


def test_travel_seconds_round_up() -> None:
    assert travel_seconds(np.array([0.0, 50.0, 0.001]), 50.0).tolist() == [0, 3600, 1]
