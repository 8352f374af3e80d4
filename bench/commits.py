"""Benchmark: what one commit of the decision log costs, by how many decisions it holds.

Acknowledged means committed, so a server answers a request only once the batch holding its
decision is committed: a commit's fixed cost is in every answer's latency, and at low
concurrency (few decisions a commit) it is what bounds a server. This decides withdrawals
with an in-memory engine, then times ``Store.record`` (the writer's work: the events, the
decisions, their seal and chain links, in one transaction) for batches of each size given,
on a fresh SQLite file or ``--database`` (a PostgreSQL URL: its tables are dropped first and
after). Prints, per size, the median and tenth percentile of a commit and the median per
decision; the tenth percentile is the steadiest figure on a busy machine.

    python bench/commits.py --sizes 1 8 50
    python bench/commits.py --database postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table

from vigil.domain import Decision, Transaction
from vigil.engine import Engine
from vigil.storage import Store

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def batches(engine: Engine, size: int, count: int, start: int) -> list[tuple[list, list]]:
    """``count`` batches of ``size`` decided withdrawals, as the writer receives them."""
    out = []
    k = start
    for _ in range(count):
        events: list[Transaction] = []
        decisions: list[Decision] = []
        for _ in range(size):
            k += 1
            event = Transaction(
                event_id=f"e{k}",
                transaction_id=f"t{k}",
                type="withdrawal",
                amount="100.00",
                card_id=f"c{k % 500}",
                user_id=f"u{k % 400}",
                terminal_id=f"ATM-{k % 50}",
                timestamp=T0 + timedelta(seconds=k),
            )
            decisions.append(engine.process(event))
            stored = engine.recorder.first_event(event.event_id)
            events.append(stored if stored is not None else event)
        out.append((events, decisions))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 50])
    parser.add_argument("--commits", type=int, default=300, help="commits timed per size")
    parser.add_argument("--database", help="PostgreSQL URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/commits.db"
    store = Store(url)
    if args.database:
        store.drop_all()
    store.init_schema()
    engine = Engine.in_memory()
    table = Table(title=f"Store.record on {store.dialect}")
    for column in ("decisions a commit", "median", "p10", "per decision (median)"):
        table.add_column(column, justify="right")
    done = 0
    try:
        for size in args.sizes:
            work = batches(engine, size, args.commits, done)
            done += size * args.commits
            times = []
            for events, decisions in work:
                started = time.perf_counter()
                store.record(events, decisions)
                times.append(time.perf_counter() - started)
            times.sort()
            median = statistics.median(times)
            table.add_row(
                f"{size:,}",
                f"{median * 1e3:.3f} ms",
                f"{times[len(times) // 10] * 1e3:.3f} ms",
                f"{median / size * 1e6:,.0f} µs",
            )
    finally:
        if args.database:
            store.drop_all()
    Console().print(table)


if __name__ == "__main__":
    main()
