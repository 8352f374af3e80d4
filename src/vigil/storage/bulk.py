"""Bulk inserts of thousands of rows, the fastest way each backend offers.

SQLite: one prepared statement run by ``executemany`` over plain tuples, with the columns' own
bind processors applied column by column, which skips SQLAlchemy's per-row parameter assembly
(a fifth of the time of recording a 10,000-event batch).

A Polars frame goes in the same way on SQLite (:func:`sqlite_insert_frame`), its columns
turned first into what the bind processors would have made of them by Polars itself (times as
UTC text, amounts as floats, flags as 0/1: :func:`sqlite_values`): a file import writes a
million rows without a Python call per value. A column with one value on every row (a file's
type, channel, currency) is written once into the statement, quoted by SQLite's own
``quote()``, instead of being bound per row; the rest go 50 rows a statement.

PostgreSQL: COPY. A batched ``INSERT ... VALUES`` costs psycopg a parse of a huge statement
per thousand rows, and ``INSERT ... RETURNING`` is the only way it reports how many rows an
``ON CONFLICT DO NOTHING`` kept. Copying the batch into a temporary table and moving it over
with one ``INSERT ... SELECT`` is five times faster and gives an exact row count. Everything
happens on the caller's connection, inside its transaction. The temporary table is made and
dropped in the catalog, though, milliseconds a call whatever the rows: fewer than
:data:`COPY_FROM` rows (a server's commit of a few decisions) go in by one multi-row
``INSERT`` instead (:func:`postgres_insert`). A Polars frame is written as CSV by Polars
(:func:`postgres_parts`) and read by COPY as it is (:class:`PostgresLoad`): no Python object
per value on either side.

>>> copy_sql("_vigil_load_1", ["event_id", "timestamp"])
'COPY "_vigil_load_1" ("event_id", "timestamp") FROM STDIN'
>>> copy_sql("_vigil_load_1", ["event_id"], csv=True)
'COPY "_vigil_load_1" ("event_id") FROM STDIN (FORMAT csv)'
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Connection, Engine, Insert, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

from vigil.storage.partitions import partition_ddl, partition_name
from vigil.storage.schema import PARTITIONED_TABLES

if TYPE_CHECKING:
    import polars as pl

_names = itertools.count()


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def copy_sql(temp: str, names: list[str], *, csv: bool = False) -> str:
    return f'COPY "{temp}" ({_quoted(names)}) FROM STDIN' + (" (FORMAT csv)" if csv else "")


def sqlite_insert(
    conn: Connection, table: Table, rows: list[dict[str, Any]], *, skip_existing: bool
) -> int:
    """Insert ``rows`` (all with the same keys) into a SQLite ``table``; returns rows inserted.

    With ``skip_existing`` a row clashing with a stored key is skipped (``ON CONFLICT DO
    NOTHING``, which unlike ``INSERT OR IGNORE`` still fails on NULLs and CHECKs).
    """
    if not rows:
        return 0
    names = list(rows[0])
    dialect = conn.dialect
    processors = [table.c[n].type._cached_bind_processor(dialect) for n in names]
    conflict = " ON CONFLICT DO NOTHING" if skip_existing else ""
    sql = (
        f'INSERT INTO "{table.name}" ({_quoted(names)}) '
        f"VALUES ({', '.join('?' * len(names))}){conflict}"
    )
    # Column by column: one tight loop per processor instead of a generator per row.
    columns = []
    for name, proc in zip(names, processors, strict=True):
        values = [row[name] for row in rows]
        if proc is not None:
            values = [None if v is None else proc(v) for v in values]
        columns.append(values)
    return conn.exec_driver_sql(sql, list(zip(*columns, strict=True))).rowcount


#: Rows a statement in :func:`sqlite_insert_frame`: SQLite runs one statement (a step, a reset,
#: the sqlite3 module's checks) per this many rows instead of per row. Inserting 100,000 rows
#: of a card file took 170-177 ms at 50 against 242-249 ms one row a statement; 25 and 100-500
#: were no better.
ROWS_A_STATEMENT = 50


def sqlite_values(frame: pl.DataFrame, table: Table) -> pl.DataFrame:
    """A Polars frame whose columns are ``table``'s (times tz-aware, amounts exact cents as
    text or numbers, flags boolean) as SQLAlchemy's SQLite binds would store it, for
    :func:`sqlite_insert_frame`: Polars work, which a caller may do on another thread.

    >>> import polars as pl
    >>> from datetime import datetime, UTC
    >>> from sqlalchemy import Column, MetaData
    >>> from vigil.storage.columns import Money, UtcDateTime
    >>> t = Table("t", MetaData(), Column("t", UtcDateTime()), Column("a", Money()))
    >>> f = pl.DataFrame({"t": [datetime(2022, 1, 3, 10, tzinfo=UTC)], "a": ["2500.5"]})
    >>> sqlite_values(f, t).rows()
    [('2022-01-03 10:00:00.000000', 2500.5)]
    """
    if frame.is_empty():  # nothing to write, whatever its columns
        return frame
    frame = _bound(frame, table)
    return _sqlite_values(frame, {name: _kind(table.c[name].type) for name in frame.columns})


def sqlite_insert_frame(
    conn: Connection, table: Table, values: pl.DataFrame, *, skip_existing: bool
) -> int:
    """:func:`sqlite_insert` for a frame of :func:`sqlite_values`."""
    if values.is_empty():
        return 0
    # A column with one value on every row is written once, into the statement (quoted by
    # SQLite itself), rather than made into a Python object and bound on every row: a card
    # file's type, phase, channel, currency, direction and StandIn flag, half its columns.
    fixed = {
        name: conn.exec_driver_sql("SELECT quote(?)", (values.get_column(name)[0],)).scalar_one()
        for name in values.columns
        if _one_value(values.get_column(name))
    }
    bound = [name for name in values.columns if name not in fixed]
    row = f"({', '.join(['?'] * len(bound) + list(fixed.values()))})"
    conflict = " ON CONFLICT DO NOTHING" if skip_existing else ""

    def statement(rows: int) -> str:
        return (
            f'INSERT INTO "{table.name}" ({_quoted([*bound, *fixed])}) '
            f"VALUES {', '.join([row] * rows)}{conflict}"
        )

    if not bound:  # every column holds one value (a frame of one row): nothing to bind
        return conn.exec_driver_sql(statement(values.height)).rowcount
    # rows() builds the tuples in one call, a third of iterating them.
    flat = list(itertools.chain.from_iterable(values.select(bound).rows()))
    # Within the fewest parameters a statement may have on any SQLite (999 before 3.32).
    per = max(1, min(ROWS_A_STATEMENT, 999 // len(bound)))
    width = per * len(bound)
    groups = list(zip(*[iter(flat)] * width, strict=False))  # the last, shorter, goes below
    inserted = conn.exec_driver_sql(statement(per), groups).rowcount if groups else 0
    if rest := flat[len(groups) * width :]:
        inserted += conn.exec_driver_sql(statement(len(rest) // len(bound)), tuple(rest)).rowcount
    return inserted


def _one_value(column: pl.Series) -> bool:
    """True for a text or integer column holding one value on every row (no nulls). Floats
    stay bound: a literal would be the value printed and read back, not the value itself."""
    import polars as pl

    # First against last answers most varying columns (ids) without a pass over the column.
    return (
        (column.dtype == pl.String or column.dtype.is_integer())
        and column.null_count() == 0
        and column[0] == column[-1]
        and bool((column == column[0]).all())
    )


def _bound(frame: pl.DataFrame, table: Table) -> pl.DataFrame:
    """The frame without the columns empty on every row that have no default: NULL all the
    same, and no None to bind or copy a million times."""
    return frame.select(
        name
        for name in frame.columns
        if frame.get_column(name).null_count() < frame.height
        or table.c[name].default is not None
        or table.c[name].server_default is not None
    )


#: SQLite's page cache while a bulk load builds its indexes again, in MiB. With the store's
#: 64 MiB, building six indexes over 1.3 M rows spilled the sort to temporary files and read
#: the table's pages back from the log: 7-11 s (5.9 s of CPU); with 256 MiB, 5.1 s (5.0 s of
#: CPU) for 75 MB more resident memory. More bought nothing.
INDEX_BUILD_CACHE_MIB = 256


@contextmanager
def sqlite_indexes_deferred(conn: Connection, table: Table, rows: int) -> Iterator[None]:
    """Around a bulk load of ``rows`` into a SQLite ``table`` on ``conn``'s open transaction:
    when they outnumber the rows stored, its secondary indexes are dropped first and built
    again after, in the same transaction (sorting once is cheaper than a million B-tree
    inserts: 1.3 M rows took 11 s of CPU instead of 15-20), with a page cache of
    :data:`INDEX_BUILD_CACHE_MIB` meanwhile. Readers see the old table, indexes included, until
    the commit; a failure rolls the drop back with the rest."""
    stored = conn.exec_driver_sql(f'SELECT count(*) FROM "{table.name}"').scalar_one()
    indexes = []
    if rows > stored:
        indexes = conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? "
            "AND sql IS NOT NULL",
            (table.name,),
        ).all()
        for name, _ in indexes:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
    yield
    if not indexes:
        return
    with sqlite_cache(conn, INDEX_BUILD_CACHE_MIB), sqlite_sort_threads(conn):
        for _, sql in indexes:
            conn.exec_driver_sql(sql)


@contextmanager
def sqlite_load_journal(engine: Engine) -> Iterator[None]:
    """Around a bulk load into a SQLite database through ``engine`` (its transactions begun
    inside): if no other connection has the database open, it is written through a rollback
    journal meanwhile; else it stays in write-ahead-log mode.

    Through the log, every page a load writes goes to the log, then is copied into the database
    at the commit: 1.3 M transactions and their labels wrote about 500 MB twice, a fifth of the
    import's time. With a rollback journal, pages new to the file are written once and only
    pages that held data before are journaled. The load's connection syncs fully meanwhile
    (``synchronous=FULL``), which a rollback journal needs to survive a power cut; a ``kill
    -9`` leaves a hot journal that the next opening of the database rolls back.

    Leaving the log needs the database to oneself, so a server that has it open keeps the
    load in the log (tried without waiting). Through the journal, once the load's pages spill
    into the file, nobody else can read it until the commit: a server or a query started
    meanwhile stops with "database is locked" after its busy timeout (a server could not have
    written beside the load anyway). The pool's idle connections are closed first: they would
    count as others. The log and the connection's synchronous level come back at the end,
    whether the load committed or not (or, if another connection holds the database just
    then, as it opened: every connection asks for the log). A database in memory has no
    journal to choose, and closing its connection would lose it."""
    if not isinstance(engine.pool, QueuePool):  # only a file database's pool is a queue
        yield
        return
    engine.dispose()
    # From a connection of the pool: the one a transaction begun next takes (the pool hands
    # out its last returned connection first).
    with engine.connect() as conn:
        dbapi = conn.connection.driver_connection
        synchronous = dbapi.execute("PRAGMA synchronous").fetchone()[0]
        switched = _sqlite_journal_mode(dbapi, "delete")
        if switched:
            dbapi.execute("PRAGMA synchronous=FULL")
    try:
        yield
    finally:
        if switched:
            with engine.connect() as conn:
                dbapi = conn.connection.driver_connection
                _sqlite_journal_mode(dbapi, "wal")
                dbapi.execute(f"PRAGMA synchronous={int(synchronous)}")


def _sqlite_journal_mode(dbapi: Any, mode: str) -> bool:
    """Put the database of ``dbapi`` (a sqlite3 connection) in journal ``mode`` without
    waiting: ``False`` if another connection holds it."""
    timeout = dbapi.execute("PRAGMA busy_timeout").fetchone()[0]
    dbapi.execute("PRAGMA busy_timeout=0")
    try:
        return bool(dbapi.execute(f"PRAGMA journal_mode={mode}").fetchone()[0] == mode)
    except sqlite3.OperationalError:  # "database is locked": another connection has it
        return False
    finally:
        dbapi.execute(f"PRAGMA busy_timeout={int(timeout)}")


@contextmanager
def sqlite_sort_threads(conn: Connection) -> Iterator[None]:
    """SQLite's sorter on ``conn`` may use the other cores meanwhile (``PRAGMA threads``),
    then is set back. Building the indexes of 1.3 M rows took 8.3-9.3 s instead of 9.8-10.8
    on a shared 2-core machine, for the same CPU time (5.9 s against 6.1): the reading that
    overlapped the load has ended by then, leaving the second core idle."""
    with _sqlite_pragma(conn, "threads", max(1, min(4, (os.cpu_count() or 1) - 1))):
        yield


@contextmanager
def sqlite_cache(conn: Connection, mib: int) -> Iterator[None]:
    """SQLite's page cache on ``conn`` at ``mib`` MiB meanwhile (taken only as used), then
    set back: the setting is the connection's, and the pool hands it out again."""
    with _sqlite_pragma(conn, "cache_size", -mib * 1024):
        yield


