"""API keys: who may call the API and the workbench, and in which roles.

A row holds the argon2 hash of the key's secret, never the secret (:mod:`vigil.api.keys` makes
and checks them).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from vigil.storage import rows as R
from vigil.storage.database import Database


class ApiKeyStore(Database):
    """The ``api_keys`` table: keys are added and revoked (a revoked key's row stays).

    >>> from vigil.storage import Store
    >>> store = Store("sqlite://"); store.init_schema()
    >>> store.get_api_key("k-1"), store.revoke_api_key("k-1")
    (None, False)
    """

    def insert_api_key(self, row: dict[str, Any], conn: Connection | None = None) -> None:
        """Store a new key's row (key_id, name, roles, secret_hash, created_at)."""
        with self._joined(conn) as c:
            c.execute(self.tables.api_keys.insert(), row)

    def get_api_key(self, key_id: str) -> dict[str, Any] | None:
        t = self.tables.api_keys
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.key_id == key_id)).first()
        return None if row is None else dict(row._mapping)

    def list_api_keys(self) -> list[dict[str, Any]]:
        """Every key's row, oldest first, revoked ones included."""
        t = self.tables.api_keys
        with self.engine.connect() as conn:
            query = select(t).order_by(t.c.created_at, t.c.key_id)
            return [dict(r._mapping) for r in conn.execute(query)]

    def revoke_api_key(self, key_id: str, conn: Connection | None = None) -> bool:
        """Mark a key revoked; False if there is no such key or it was revoked already."""
        t = self.tables.api_keys
        query = (
            t.update()
            .where(t.c.key_id == key_id, t.c.revoked_at.is_(None))
            .values(revoked_at=R.utc_now())
        )
        with self._joined(conn) as c:
            return c.execute(query).rowcount == 1
