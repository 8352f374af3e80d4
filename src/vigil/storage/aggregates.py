"""Daily aggregates of users and cards (:mod:`vigil.features`): one snapshot row per entity
and day."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from sqlalchemy import Connection, Table, select

from vigil.storage.database import CHUNK, Database, batched


class AggregateStore(Database):
    """The ``user_aggregated_features`` and ``card_aggregated_features`` tables, keyed by
    entity and ``agg_reference_date``: saving a day again replaces its rows.

    >>> from datetime import date
    >>> from vigil.storage import Store
    >>> store = Store("sqlite://"); store.init_schema()
    >>> store.aggregated_features("card", date(2022, 1, 1))
    []
    """

    def save_aggregated_features(
        self, kind: str, rows: Iterable[dict[str, Any]], conn: Connection | None = None
    ) -> int:
        """Upsert daily snapshot rows of ``user_aggregated_features`` or
        ``card_aggregated_features`` (``kind`` "user" or "card"); returns rows written."""
        table = self._aggregates_table(kind)
        written = 0
        with self._joined(conn) as c:
            for chunk in batched(rows, CHUNK):
                written += self._upsert(c, table, self._pseudonymised(dict(r) for r in chunk))
        return written

    def aggregated_features(self, kind: str, day: date) -> list[dict[str, Any]]:
        """Every user's or card's snapshot row for ``day``."""
        table = self._aggregates_table(kind)
        query = select(table).where(table.c.agg_reference_date == day).order_by(*table.primary_key)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def _aggregates_table(self, kind: str) -> Table:
        if kind not in ("user", "card"):
            raise ValueError(f"kind: {kind!r} is not user or card")
        t = self.tables
        return t.user_aggregated_features if kind == "user" else t.card_aggregated_features
