"""Benchmark: what handing one batch to the writer process costs the server's own process.

``vigil serve`` decides on its event loop and commits in a writer process
(:mod:`vigil.api.writer`); each batch goes over a socket, and its answer comes back on it.
With few connections the batches hold one or two decisions, so this fixed cost per batch is
paid per decision. Prints, for batches of one
decision committed one after another on a fresh SQLite database, the server process's CPU per
batch (all its threads) and the wall time of a round trip, waited on synchronously and from
an asyncio loop (as the server does), beside what pickling the batch alone costs:

    python bench/handoff.py
    python bench/handoff.py --batches 2000
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path, where bench/http.py would shadow
# the standard library's http package.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import asyncio
import pickle
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from vigil.api.recording import BackgroundRecorder
from vigil.domain import Decision, Login
from vigil.storage import Store

T0 = datetime(2022, 1, 1, tzinfo=UTC)


def _event(i: int) -> tuple[Login, Decision]:
    login = Login(event_id=f"l-{i}", user_id="u-1", timestamp=T0 + timedelta(seconds=i))
    decision = Decision(
        decision_id=f"d-{i}", event_id=login.event_id, event_kind="login", score=0, action="allow"
    )
    return login, decision


def _timed(what: str, batches: int, run: Callable[[], None]) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"{what}: {1e6 * cpu / batches:,.0f} µs of this process's CPU a batch, "
        f"{1e6 * wall / batches:,.0f} µs a round trip"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=500)
    args = parser.parse_args()
    store = Store(f"sqlite:///{tempfile.mkdtemp()}/v.db")
    store.init_schema()
    recorder = BackgroundRecorder(store)
    counter = iter(range(10**9))

    def one() -> None:
        recorder.add(*_event(next(counter)))
        recorder.flush()

    for _ in range(50):  # warm up: the writer's connection, SQLite's caches
        one()
        recorder.drain()

    def synchronously() -> None:
        for _ in range(args.batches):
            one()
            recorder.committed().result()  # type: ignore[union-attr]

    async def from_a_loop() -> None:
        for _ in range(args.batches):
            one()
            await asyncio.wrap_future(recorder.committed())  # type: ignore[arg-type]

    _timed("waited synchronously", args.batches, synchronously)
    _timed("awaited on an asyncio loop", args.batches, lambda: asyncio.run(from_a_loop()))
    login, decision = _event(0)
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        pickle.dumps(([login], [decision], [], None))
    each = (time.perf_counter() - started) / rounds
    print(f"pickling a one-decision batch alone: {1e6 * each:,.0f} µs")
    recorder.close()


if __name__ == "__main__":
    main()
