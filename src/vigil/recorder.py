"""The record stage: every decision, with its event, is written to the store in batches.

Writes are buffered and flushed in one transaction per batch, so the hot path does no I/O per
event. Idempotency by event id: a repeated event returns its first decision, whether it was
taken in this process or in an earlier one, whatever timestamp it is re-sent with. At start
the recorder reads the ids of the stored decisions once into a Bloom filter (:class:`IdFilter`,
about 16 bits an id): an id it does not hold was never decided and needs no lookup, which is
nearly every new event; one it may hold is looked up (about 0.1 % of new ids, by chance). A replay
asks once per chunk with :meth:`Recorder.prefetch` instead of once per event. Not covered:
an id decided by *another* process sharing the database after this one started (the
database's unique key refuses its second decision; see :mod:`vigil.api.recording`).

>>> from datetime import datetime, UTC
>>> from vigil.domain import Login
>>> r = Recorder(None)
>>> r.decided(Login(event_id="e-1", user_id="u", timestamp=datetime(2022, 1, 1, tzinfo=UTC)))
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from vigil.domain import Decision, Login, Transaction

if TYPE_CHECKING:
    from vigil.profiles.recovery import Checkpoint
    from vigil.storage import Store

_MASK = (1 << 64) - 1
_CHUNK = 100_000


class IdFilter:
    """A Bloom filter of event ids: ``in`` is False for every id never added, and True for an
    added one (and for about 0.1 % of the others). Python's ``hash`` of a string differs
    between processes, which is fine for a filter built afresh in each.

    Each false positive costs a server a database lookup on its event loop (milliseconds,
    while every other request waits), so the filter spends 16 bits an id, not the textbook 10
    (1 % false positives): 2 bytes an id is little beside the decisions themselves.

    >>> ids = IdFilter([f"e-{i}" for i in range(1000)], 1000)
    >>> all(f"e-{i}" in ids for i in range(1000)), sum(f"x-{i}" in ids for i in range(1000)) < 10
    (True, True)
    """

    __slots__ = ("_bits", "_k", "_size")

    def __init__(self, ids: Iterable[str], expected: int, *, bits_per_id: int = 16) -> None:
        self._size = max(64, expected * bits_per_id)
        # Fewer probes than bits_per_id · ln 2 (11): a new id stops at its first clear bit,
        # and 6 still leaves about 0.1 % false positives.
        self._k = 6
        bits = np.zeros((self._size + 7) // 8, dtype=np.uint8)
        # Built at a server's start from every stored id: hashed one by one (Python's hash),
        # placed in chunks with array arithmetic, the probes __contains__ makes.
        remaining = iter(ids)
        size = np.uint64(self._size)
        while hashes := [hash(i) & _MASK for i in itertools.islice(remaining, _CHUNK)]:
            h = np.array(hashes, dtype=np.uint64)
            position, step = h & np.uint64(0xFFFFFFFF), (h >> np.uint64(32)) | np.uint64(1)
            for _ in range(self._k):
                at = position % size
                np.bitwise_or.at(bits, at >> np.uint64(3), np.uint8(1) << (at & 7).astype(np.uint8))
                position += step
        self._bits = bytearray(bits.tobytes())

    def __contains__(self, event_id: object) -> bool:
        if not isinstance(event_id, str):
            return False
        # Inline, stopping at the first clear bit (a new id's usual case): the hot path.
        h = hash(event_id) & _MASK
        position, step, size, bits = h & 0xFFFFFFFF, (h >> 32) | 1, self._size, self._bits
        for _ in range(self._k):
            i = position % size
            if not bits[i >> 3] & (1 << (i & 7)):
                return False
            position += step
        return True


def stored_ids(store: Store) -> IdFilter:
    """The filter of every event id the store holds a decision for (one streamed query)."""
    from sqlalchemy import func, select

    column = store.tables.decisions.c.event_id
    with store.engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(column.table)).scalar_one()
        rows = conn.execution_options(stream_results=True, yield_per=50_000).execute(select(column))
        return IdFilter(rows.scalars(), count)


class Recorder:
    def __init__(self, store: Store | None, *, batch_size: int = 5000) -> None:
        self.store = store
        self.batch_size = batch_size
        self._events: dict[str, Transaction | Login] = {}
        self._pending: dict[str, Decision] = {}
        # Without a store, decisions and their events stay here; with one, only their ids do.
        self._kept: dict[str, Decision] = {}
        self._kept_events: dict[str, Transaction | Login] = {}
        self._decided: set[str] = set()
        # Ids already looked up in the store (by prefetch) and their earlier decisions.
        self._checked: set[str] = set()
        self._earlier: dict[str, Decision] = {}
        # Ids with a stored decision when this recorder started.
        self._stored = stored_ids(store) if store is not None else None
        # StandIn inferences (standin_inferences rows) taken with the buffered decisions.
        self._standin: list[dict[str, Any]] = []

    def prefetch(self, event_ids: Iterable[str]) -> None:
        """Look up a chunk of ids in the store at once, so :meth:`decided` needs no I/O."""
        ids = [i for i in event_ids if i not in self._decided]
        self._earlier = self.store.get_decisions(ids) if self.store is not None and ids else {}
        self._checked = set(ids)

    def decided(self, event: Transaction | Login) -> Decision | None:
        """The decision already taken on this event's id, if any."""
        event_id = event.event_id
        found = self._pending.get(event_id) or self._kept.get(event_id)
        if found is not None:
            return found
        found = self._earlier.get(event_id)
        if found is not None or self.store is None:
            return found
        if event_id in self._decided:
            return self.store.get_decision(event_id)
        if event_id in self._checked or self._stored is None or event_id not in self._stored:
            return None
        return self.store.get_decision(event_id)

    def first_event(self, event_id: str) -> Transaction | Login | None:
        """The event as recorded with the decision on its id (pseudonymised), if any: a
        repeat is answered with that decision only when it is the same event."""
        found = self._events.get(event_id) or self._kept_events.get(event_id)
        if found is not None or self.store is None:
            return found
        from vigil.storage.log import stored_events

        return stored_events(self.store, [event_id]).get(event_id)

    def add(self, event: Transaction | Login, decision: Decision) -> None:
        self._events[event.event_id] = event
        self._pending[event.event_id] = decision
        if self.store is None:
            self._kept[event.event_id] = decision
            self._kept_events[event.event_id] = event
        else:
            self._decided.add(event.event_id)
        if len(self._pending) >= self.batch_size:
            self.flush()

    def add_standin(self, row: dict[str, Any]) -> None:
        """A StandIn inference of the event being decided, written with its decision."""
        if self.store is not None:
            self._standin.append(row)

    def flush(self, checkpoint: Checkpoint | None = None) -> int:
        """Write the buffered events and decisions in one transaction, then the profiles'
        ``checkpoint`` if given (:mod:`vigil.profiles.recovery`); returns how many decisions."""
        n = len(self._pending)
        if self.store is not None:
            if n:
                with self.store.transaction() as conn:
                    self.store.record(
                        list(self._events.values()), list(self._pending.values()), conn
                    )
                    if self._standin:
                        self.store.log_standin(self._standin, conn)
            if checkpoint is not None:
                checkpoint.save(self.store)
        self._events, self._pending, self._standin = {}, {}, []
        return n
