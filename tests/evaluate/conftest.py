"""Fixtures: the hand-built scenario of :mod:`tests.evaluate.scenario`."""

from __future__ import annotations

import polars as pl
import pytest

from tests.evaluate.scenario import decisions_frame, labels_frame


@pytest.fixture
def decisions() -> pl.DataFrame:
    return decisions_frame()


@pytest.fixture
def labels() -> pl.DataFrame:
    return labels_frame()


@pytest.fixture
def terminals() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "terminal_id": ["B-1", "B-2", "EXT-1"],
            "latitude": [6.45, 6.60, 9.06],
            "longitude": [3.39, 3.35, 7.49],
            "city": ["Lagos", "Ikeja", "Abuja"],
            "internal": [True, True, False],
        }
    )
