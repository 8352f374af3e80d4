"""Profile checkpoints: the serialised profiles and the state saved with them (the decision log
position they include), from which a restarted engine recovers (:mod:`vigil.profiles.recovery`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, case, select, update

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

    A server writes a checkpoint in parts, each in a transaction of its own between its
    decisions' commits (one transaction of 10,000 profiles held them 200 ms). A part's profiles
    wait beside the current ones until the checkpoint is complete: its log position saved as
    the snapshot's, with its last part.

    >>> store.save_checkpoint_part([("card", "c-1", b"new")], position=12)
    1
    >>> list(store.load_profiles())  # the checkpoint at 12 is not complete
    [('card', 'c-1', b'...')]
    >>> store.save_checkpoint_part([("card", "c-2", b"new too")], position=12, complete=True)
    1
    >>> list(store.load_profiles()), store.load_profile_state()
    ([('card', 'c-1', b'new'), ('card', 'c-2', b'new too')], {'position': 12})
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
        written = 0
        with self._joined(conn) as conn:
            for chunk in batched(rows, CHUNK):
                records = _records(chunk, "data", pending=None, pending_position=None)
                written += self._upsert(conn, self.tables.profiles, records)
            if state is not None:
                self.save_profile_state("snapshot", state, conn)
        return written

    def save_checkpoint_part(
        self,
        rows: Iterable[tuple[str, str, bytes]],
        position: int,
        *,
        complete: bool = False,
        conn: Connection | None = None,
    ) -> int:
        """Write ``(kind, key, data)`` rows as profiles of the checkpoint at log ``position``,
        in one transaction (the caller's, when given); ``complete``: its last part, which makes
        it the snapshot (``{"position": position}``). Returns rows written.

        A row's profile from an earlier checkpoint that was completed becomes its current one
        as the new part takes its place; those of a checkpoint never completed are dropped, as
        the part takes their place or the checkpoint completes."""
        t = self.tables.profiles
        written = 0
        with self._joined(conn) as conn:
            done = self._complete_position(conn)
            stmt = self._insert(t)
            current = t.c.data
            if done is not None:
                current = case((t.c.pending_position <= done, t.c.pending), else_=t.c.data)
            stmt = stmt.on_conflict_do_update(
                index_elements=["kind", "key"],
                set_={
                    "data": current,
                    "pending": stmt.excluded.pending,
                    "pending_position": stmt.excluded.pending_position,
                    "updated_at": stmt.excluded.updated_at,
                },
            )
            for chunk in batched(rows, CHUNK):
                records = _records(chunk, "pending", pending_position=position)
                if records:
                    conn.execute(stmt, records)
                written += len(records)
            if complete:
                # What a checkpoint given up since the last complete one wrote (its server
                # died, a part failed) must not count from now on.
                given_up = t.c.pending_position < position
                if done is not None:
                    given_up &= t.c.pending_position > done
                conn.execute(update(t).where(given_up).values(pending=None, pending_position=None))
                self.save_profile_state("snapshot", {"position": position}, conn)
        return written

    def load_profiles(self) -> Iterator[tuple[str, str, bytes]]:
        """Every stored profile as ``(kind, key, data)``, as of the newest complete checkpoint,
        streamed in (kind, key) order."""
        t = self.tables.profiles
        query = select(t.c.kind, t.c.key, t.c.data, t.c.pending, t.c.pending_position)
        query = query.order_by(t.c.kind, t.c.key).execution_options(yield_per=CHUNK)
        with self.engine.connect() as conn:  # one snapshot: the rows and the position alike
            done = self._complete_position(conn)
            for kind, key, data, pending, position in conn.execute(query):
                if pending is not None and done is not None and position <= done:
                    data = pending
                if data is not None:
                    yield kind, key, bytes(data)

    def load_profile_state(self, name: str = "snapshot") -> dict | None:
        """A named profile state: by default the one saved with the newest checkpoint (its
        log position); ``"holder"``, the server keeping profiles in process, if any."""
        with self.engine.connect() as conn:
            return self._state(conn, name)

    def save_profile_state(
        self, name: str, value: dict | None, conn: Connection | None = None
    ) -> None:
        """Set a named profile state (None removes it), in the caller's transaction if given."""
        t = self.tables.profile_state
        with self._joined(conn) as conn:
            if value is None:
                conn.execute(t.delete().where(t.c.name == name))
            else:
                row = {"name": name, "value": value, "updated_at": R.utc_now()}
                self._upsert(conn, t, [row])

    def _state(self, conn: Connection, name: str) -> dict | None:
        t = self.tables.profile_state
        return conn.execute(select(t.c.value).where(t.c.name == name)).scalar()

    def _complete_position(self, conn: Connection) -> int | None:
        """The log position of the newest complete checkpoint (None before the first)."""
        position = (self._state(conn, "snapshot") or {}).get("position")
        return None if position is None else int(position)


def _records(
    rows: Iterable[tuple[str, str, bytes]], column: str, **values: Any
) -> list[dict[str, Any]]:
    """Rows checked and made ready to write, each profile in ``column``, with ``values``."""
    now = R.utc_now()
    records = []
    for kind, key, data in rows:
        if not isinstance(kind, str) or not isinstance(key, str):
            raise TypeError(f"kind/key: expected str, got {kind!r}, {key!r}")
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"data: expected bytes for {kind}/{key}")
        records.append({"kind": kind, "key": key, column: bytes(data), "updated_at": now, **values})
    return records
