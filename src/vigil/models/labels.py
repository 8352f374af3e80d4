"""Fraud labels as the engine learns them: feedback arriving in the event stream.

A replay of a labelled history (a benchmark, a parity test) sends each fraud label to the
engine as ``fraud`` feedback some time after its transaction, in one event-time stream with the
events: :func:`fraud_feedback` picks the labelled completed transactions and when each label
arrives, :func:`vigil.replay.in_time_order` merges the two, and :func:`run` sends events to
``Engine.process`` and feedback to ``Engine.learn``. The same frame, with its ``known_at``, is
what the offline builder reads as labels (:func:`vigil.features.transaction_features`).

>>> from datetime import datetime, timedelta, UTC
>>> import polars as pl
>>> t = datetime(2022, 1, 1, tzinfo=UTC)
>>> events = pl.DataFrame({"kind": ["transaction"] * 3, "event_id": ["s", "e", "x"],
...     "transaction_id": ["t1", "t1", "t2"], "phase": ["start", "end", "single"],
...     "timestamp": [t, t + timedelta(minutes=1), t + timedelta(hours=1)]})
>>> labels = pl.DataFrame({"event_id": ["s"], "transaction_id": ["t1"]})
>>> fraud_feedback(events, labels, [timedelta(days=2)]).rows()
[('e', 't1', datetime.datetime(2022, 1, 3, 0, 1, tzinfo=zoneinfo.ZoneInfo(key='UTC')))]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import polars as pl

from vigil.domain import Decision, Feedback, Login, Transaction

Event = Transaction | Login


def fraud_feedback(
    events: pl.DataFrame, labels: pl.DataFrame, after: Sequence[timedelta]
) -> pl.DataFrame:
    """``event_id, transaction_id, known_at`` of each labelled completed transaction (named
    by its own or its start's event id, or its transaction id), its label arriving
    ``after[i % len(after)]`` after it, by turns in event order."""
    if not after:
        raise ValueError("after: give at least one delay")
    named = pl.col("event_id").is_in(labels["event_id"].cast(pl.String).implode())
    if "transaction_id" in labels.columns:
        tids = labels["transaction_id"].cast(pl.String).drop_nulls()
        named = named | pl.col("transaction_id").is_in(tids.implode())
    done = events.filter(
        (pl.col("kind") == "transaction") & (pl.col("phase") != "start") & named
    ).select("event_id", "transaction_id", "timestamp")
    delays = pl.Series([after[i % len(after)] for i in range(done.height)], dtype=pl.Duration)
    return done.with_columns(known_at=pl.col("timestamp") + delays).drop("timestamp")


def feedback_items(frame: pl.DataFrame, source: str = "replay") -> list[Feedback]:
    """The rows of :func:`fraud_feedback` as ``fraud`` feedback, in arrival order."""
    rows = frame.sort("known_at", maintain_order=True).select("event_id", "known_at").rows()
    return [
        Feedback(
            event_id=f"fb-{target}",
            target_event_id=target,
            label="fraud",
            timestamp=known_at,
            source=source,
        )
        for target, known_at in rows
    ]


def run(engine: Any, stream: Iterable[Event | Feedback]) -> tuple[list[Decision], int]:
    """Send each event to ``engine.process`` and each feedback to ``engine.learn``; the
    decisions and how many labels the engine counted."""
    decisions: list[Decision] = []
    learnt = 0
    for item in stream:
        if isinstance(item, Feedback):
            learnt += engine.learn(item)
        else:
            decisions.append(engine.process(item))
    return decisions, learnt
