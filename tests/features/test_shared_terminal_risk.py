"""Terminal risk is the same in every process sharing the profiles.

Two engines share Redis profiles and a PostgreSQL log, as two ``vigil consume`` workers (or
two ``serve`` processes) do: a terminal's transactions are split between them by card, and
every fraud label reaches only one of them. Each must feed its model the terminal risk one
engine deciding everything would feed it, and that is the offline builder's value.
"""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
import redis

from vigil.config import Settings
from vigil.detect import Context, default_detectors
from vigil.domain import Feedback, Phase, Reason, Transaction
from vigil.engine import Engine
from vigil.features import TerminalRisk, online_features, transaction_features
from vigil.profiles import MemoryProfileStore
from vigil.profiles.redis_store import RedisProfileStore
from vigil.recorder import Recorder
from vigil.storage import Store
from vigil.storage.reference import ReferenceData

T0 = datetime(2024, 3, 1, 0, 0, 7, 123_456, tzinfo=UTC)
DELAY = timedelta(days=1)
RATES = ("terminal_fraud_rate_1d", "terminal_fraud_rate_7d", "terminal_fraud_rate_30d")


class _Capture:
    """Reads the terminal-risk features where the served model reads them; flags nothing."""

    codes: tuple[str, ...] = ()

    def __init__(self, seen: dict[str, tuple[float, ...]]) -> None:
        self.risk = TerminalRisk(label_delay=DELAY.total_seconds())
        self.seen = seen

    def detect(self, ctx: Context) -> list[Reason]:
        event = ctx.event
        if isinstance(event, Transaction) and event.phase is not Phase.START:
            values = online_features(ctx, risk=self.risk)
            self.seen[event.event_id] = tuple(values[name] for name in RATES)
        return []


def _history() -> tuple[list[dict], list[Feedback]]:
    """Ten days of withdrawals at two terminals by 20 cards, a fifth of them labelled fraud,
    each label arriving between an hour and three days after its transaction."""
    rng = random.Random(16)
    events: list[dict] = []
    labels: list[Feedback] = []
    at = T0
    for i in range(600):
        at += timedelta(seconds=rng.uniform(60, 2800))
        events.append(
            {
                "kind": "transaction",
                "event_id": f"e{i}",
                "transaction_id": f"t{i}",
                "type": "withdrawal",
                "phase": "single",
                "amount": 20.0 + i % 7,
                "card_id": f"c{i % 20}",
                "terminal_id": "ATM-1" if i % 5 else "ATM-2",
                "timestamp": at,
            }
        )
        if rng.random() < 0.2:
            known = at + timedelta(seconds=rng.uniform(3600, 3 * 86400))
            labels.append(
                Feedback(event_id=f"f{i}", target_event_id=f"e{i}", label="fraud", timestamp=known)
            )
    return events, labels


def _stream(events: list[dict], labels: list[Feedback]) -> list[dict | Feedback]:
    """Events and labels in time order (a label after the events of its instant)."""
    timed = [(e["timestamp"], 0, e) for e in events] + [(f.timestamp, 1, f) for f in labels]
    return [item for _, _, item in sorted(timed, key=lambda t: (t[0], t[1]))]


def _as_event(row: dict) -> dict:
    return {**row, "amount": f"{row['amount']:.2f}", "timestamp": row["timestamp"].isoformat()}


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_two_processes_feed_the_model_the_terminal_risk_of_one(
    store: Store, redis_client: redis.Redis
) -> None:
    events, labels = _history()
    prefix = f"vigil-risk-test:{uuid.uuid4().hex[:12]}:"
    shared: dict[str, tuple[float, ...]] = {}
    alone: dict[str, tuple[float, ...]] = {}
    workers = [
        Engine(
            ReferenceData(),
            RedisProfileStore(redis_client, prefix=prefix),
            Recorder(store),
            detectors=[*default_detectors(Settings().detectors), _Capture(shared)],
        )
        for _ in range(2)
    ]
    single = Engine(
        ReferenceData(),
        MemoryProfileStore(),
        Recorder(None),
        detectors=[*default_detectors(Settings().detectors), _Capture(alone)],
    )
    try:
        for item in _stream(events, labels):
            if isinstance(item, Feedback):
                for worker in workers:  # committed, as a decision is before it can be labelled
                    worker.recorder.flush()
                # Every label reaches the first worker only: half of them are on the other's
                # transactions.
                workers[0].learn(item)
                single.learn(item)
                continue
            # Partitioned by card, as the stream is: each card's events go to one worker.
            workers[int(item["card_id"][1:]) % 2].process(_as_event(item))
            single.process(_as_event(item))
    finally:
        RedisProfileStore(redis_client, prefix=prefix).clear()

    offline = transaction_features(
        pl.DataFrame(events),
        labels=pl.DataFrame(
            {
                "event_id": [f.target_event_id for f in labels],
                "known_at": [f.timestamp for f in labels],
            }
        ),
        label_delay=DELAY,
    )
    built = {row[0]: tuple(row[1:]) for row in offline.select("event_id", *RATES).iter_rows()}

    def differ(a: dict, b: dict) -> list[str]:
        return [
            i
            for i in a
            if any(
                x != y and not (math.isnan(x) and math.isnan(y))
                for x, y in zip(a[i], b[i], strict=True)
            )
        ]

    assert set(shared) == set(alone) == set(built)
    defined = [v for values in alone.values() for v in values if not math.isnan(v)]
    assert len(defined) > 1000 and sum(v > 0 for v in defined) > 500  # labels do count
    assert differ(alone, built) == []  # one process: online = offline
    assert differ(shared, alone) == []  # two processes: the same values as one
