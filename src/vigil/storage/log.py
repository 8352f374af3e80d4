"""The event log: stored events with their decisions, in the order they were decided.

The event tables and ``decisions`` are the source of truth; profiles are a cache derived from
them. Each decision carries its log position (``decisions.seq``), numbered as its batch is
committed, in the order the engine decided (and so applied to the profiles). A profile
checkpoint records the position it includes; recovery re-applies what comes after it
(:mod:`vigil.profiles.recovery`).

>>> import tempfile
>>> from datetime import datetime, UTC
>>> from vigil.domain import Decision, Login
>>> from vigil.storage import Store
>>> store = Store(f"sqlite:///{tempfile.mkdtemp()}/v.db"); store.init_schema()
>>> logins = [Login(event_id=f"l-{i}", user_id="u", timestamp=datetime(2022, 1, 1, i, tzinfo=UTC))
...           for i in range(3)]
>>> store.record(logins[::-1], [Decision(decision_id=f"d-{i}", event_id=f"l-{i}",
...     event_kind="login", score=0, action="allow") for i in (2, 1, 0)])
>>> [(seq, event.event_id, action.value) for seq, event, action in decided_since(store, 1)]
[(2, 'l-1', 'allow'), (3, 'l-0', 'allow')]
>>> with store.engine.connect() as conn: position(conn, store)
3
"""

from __future__ import annotations

import functools
import heapq
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, Table, func, select, text

from vigil.domain import Action, Login, Transaction
from vigil.storage import rows as R
from vigil.storage.schema import DECISION_SEQUENCE

if TYPE_CHECKING:
    from vigil.storage import Store

Event = Transaction | Login

_CHUNK = 5_000
_IN_CHUNK = 500


def next_positions(conn: Connection, store: Store, n: int) -> list[int]:
    """``n`` new log positions, ascending, for the decisions a transaction is inserting.

    On SQLite the caller holds the database's write lock (``BEGIN IMMEDIATE``), so counting on
    from the largest stored one is safe; on PostgreSQL several processes may insert at once,
    so the numbers come from a sequence.
    """
    if n == 0:
        return []
    if store.dialect == "postgresql":
        query = text(f"SELECT nextval('{DECISION_SEQUENCE}') FROM generate_series(1, :n)")
        return sorted(conn.execute(query, {"n": n}).scalars())
    start = position(conn, store) + 1
    return list(range(start, start + n))


def position(conn: Connection, store: Store) -> int:
    """The newest committed log position (0 for an empty log)."""
    return conn.execute(_position_query(store.tables.decisions)).scalar_one()


@functools.cache
def _position_query(decisions: Table) -> Select[tuple[int]]:
    # Built once: every commit asks, and building the statement cost more than running it.
    return select(func.coalesce(func.max(decisions.c.seq), 0))


def decided_since(
    store: Store, after: int, *, batch_size: int = _CHUNK
) -> Iterator[tuple[int, Event, Action]]:
    """Every decided event with a log position after ``after``, in log order, with the action
    it got: what a profile checkpoint at ``after`` does not include yet."""
    d = store.tables.decisions
    streams = []
    with store.engine.connect() as conn:
        for table, convert in (
            (store.tables.transactions, R.transaction_from_row),
            (store.tables.logins, R.login_from_row),
        ):
            query = (
                select(d.c.seq, d.c.action, table)
                .join(table, table.c.event_id == d.c.event_id)
                .where(d.c.seq > after)
                .order_by(d.c.seq)
                .execution_options(yield_per=batch_size)
            )
            streams.append(_numbered(conn.execute(query).mappings(), convert))
        yield from heapq.merge(*streams, key=lambda item: item[0])


class LogFollower:
    """The event ids of the decisions committed to the log after position ``after``, a poll at
    a time, each once.

    Positions need not commit in order: on PostgreSQL a sequence numbers them before their
    transaction commits, so a position that a later one overtook is asked for again at each
    poll until it shows, or until ``patience`` seconds have passed (its transaction rolled
    back, and the position is never used).

    >>> import tempfile
    >>> from datetime import datetime, UTC
    >>> from vigil.domain import Decision, Login
    >>> from vigil.storage import Store
    >>> store = Store(f"sqlite:///{tempfile.mkdtemp()}/v.db"); store.init_schema()
    >>> def decide(event_id):
    ...     store.record([Login(event_id=event_id, user_id="u", timestamp=datetime(2022, 1, 1,
    ...         tzinfo=UTC))], [Decision(decision_id=f"d-{event_id}", event_id=event_id,
    ...         event_kind="login", score=0, action="allow")])
    >>> decide("l-1")
    >>> follower = LogFollower(store, after=1)
    >>> decide("l-2"); decide("l-3")
    >>> follower.poll(), follower.poll()
    (['l-2', 'l-3'], [])
    """

    def __init__(self, store: Store, after: int, *, patience: float = 600.0) -> None:
        self.store = store
        self.after = after
        self.patience = patience
        # Positions below the newest seen that have not shown yet, with when they were missed.
        self.missing: dict[int, float] = {}

    def poll(self) -> list[str]:
        """The ids committed since the last poll."""
        d = self.store.tables.decisions
        rows: list[tuple[int, str]] = []
        ids = select(d.c.seq, d.c.event_id)
        with self.store.engine.connect() as conn:
            rows.extend((seq, e) for seq, e in conn.execute(ids.where(d.c.seq > self.after)))
            missing = list(self.missing)
            for start in range(0, len(missing), _IN_CHUNK):
                chunk = missing[start : start + _IN_CHUNK]
                rows.extend((seq, e) for seq, e in conn.execute(ids.where(d.c.seq.in_(chunk))))
        now = time.monotonic()
        seen = {seq for seq, _ in rows}
        top = max(seen, default=self.after)
        for seq in range(self.after + 1, top):
            if seq not in seen:
                self.missing[seq] = now
        self.after = max(top, self.after)
        self.missing = {
            seq: since
            for seq, since in self.missing.items()
            if seq not in seen and now - since < self.patience
        }
        return [event_id for _, event_id in sorted(rows)]


def stored_events(store: Store, event_ids: Sequence[str]) -> dict[str, Event]:
    """The stored transactions and logins with these ids (as stored: pseudonymised)."""
    out: dict[str, Event] = {}
    ids = list(dict.fromkeys(event_ids))
    with store.engine.connect() as conn:
        for table, convert in (
            (store.tables.transactions, R.transaction_from_row),
            (store.tables.logins, R.login_from_row),
        ):
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start : start + _IN_CHUNK]
                for row in conn.execute(select(table).where(table.c.event_id.in_(chunk))):
                    out[row.event_id] = convert(row._mapping)
    return out


def _numbered(
    rows: Iterator[Any], convert: Callable[[Any], Event]
) -> Iterator[tuple[int, Event, Action]]:
    for row in rows:
        yield row["seq"], convert(row), Action(row["action"])
