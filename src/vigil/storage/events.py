"""The event tables: transactions and logins, stored once each (idempotent by ``event_id``) and
read back in time order.

On PostgreSQL both are partitioned by month (:mod:`vigil.storage.partitions`); the decision log
that orders them as decided is :mod:`vigil.storage.log`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import Connection, select

from vigil.domain.events import Login, Transaction
from vigil.storage import rows as R
from vigil.storage.database import CHUNK, Database, aware, need


class EventStore(Database):
    """The ``transactions`` and ``logins`` tables: an event already stored is skipped, so a
    re-sent or replayed one changes nothing.

    >>> from datetime import datetime, UTC
    >>> from vigil.storage import Store
    >>> store = Store("sqlite://"); store.init_schema()
    >>> at = datetime(2022, 1, 1, 9, tzinfo=UTC)
    >>> store.insert_logins([Login(event_id="l-1", user_id="u-1", timestamp=at)])
    1
    >>> store.insert_logins([Login(event_id="l-1", user_id="u-1", timestamp=at)])
    0
    >>> [e.event_id for e in store.iter_events(start=at)]
    ['l-1']
    """

    def insert_transactions(
        self, txs: Sequence[Transaction], conn: Connection | None = None
    ) -> int:
        """Insert transactions; an event_id already stored is skipped. Returns rows inserted."""
        rows = self._pseudonymised(
            R.transaction_row(tx) for tx in need(txs, Transaction, "transactions")
        )
        with self._joined(conn) as c:
            return self.insert_new(c, self.tables.transactions, rows)

    def insert_logins(self, logins: Sequence[Login], conn: Connection | None = None) -> int:
        """Insert logins; an event_id already stored is skipped. Returns rows inserted."""
        rows = self._pseudonymised(R.login_row(lg) for lg in need(logins, Login, "logins"))
        with self._joined(conn) as c:
            return self.insert_new(c, self.tables.logins, rows)

    def iter_events(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        batch_size: int = CHUNK,
    ) -> Iterator[Transaction | Login]:
        """Transactions and logins with ``start <= timestamp < end``, in (timestamp, event_id)
        order, read in batches so memory stays flat however many events are stored."""
        aware(start, "start")
        aware(end, "end")
        streams = []
        with self.engine.connect() as conn:
            for table, convert in (
                (self.tables.transactions, R.transaction_from_row),
                (self.tables.logins, R.login_from_row),
            ):
                query = select(table).order_by(table.c.timestamp, table.c.event_id)
                if start is not None:
                    query = query.where(table.c.timestamp >= start)
                if end is not None:
                    query = query.where(table.c.timestamp < end)
                result = conn.execute(query.execution_options(yield_per=batch_size))
                streams.append(map(convert, result.mappings()))
            yield from heapq.merge(*streams, key=lambda e: (e.timestamp, e.event_id))
