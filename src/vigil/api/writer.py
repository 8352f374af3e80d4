"""The recorder's writer: commits each batch it is handed, in order, and answers how it landed.

:class:`WriterProcess` commits in a process of its own. Batches cross a socket pair: the
server sends each from the thread that flushes (the event loop's), and reads the answers where
it waits for them — on the event loop, which watches the socket as it watches its requests
(``add_reader``), or in whichever thread waits on an answer when no loop watches. So handing a
batch over wakes no thread of the server's: a ``ProcessPoolExecutor`` (what this replaced)
woke its manager and feeder threads for every batch, and their turns at the interpreter lock
cost the event loop about 0.4 ms a batch (``python bench/handoff.py``). In the writer process
one thread reads the socket, so a sender never waits for a commit to finish, and another
commits.

:class:`WriterThread` commits in a thread of the server's own, for an in-memory SQLite
database, which no other process can open.

Both hand out :class:`Answer` futures: waiting on one (``result()``) also reads the answers
that have arrived, so it never waits for a reader that is not there.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Decision, Login
>>> from vigil.storage import Store
>>> import tempfile
>>> store = Store(f"sqlite:///{tempfile.mkdtemp()}/v.db"); store.init_schema()
>>> writer = WriterProcess(store)
>>> login = Login(event_id="l-1", user_id="u-1", timestamp=datetime(2022, 1, 1, tzinfo=UTC))
>>> decision = Decision(decision_id="d-1", event_id="l-1", event_kind="login", score=0,
...                     action="allow")
>>> writer.submit(([login], [decision], [], None)).result()
Landed(failed=frozenset(), checkpointed=False, position=None)
>>> writer.close(); store.get_decision("l-1").decision_id
'd-1'
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import queue
import select
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from typing import Any, Protocol

import sqlalchemy
from sqlalchemy.exc import DataError, IntegrityError

from vigil import logs
from vigil.api import lifeline
from vigil.domain import Decision, Login, Transaction
from vigil.privacy.keys import PrivacyKeys
from vigil.profiles.recovery import Checkpoint, Cut
from vigil.storage import Store
from vigil.storage import log as event_log
from vigil.storage.connection import WAL_RESTART_FRAMES
from vigil.storage.database import LogCopy

log = logging.getLogger(__name__)

_ATTEMPTS = 5
_CHECKPOINT_SECONDS = 0.5
# Before the log starts again, the checkpoint thread copies what came in during its last copy,
# again while that was more than _CAUGHT_UP pages, at most _CATCH_UP times.
_CATCH_UP = 4
_CAUGHT_UP = 256
_START_SECONDS = 120
Event = Transaction | Login
# A batch as handed over: its events, their decisions, StandIn inferences, and the profile
# checkpoint to write after it, or the cut of one whose position to report (or None).
Batch = tuple[list[Event], list[Decision], list[dict[str, Any]], Checkpoint | Cut | None]


@dataclass(frozen=True)
class Landed:
    """How a handed-over batch ended: the event ids whose decisions were not committed (none,
    normally), whether the checkpoint that went with it was written, and the log position
    after it when it went with a :class:`~vigil.profiles.recovery.Cut` and was committed
    whole."""

    failed: frozenset[str]
    checkpointed: bool
    position: int | None = None


class WriterGone(RuntimeError):
    """The writer process died (or could not be reached): what it held is in doubt."""


class Answer(Future[Landed]):
    """A batch's outcome. ``result()`` reads the writer's answers while it waits, so it works
    in a thread that no event loop serves, and on the loop's own thread (say at shutdown)."""

    def __init__(self, read_until: Callable[[Future[Any], float | None], None]) -> None:
        super().__init__()
        self._read_until = read_until

    def result(self, timeout: float | None = None) -> Landed:
        self._read_until(self, timeout)  # spends ``timeout`` unless the answer comes first
        return super().result(timeout=None if timeout is None else 0)


class Writer(Protocol):
    """What the recorder needs of a writer: batches in, :class:`Answer` futures out."""

    pid: int | None  # the writer process's, if it is one

    def submit(self, batch: Batch) -> Answer: ...

    def read_until(self, future: Future[Any], timeout: float | None) -> None: ...

    def poll(self) -> None: ...

    def close(self) -> None: ...


class WriterThread:
    """Commits in a thread of this process (an in-memory SQLite database)."""

    pid: int | None = None

    def __init__(self, store: Store) -> None:
        self._store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigil-recorder")

    def submit(self, batch: Batch) -> Answer:
        answer = Answer(self.read_until)
        written = self._executor.submit(write, self._store, *batch)
        written.add_done_callback(lambda done: _forward(done, answer))
        return answer

    def read_until(self, future: Future[Any], timeout: float | None) -> None:
        wait_for([future], timeout)

    def poll(self) -> None:
        """Answers arrive on their own (the writer thread completes them)."""

    def close(self) -> None:
        self._executor.shutdown(wait=True)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop running in this thread, if any: answers are read, and their batches
    settled, on the loop's own thread when they arrive there, else handed to it."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _forward(written: Future[Landed], answer: Answer) -> None:
    error = written.exception()
    if error is None:
        answer.set_result(written.result())
    else:
        answer.set_exception(error)


