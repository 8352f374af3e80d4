"""The part of the store every other part builds on: the engine, the schema, transactions,
and the three ways rows go in (new event rows, rows that must all be new, upserts).

Each part of :class:`~vigil.storage.Store` (events, decisions, checkpoints...) subclasses
:class:`Database` and writes through these methods, so partitions, COPY and pseudonymisation
happen the same way whichever table a row is for.

>>> db = Database("sqlite://")
>>> db.init_schema()
>>> db.counts()["decisions"]
0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from itertools import islice
from typing import Any, NamedTuple, Self

from sqlalchemy import Connection, Table, create_engine, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

from vigil.privacy.keys import PrivacyKeys
from vigil.storage.bulk import postgres_insert, sqlite_insert
from vigil.storage.connection import WRITE_UNIT, normalise_url, sqlite_engine
from vigil.storage.partitions import MonthlyPartitions
from vigil.storage.schema import build_tables

# Rows per statement when writing or streaming, and ids per ``IN (...)`` when reading by id.
CHUNK = 5_000
IN_CHUNK = 500


class LogCopy(NamedTuple):
    """What a checkpoint of SQLite's write-ahead log left: the pages the log holds, and how
    many of them are now copied into the database file."""

    pages: int
    copied: int


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``itertools.batched`` arrived in Python 3.12; vigil supports 3.11."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def need(items: Iterable[Any], cls: type, what: str) -> list[Any]:
    """``items`` as a list, refused with the index of the first that is not a ``cls``."""
    out = list(items)
    for i, item in enumerate(out):
        if not isinstance(item, cls):
            raise TypeError(f"{what}[{i}]: expected {cls.__name__}, got {type(item).__name__}")
    return out


def aware(value: datetime | None, field: str) -> datetime | None:
    """``value``, refused when it has no time zone (a query bound would be read as UTC)."""
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{field}: naive datetime {value.isoformat()}; give a timezone (UTC)")
    return value


def _by_key(
    rows: Iterable[dict[str, Any]], key: Callable[[dict[str, Any]], Any], keep: str
) -> list[dict[str, Any]]:
    """Drop rows repeating a key; ``keep`` "first" for idempotent inserts, "last" for upserts."""
    out: dict[Any, dict[str, Any]] = {}
    for row in rows:
        k = key(row)
        if keep == "last" or k not in out:
            out[k] = row
    return list(out.values())


class Database:
    """A SQLite file (default) or PostgreSQL database with vigil's tables: how to open,
    create, transact on and write to it, whatever is stored.

    Every writer takes an optional ``conn`` from :meth:`transaction` to join a larger atomic
    unit; without one it runs in its own transaction.

    >>> Database("sqlite://").dialect
    'sqlite'
    >>> Database("postgresql://u@db/vigil").url
    'postgresql+psycopg://u@db/vigil'
    """

    def __init__(
        self,
        url: str,
        *,
        echo: bool = False,
        privacy: PrivacyKeys | None = None,
        inline_checkpoints: bool = True,
    ) -> None:
        """``inline_checkpoints=False`` (SQLite): commits never copy the write-ahead log into
        the database file themselves, the caller runs :meth:`checkpoint_wal` instead, so that
        work stays off the commits' latency (the server's writer does, from a thread)."""
        self.url = normalise_url(url)
        # IPs and devices are pseudonymised and contact data encrypted on the way in, whoever
        # writes (the engine, an import); without explicit keys, the configured ones.
        self.privacy = privacy or PrivacyKeys.from_settings()
        self.dialect = make_url(self.url).get_backend_name()
        if self.dialect == "sqlite":
            self.engine = sqlite_engine(self.url, echo, inline_checkpoints=inline_checkpoints)
            self._partitions: MonthlyPartitions | None = None
        else:
            self.engine = create_engine(self.url, echo=echo, pool_pre_ping=True)
            self._partitions = MonthlyPartitions()
        self.tables = build_tables(self.dialect)

    def __repr__(self) -> str:
        shown = make_url(self.url).render_as_string(hide_password=True)
        return f"{type(self).__name__}({shown!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # -- schema ------------------------------------------------------------------------------

    def init_schema(self) -> None:
        """Create the schema, or bring the database's to this vigil's version; idempotent.

        Schema changes are Alembic revisions (:mod:`vigil.storage.migrations`, which
        ``vigil db upgrade`` runs too): an empty database gets today's tables at once, an older
        one its missing revisions, all in one transaction.
        """
        from vigil.storage import migrations

        migrations.upgrade(self)

    def checkpoint_wal(self, conn: Connection | None = None) -> LogCopy:
        """Copy what SQLite's write-ahead log holds into the database file, as far as readers
        allow, without blocking writers (a passive checkpoint), on ``conn`` (outside any
        transaction) or a pooled connection. Nothing to do on PostgreSQL.

        >>> db = Database("sqlite://")
        >>> db.checkpoint_wal()  # an in-memory database has no log
        LogCopy(pages=-1, copied=-1)
        """
        if self.dialect != "sqlite":
            return LogCopy(0, 0)
        if conn is None:
            with self.engine.connect() as conn:
                return self.checkpoint_wal(conn)
        _, pages, copied = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        conn.commit()  # the statement began a transaction: one left open would pin the log
        return LogCopy(int(pages), int(copied))

    def drop_all(self) -> None:
        """Drop every vigil table (partitions go with their parent) and Alembic's record of the
        schema. For tests and resets."""
        from vigil.storage.migrations import VERSION_TABLE

        with self.transaction() as conn:
            self.tables.metadata.drop_all(conn, checkfirst=True)
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {VERSION_TABLE}")
        if self._partitions is not None:
            self._partitions.forget()

    def counts(self) -> dict[str, int]:
        """Rows per table."""
        with self.engine.connect() as conn:
            return {
                name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in self.tables.metadata.tables.items()
                if name != "schema_version"
            }

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One atomic unit: everything executed on the yielded connection commits or none does."""
        with self.engine.connect().execution_options(**{WRITE_UNIT: True}) as conn:
            if self._partitions is not None:
                self._partitions.begin(conn)
            committed = False
            try:
                with conn.begin():
                    yield conn
                committed = True
            finally:
                if self._partitions is not None:
                    self._partitions.end(conn, committed)

    @contextmanager
    def _joined(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.transaction() as own:
                yield own

    # -- writing rows ------------------------------------------------------------------------

    def _pseudonymised(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows, changed in place, with IPs, devices and card numbers pseudonymised: every
        row that may carry one passes here on its way in."""
        pseudonymise = self.privacy.pseudonyms.row
        return [pseudonymise(row) for row in rows]

    def _insert(self, table: Table) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def _upsert(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        key = [c.name for c in table.primary_key]
        rows = _by_key(rows, lambda r: tuple(r[k] for k in key), keep="last")
        stmt = self._insert(table)
        stmt = stmt.on_conflict_do_update(
            index_elements=key,
            set_={c.name: stmt.excluded[c.name] for c in table.columns if c.name not in key},
        )
        conn.execute(stmt, rows)
        return len(rows)

    def insert_new(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
        """Insert rows of an event table (rows as :mod:`vigil.storage.rows` makes them) whose
        event_id is not stored yet, inside ``conn``'s transaction; returns how many went in.
        The bulk importers call it too, so their rows take the same path (COPY, partitions)."""
        if not rows:
            return 0
        rows = _by_key(rows, lambda r: r["event_id"], keep="first")
        self.ensure_partitions(conn, table, (r["timestamp"] for r in rows))
        if self.dialect == "postgresql":
            return postgres_insert(conn, table, rows, skip_existing=True)
        return sqlite_insert(conn, table, rows, skip_existing=True)

    def ensure_partitions(self, conn: Connection, table: Table, times: Iterable[datetime]) -> None:
        """Create the monthly partitions rows of ``table`` at ``times`` need (PostgreSQL's event
        tables; nothing otherwise), inside ``conn``'s transaction: what :meth:`insert_new` does
        first, for a bulk importer that writes its rows its own way (a Polars frame by COPY)."""
        if self._partitions is not None and table.name in ("transactions", "logins"):
            self._partitions.ensure(conn, table.name, times)

    def _insert_all(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
        """Insert rows that must all be new: a clash raises IntegrityError."""
        if not rows:
            return
        if self.dialect == "postgresql":
            postgres_insert(conn, table, rows, skip_existing=False)
        else:
            sqlite_insert(conn, table, rows, skip_existing=False)
