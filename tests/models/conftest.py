"""Small labelled feature tables for the model tests: known signal, known imbalance; a small
synthetic bank with a promoted transaction model, for the tests of the model in the engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from vigil.config import Settings
from vigil.domain import Decision
from vigil.engine import Engine
from vigil.features import transaction_features
from vigil.features.io import read_reference
from vigil.ingest import iter_event_file
from vigil.models.labels import feedback_items, fraud_feedback, run
from vigil.models.pipeline import save_result, transaction_feature_names
from vigil.models.registry import Registry
from vigil.models.train import TrainOptions, train
from vigil.replay import in_time_order
from vigil.simulate import BankConfig, generate

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


DELAY = timedelta(days=1)


def decide_all(engine: Engine, bank: Path) -> list[Decision]:
    """Every event through the engine, and each fraud label as feedback arriving one label
    delay after its transaction (as the offline table assumes), in one time-ordered stream."""
    feedback = fraud_feedback(
        pl.read_parquet(bank / "events.parquet"), pl.read_csv(bank / "labels.csv"), [DELAY]
    )
    events = iter_event_file(bank / "events.parquet")
    decisions, learnt = run(engine, in_time_order(events, feedback_items(feedback)))
    assert learnt > 20  # terminal risk is not all zero
    return decisions


@pytest.fixture(scope="session")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bank")
    generate(BankConfig(cards=300, days=20, fraud_rate=0.08, seed=11), out)
    return out


@pytest.fixture(scope="session")
def trained(bank: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, pl.DataFrame]:
    events = pl.read_parquet(bank / "events.parquet")
    labels = pl.read_csv(bank / "labels.csv")
    table = transaction_features(
        events, labels=labels, label_delay=DELAY, reference=read_reference(bank)
    )
    # The split gap is the label delay: the engine measures terminal risk with it too.
    result = train(table, transaction_feature_names(), TrainOptions(gap=DELAY))
    root = tmp_path_factory.mktemp("registry")
    registry = Registry(root)
    registry.promote("transaction", save_result(registry, result))
    return Settings(models={"registry_dir": root, "reason_at": 0.5}), table