class WriterProcess:
    """Commits in a process of its own, fed through a socket pair (see the module's doc)."""

    def __init__(self, store: Store) -> None:
        context = _writer_context()
        self._conn, theirs = context.Pipe(duplex=True)
        process = context.Process(
            target=_serve,
            args=(theirs, store.url, store.privacy, os.getpid()),
            name="vigil-writer",
        )
        process.start()
        theirs.close()
        self._process = process
        self.pid = process.pid
        # Answers not yet read, by batch number; the socket is read by one thread at a time.
        # Reentrant: an answer's callbacks may hand the next batch over and read again.
        self._waiting: dict[int, Answer] = {}
        self._sent = 0
        self._reading = threading.RLock()
        # Connection.poll builds a selector at every call; a poll object made once costs one
        # system call a check, and the loop checks at every hand-over.
        self._arrivals = select.poll()
        self._arrivals.register(self._conn.fileno(), select.POLLIN)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broken = False
        # Started now, not at the first batch: starting takes a second (the fork server imports
        # the storage code), and the first batch comes while requests wait.
        if not self._conn.poll(_START_SECONDS):
            raise WriterGone(f"the writer process did not start in {_START_SECONDS} s")
        try:
            started = self._conn.recv()
        except EOFError:
            process.join(timeout=5)
            started = f"it exited with code {process.exitcode} (its error is logged above)"
        if started != "ready":
            process.join()
            raise WriterGone(f"the writer process could not open the store: {started}")

    @property
    def broken(self) -> bool:
        """Whether the writer died: a new one must take over."""
        return self._broken

    def submit(self, batch: Batch) -> Answer:
        """Send a batch (from the thread that flushes); raises :class:`WriterGone` if the
        writer is dead, in which case nothing was sent."""
        if self._broken:
            raise WriterGone("the writer process died")
        number = self._sent + 1
        data = ForkingPickler.dumps((number, batch))  # before counting: pickling may fail
        answer = Answer(self.read_until)
        self._sent = number
        self._waiting[number] = answer
        try:
            self._conn.send_bytes(data)
        except OSError as exc:
            self._waiting.pop(number)
            self._give_up()
            raise WriterGone("the writer process died") from exc
        self._watch_from_loop()
        return answer

    def poll(self) -> None:
        """Read the answers that have arrived, without waiting."""
        if not self._broken:
            self._read()

    def read_until(self, future: Future[Any], timeout: float | None) -> None:
        """Read answers until ``future`` is done (or ``timeout`` seconds have passed)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not future.done() and not self._broken:
            left = 0.05 if deadline is None else min(0.05, deadline - time.monotonic())
            if left <= 0:
                return
            if self._arrived(left):
                self._read()

    def close(self) -> None:
        """Wait for every answer, then let the writer finish and stop."""
        for answer in list(self._waiting.values()):
            self.read_until(answer, None)
        self._unwatch()
        self._conn.close()  # the writer reads the end of its batches, and stops
        self._process.join()

    def _read(self) -> None:
        with self._reading:
            try:
                while self._arrived(0):
                    number, outcome = self._conn.recv()
                    answer = self._waiting.pop(number)
                    if isinstance(outcome, BaseException):
                        answer.set_exception(outcome)
                    else:
                        answer.set_result(outcome)
            except (EOFError, OSError):
                self._give_up()

    def _arrived(self, timeout: float) -> bool:
        """Whether an answer (or the writer's end) is there to read, within ``timeout`` s."""
        return bool(self._arrivals.poll(1000 * timeout))

    def _give_up(self) -> None:
        """The writer is gone: every batch it held is in doubt, and says so. One that cannot
        be reached but still runs is killed, so that it neither commits a batch now answered
        as in doubt nor holds the store beside the writer that replaces it."""
        self._broken = True
        self._unwatch()
        waiting, self._waiting = self._waiting, {}
        for answer in waiting.values():
            answer.set_exception(WriterGone("the writer process died"))
        self._conn.close()
        self._process.kill()
        self._process.join()

    def _watch_from_loop(self) -> None:
        """Answers are read by the event loop that sends batches, when there is one (a loop
        after another, as with ``asyncio.run`` twice, takes over the reading)."""
        loop = running_loop()
        if loop is None or loop is self._loop:
            return
        self._unwatch()
        loop.add_reader(self._conn.fileno(), self.poll)
        # uvloop (libuv) makes a watched descriptor non-blocking; a batch larger than the
        # socket's buffer (a profile checkpoint) would then fail half-sent. Blocking is what
        # this protocol needs: the writer's reader thread drains the socket while it commits,
        # and an answer is read only once the loop saw it arrive.
        os.set_blocking(self._conn.fileno(), True)
        self._loop = loop

    def _unwatch(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(self._conn.fileno())


def start_writer(store: Store, *, in_process: bool) -> Writer:
    return WriterThread(store) if in_process else WriterProcess(store)


# -- in the writer process ---------------------------------------------------------------------


def _writer_context() -> Any:
    """Writer processes start from a small fork server that has imported the storage code,
    not as a fork of the server (its engine, threads and profiles) nor from a bare
    interpreter (a second of imports each)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["vigil.api.writer"])
    return context


def _serve(conn: Connection, url: str, privacy: PrivacyKeys, server: int) -> None:
    """The writer process: commit every batch that arrives, answer each, stop when the server
    closes its end (or dies: the lifeline)."""
    # Ctrl-C and a service manager's SIGTERM reach the whole process group; the server
    # decides when its writer stops (after the last batch), so the writer ignores both. A
    # server that is killed outright cannot stop it: the writer watches it instead.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    lifeline.watch(server)
    logs.configure_from_env()  # as the server logs, when it configured its logs
    try:
        store = Store(url, privacy=privacy, inline_checkpoints=False)
    except Exception as exc:
        conn.send(f"{type(exc).__name__}: {exc}")
        return
    long_log = threading.Event()
    if store.dialect == "sqlite":
        threading.Thread(
            target=_checkpoints, args=(store, long_log), name="vigil-wal", daemon=True
        ).start()
    conn.send("ready")
    batches: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    committer = threading.Thread(
        target=_commit, args=(conn, store, batches, long_log), name="vigil-commit"
    )
    committer.start()
    while True:
        try:
            batches.put(conn.recv_bytes())
        except (EOFError, OSError):
            break
    batches.put(None)
    committer.join()


def _commit(
    conn: Connection,
    store: Store,
    batches: queue.SimpleQueue[bytes | None],
    long_log: threading.Event,
) -> None:
    while (data := batches.get()) is not None:
        if long_log.is_set():
            # SQLite starts its log again only when a commit finds all of it copied and nothing
            # committed since, which commits every few milliseconds beside checkpoints of tens
            # never allow (it grew by 25-45 KB a decision, without end). So this thread copies
            # what was committed since the checkpoint thread's last copy, between two commits,
            # and the next commit starts the log again. That thread copies until little is
            # left first: the copy holds the commits behind it 2-7 ms, not the 20-30 of
            # copying (and syncing) half a second of commits.
            long_log.clear()
            _copy_log(store)
        number, batch = ForkingPickler.loads(data)
        outcome: Landed | BaseException
        try:
            outcome = write(store, *batch)
        except Exception as exc:  # a bug, not the database: the batch fails, the writer goes on
            log.exception("the writer failed on a batch")
            outcome = RuntimeError(f"the writer failed on a batch: {exc!r}")
        with contextlib.suppress(OSError):  # the server is gone; the lifeline ends this process
            conn.send((number, outcome))


def _checkpoints(store: Store, long_log: threading.Event) -> None:
    """SQLite's log checkpoints, beside the commits rather than inside them: a commit that
    also copied the log into the database took a third longer, and every request of its
    batch waits for its commit. A log left longer than ``WAL_RESTART_FRAMES`` is for the
    committing thread to start again (see :func:`_commit`), once this one has copied nearly
    all of it.

    On a connection of its own: one it shared with the committing thread would leave that
    thread a connection whose page cache the other's commits made stale."""
    with store.engine.connect() as conn:
        while True:
            time.sleep(_CHECKPOINT_SECONDS)
            copy = _copy_log(store, conn)
            if copy.pages <= WAL_RESTART_FRAMES:
                continue
            for _ in range(_CATCH_UP):  # what was committed during the copy before
                before, copy = copy, _copy_log(store, conn)
                if copy.copied - before.copied <= _CAUGHT_UP:
                    break
            long_log.set()


def _copy_log(store: Store, conn: sqlalchemy.Connection | None = None) -> LogCopy:
    """A passive checkpoint of SQLite's log (nothing copied if it failed: busy or failing
    now, the next one catches up)."""
    try:
        return store.checkpoint_wal(conn)
    except Exception:
        log.exception("SQLite log checkpoint failed")
        return LogCopy(0, 0)


def write(
    store: Store,
    events: list[Event],
    decisions: list[Decision],
    standin: list[dict[str, Any]],
    checkpoint: Checkpoint | Cut | None,
) -> Landed:
    """Commit a batch, its StandIn inferences, then the checkpoint that goes with it. One
    taken right after this batch is written only if the whole batch was committed, and a cut
    reports its position only then: a checkpoint must not include an event the log lacks."""
    failed = _record(store, events, decisions)
    if standin:
        try:  # the decisions stand without their inferences
            store.log_standin(standin)
        except Exception:
            log.exception("giving up on %d StandIn inferences", len(standin))
    if isinstance(checkpoint, Cut):
        position = None
        if not failed:
            with store.engine.connect() as conn:
                position = event_log.position(conn, store)
        return Landed(frozenset(failed), checkpointed=False, position=position)
    checkpointed = False
    if checkpoint is not None and (checkpoint.position is not None or not failed):
        try:
            checkpoint.save(store)
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
