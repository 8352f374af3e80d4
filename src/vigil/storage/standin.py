"""StandIn inferences: what the StandIn model inferred while the issuer was unreachable
(:mod:`vigil.models.standin`), appended one row each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from vigil.storage.database import Database


class StandInStore(Database):
    """The ``standin_inferences`` table: appended to, read newest first.

    >>> from vigil.storage import Store
    >>> store = Store("sqlite://"); store.init_schema()
    >>> store.log_standin([]); store.standin_log()
    []
    """

    def log_standin(self, rows: Sequence[dict[str, Any]], conn: Connection | None = None) -> None:
        """Append StandIn inference rows (the ``standin_inferences`` columns but the id)."""
        with self._joined(conn) as c:
            self._insert_all(
                c, self.tables.standin_inferences, self._pseudonymised(dict(r) for r in rows)
            )

    def standin_log(self, limit: int = 100) -> list[dict[str, Any]]:
        """The latest StandIn inferences, newest first."""
        t = self.tables.standin_inferences
        query = select(t).order_by(t.c.inference_id.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
