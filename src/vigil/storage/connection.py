"""From a database URL to a SQLAlchemy engine: which backends vigil accepts, and how it opens
SQLite (pragmas, and a transaction it controls itself).

A connection whose execution options carry :data:`WRITE_UNIT` is a write unit
(``Store.transaction``): on SQLite it begins with ``BEGIN IMMEDIATE``, taking the write lock
at once.

>>> engine = sqlite_engine(normalise_url("sqlite://"), echo=False)
>>> with engine.connect() as conn:
...     conn.exec_driver_sql("PRAGMA foreign_keys").scalar()
1
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

WRITE_UNIT = "vigil_write_unit"
# SQLite's write-ahead log, when its checkpoints are left to Store.checkpoint_wal: started again
# once it holds more pages than this (vigil.api.writer). Its file is then reused from the start;
# it is cut back only when it grew past WAL_LIMIT_BYTES (a log that could not start again for a
# while), as cutting it at every start cost that start's first commit 5-17 ms of ftruncate.
WAL_RESTART_FRAMES = 16_384
WAL_LIMIT_BYTES = 256 * 1024 * 1024


def normalise_url(url: str) -> str:
    """Accept ``sqlite:///path.db`` and ``postgresql://...``; PostgreSQL goes through psycopg 3.

    >>> normalise_url("postgresql://postgres@127.0.0.1:5432/test")
    'postgresql+psycopg://postgres@127.0.0.1:5432/test'
    >>> normalise_url("sqlite:///vigil.db")
    'sqlite:///vigil.db'
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ValueError(f"url: cannot parse database URL {url!r}: {exc}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise ValueError(f"url: PostgreSQL is used through psycopg 3, not {driver!r}")
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite" or driver not in ("", "pysqlite"):
        raise ValueError(f"url: {parsed.drivername!r} is not supported; use sqlite or postgresql")
    return parsed.render_as_string(hide_password=False)


def sqlite_engine(url: str, echo: bool, *, inline_checkpoints: bool = True) -> Engine:
    """A SQLite engine in WAL mode with foreign keys on, whose transactions vigil begins itself;
    ``inline_checkpoints=False`` leaves copying the write-ahead log to ``Store.checkpoint_wal``."""
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # SQLite drops a connection's whole page cache whenever another connection wrote since it
    # last read. Last in, first out, a thread that commits again and again gets back the
    # connection it just used, its cache still good; handed the pool's others in turn, each
    # commit of the server's writer read its pages afresh (up to 9 ms of CPU for one decision).
    # (An in-memory database has one connection per thread anyway.)
    pooled = SQLiteDialect_pysqlite.get_pool_class(make_url(url)) is QueuePool
    engine = create_engine(url, echo=echo, **({"pool_use_lifo": True} if pooled else {}))

    # pysqlite's own transaction handling skips BEGIN before DDL and breaks SAVEPOINT; take it
    # over so every Store.transaction is one real SQLite transaction.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # Each decision adds to a dozen B-tree indexes at places its random ids scatter; with
        # SQLite's default 2 MiB page cache most of those pages are read again from the OS
        # for every batch. 64 MiB (taken only as used) cuts a batch's insert time by a fifth.
        cursor.execute("PRAGMA cache_size=-65536")
        if not inline_checkpoints:  # Store.checkpoint_wal, called by the owner, does them
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        cursor.close()

    # A write unit (Store.transaction) takes the write lock as it begins, waiting for it up to
    # the busy timeout. Begun deferred, it would read first and, if another process (the
    # server's writer) committed meanwhile, fail at its first write with "database is locked"
    # at once, without waiting: SQLite cannot upgrade a read snapshot that is out of date.
    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(WRITE_UNIT, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
