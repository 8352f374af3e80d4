"""The writer process: batches go over a socket, answers come back on the event loop."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from vigil.api import lifeline
from vigil.api.writer import Landed, WriterGone, WriterProcess
from vigil.domain import Decision, Login
from vigil.storage import Store
from vigil.storage.connection import WAL_RESTART_FRAMES

T0 = datetime(2024, 5, 1, tzinfo=UTC)


def _batch(first: int, n: int = 1) -> tuple[list[Login], list[Decision], list, None]:
    logins = [
        Login(event_id=f"l-{i}", user_id="u-1", timestamp=T0 + timedelta(seconds=i))
        for i in range(first, first + n)
    ]
    decisions = [
        Decision(
            decision_id=f"d-{e.event_id}",
            event_id=e.event_id,
            event_kind="login",
            score=0,
            action="allow",
        )
        for e in logins
    ]
    return logins, decisions, [], None


def test_batches_handed_over_from_a_loop_start_no_thread_and_land_in_order(store: Store) -> None:
    """The server's own process runs no thread for the writer: the loop sends and reads."""
    writer = WriterProcess(store)
    before = {t.ident for t in threading.enumerate()}

    async def hand_over() -> list[Landed]:
        answers = [writer.submit(_batch(10 * i, 10)) for i in range(20)]
        return list(await asyncio.gather(*(asyncio.wrap_future(a) for a in answers)))

    landed = asyncio.run(hand_over())
    assert {t.ident for t in threading.enumerate()} == before
    assert landed == [Landed(frozenset(), checkpointed=False)] * 20
    writer.close()
    assert len(store.get_decisions([f"l-{i}" for i in range(200)])) == 200


def test_a_loop_after_another_reads_the_answers(store: Store) -> None:
    """As with ``asyncio.run`` twice: the second loop must not wait on the first's reader."""
    writer = WriterProcess(store)

    async def hand_over(first: int) -> Landed:
        return await asyncio.wait_for(asyncio.wrap_future(writer.submit(_batch(first))), 30)

    assert asyncio.run(hand_over(0)).failed == frozenset()
    assert asyncio.run(hand_over(1)).failed == frozenset()
    writer.close()


def test_a_large_batch_does_not_hold_the_sender_while_the_writer_commits(store: Store) -> None:
    """The writer reads what is sent while it commits, so sending a batch larger than the
    socket's buffer returns once it is read, not once the batches before it are committed."""
    writer = WriterProcess(store)
    first = writer.submit(_batch(0, 2000))  # a commit of a few hundred milliseconds
    started = time.perf_counter()
    second = writer.submit(_batch(2000, 2000))  # about 1 MB pickled
    sent_in = time.perf_counter() - started
    assert not first.done() or sent_in < 0.2
    assert second.result(timeout=60) == Landed(frozenset(), checkpointed=False)
    assert first.done()
    writer.close()


def test_a_batch_larger_than_the_sockets_buffer_goes_whole_from_a_uvloop_loop(store: Store) -> None:
    """uvloop's ``add_reader`` makes the socket non-blocking; sending a batch the socket
    cannot take at once (a profile checkpoint, a large batch request) must still send it whole,
    not fail half-sent as if the writer had died (then a pause of seconds while the server
    waited for a writer that was alive, and that writer left running beside its successor)."""
    uvloop = pytest.importorskip("uvloop")
    writer = WriterProcess(store)
    pid = writer.pid

    async def hand_over() -> list[Landed]:
        small = writer.submit(_batch(0))  # the loop now watches the socket
        large = writer.submit(_batch(1, 3000))  # about 1.5 MB pickled
        return [await asyncio.wrap_future(a) for a in (small, large)]

    assert uvloop.run(hand_over()) == [Landed(frozenset(), checkpointed=False)] * 2
    assert not writer.broken and writer.pid == pid
    writer.close()
    assert len(store.get_decisions([f"l-{i}" for i in range(3001)])) == 3001


def test_a_writer_that_cannot_be_reached_is_killed_not_left_beside_its_successor(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A send that fails leaves the writer in doubt: it is stopped at once, so it commits
    nothing the server has answered as failed and holds no lock against the next writer."""
    writer = WriterProcess(store)
    assert writer.submit(_batch(0)).result(timeout=30).failed == frozenset()

    def broken_socket(data: bytes) -> None:
        raise OSError("the socket failed")

    monkeypatch.setattr(writer._conn, "send_bytes", broken_socket)
    started = time.perf_counter()
    with pytest.raises(WriterGone):
        writer.submit(_batch(1))
    assert time.perf_counter() - started < 2
    assert writer.pid is not None and not lifeline.alive(writer.pid)


def test_a_dead_writer_fails_what_it_held_and_refuses_more(store: Store) -> None:
    writer = WriterProcess(store)
    assert writer.submit(_batch(0)).result(timeout=30).failed == frozenset()
    assert writer.pid is not None
    os.kill(writer.pid, signal.SIGKILL)
    try:
        held = writer.submit(_batch(1))
    except WriterGone:  # the socket already said the writer was gone: nothing was sent
        pass
    else:  # sent before it said so: the answer says so instead
        with pytest.raises(WriterGone):
            held.result(timeout=30)
    assert writer.broken
    with pytest.raises(WriterGone):
        writer.submit(_batch(2))


def test_the_writer_stops_when_the_server_closes_it(store: Store) -> None:
    writer = WriterProcess(store)
    writer.submit(_batch(0)).result(timeout=30)
    writer.close()
    assert writer.pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(writer.pid, 0)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_the_log_stays_bounded_under_commits_that_never_pause(store: Store) -> None:
    """The writer leaves SQLite's log checkpoints to a thread beside its commits. Committing
    every few milliseconds, it never found the log both copied and untouched, so the log never
    started again: 250 MB here, gigabytes a minute in a busy server, without end. It starts
    again past WAL_RESTART_FRAMES pages, checked every half second."""
    writer = WriterProcess(store)
    wal = Path(str(make_url(store.url).database) + "-wal")
    largest = 0
    answers = []
    for i in range(1_500):
        answers.append(writer.submit(_batch(40 * i, 40)))
        if len(answers) >= 4:  # as a busy server's group commit keeps the writer full
            assert answers.pop(0).result(timeout=60).failed == frozenset()
            largest = max(largest, wal.stat().st_size)
    for answer in answers:
        answer.result(timeout=60)
    writer.close()
    with store.engine.connect() as conn:
        page = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
    assert largest < 2 * WAL_RESTART_FRAMES * page, largest
