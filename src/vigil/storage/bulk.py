"""Bulk inserts of thousands of rows, the fastest way each backend offers.

SQLite: one prepared statement run by ``executemany`` over plain tuples, with the columns' own
bind processors applied column by column, which skips SQLAlchemy's per-row parameter assembly
(a fifth of the time of recording a 10,000-event batch).

A Polars frame goes in the same way on SQLite (:func:`sqlite_insert_frame`), its columns
turned into what the bind processors would have made of them by Polars itself (times as UTC
text, amounts as floats, flags as 0/1): a file import writes a million rows without a Python
call per value.

PostgreSQL: COPY. A batched ``INSERT ... VALUES`` costs psycopg a parse of a huge statement
per thousand rows, and ``INSERT ... RETURNING`` is the only way it reports how many rows an
``ON CONFLICT DO NOTHING`` kept. Copying the batch into a temporary table and moving it over
with one ``INSERT ... SELECT`` is five times faster and gives an exact row count. Everything
happens on the caller's connection, inside its transaction.

>>> copy_sql("_vigil_load_1", ["event_id", "timestamp"])
'COPY "_vigil_load_1" ("event_id", "timestamp") FROM STDIN'
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Connection, Table
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    import polars as pl

_names = itertools.count()


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{n}"' for n in names)


def copy_sql(temp: str, names: list[str]) -> str:
    return f'COPY "{temp}" ({_quoted(names)}) FROM STDIN'


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


def sqlite_insert_frame(
    conn: Connection, table: Table, frame: pl.DataFrame, *, skip_existing: bool
) -> int:
    """:func:`sqlite_insert` for a Polars frame whose columns are ``table``'s: times
    tz-aware, amounts exact cents (text or numbers), flags boolean.

    >>> import polars as pl
    >>> from datetime import datetime, UTC
    >>> f = pl.DataFrame({"t": [datetime(2022, 1, 3, 10, tzinfo=UTC)], "a": ["2500.5"]})
    >>> _sqlite_values(f, {"t": "time", "a": "money"}).rows()
    [('2022-01-03 10:00:00.000000', 2500.5)]
    """
    if frame.is_empty():
        return 0
    # A column empty on every row and without a default is left out: NULL all the same, and
    # no None to bind a million times.
    frame = frame.select(
        name
        for name in frame.columns
        if frame.get_column(name).null_count() < frame.height
        or table.c[name].default is not None
        or table.c[name].server_default is not None
    )
    kinds = {name: _kind(table.c[name].type) for name in frame.columns}
    names = list(frame.columns)
    conflict = " ON CONFLICT DO NOTHING" if skip_existing else ""
    sql = (
        f'INSERT INTO "{table.name}" ({_quoted(names)}) '
        f"VALUES ({', '.join('?' * len(names))}){conflict}"
    )
    # rows() builds the tuples in one call, a third of iterating them.
    return conn.exec_driver_sql(sql, _sqlite_values(frame, kinds).rows()).rowcount


@contextmanager
def sqlite_indexes_deferred(conn: Connection, table: Table, rows: int) -> Iterator[None]:
    """Around a bulk load of ``rows`` into a SQLite ``table`` on ``conn``'s open transaction:
    when they outnumber the rows stored, its secondary indexes are dropped first and built
    again after, in the same transaction (sorting once is cheaper than a million B-tree
    inserts: 1.3 M rows took 11 s of CPU instead of 15-20). Readers see the old table, indexes
    included, until the commit; a failure rolls the drop back with the rest."""
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
    for _, sql in indexes:
        conn.exec_driver_sql(sql)


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
        raise TypeError("sqlite_insert_frame: JSON columns go through sqlite_insert")
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


def copy_insert(
    conn: Connection, table: Table, rows: list[dict[str, Any]], *, skip_existing: bool
) -> int:
    """Insert ``rows`` (all with the same keys) into ``table``; returns rows inserted.

    With ``skip_existing`` a row whose key is already stored is skipped; without it a clash
    raises ``sqlalchemy.exc.IntegrityError`` like any other insert.
    """
    if not rows:
        return 0
    import psycopg
    from psycopg.types.json import Jsonb

    names = list(rows[0])
    json_at = [i for i, n in enumerate(names) if isinstance(table.c[n].type, JSON)]
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
            with cur.copy(copy_sql(temp, names)) as copy:
                for row in rows:
                    values = [row[n] for n in names]
                    for i in json_at:
                        if values[i] is not None:
                            values[i] = Jsonb(values[i])
                    copy.write_row(values)
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
