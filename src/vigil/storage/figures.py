"""The figures of the workbench's overview, read from the log: decisions over time by action,
the reasons behind risk events, the age of the open queue, and the precision of closed cases
per reason (from analysts' labels).

Time is the events' own: "now" is the newest decision's event time, so a replayed history
reads as a live one.

>>> from vigil.storage import Store
>>> store = Store("sqlite://"); store.init_schema()
>>> decisions_over_time(store, "day").buckets, top_reasons(store), precision_by_reason(store)
([], [], [])
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

if TYPE_CHECKING:
    from vigil.storage import Store

# span → (how far back, bucket width, label format)
SPANS = {
    "hour": (timedelta(hours=1), timedelta(minutes=1), "%H:%M"),
    "day": (timedelta(days=1), timedelta(hours=1), "%H:00"),
    "month": (timedelta(days=30), timedelta(days=1), "%m-%d"),
}


@dataclass(frozen=True, slots=True)
class Series:
    buckets: list[str]
    by_action: dict[str, list[int]]
    per: str

    def total(self, action: str) -> int:
        return sum(self.by_action.get(action, ()))


def decisions_over_time(store: Store, span: str) -> Series:
    """Decisions per bucket (a minute, an hour or a day) by action over the span before now."""
    back, width, label = SPANS[span]
    per = {"hour": "minute", "day": "hour", "month": "day"}[span]
    now = store.latest_decision_time()
    if now is None:
        return Series([], {}, per)
    start = now - back
    n = int(back / width)
    d = store.tables.decisions
    query = select(d.c.event_time, d.c.action).where(d.c.event_time > start)
    counts: dict[str, list[int]] = {}
    with store.engine.connect() as conn:
        for at, action in conn.execute(query):
            i = min(n - 1, int((at - start) / width))
            counts.setdefault(action, [0] * n)[i] += 1
    order = ["block", "review", "step_up", "allow"]
    by_action = {a: counts[a] for a in order if a in counts}
    buckets = [(start + width * (i + 1)).strftime(label) for i in range(n)]
    return Series(buckets, by_action, per)


def _reason_rows(store: Store) -> list[tuple[str, str | None, str]]:
    t = store.tables.risk_events
    with store.engine.connect() as conn:
        return [
            (codes, label, status)
            for codes, label, status in conn.execute(
                select(t.c.reason_codes, t.c.analyst_label, t.c.status)
            )
        ]


def top_reasons(store: Store, n: int = 10) -> list[tuple[str, int]]:
    """The reason codes most often behind a risk event."""
    counted = Counter(
        code for codes, _, _ in _reason_rows(store) for code in codes.split(",") if code
    )
    return counted.most_common(n)


def precision_by_reason(store: Store, n: int = 10) -> list[tuple[str, float, int]]:
    """Per reason, the share of its closed, labelled cases an analyst called fraud (or dispute),
    with how many there were: ``(code, precision, cases)``, most cases first."""
    fraud: Counter[str] = Counter()
    labelled: Counter[str] = Counter()
    for codes, label, status in _reason_rows(store):
        if status != "closed" or label not in ("fraud", "legitimate", "dispute"):
            continue
        for code in codes.split(","):
            labelled[code] += 1
            fraud[code] += label != "legitimate"
    return [(c, fraud[c] / k, k) for c, k in labelled.most_common(n)]


def queue_age(store: Store) -> list[tuple[str, int]]:
    """Open and in-review cases by how long before now their event was."""
    t = store.tables.risk_events
    now = store.latest_decision_time()
    edges = [
        ("< 1 h", timedelta(hours=1)),
        ("1–6 h", timedelta(hours=6)),
        ("6–24 h", timedelta(days=1)),
        ("1–7 d", timedelta(days=7)),
        ("> 7 d", timedelta.max),
    ]
    counts = dict.fromkeys((name for name, _ in edges), 0)
    if now is None:
        return []
    query = select(t.c.event_time).where(t.c.status != "closed")
    with store.engine.connect() as conn:
        for (at,) in conn.execute(query):
            age = now - at
            counts[next(name for name, edge in edges if age < edge)] += 1
    return list(counts.items())
