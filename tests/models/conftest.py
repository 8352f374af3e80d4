"""Small labelled feature tables for the model tests: known signal, known imbalance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

START = datetime(2022, 1, 1, tzinfo=UTC)


def feature_table(n: int = 8000, *, seed: int = 0, days: int = 20) -> pl.DataFrame:
    """Rows spread over ``days``, 200 cards; fraud (about 3 %) depends on ``x`` and ``z``,
    ``noise`` is pure noise, ``x`` is missing on a tenth of the rows and zero on another."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    z = rng.exponential(size=n)
    noise = rng.normal(size=n)
    logit = -6.5 + 2.5 * x + 1.2 * z
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    x[rng.random(n) < 0.1] = np.nan
    x[rng.random(n) < 0.1] = 0.0
    seconds = np.sort(rng.uniform(0, days * 86400, n))
    return pl.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n)],
            "timestamp": [START + timedelta(seconds=float(s)) for s in seconds],
            "card_id": [f"c{i}" for i in rng.integers(0, 200, n)],
            "x": x,
            "z": z,
            "noise": noise,
            "label": label,
        }
    )


@pytest.fixture(scope="session")
def table() -> pl.DataFrame:
    return feature_table()