@contextmanager
def _sqlite_pragma(conn: Connection, name: str, value: int) -> Iterator[None]:
    """An integer PRAGMA of ``conn`` at ``value`` meanwhile, then set back."""
    before = conn.exec_driver_sql(f"PRAGMA {name}").scalar_one()
    conn.exec_driver_sql(f"PRAGMA {name}={value}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA {name}={int(before)}")


def _kind(column_type: Any) -> str:
    from sqlalchemy import Boolean

    from vigil.storage.columns import Money, UtcDateTime

    if isinstance(column_type, UtcDateTime):
        return "time"
    if isinstance(column_type, Money):
        return "money"
    if isinstance(column_type, Boolean):
        return "flag"
    if isinstance(column_type, JSON):
        raise TypeError("JSON columns go row by row (sqlite_insert, copy_insert), not in a frame")
    return "plain"


def _sqlite_values(frame: pl.DataFrame, kinds: dict[str, str]) -> pl.DataFrame:
    """The frame as SQLAlchemy's SQLite binds would store it (see UtcDateTime and Money)."""
    import polars as pl

    out = []
    for name in frame.columns:
        column = pl.col(name)
        kind = kinds[name] if frame.schema[name] != pl.Null else "plain"  # all empty
        if kind == "time":
            column = column.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f")
        elif kind == "money":
            column = column.cast(pl.Float64)
        elif kind == "flag":
            column = column.cast(pl.Int8)
        out.append(column.alias(name))
    return frame.select(out)


