"""Replay: run a history of events through the engine in event-time order and summarise.

The same engine as live traffic; decisions are written to the store in batches, and after each
chunk the in-process profiles changed by it are checkpointed. A replay killed at any point and
run again (after :func:`vigil.profiles.recovery.recover`) skips what was decided and ends in the
state of an uninterrupted one.
"""

from __future__ import annotations

import heapq
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from vigil.domain import Decision, Feedback, Login, Transaction
from vigil.engine import Engine, EventInProgress
from vigil.profiles import MemoryProfileStore
from vigil.profiles.recovery import Checkpoint

CHUNK = 5000
# Longer than a claim in progress lasts when its process dies (vigil.profiles.redis_store).
_CLAIM_LAPSE_SECONDS = 30.0


@dataclass
class ReplaySummary:
    events: int = 0
    duplicates: int = 0
    # Feedback in the stream, and the labels the engine's label-fed state counted of it.
    feedback: int = 0
    labels_learnt: int = 0
    seconds: float = 0.0
    actions: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    latencies_us: list[float] = field(default_factory=list)

    def add(self, decision: Decision) -> None:
        self.actions[decision.action.value] += 1
        for reason in decision.reasons:
            self.reasons[reason.code] += 1
        self.latencies_us.append(decision.latency_us)

    def as_dict(self) -> dict:
        lat = np.asarray(self.latencies_us) if self.latencies_us else np.zeros(1)
        return {
            "events": self.events,
            "duplicates": self.duplicates,
            "feedback": self.feedback,
            "labels_learnt": self.labels_learnt,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.events / self.seconds, 1) if self.seconds else 0.0,
            "latency_p50_us": round(float(np.percentile(lat, 50)), 1),
            "latency_p99_us": round(float(np.percentile(lat, 99)), 1),
            "actions": dict(self.actions.most_common()),
            "flags_by_reason": dict(self.reasons.most_common()),
        }


def in_event_time_order(path: Path, timestamp_column: str = "timestamp") -> Path:
    """The file itself when its rows are in event-time order, else a sorted copy of it.

    Windows are driven by event time, so a replay must see events in that order; the sort is
    stable, so events with equal times keep their file order (a start before its end). Only
    the timestamp column is read to decide; the whole file only when it must be sorted.
    """
    is_parquet = path.suffix == ".parquet"
    scan = pl.scan_parquet(path) if is_parquet else pl.scan_csv(path, infer_schema=False)
    if timestamp_column not in scan.collect_schema().names():
        return path
    time = pl.col(timestamp_column)
    if scan.collect_schema()[timestamp_column] == pl.Utf8:
        time = time.str.to_datetime(time_zone="UTC", strict=False)
    check = scan.select(
        unparsed=time.null_count(), backwards=(time.diff() < pl.duration()).any()
    ).collect()
    # Unparseable times are left for the importer to report with their line numbers.
    if check["unparsed"][0] or not check["backwards"][0]:
        return path
    ordered = scan.with_columns(_order=time).sort("_order", maintain_order=True).drop("_order")
    target = Path(tempfile.mkdtemp(prefix="vigil-replay-")) / path.name
    if is_parquet:
        ordered.sink_parquet(target)
    else:
        ordered.sink_csv(target)
    return target


def in_time_order(
    events: Iterable[Transaction | Login], feedback: Iterable[Feedback]
) -> Iterator[Any]:
    """Events (in event-time order) and feedback (in arrival order) as one stream; feedback
    comes after the events of its own instant."""
    keyed_events = ((e.timestamp, 0, i, e) for i, e in enumerate(events))
    keyed_feedback = ((f.timestamp, 1, i, f) for i, f in enumerate(feedback))
    for *_, item in heapq.merge(keyed_events, keyed_feedback, key=lambda x: x[:3]):
        yield item


def _chunks(items: Iterable[Any]) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, CHUNK)):
        yield chunk


def _decide(engine: Engine, event: Transaction | Login, *, claim: bool) -> Decision:
    """Decide; an event still claimed by a replay that was killed mid-decision is waited for
    until that claim lapses (seconds), then decided."""
    deadline = time.monotonic() + _CLAIM_LAPSE_SECONDS
    while True:
        try:
            return engine.decide(event, claim=claim)
        except EventInProgress:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def replay(
    engine: Engine,
    events: Iterable[Transaction | Login | Feedback],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Decide on every event (already in event-time order), flush, and return the summary.

    Feedback in the stream (:func:`in_time_order`) is learnt when it arrives, as a live
    engine learns it, and stored once the decisions are.
    """
    summary = ReplaySummary()
    started = time.perf_counter()
    recorder = engine.recorder
    profiles = engine.profiles
    in_process = isinstance(profiles, MemoryProfileStore) and recorder.store is not None
    # Shared (Redis) profiles are written as each event is decided, before its chunk is
    # committed: claims let a rerun after a crash record what they already hold, once.
    shared = not isinstance(profiles, MemoryProfileStore)
    feedback: list[Feedback] = []
    for chunk in _chunks(events):
        recorder.prefetch([e.event_id for e in chunk if not isinstance(e, Feedback)])
        for event in chunk:
            if isinstance(event, Feedback):
                feedback.append(event)
                summary.labels_learnt += engine.learn(event)
                continue
            if recorder.decided(event) is not None:
                summary.duplicates += 1
                continue
            summary.events += 1
            summary.add(_decide(engine, event, claim=shared))
        recorder.flush(Checkpoint(profiles.changed()) if in_process else None)
        if on_progress is not None:
            on_progress(sum(not isinstance(e, Feedback) for e in chunk))
    if feedback and recorder.store is not None:
        summary.feedback = recorder.store.insert_feedback(feedback)
    summary.seconds = time.perf_counter() - started
    return summary
