"""PostgreSQL monthly range partitions for the event tables, created on demand.

A row whose month has no partition cannot be inserted, so before each insert the store asks
for the partitions of the months in the batch. Creating a partition takes a lock on the parent
table, so it runs on the inserting connection, inside its transaction: if the batch rolls back,
so does the partition. That is why a month only enters the cache once its transaction commits.

>>> from datetime import datetime, UTC
>>> months_of([datetime(2022, 1, 31, 23, tzinfo=UTC), datetime(2022, 2, 1, tzinfo=UTC)])
[(2022, 1), (2022, 2)]
>>> ddl = partition_ddl("transactions", (2022, 12))
>>> ddl.startswith("CREATE TABLE IF NOT EXISTS transactions_2022_12 PARTITION OF transactions")
True
>>> ddl[ddl.index("FROM"):]
"FROM ('2022-12-01 00:00:00+00') TO ('2023-01-01 00:00:00+00')"
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection, text

from vigil.storage.schema import PARTITIONED_TABLES

Month = tuple[int, int]

# Partitions a connection created in its still-open transaction; promoted to the cache on commit.
_PENDING_KEY = "vigil_pending_partitions"


def months_of(timestamps: Iterable[datetime]) -> list[Month]:
    """The distinct (year, month) of UTC timestamps, in order."""
    return sorted({(t.year, t.month) for t in timestamps})


def partition_name(table: str, month: Month) -> str:
    return f"{table}_{month[0]:04d}_{month[1]:02d}"


def partition_ddl(table: str, month: Month) -> str:
    if table not in PARTITIONED_TABLES:
        raise ValueError(f"table: {table!r} is not partitioned ({', '.join(PARTITIONED_TABLES)})")
    year, mon = month
    upper = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return (
        f"CREATE TABLE IF NOT EXISTS {partition_name(table, month)} PARTITION OF {table} "
        f"FOR VALUES FROM ('{year:04d}-{mon:02d}-01 00:00:00+00') "
        f"TO ('{upper[0]:04d}-{upper[1]:02d}-01 00:00:00+00')"
    )


class MonthlyPartitions:
    """Remembers which monthly partitions exist and creates the missing ones.

    Call :meth:`ensure` on the connection that is about to insert, :meth:`begin` when its
    transaction starts and :meth:`end` when it finishes (``Store.transaction`` does both).

    >>> parts = MonthlyPartitions()
    >>> parts.known("transactions", (2022, 1))
    False
    """

    def __init__(self) -> None:
        self._known: set[tuple[str, Month]] = set()
        self._lock = threading.Lock()

    def known(self, table: str, month: Month) -> bool:
        return (table, month) in self._known

    def begin(self, conn: Connection) -> None:
        conn.info[_PENDING_KEY] = set()

    def end(self, conn: Connection, committed: bool) -> None:
        pending = conn.info.pop(_PENDING_KEY, set())
        if committed:
            with self._lock:
                self._known |= pending

    def ensure(self, conn: Connection, table: str, timestamps: Iterable[datetime]) -> list[str]:
        """Create the partitions ``table`` needs for ``timestamps``; returns the names issued."""
        pending: set[tuple[str, Month]] | None = conn.info.get(_PENDING_KEY)
        issued = []
        for month in months_of(timestamps):
            key = (table, month)
            if key in self._known or (pending is not None and key in pending):
                continue
            conn.execute(text(partition_ddl(table, month)))
            issued.append(partition_name(table, month))
            # Outside Store.transaction we cannot see the commit, so the month stays uncached
            # and a later batch re-issues the (cheap, idempotent) IF NOT EXISTS.
            if pending is not None:
                pending.add(key)
        return issued

    def forget(self) -> None:
        with self._lock:
            self._known.clear()