def _postgres_values(frame: pl.DataFrame, kinds: dict[str, str]) -> pl.DataFrame:
    """The frame as PostgreSQL reads it from CSV: times as UTC text with their offset, amounts
    as their exact decimal text (NUMERIC keeps every cent), flags as true/false."""
    import polars as pl

    out = []
    for name in frame.columns:
        column = pl.col(name)
        kind = kinds[name] if frame.schema[name] != pl.Null else "plain"
        if kind == "time":
            column = column.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.6f+00")
        elif kind == "money":
            column = column.cast(pl.String)
        out.append(column.alias(name))
    return frame.select(out)


# Fewer rows than this go in by INSERT, more by COPY: bench/commits.py on PostgreSQL, p10 of
# a commit, INSERT against COPY: 8 decisions 4.4 against 7.4 ms, 16 alike (8.7, 7.9), 64
# 29.2 against 21.9 ms (the INSERT's parameters cost the writer more CPU row by row).
COPY_FROM = 32


def postgres_insert(
    conn: Connection, table: Table, rows: list[dict[str, Any]], *, skip_existing: bool
) -> int:
    """Insert ``rows`` into a PostgreSQL ``table`` the cheaper way for their number: COPY
    from :data:`COPY_FROM` rows, else one multi-row ``INSERT``; returns rows inserted. With
    ``skip_existing`` a row whose key is already stored is skipped (and not counted)."""
    if len(rows) >= COPY_FROM:
        return copy_insert(conn, table, rows, skip_existing=skip_existing)
    if not rows:
        return 0
    # INSERT ... RETURNING counts what ON CONFLICT DO NOTHING kept.
    result = conn.execute(_postgres_statement(table, skip_existing), rows)
    return len(result.all()) if skip_existing else len(rows)


