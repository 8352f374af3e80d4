"""The record stage for a server: batches are committed by a writer, off the event loop.

:class:`~vigil.recorder.Recorder` writes a batch in the caller's thread. A server that did that
on its event loop would stall every request behind each commit; here the loop only swaps the
buffer out and a single writer commits it, in order. By default the writer is a process of its
own (``api.writer = "process"``): turning decisions into rows and inserting them is a third of
a server's CPU, and in a thread it would hold the interpreter lock the event loop needs. The
loop pays only for pickling the batch (about 20 µs an event) on its way over. A writer thread
(``"thread"``) serves an in-memory SQLite database, which no other process can open.

Until its commit lands a batch's decisions stay in memory ("in flight"), so a repeated event id
still finds its first decision in the gap between the buffer and the database. Each batch
lands as a :class:`Landed`: which of its decisions were not committed. The server answers its
requests only then (acknowledged means committed), and fails exactly the failed ones.

A batch that cannot be written is retried a few times (the database may be restarting), then
given up and counted through ``on_error``. A batch the database refuses for one of its
decisions is split until only that one is given up. A writer process that dies gives up the
batch it held and is replaced. A profile checkpoint handed over with a batch is written after
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
Landed(failed=frozenset(), checkpointed=False)
>>> rec.close(); store.get_decision("l-1").decision_id
'd-1'
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import (
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
)
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, IntegrityError

from vigil import logs
from vigil.api import lifeline
from vigil.domain import Decision, Login, Transaction
from vigil.privacy.keys import PrivacyKeys
from vigil.profiles.recovery import Rows, save_checkpoint
from vigil.recorder import Recorder
from vigil.storage import Store

log = logging.getLogger(__name__)

_ATTEMPTS = 5
_CHECKPOINT_SECONDS = 0.5
Writer = Literal["process", "thread"]
Event = Transaction | Login


@dataclass(frozen=True)
class Landed:
    """How a handed-over batch ended: the event ids whose decisions were not committed (none,
    normally), and whether the checkpoint that went with it was written."""

    failed: frozenset[str]
    checkpointed: bool


class BackgroundRecorder(Recorder):
    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = 5000,
        on_error: Callable[[int], None] | None = None,
        writer: Writer = "process",
    ) -> None:
        super().__init__(store, batch_size=batch_size)
        self.in_process = writer == "thread" or not _opened_by_others(store)
        self._writer = self._start_writer()
        # Written by the loop thread, emptied as batches land: single dict operations, atomic
        # under the GIL, so no lock is needed.
        self._inflight: dict[str, Decision] = {}
        self._inflight_events: dict[str, Event] = {}
        self._last: Future[Landed] | None = None
        # Batches handed to the writer (counted by the thread that flushes, the loop's) and
        # those it has finished (by the thread its futures complete on): one writer each, so
        # the difference needs no lock, and the loop reads it without first running the
        # landing callbacks, which wait for its next turn.
        self._handed = 0
        self._finished = 0
        self._on_error = on_error
        self.unrecorded = 0

    @property
    def buffered(self) -> int:
        """Decisions not yet committed (buffered or being written)."""
        return len(self._pending) + len(self._inflight)

    @property
    def at_writer(self) -> int:
        """Batches the writer holds now: the one it commits, and those waiting their turn."""
        return self._handed - self._finished

    def decided(self, event: Transaction | Login) -> Decision | None:
        found = self._inflight.get(event.event_id)
        return found if found is not None else super().decided(event)

    def first_event(self, event_id: str) -> Event | None:
        found = self._inflight_events.get(event_id)
        return found if found is not None else super().first_event(event_id)

    def flush(self, checkpoint: Rows | None = None) -> int:
        """Hand the buffered batch, and the profiles' ``checkpoint`` if given, to the writer;
        returns how many decisions the batch holds."""
        n = len(self._pending)
        if not n and checkpoint is None:
            return 0
        events, pending, standin = self._events, self._pending, self._standin
        self._events, self._pending, self._standin = {}, {}, []
        self._inflight.update(pending)
        self._inflight_events.update(events)
        batch = (
            list(events.values()),
            list(pending.values()),
            standin,
            checkpoint,
            self.store if self.in_process else None,
        )
        try:
            written = self._writer.submit(_write, *batch)
        except BrokenExecutor:
            log.error("the writer process died; starting another")
            self._writer = self._start_writer()
            written = self._writer.submit(_write, *batch)
        self._handed += 1
        landed: Future[Landed] = Future()
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
        self._writer.shutdown(wait=True)

    def _start_writer(self) -> Executor:
        if self.in_process:
            return ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigil-recorder")
        assert self.store is not None
        writer = ProcessPoolExecutor(
            max_workers=1,
            mp_context=_writer_context(),
            initializer=_open_store,
            initargs=(self.store.url, self.store.privacy, os.getpid()),
        )
        # Started now, not at the first batch: starting takes a second (the fork server
        # imports the storage code), and the first batch comes while requests wait.
        writer.submit(int).result()
        return writer

    def _landed(
        self, written: Future[Landed], pending: dict[str, Decision], landed: Future[Landed]
    ) -> None:
        """A batch is committed or given up: it leaves the in-flight maps, and what was given
        up is counted. ``landed`` completes after this bookkeeping, so a caller waiting on it
        sees the counts (a future's waiters wake before its callbacks run)."""
        self._finished += 1
        try:
            outcome = written.result()
        except Exception:  # the writer process died, or the batch could not be sent to it
            log.exception("giving up on %d decisions: the writer failed", len(pending))
            outcome = Landed(frozenset(pending), checkpointed=False)
        for event_id in pending:
            self._inflight.pop(event_id, None)
            self._inflight_events.pop(event_id, None)
        if outcome.failed:
            self.unrecorded += len(outcome.failed)
            if self._on_error is not None:
                self._on_error(len(outcome.failed))
        landed.set_result(outcome)


def _opened_by_others(store: Store) -> bool:
    """Whether another process can open this database (not an in-memory SQLite one)."""
    return store.dialect != "sqlite" or make_url(store.url).database not in (None, "", ":memory:")


# -- the writer (in the writer process, or the writer thread) ---------------------------------

_store: Store | None = None  # a writer process's own connection to the database


def _writer_context() -> Any:
    """Writer processes start from a small fork server that has imported the storage code,
    not as a fork of the server (its engine, threads and profiles) nor from a bare
    interpreter (a second of imports each)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["vigil.api.recording"])
    return context


def _open_store(url: str, privacy: PrivacyKeys, server: int) -> None:
    global _store
    # Ctrl-C and a service manager's SIGTERM reach the whole process group; the server
    # decides when its writer stops (after the last batch), so the writer ignores both. A
    # server that is killed outright cannot stop it: the writer watches it instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    lifeline.watch(server)
    logs.configure_from_env()  # as the server logs, when it configured its logs
    _store = Store(url, privacy=privacy, inline_checkpoints=False)
    if _store.dialect == "sqlite":
        threading.Thread(target=_checkpoints, args=(_store,), name="vigil-wal", daemon=True).start()


def _checkpoints(store: Store) -> None:
    """SQLite's log checkpoints, beside the commits rather than inside them: a commit that
    also copied the log into the database took a third longer, and every request of its
    batch waits for its commit."""
    while True:
        time.sleep(_CHECKPOINT_SECONDS)
        try:
            store.checkpoint_wal()
        except Exception:  # busy or failing now; the next one catches up
            log.exception("SQLite log checkpoint failed")


def _write(
    events: list[Event],
    decisions: list[Decision],
    standin: list[dict[str, Any]],
    checkpoint: Rows | None,
    store: Store | None,
) -> Landed:
    """Commit a batch, its StandIn inferences, then the checkpoint taken after it (only if
    the whole batch was committed: a checkpoint must not include an event the log lacks)."""
    store = store or _store
    assert store is not None
    failed = _record(store, events, decisions)
    if standin:
        try:  # the decisions stand without their inferences
            store.log_standin(standin)
        except Exception:
            log.exception("giving up on %d StandIn inferences", len(standin))
    checkpointed = False
    if checkpoint is not None and not failed:
        try:
            save_checkpoint(store, checkpoint)
            checkpointed = True
        except Exception:  # the next checkpoint takes these profiles again
            log.exception("the profile checkpoint was not written")
    return Landed(frozenset(failed), checkpointed)


def _record(store: Store, events: list[Event], decisions: list[Decision]) -> list[str]:
    """Commit a batch; retry what may pass later, isolate what never will. Returns the event
    ids of the decisions given up.

    A decision the database refuses outright (an integrity error, or a value it cannot hold)
    must not take the rest of its batch down with it: the batch is split in halves until the
    refused decision stands alone, and only it is given up.
    """
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            store.record(events, decisions)
            return []
        except (IntegrityError, DataError, ValueError, TypeError) as exc:
            if len(decisions) > 1:
                half = len(decisions) // 2
                return _record(store, events[:half], decisions[:half]) + _record(
                    store, events[half:], decisions[half:]
                )
            error = exc
            break
        except Exception as exc:
            error = exc
            if attempt == _ATTEMPTS:
                break
            log.warning("writing %d decisions failed; retrying", len(decisions))
            time.sleep(0.05 * 2**attempt)
    log.error("giving up on %d decisions", len(decisions), exc_info=error)
    return [d.event_id for d in decisions]
