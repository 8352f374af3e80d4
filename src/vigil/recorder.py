"""The record stage: every decision, with its event, is written to the store in batches.

Writes are buffered and flushed in one transaction per batch, so the hot path does no I/O per
event. Idempotency by event id: a repeated event returns its first decision, whether it was
taken in this process or in an earlier one, whatever timestamp it is re-sent with. At start
the recorder reads the ids of the stored decisions once into a Bloom filter (:class:`IdFilter`,
about 16 bits an id): an id it does not hold was never decided and needs no lookup, which is
nearly every new event; one it may hold is looked up (about 0.1 % of new ids, by chance). A replay
asks once per chunk with :meth:`Recorder.prefetch` instead of once per event. The ids that
*other* processes sharing the database decide after this one started are learnt as they are
committed, when :meth:`Recorder.follow` is called (a server with shared profiles calls it
every few seconds).

>>> from datetime import datetime, UTC
>>> from vigil.domain import Login
>>> r = Recorder(None)
>>> r.decided(Login(event_id="e-1", user_id="u", timestamp=datetime(2022, 1, 1, tzinfo=UTC)))
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from vigil.domain import Decision, Login, Transaction
from vigil.storage import log

if TYPE_CHECKING:
    from vigil.profiles.recovery import Checkpoint
    from vigil.storage import Store

_MASK = (1 << 64) - 1
_CHUNK = 100_000
# Log positions below the one the stored ids were read at that following reads again.
_FOLLOW_BACK = 10_000


class IdFilter:
    """A Bloom filter of event ids: ``in`` is False for every id never added, and True for an
    added one (and for about 0.1 % of the others). Python's ``hash`` of a string differs
    between processes, which is fine for a filter built afresh in each.

    Each false positive costs a server a database lookup on its event loop (milliseconds,
    while every other request waits), so the filter spends 16 bits an id, not the textbook 10
    (1 % false positives): 2 bytes an id is little beside the decisions themselves. Ids added
    past the number it was made for go into a new layer twice as large (a scalable Bloom
    filter), so the false positives stay near 0.1 % however many come.

    >>> ids = IdFilter([f"e-{i}" for i in range(1000)], 1000)
    >>> all(f"e-{i}" in ids for i in range(1000)), sum(f"x-{i}" in ids for i in range(1000)) < 10
    (True, True)
    >>> ids.add(f"n-{i}" for i in range(5000))
    >>> all(f"n-{i}" in ids for i in range(5000)), sum(f"y-{i}" in ids for i in range(1000)) < 10
    (True, True)
    """

    __slots__ = ("_bits_per_id", "_layers", "_room")

    # Fewer probes than bits_per_id · ln 2 (11): a new id stops at its first clear bit, and 6
    # still leaves about 0.1 % false positives.
    _K = 6
    # The smallest layer, in ids (128 KiB): a filter made for few grows in few steps.
    _MIN_IDS = 65_536

    def __init__(self, ids: Iterable[str], expected: int, *, bits_per_id: int = 16) -> None:
        self._bits_per_id = bits_per_id
        # Each layer: its bits and their number; ids are added to the last one, which has
        # room for ``_room`` more.
        self._layers: list[tuple[bytearray, int]] = []
        self._room = 0
        self._grow(max(expected, self._MIN_IDS))
        self.add(ids)

    def _grow(self, ids: int) -> None:
        size = ids * self._bits_per_id
        self._layers.append((bytearray((size + 7) // 8), size))
        self._room = ids

    def add(self, ids: Iterable[str]) -> None:
        """Add these ids: hashed one by one (Python's hash), placed in chunks with array
        arithmetic, the probes ``in`` makes."""
        remaining = iter(ids)
        while True:
            if self._room <= 0:
                self._grow(2 * self._layers[-1][1] // self._bits_per_id)
            hashes = [hash(i) & _MASK for i in itertools.islice(remaining, min(_CHUNK, self._room))]
            if not hashes:
                return
            self._room -= len(hashes)
            data, size = self._layers[-1]
            bits = np.frombuffer(data, dtype=np.uint8)
            h = np.array(hashes, dtype=np.uint64)
            n = np.uint64(size)
            position, step = h & np.uint64(0xFFFFFFFF), (h >> np.uint64(32)) | np.uint64(1)
            for _ in range(self._K):
                at = position % n
                np.bitwise_or.at(bits, at >> np.uint64(3), np.uint8(1) << (at & 7).astype(np.uint8))
                position += step

    def __contains__(self, event_id: object) -> bool:
        if not isinstance(event_id, str):
            return False
        # Inline, stopping at the first clear bit (a new id's usual case): the hot path.
        h = hash(event_id) & _MASK
        for bits, size in self._layers:
            position, step = h & 0xFFFFFFFF, (h >> 32) | 1
            for _ in range(self._K):
                i = position % size
                if not bits[i >> 3] & (1 << (i & 7)):
                    break
                position += step
            else:
                return True
        return False


def stored_ids(store: Store) -> tuple[IdFilter, int]:
    """The filter of every event id the store holds a decision for (one streamed query), and
    the log position it was read at."""
    from sqlalchemy import func, select

    column = store.tables.decisions.c.event_id
    with store.engine.connect() as conn:
        position = log.position(conn, store)
        count = conn.execute(select(func.count()).select_from(column.table)).scalar_one()
        rows = conn.execution_options(stream_results=True, yield_per=50_000).execute(select(column))
        return IdFilter(rows.scalars(), count), position


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
        # Ids with a stored decision when this recorder started, and then as :meth:`follow`
        # learns them; the log position they were read at, and until when (time.monotonic())
        # the ids known here may be trusted, when they are followed.
        self._stored, self._read_at = stored_ids(store) if store is not None else (None, 0)
        self._follower: log.LogFollower | None = None
        self._trusted_until: float | None = None
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
            if self._trusted_until is not None and time.monotonic() > self._trusted_until:
                return self.store.get_decision(event_id)  # following fell behind: ask
            return None
        return self.store.get_decision(event_id)

    def follow(self, trust_seconds: float) -> int:
        """Learn the ids of the decisions committed since the last call (since this recorder
        read the stored ids, at the first), by other processes sharing the database; returns
        how many. The ids known here are then trusted for ``trust_seconds``: should no later
        call succeed by then, every id not known is looked up in the store.

        Other processes' decisions need it once they share the profiles: a repeat reaching
        this process after the other's claim lapsed would otherwise be decided again."""
        assert self.store is not None and self._stored is not None
        started = time.monotonic()
        if self._follower is None:
            # From a little before the position the stored ids were read at: transactions
            # still committing then hold positions below it.
            self._follower = log.LogFollower(
                self.store, max(0, self._read_at - _FOLLOW_BACK), patience=2 * trust_seconds
            )
        ids = self._follower.poll()
        self._stored.add(ids)
        self._trusted_until = started + trust_seconds
        return len(ids)

    def first_event(self, event_id: str) -> Transaction | Login | None:
        """The event as recorded with the decision on its id (pseudonymised), if any: a
        repeat is answered with that decision only when it is the same event."""
        found = self._events.get(event_id) or self._kept_events.get(event_id)
        if found is not None or self.store is None:
            return found
        return log.stored_events(self.store, [event_id]).get(event_id)

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