@functools.cache
def _postgres_statement(table: Table, skip_existing: bool) -> Insert:
    # Built once per table: building and keying a statement costs more than a small insert.
    if not skip_existing:
        return table.insert()
    return postgresql.insert(table).on_conflict_do_nothing().returning(*table.primary_key)


def copy_insert(
    conn: Connection, table: Table, rows: list[dict[str, Any]], *, skip_existing: bool
) -> int:
    """Insert ``rows`` (all with the same keys) into ``table``; returns rows inserted.

    With ``skip_existing`` a row whose key is already stored is skipped; without it a clash
    raises ``sqlalchemy.exc.IntegrityError`` like any other insert.
    """
    if not rows:
        return 0
    from psycopg.types.json import Jsonb

    names = list(rows[0])
    json_at = [i for i, n in enumerate(names) if isinstance(table.c[n].type, JSON)]

    def fill(copy: Any) -> None:
        for row in rows:
            values = [row[n] for n in names]
            for i in json_at:
                if values[i] is not None:
                    values[i] = Jsonb(values[i])
            copy.write_row(values)

    return _copy_through_temp(conn, table, names, fill, csv=False, skip_existing=skip_existing)


@dataclasses.dataclass(frozen=True)
class CsvPart:
    """Rows of one table as COPY reads them: CSV ``data`` of the columns ``names``, all of the
    month starting at ``month`` if the table is partitioned by month (else None)."""

    month: datetime | None
    names: list[str]
    data: bytes


