"""Group commit during a burst: requests that arrive together are decided one after another
in one turn of the event loop, and the writer must commit alongside, not after them all."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

from vigil.api.service import DecisionService
from vigil.config import Settings
from vigil.domain import Transaction
from vigil.storage import Store

T0 = datetime(2024, 5, 1, 10, tzinfo=UTC)


def _withdrawals(n: int) -> list[Transaction]:
    return [
        Transaction(
            event_id=f"e{i}",
            transaction_id=f"t{i}",
            type="withdrawal",
            amount="100.00",
            card_id=f"c{i % 7}",
            terminal_id="ATM-1",
            timestamp=T0 + timedelta(minutes=i),
        )
        for i in range(n)
    ]


def test_a_burst_is_handed_to_the_writer_while_the_loop_still_decides() -> None:
    store = Store(f"sqlite:///{tempfile.mkdtemp()}/v.db")
    store.init_schema()
    service = DecisionService(Settings(api={"group_commit_ms": 1.0}), store)
    events = _withdrawals(60)
    decided: list[int] = []  # how many of the burst were decided at each hand-over
    flush = service.recorder.flush

    def counted(*args, **kwargs):
        decided.append(service.recorder.buffered)
        return flush(*args, **kwargs)

    service.recorder.flush = counted  # type: ignore[method-assign]

    async def request(event: Transaction) -> None:
        service.decide([event])
        await service.commit([event.event_id])

    async def burst() -> None:
        # gather starts every request in the same turn of the loop: each is decided, then
        # waits for its commit, before the next is decided.
        await asyncio.gather(*(request(e) for e in events))

    try:
        asyncio.run(burst())
        # 60 decisions take well over a millisecond: batches went to the writer meanwhile.
        assert len(decided) > 1 and decided[0] < len(events)
        assert store.counts()["decisions"] == len(events)  # and every one was committed
    finally:
        service.close()


def test_a_busy_writer_is_not_handed_batches_to_queue_behind_it() -> None:
    """While the writer is still committing, a burst's decisions gather into one batch
    rather than queue up as many small ones, each of which would pay a commit's cost."""
    store = Store(f"sqlite:///{tempfile.mkdtemp()}/v.db")
    store.init_schema()
    service = DecisionService(Settings(api={"group_commit_ms": 1.0, "writer": "thread"}), store)
    events = _withdrawals(1000)
    committed = 0
    record = store.record

    def slow_record(*args, **kwargs):  # a commit of 5 ms: a disk that is slow today
        nonlocal committed
        time.sleep(0.005)
        result = record(*args, **kwargs)
        committed += 1
        return result

    store.record = slow_record  # type: ignore[method-assign]
    held: list[int] = []  # batches the writer held (committing or queued) at each hand-over
    in_burst = 0  # hand-overs before the burst's last event was decided
    handed = decided = 0
    flush = service.recorder.flush

    def counted(*args, **kwargs):
        nonlocal handed, in_burst
        held.append(handed - committed)
        in_burst += decided < len(events)
        n = flush(*args, **kwargs)
        handed += 1 if n else 0
        return n

    service.recorder.flush = counted  # type: ignore[method-assign]

    async def request(event: Transaction) -> None:
        nonlocal decided
        service.decide([event])
        decided += 1
        await service.commit([event.event_id])

    async def burst() -> None:
        await asyncio.gather(*(request(e) for e in events))

    # The writer here is a thread: each of its database calls gives up the interpreter lock,
    # and the loop, deciding without a pause, would keep it for the default 5 ms switch
    # interval each time, so that one commit outlasted the whole burst on a fast machine.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0001)
    try:
        asyncio.run(burst())
        assert store.counts()["decisions"] == len(events)
        # The writer was handed work again during the burst as it finished batches ...
        assert in_burst > 2
        # ... and only while it held at most one batch: none queued behind it.
        assert max(held) <= 1
        assert service.recorder.at_writer == 0
    finally:
        sys.setswitchinterval(switch)
        service.close()


def test_a_request_given_up_while_it_waits_leaves_its_batch_to_the_others() -> None:
    """Requests of one batch wait for the same commit; one cancelled (its client went away)
    must neither cancel the others' wait nor keep its decision from being committed."""
    store = Store(f"sqlite:///{tempfile.mkdtemp()}/v.db")
    store.init_schema()
    service = DecisionService(Settings(api={"group_commit_ms": 50.0}), store)
    events = _withdrawals(5)

    async def request(event: Transaction) -> str:
        service.decide([event])
        await service.commit([event.event_id])
        return event.event_id

    async def batch() -> list[str | BaseException]:
        waiting = [asyncio.create_task(request(e)) for e in events]
        await asyncio.sleep(0.01)  # all decided, the batch still gathering
        waiting[2].cancel()
        return await asyncio.gather(*waiting, return_exceptions=True)

    try:
        answered = asyncio.run(batch())
        assert isinstance(answered[2], asyncio.CancelledError)
        assert [a for i, a in enumerate(answered) if i != 2] == ["e0", "e1", "e3", "e4"]
        assert store.counts()["decisions"] == len(events)
    finally:
        service.close()


def test_a_landed_batch_answers_its_requests_at_once() -> None:
    """Between a batch's commit and its requests' answers the loop turns as few times as it
    can: under load every turn also decides the requests that arrived meanwhile."""
    store = Store(f"sqlite:///{tempfile.mkdtemp()}/v.db")
    store.init_schema()
    service = DecisionService(Settings(api={"group_commit_ms": 0.0}), store)
    turns = 0
    after: list[int] = []  # turns of the loop from each answer of the writer to the request's

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async def requests() -> None:
        counting = asyncio.create_task(count_turns())
        for event in _withdrawals(20):
            service.decide([event])
            waiting = asyncio.create_task(service.commit([event.event_id]))
            while (handed := service.recorder.committed()) is None or handed.done():
                await asyncio.sleep(0)
            landed_at: list[int] = []
            handed.add_done_callback(lambda _, seen=landed_at: seen.append(turns))
            await waiting
            after.append(turns - landed_at[0])
        counting.cancel()

    try:
        asyncio.run(requests())
        # The answer is read, and its batch settled, in one turn; the request resumes in the
        # next and this test's wait in the one after: 2 turns after the answer's. Settled by
        # a call_soon, 3; by a task awaiting the answer and a shield for each request, 5.
        assert max(after) <= 2, after
    finally:
        service.close()
