"""The record stage for a server: batches are committed by a writer, off the event loop.

:class:`~vigil.recorder.Recorder` writes a batch in the caller's thread. A server that did that
on its event loop would stall every request behind each commit; here the loop only swaps the
buffer out and a single writer (:mod:`vigil.api.writer`) commits it, in order. By default the
writer is a process of its own (``api.writer = "process"``): turning decisions into rows and
inserting them is a third of a server's CPU, and in a thread it would hold the interpreter lock
the event loop needs. The loop pays only for pickling the batch (about 20 µs an event) and
sending it. A writer thread (``"thread"``) serves an in-memory SQLite database, which no other
process can open.

Until its commit lands a batch's decisions stay in memory ("in flight"), so a repeated event id
still finds its first decision in the gap between the buffer and the database. Each batch
lands as a :class:`~vigil.api.writer.Landed`: which of its decisions were not committed. The
server answers its requests only then (acknowledged means committed), and fails exactly the
failed ones.

A batch that cannot be written is retried a few times (the database may be restarting), then
given up and counted through ``on_error``. A batch the database refuses for one of its
decisions is split until only that one is given up. A writer process that dies gives up the
batches it held and is replaced. A profile checkpoint handed over with a batch is written after
it, and only if all of it was committed (:mod:`vigil.profiles.recovery`).

>>> from datetime import datetime, UTC
>>> from vigil.domain import Decision, Login
>>> from vigil.storage import Store
>>> import tempfile
>>> store = Store(f"sqlite:///{tempfile.mkdtemp()}/v.db"); store.init_schema()
>>> rec = BackgroundRecorder(store)
>>> login = Login(event_id="l-1", user_id="u-1", timestamp=datetime(2022, 1, 1, tzinfo=UTC))
>>> rec.add(login, Decision(decision_id="d-1", event_id="l-1", event_kind="login", score=0,
...                         action="allow"))
>>> rec.flush(), rec.decided(login).decision_id
(1, 'd-1')
>>> rec.committed().result()
Landed(failed=frozenset(), checkpointed=False, position=None)
>>> rec.close(); store.get_decision("l-1").decision_id
'd-1'
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future

from sqlalchemy.engine import make_url

from vigil.api.writer import Answer, Landed, Writer, WriterGone, start_writer
from vigil.config import WriterKind
from vigil.domain import Decision, Login, Transaction
from vigil.profiles.recovery import Checkpoint, Cut
from vigil.recorder import Recorder
from vigil.storage import Store

log = logging.getLogger(__name__)

Event = Transaction | Login


class BackgroundRecorder(Recorder):
    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = 5000,
        on_error: Callable[[int], None] | None = None,
        on_committed: Callable[[list[str]], None] | None = None,
        writer: WriterKind = "process",
    ) -> None:
        super().__init__(store, batch_size=batch_size)
        self.in_process = writer == "thread" or not _opened_by_others(store)
        self._writer: Writer = start_writer(store, in_process=self.in_process)
        # Written by the loop thread, emptied as batches land: single dict operations, atomic
        # under the GIL, so no lock is needed.
        self._inflight: dict[str, Decision] = {}
        self._inflight_events: dict[str, Event] = {}
        self._last: Future[Landed] | None = None
        # Batches handed to the writer (counted by the thread that flushes, the loop's) and
        # those it has finished (by the thread that reads its answers): one writer each, so
        # the difference needs no lock.
        self._handed = 0
        self._finished = 0
        self._on_error = on_error
        self._on_committed = on_committed
        self.unrecorded = 0

    @property
    def buffered(self) -> int:
        """Decisions not yet committed (buffered or being written)."""
        return len(self._pending) + len(self._inflight)

    @property
    def at_writer(self) -> int:
        """Batches the writer holds now: the one it commits, and those waiting their turn.

        Reads the answers that have arrived first, so that a loop deciding a burst of requests
        sees the writer's room at once, not at its next turn."""
        self._writer.poll()
        return self._handed - self._finished

    def decided(self, event: Transaction | Login) -> Decision | None:
        found = self._inflight.get(event.event_id)
        return found if found is not None else super().decided(event)

    def first_event(self, event_id: str) -> Event | None:
        found = self._inflight_events.get(event_id)
        return found if found is not None else super().first_event(event_id)

    def flush(self, checkpoint: Checkpoint | Cut | None = None) -> int:
        """Hand the buffered batch, and the profiles' ``checkpoint`` (or a checkpoint's cut)
        if given, to the writer; returns how many decisions the batch holds."""
        n = len(self._pending)
        if not n and checkpoint is None:
            return 0
        events, pending, standin = self._events, self._pending, self._standin
        self._events, self._pending, self._standin = {}, {}, []
        self._inflight.update(pending)
        self._inflight_events.update(events)
        batch = (list(events.values()), list(pending.values()), standin, checkpoint)
        try:
            written = self._writer.submit(batch)
        except WriterGone:
            self._replace_writer()
            written = self._writer.submit(batch)
        self._handed += 1
        landed = Answer(self._writer.read_until)
        written.add_done_callback(lambda done: self._landed(done, pending, landed))
        self._last = landed
        return n

    def committed(self) -> Future[Landed] | None:
        """The future of the last batch handed over: once it is done, every earlier one is."""
        return self._last

    def drain(self) -> None:
        """Flush and wait until everything handed over is committed (or given up)."""
        self.flush()
        if self._last is not None:
            self._last.result()

    def close(self) -> None:
        self.drain()
        self._writer.close()

    def _replace_writer(self) -> None:
        log.error("the writer process died; starting another")
        assert self.store is not None
        self._writer = start_writer(self.store, in_process=self.in_process)

    def _landed(
        self, written: Future[Landed], pending: dict[str, Decision], landed: Future[Landed]
    ) -> None:
        """A batch is committed or given up: it leaves the in-flight maps, and what was given
        up is counted. ``landed`` completes after this bookkeeping, so a caller waiting on it
        sees the counts (a future's waiters wake before its callbacks run)."""
        self._finished += 1
        try:
            outcome = written.result()
        except Exception:  # the writer process died, or failed on the batch
            log.exception("giving up on %d decisions: the writer failed", len(pending))
            outcome = Landed(frozenset(pending), checkpointed=False)
        for event_id in pending:
            self._inflight.pop(event_id, None)
            self._inflight_events.pop(event_id, None)
        if outcome.failed:
            self.unrecorded += len(outcome.failed)
            if self._on_error is not None:
                self._on_error(len(outcome.failed))
        if self._on_committed is not None:
            self._on_committed([e for e in pending if e not in outcome.failed])
        landed.set_result(outcome)


def _opened_by_others(store: Store) -> bool:
    """Whether another process can open this database (not an in-memory SQLite one)."""
    return store.dialect != "sqlite" or make_url(store.url).database not in (None, "", ":memory:")