def postgres_parts(frame: pl.DataFrame, table: Table) -> list[CsvPart]:
    """A Polars frame whose columns are ``table``'s (as for :func:`sqlite_values`) as
    :meth:`PostgresLoad.write` takes it: written as CSV by Polars, a part a month for a
    partitioned table. Polars work, which a caller may do on another thread."""
    if frame.is_empty():
        return []
    if table.name not in PARTITIONED_TABLES:
        return [CsvPart(None, *_csv(frame, table))]
    import polars as pl

    month = pl.col("timestamp").dt.convert_time_zone("UTC").dt.truncate("1mo")
    frame = frame.with_columns(month.alias("_month"))
    return [
        CsvPart(start, *_csv(frame.filter(pl.col("_month") == start).drop("_month"), table))
        for start in frame.get_column("_month").unique().sort().to_list()
    ]


def _csv(frame: pl.DataFrame, table: Table) -> tuple[list[str], bytes]:
    """The frame's bound columns and their CSV as COPY reads it: Polars writes a null as an
    empty field and an empty text as "", which is how COPY's CSV format tells NULL from ''."""
    frame = _bound(frame, table)
    kinds = {name: _kind(table.c[name].type) for name in frame.columns}
    return list(frame.columns), _postgres_values(frame, kinds).write_csv(
        include_header=False
    ).encode()


def _writing(data: bytes) -> Callable[[Any], None]:
    def fill(copy: Any) -> None:
        copy.write(data)

    return fill


def _copy_through_temp(
    conn: Connection,
    table: Table,
    names: list[str],
    fill: Callable[[Any], None],
    *,
    csv: bool,
    skip_existing: bool,
) -> int:
    """COPY into a temporary table shaped as ``table``'s ``names`` (``fill`` writes the data),
    then move the rows over with one ``INSERT ... SELECT``; returns the rows it inserted."""
    import psycopg

    temp = f"_vigil_load_{next(_names)}"
    raw = conn.connection.driver_connection
    try:
        with raw.cursor() as cur:
            # Same column types, no constraints: a bad value fails the COPY naming its column,
            # a NULL or a clash fails the INSERT below like any insert would.
            cur.execute(
                f'CREATE TEMP TABLE "{temp}" ON COMMIT DROP AS '
                f'SELECT {_quoted(names)} FROM "{table.name}" WITH NO DATA'
            )
            with cur.copy(copy_sql(temp, names, csv=csv)) as copy:
                fill(copy)
    except psycopg.Error as exc:
        raise DBAPIError.instance(f"COPY {table.name}", None, exc, psycopg.Error) from exc
    conflict = " ON CONFLICT DO NOTHING" if skip_existing else ""
    result = conn.exec_driver_sql(
        f'INSERT INTO "{table.name}" ({_quoted(names)}) '
        f'SELECT {_quoted(names)} FROM "{temp}"{conflict}'
    )
    inserted = result.rowcount
    conn.exec_driver_sql(f'DROP TABLE "{temp}"')
    return inserted


