"""Benchmark: what one commit of the decision log costs, by how many decisions it holds.

Acknowledged means committed, so a server answers a request only once the batch holding its
decision is committed: a commit's fixed cost is in every answer's latency, and at low
concurrency (few decisions a commit) it is what bounds a server. This decides withdrawals
with an in-memory engine, then times ``Store.record`` (the writer's work: the events, the
decisions, their seal and chain links, in one transaction) for batches of each size given,
after ``--history`` decisions stored first (so that the indexes span many pages, as a running
server's do), on a fresh SQLite file or ``--database`` (a PostgreSQL URL: its tables are
dropped first and after). Prints, per size, the median and tenth percentile of a commit and
the median per decision; the tenth percentile is the steadiest figure on a busy machine.

On SQLite the commits leave the write-ahead log to be copied into the database between sizes,
as the server's writer does (``inline_checkpoints=False``), and ``--pages`` also prints what
each commit wrote to the log: its pages (4 KiB each) by B-tree, read from the log's frames.

    python bench/commits.py --sizes 1 8 50
    python bench/commits.py --sizes 1 10 --pages
    python bench/commits.py --database postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import sqlite3
import statistics
import struct
import tempfile
import time
from datetime import UTC, datetime, timedelta

from rich.console import Console
from rich.table import Table
from sqlalchemy import make_url

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


def log_pages(path: str, commits: int) -> collections.Counter[str]:
    """The pages a commit wrote to SQLite's log at ``path``, by B-tree (table or index), over
    the log's frames (each a 24-byte header whose first field is the page number)."""
    with open(f"{path}-wal", "rb") as log:
        data = log.read()
    page_size = struct.unpack_from(">I", data, 8)[0]
    frames = [struct.unpack_from(">I", data, at)[0] for at in range(32, len(data), 24 + page_size)]
    with contextlib.closing(sqlite3.connect(path)) as conn:
        owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
    counts = collections.Counter(owner.get(page, "(free)") for page in frames)
    return collections.Counter({name: n / commits for name, n in counts.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 50])
    parser.add_argument("--commits", type=int, default=300, help="commits timed per size")
    parser.add_argument("--database", help="PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--pages", action="store_true", help="SQLite: pages a commit wrote")
    parser.add_argument(
        "--history",
        type=int,
        default=20_000,
        help="decisions stored first, in commits of 100, so the indexes span many pages",
    )
    args = parser.parse_args()
    if args.pages and args.database:
        parser.error("--pages reads SQLite's log: leave out --database")
    url = args.database or f"sqlite:///{tempfile.mkdtemp()}/commits.db"
    store = Store(url, inline_checkpoints=False)
    if args.database:
        store.drop_all()
    store.init_schema()
    engine = Engine.in_memory()
    table = Table(title=f"Store.record on {store.dialect}")
    for column in ("decisions a commit", "median", "p10", "per decision (median)"):
        table.add_column(column, justify="right")
    pages: dict[int, collections.Counter[str]] = {}
    done = args.history
    try:
        for events, decisions in batches(engine, 100, args.history // 100, 0):
            store.record(events, decisions)
        for size in args.sizes:
            work = batches(engine, size, args.commits, done)
            done += size * args.commits
            if store.dialect == "sqlite":  # an empty log: it holds this size's commits alone
                with store.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
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
            if args.pages:
                pages[size] = log_pages(str(make_url(url).database), args.commits)
    finally:
        if args.database:
            store.drop_all()
    Console().print(table)
    if pages:
        Console().print(pages_table(pages))


def pages_table(pages: dict[int, collections.Counter[str]]) -> Table:
    """Pages a commit, by B-tree (rows, most written first) and decisions a commit (columns)."""
    table = Table(title="Pages a commit wrote to the log, by B-tree")
    table.add_column("B-tree")
    for size in pages:
        table.add_column(f"{size:,} a commit", justify="right")
    names = collections.Counter[str]()
    for counts in pages.values():
        names.update(counts)
    table.add_row("all", *(f"{sum(c.values()):.1f}" for c in pages.values()))
    for name, _ in names.most_common():
        table.add_row(name, *(f"{c.get(name, 0):.2f}" for c in pages.values()))
    return table


if __name__ == "__main__":
    main()
