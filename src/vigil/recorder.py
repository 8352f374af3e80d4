"""The record stage: every decision, with its event, is written to the store in batches.

Writes are buffered and flushed in one transaction per batch, so the hot path does no I/O per
event. Idempotency by event id: a repeated event returns its first decision, whether it was
taken in this process or in an earlier one. An event carries its own time, so one later than
every decision in the store when the process started cannot have been decided before and
needs no lookup; older ones are looked up (a replay asks once per chunk with
:meth:`Recorder.prefetch` instead of once per event).

>>> from datetime import datetime, UTC
>>> from vigil.domain import Login
>>> r = Recorder(None)
>>> r.decided(Login(event_id="e-1", user_id="u", timestamp=datetime(2022, 1, 1, tzinfo=UTC)))
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from vigil.domain import Decision, Login, Transaction

if TYPE_CHECKING:
    from vigil.storage import Store


class Recorder:
    def __init__(self, store: Store | None, *, batch_size: int = 5000) -> None:
        self.store = store
        self.batch_size = batch_size
        self._events: list[Transaction | Login] = []
        self._pending: dict[str, Decision] = {}
        # Without a store, decisions stay here; with one, only their ids do.
        self._kept: dict[str, Decision] = {}
        self._decided: set[str] = set()
        # Ids already looked up in the store (by prefetch) and their earlier decisions.
        self._checked: set[str] = set()
        self._earlier: dict[str, Decision] = {}
        self._horizon = store.latest_decision_time() if store is not None else None
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
        if event_id in self._checked or self._horizon is None or event.timestamp > self._horizon:
            return None
        return self.store.get_decision(event_id)

    def add(self, event: Transaction | Login, decision: Decision) -> None:
        self._events.append(event)
        self._pending[event.event_id] = decision
        if self.store is None:
            self._kept[event.event_id] = decision
        else:
            self._decided.add(event.event_id)
        if len(self._pending) >= self.batch_size:
            self.flush()

    def add_standin(self, row: dict[str, Any]) -> None:
        """A StandIn inference of the event being decided, written with its decision."""
        if self.store is not None:
            self._standin.append(row)
            if len(self._standin) >= self.batch_size:
                # A recorder that flushes decisions its own way (the API's background writer)
                # still writes these, a batch at a time.
                self.store.log_standin(self._standin)
                self._standin = []

    def flush(self) -> int:
        """Write the buffered events and decisions in one transaction; returns how many."""
        n = len(self._pending)
        if n and self.store is not None:
            with self.store.transaction() as conn:
                self.store.record(self._events, list(self._pending.values()), conn)
                if self._standin:
                    self.store.log_standin(self._standin, conn)
        self._events, self._pending, self._standin = [], {}, []
        return n