#: PostgreSQL's sort memory while a bulk load builds a new month's indexes (``SET LOCAL``:
#: this transaction only). The server's default, 64 MB, spills a month's sort to disk.
INDEX_BUILD_WORK_MEM = "256MB"


class PostgresLoad:
    """A bulk load's writes into PostgreSQL, all on ``conn``'s open transaction, each chunk
    the cheapest way that stores exactly what ``INSERT ... ON CONFLICT DO NOTHING`` would:

    - rows of a month that has no partition yet go by COPY into a plain table of this
      transaction's own, without indexes; :meth:`finish` builds its indexes once, by sorting,
      and attaches it as the month's partition (``ATTACH PARTITION``). A partition made by
      ``CREATE TABLE ... PARTITION OF`` keeps every index up to date row by row and locks the
      parent table against readers until the commit; attaching takes a lock that readers and
      writers of the other months pass (``SHARE UPDATE EXCLUSIVE``).
    - other rows go by COPY straight into their table, in a savepoint: the first key already
      stored fails the COPY, the savepoint is rolled back and that chunk, and every later one
      of that table, go through a temporary table and ``ON CONFLICT DO NOTHING``.

    If another session created a staged month's partition meanwhile, :meth:`finish` moves the
    staged rows into it with ``ON CONFLICT DO NOTHING`` instead, and answers how many were
    already stored. ``ensure_partitions(conn, table, months)`` creates partitions for that.
    """

    def __init__(
        self,
        conn: Connection,
        ensure_partitions: Callable[[Connection, Table, list[datetime]], None],
    ) -> None:
        self._conn = conn
        self._ensure = ensure_partitions
        self._staged: dict[tuple[str, datetime], _Staged] = {}
        self._clashed: set[str] = set()
        self._exists: dict[str, bool] = {}

    def write(self, table: Table, parts: list[CsvPart]) -> int:
        """Insert the rows of ``parts`` (:func:`postgres_parts`) whose key is new; returns how
        many it wrote (a staged month's rows all count: :meth:`finish` answers those already
        stored)."""
        written = 0
        stored: list[CsvPart] = []
        for part in parts:
            start = part.month
            if start is None:
                written += self._new_rows(table, part)
            elif (table.name, start) in self._staged or not self._partition_exists(
                partition_name(table.name, (start.year, start.month))
            ):
                written += self._stage(table, start, part)
            else:
                stored.append(part)
        if stored:
            self._ensure(self._conn, table, [part.month for part in stored if part.month])
            written += sum(self._new_rows(table, part) for part in stored)
        return written

    def finish(self) -> int:
        """Index and attach every staged month; returns the staged rows not kept (their key
        was stored meanwhile, by another session that created the month's partition)."""
        if not self._staged:
            return 0
        import psycopg

        kept_out = 0
        with self._cursor() as cur:
            cur.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_WORK_MEM}'")
            for (table, start), staged in self._staged.items():
                final = partition_name(table, (start.year, start.month))
                ddl = partition_ddl(table, (start.year, start.month))
                cur.execute("SAVEPOINT _vigil_attach")
                try:
                    cur.execute(f'ALTER TABLE "{staged.name}" RENAME TO "{final}"')
                    # Builds the parent's indexes on it, each once, by sorting.
                    cur.execute(
                        f'ALTER TABLE "{table}" ATTACH PARTITION "{final}" '
                        + ddl[ddl.index("FOR VALUES") :]
                    )
                except (psycopg.errors.DuplicateTable, psycopg.errors.InvalidObjectDefinition):
                    # The month's partition appeared meanwhile: move the rows into it.
                    cur.execute("ROLLBACK TO SAVEPOINT _vigil_attach")
                    self._ensure(self._conn, staged.table, [start])
                    columns = _quoted([c.name for c in staged.table.columns])
                    cur.execute(
                        f'INSERT INTO "{table}" ({columns}) SELECT {columns} '
                        f'FROM "{staged.name}" ON CONFLICT DO NOTHING'
                    )
                    kept_out += staged.rows - cur.rowcount
                    cur.execute(f'DROP TABLE "{staged.name}"')
                cur.execute("RELEASE SAVEPOINT _vigil_attach")
        self._staged.clear()
        return kept_out

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        import psycopg

        raw = self._conn.connection.driver_connection
        try:
            with raw.cursor() as cur:
                yield cur
        except psycopg.Error as exc:
            raise DBAPIError.instance("bulk load", None, exc, psycopg.Error) from exc

    def _partition_exists(self, name: str) -> bool:
        if name not in self._exists:
            found = self._conn.exec_driver_sql(
                "SELECT to_regclass(%(name)s) IS NOT NULL", {"name": f'"{name}"'}
            ).scalar_one()
            self._exists[name] = bool(found)
        return self._exists[name]

    def _stage(self, table: Table, start: datetime, part: CsvPart) -> int:
        staged = self._staged.get((table.name, start))
        with self._cursor() as cur:
            if staged is None:
                staged = _Staged(f"_vigil_stage_{uuid.uuid4().hex[:16]}", table)
                cur.execute(f'CREATE TABLE "{staged.name}" ({_columns_ddl(cur, table.name)})')
                self._staged[(table.name, start)] = staged
            with cur.copy(copy_sql(staged.name, part.names, csv=True)) as copy:
                copy.write(part.data)
            staged.rows += cur.rowcount
            return int(cur.rowcount)

    def _new_rows(self, table: Table, part: CsvPart) -> int:
        names, data = part.names, part.data
        if table.name in self._clashed:
            return _copy_through_temp(
                self._conn, table, names, _writing(data), csv=True, skip_existing=True
            )
        import psycopg

        with self._cursor() as cur:
            cur.execute("SAVEPOINT _vigil_copy")
            try:
                with cur.copy(copy_sql(table.name, names, csv=True)) as copy:
                    copy.write(data)
                copied = int(cur.rowcount)
            except psycopg.errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT _vigil_copy")
                copied = -1
            cur.execute("RELEASE SAVEPOINT _vigil_copy")
        if copied >= 0:
            return copied
        # Keys already stored: this table's rows skip them from now on.
        self._clashed.add(table.name)
        return _copy_through_temp(
            self._conn, table, names, _writing(data), csv=True, skip_existing=True
        )


@dataclasses.dataclass
class _Staged:
    name: str
    table: Table
    rows: int = 0


def _columns_ddl(cur: Any, table: str) -> str:
    """``table``'s columns (types, collations, NOT NULL, defaults) and CHECK constraints, as a
    CREATE TABLE's list: what ATTACH PARTITION requires of a table. Read from the catalog,
    which takes no lock on ``table``."""
    cur.execute(
        "SELECT format('%%I %%s%%s%%s%%s', a.attname, format_type(a.atttypid, a.atttypmod), "
        "CASE WHEN a.attcollation <> t.typcollation "
        "THEN ' COLLATE ' || a.attcollation::regcollation ELSE '' END, "
        "CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END, "
        "coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')) "
        "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        (f'"{table}"',),
    )
    columns = [row[0] for row in cur.fetchall()]
    cur.execute(
        "SELECT format('CONSTRAINT %%I %%s', conname, pg_get_constraintdef(oid)) "
        "FROM pg_constraint WHERE conrelid = to_regclass(%s) AND contype = 'c'",
        (f'"{table}"',),
    )
    return ", ".join(columns + [row[0] for row in cur.fetchall()])
