"""Profile checkpoints: the serialised profiles and the state saved with them (the decision log
position they include), from which a restarted engine recovers (:mod:`vigil.profiles.recovery`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import Connection, select

from vigil.storage import rows as R
from vigil.storage.database import CHUNK, Database, batched


class CheckpointStore(Database):
    """The ``profiles`` table (``(kind, key)`` to bytes) and ``profile_state`` (named JSON
    values: ``"snapshot"``, the newest checkpoint's; ``"holder"``, who keeps them in process).

    >>> from vigil.storage import Store
    >>> store = Store("sqlite://"); store.init_schema()
    >>> store.save_profiles([("card", "c-1", b"...")], state={"seq": 7})
    1
    >>> list(store.load_profiles()), store.load_profile_state()
    ([('card', 'c-1', b'...')], {'seq': 7})
    """

    def save_profiles(
        self,
        rows: Iterable[tuple[str, str, bytes]],
        state: dict | None = None,
        conn: Connection | None = None,
    ) -> int:
        """Upsert ``(kind, key, data)`` rows and the snapshot state in one transaction (the
        caller's, when given).

        ``rows`` may be a generator of any length; it is written in chunks. Returns rows written.
        """
        t = self.tables
        written = 0
        now = R.utc_now()
        with self._joined(conn) as conn:
            for chunk in batched(rows, CHUNK):
                records = []
                for kind, key, data in chunk:
                    if not isinstance(kind, str) or not isinstance(key, str):
                        raise TypeError(f"kind/key: expected str, got {kind!r}, {key!r}")
                    if not isinstance(data, bytes | bytearray | memoryview):
                        raise TypeError(f"data: expected bytes for {kind}/{key}")
                    records.append(
                        {"kind": kind, "key": key, "data": bytes(data), "updated_at": now}
                    )
                written += self._upsert(conn, t.profiles, records)
            if state is not None:
                self._upsert(
                    conn, t.profile_state, [{"name": "snapshot", "value": state, "updated_at": now}]
                )
        return written

    def load_profiles(self) -> Iterator[tuple[str, str, bytes]]:
        """Every stored profile as ``(kind, key, data)``, streamed in (kind, key) order."""
        t = self.tables.profiles
        query = select(t.c.kind, t.c.key, t.c.data).order_by(t.c.kind, t.c.key)
        with self.engine.connect() as conn:
            for kind, key, data in conn.execute(query.execution_options(yield_per=CHUNK)):
                yield kind, key, bytes(data)

    def load_profile_state(self, name: str = "snapshot") -> dict | None:
        """A named profile state: by default the one saved with the newest checkpoint (its
        log position); ``"holder"``, the server keeping profiles in process, if any."""
        t = self.tables.profile_state
        with self.engine.connect() as conn:
            return conn.execute(select(t.c.value).where(t.c.name == name)).scalar()

    def save_profile_state(self, name: str, value: dict | None) -> None:
        """Set a named profile state (None removes it)."""
        t = self.tables.profile_state
        with self.transaction() as conn:
            if value is None:
                conn.execute(t.delete().where(t.c.name == name))
            else:
                row = {"name": name, "value": value, "updated_at": R.utc_now()}
                self._upsert(conn, t, [row])
