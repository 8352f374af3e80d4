"""A clean payment file is imported column by column, in chunks, and stores exactly what the
row-by-row reader stores; a file with a bad row is reported by the row-by-row reader, line and
field, with nothing written (issue 19, item 4)."""

from __future__ import annotations

import gc
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy import event, text

import vigil.ingest.columnar as columnar
import vigil.storage.bulk as bulk
from vigil.ingest import EventInput, ImportRejected, load_events
from vigil.ingest.load import _load_result
from vigil.storage import Store

from .files import write_csv

HEADER = ("TRANSACTION_ID", "TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD")
ROWS = [
    ("0", "2018-04-01 00:00:31", "C596", "T3156", "57.16", "0"),
    ("1", "2018-04-01 00:02:10", "4111 1111 1111 1111", "T3412", "81.5", "1"),  # a card number
    ("2", "2018-04-01T00:07:56Z", "C2", "T1365", "146.000", "0"),
    ("3", "2018-04-01 00:09:29.250", "C4128", "", "64.49", ""),  # no terminal, no label
    ("4", "2018-04-02 00:10:34+01:00", "C927", "T9906", "0", "true"),
]
INPUTS = EventInput(
    mapping={
        "transaction_id": "TRANSACTION_ID",
        "timestamp": "TX_DATETIME",
        "card_id": "CUSTOMER_ID",
        "terminal_id": "TERMINAL_ID",
        "amount": "TX_AMOUNT",
    },
    default_type="payment",
    default_channel="pos",
    label_column="TX_FRAUD",
)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columnar, "CHUNK_ROWS", 2)  # several chunks, one transaction


def _store(tmp_path: Path, name: str) -> Store:
    store = Store(f"sqlite:///{tmp_path / name}")
    store.init_schema()
    return store


def _indexes(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        names = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'index'"))
        return set(names.scalars())


def _stored(store: Store) -> tuple[list, list]:
    return list(store.iter_events()), sorted(store.load_feedback(), key=lambda f: f.event_id)


def _row_by_row(store: Store, path: Path, inputs: EventInput) -> None:
    _load_result(store, inputs.read(path), path, "reject", None, 0.0)


@pytest.mark.parametrize("amounts", ["strict", "round"])
def test_the_columnar_path_stores_what_the_row_by_row_path_stores(
    tmp_path: Path, amounts: str
) -> None:
    rows = [*ROWS, ("5", "2018-04-03 08:00:00", "C1", "T1", "10503.66015625", "0")]
    path = write_csv(tmp_path / "cards.csv", HEADER, rows if amounts == "round" else ROWS)
    inputs = EventInput(**{**INPUTS.__dict__, "amounts": amounts})
    fast, slow = _store(tmp_path, "fast.db"), _store(tmp_path, "slow.db")
    summary = columnar.load_clean(fast, path, inputs)
    assert summary is not None, "a clean file takes the columnar path"
    _row_by_row(slow, path, inputs)
    events, feedback = _stored(fast)
    assert (events, feedback) == _stored(slow)
    n = len(rows if amounts == "round" else ROWS)
    assert summary.written == {"transactions": n, "logins": 0, "feedback": n - 1}
    assert events[1].card_id.startswith("~")  # the card number pseudonymised, as always
    if amounts == "round":
        assert events[-1].amount == Decimal("10503.66")
    # The indexes dropped for the load are back.
    assert _indexes(fast) == _indexes(slow)
    assert {"ix_transactions_card_time", "ix_feedback_target_event_id"} <= _indexes(fast)


def test_a_bad_row_in_a_later_chunk_is_named_and_nothing_is_kept(tmp_path: Path) -> None:
    bad = [*ROWS, ("5", "2018-04-03 08:00:00", "C1", "T1", "-4", "0")]
    path = write_csv(tmp_path / "cards.csv", HEADER, bad)
    store = _store(tmp_path, "v.db")
    before = _indexes(store)
    assert columnar.load_clean(store, path, INPUTS) is None
    assert _indexes(store) == before  # dropped for the load, back with the rollback
    with pytest.raises(ImportRejected) as info:
        load_events(store, path, inputs=INPUTS)
    (error,) = info.value.errors
    assert (error.line, error.field) == (7, "TX_AMOUNT (amount)")
    assert _stored(store) == ([], [])


def test_stored_events_are_duplicates_and_progress_is_told(store: Store, tmp_path: Path) -> None:
    # On every backend (PostgreSQL writes through the store's COPY).
    path = write_csv(tmp_path / "cards.csv", HEADER, ROWS)
    told: list[int] = []
    first = load_events(store, path, inputs=INPUTS, on_progress=told.append)
    assert told == [2, 2, 1] and first.rows_imported == 5
    again = load_events(store, path, inputs=INPUTS)
    assert (again.rows_read, again.rows_imported, again.duplicates) == (5, 0, 5)
    slow = _store(tmp_path, "slow.db")
    _row_by_row(slow, path, INPUTS)
    assert _stored(store) == _stored(slow)


def test_many_rows_a_statement_store_and_count_each_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Chunks of 40 rows, 7 a statement: five whole statements and one of five rows a chunk.
    monkeypatch.setattr(columnar, "CHUNK_ROWS", 40)
    monkeypatch.setattr(bulk, "ROWS_A_STATEMENT", 7)
    rows = [
        (
            str(i),
            f"2018-04-01 {i // 60:02d}:{i % 60:02d}:00",
            f"C{i % 9}",
            f"T{i % 4}",
            f"{i}.5",
            "0",
        )
        for i in range(100)
    ]
    inputs = EventInput(
        **{**INPUTS.__dict__, "mapping": {**INPUTS.mapping, "event_id": "TRANSACTION_ID"}}
    )
    store = _store(tmp_path, "v.db")
    half = write_csv(tmp_path / "half.csv", HEADER, rows[::2])
    assert load_events(store, half, inputs=inputs).written["transactions"] == 50
    path = write_csv(tmp_path / "all.csv", HEADER, rows)  # every other row is stored already
    summary = load_events(store, path, inputs=inputs)
    assert (summary.rows_imported, summary.duplicates) == (50, 50)
    slow = _store(tmp_path, "slow.db")
    _row_by_row(slow, path, inputs)
    assert _stored(store)[0] == _stored(slow)[0] and len(_stored(store)[0]) == 100


def payments_file(path: Path, rows: int) -> Path:
    """``rows`` clean card payments, 7 s apart from April 2018, 1 in 97 labelled fraud."""
    seconds = pl.int_range(0, rows, eager=True) * 7
    frame = pl.DataFrame(
        {
            "TRANSACTION_ID": pl.int_range(0, rows, eager=True),
            "TX_DATETIME": pl.from_epoch(seconds + 1_522_540_800).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "CUSTOMER_ID": (pl.int_range(0, rows, eager=True) % 500).cast(pl.String),
            "TERMINAL_ID": (pl.int_range(0, rows, eager=True) % 900).cast(pl.String),
            "TX_AMOUNT": pl.Series([12.34] * rows),
            "TX_FRAUD": (pl.int_range(0, rows, eager=True) % 97 == 0).cast(pl.Int8),
        }
    )
    frame.write_csv(path)
    return path


def import_process(path: Path, url: str) -> subprocess.Popen[bytes]:
    """The real ``vigil import events`` of ``path`` (mapped as INPUTS) into ``url``."""
    command = [sys.executable, "-c", "from vigil.cli import app; app()", "import", "events"]
    command += [str(path), "--database", url]
    for field, column in INPUTS.mapping.items():
        command += ["--map", f"{field}={column}"]
    command += ["--default-type", "payment", "--default-channel", "pos"]
    command += ["--label-column", "TX_FRAUD"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env["VIGIL_DEV"] = "1"
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_killed_mid_import_then_run_again_stores_each_row_once_on_sqlite(tmp_path: Path) -> None:
    # Killed while it writes (the database its own, so through a rollback journal, its
    # transaction's pages already spilled into the database file): nothing of it stays, the
    # database is back in write-ahead-log mode, and the next run stores every row and label once.
    path = payments_file(tmp_path / "payments.csv", 300_007)  # a last, short, statement
    database = tmp_path / "v.db"
    made = Store(f"sqlite:///{database}")
    made.init_schema()
    made.engine.dispose()  # else this process has it open, and the load goes through the log
    empty = database.stat().st_size
    process = import_process(path, f"sqlite:///{database}")
    journal = Path(f"{database}-journal")
    try:
        deadline = time.monotonic() + 120
        while process.poll() is None and database.stat().st_size < empty + (8 << 20):
            assert time.monotonic() < deadline, "the import never began writing"
            time.sleep(0.01)
        assert process.poll() is None, "the import ended before the kill"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert journal.exists(), "the load did not go through a rollback journal"
    assert not Path(f"{database}-wal").exists()
    store = Store(f"sqlite:///{database}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM transactions").scalar_one() == 0
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    assert not journal.exists()
    store.engine.dispose()
    again = import_process(path, f"sqlite:///{database}")
    output = again.communicate(timeout=600)[0].decode()
    assert again.returncode == 0, output[-3000:]
    with store.engine.connect() as conn:
        counts = conn.exec_driver_sql(
            "SELECT (SELECT count(*) FROM transactions), "
            "(SELECT count(DISTINCT event_id) FROM transactions), "
            "(SELECT count(*) FROM feedback), (SELECT count(DISTINCT event_id) FROM feedback)"
        ).one()
        assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
    assert tuple(counts) == (300_007, 300_007, 300_007, 300_007)


def _journal_during_load(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """The journal mode and synchronous level of the load's connection, at each write."""
    seen: list[tuple[str, int]] = []
    write = columnar._SqliteWriter.__call__

    def noting(self: columnar._SqliteWriter, table: str, rows: pl.DataFrame) -> int:
        pragma = self._conn.exec_driver_sql
        seen.append(
            (
                pragma("PRAGMA journal_mode").scalar_one(),
                pragma("PRAGMA synchronous").scalar_one(),
            )
        )
        return write(self, table, rows)

    monkeypatch.setattr(columnar._SqliteWriter, "__call__", noting)
    return seen


def test_a_database_of_its_own_is_loaded_through_a_rollback_journal_then_the_log_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Through the log every page is written twice (log, then database); through a rollback
    # journal a new page once, which needs full syncs to survive a power cut.
    store = _store(tmp_path, "v.db")
    seen = _journal_during_load(monkeypatch)
    assert columnar.load_clean(store, write_csv(tmp_path / "c.csv", HEADER, ROWS), INPUTS)
    assert seen and set(seen) == {("delete", 2)}
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar_one() == 1
    # A load that fails puts the log back too.
    bad = write_csv(tmp_path / "bad.csv", HEADER, [*ROWS[:4], ("9", "x", "C1", "T1", "1", "0")])
    assert columnar.load_clean(store, bad, INPUTS) is None
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"


def test_a_database_another_connection_holds_is_loaded_through_the_log_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A running server has the database open: the load stays in the log, without waiting for
    # the busy timeout, and the server reads on meanwhile.
    store = _store(tmp_path, "v.db")
    server = sqlite3.connect(tmp_path / "v.db", timeout=30)
    server.execute("SELECT count(*) FROM transactions").fetchone()
    seen = _journal_during_load(monkeypatch)
    began = time.monotonic()
    summary = columnar.load_clean(store, write_csv(tmp_path / "c.csv", HEADER, ROWS), INPUTS)
    assert summary is not None and summary.written["transactions"] == len(ROWS)
    assert time.monotonic() - began < 2
    assert seen and {mode for mode, _ in seen} == {"wal"}
    assert server.execute("SELECT count(*) FROM transactions").fetchone() == (len(ROWS),)
    server.close()


@pytest.mark.parametrize(
    "why",
    ["quoted newline", "repeated id", "unmapped field", "two-phase", "control character"],
)
def test_files_it_cannot_number_or_check_go_row_by_row(tmp_path: Path, why: str) -> None:
    rows = [list(r) for r in ROWS]
    header = list(HEADER)
    inputs = INPUTS
    if why == "quoted newline":
        header.append("NOTE")
        rows = [[*r, "a\nb" if i == 1 else ""] for i, r in enumerate(rows)]
    elif why == "repeated id":
        inputs = EventInput(**{**INPUTS.__dict__, "mapping": {**INPUTS.mapping, "event_id": "X"}})
        header.append("X")
        rows = [[*r, "same" if i < 2 else str(i)] for i, r in enumerate(rows)]
    elif why == "unmapped field":
        header.append("ip")
        rows = [[*r, "10.0.0.1"] for r in rows]
    elif why == "two-phase":
        header.append("phase")
        rows = [[*r, "single"] for r in rows]
        rows[0][-1] = "start"
    else:  # what the domain refuses in an id (its PRINTABLE rule), the chunks refuse too
        rows[2][2] = "C\x07Z"
    path = write_csv(tmp_path / "f.csv", header, [tuple(r) for r in rows])
    assert columnar.load_clean(_store(tmp_path, "v.db"), path, inputs) is None


def test_a_byte_order_mark_and_crlf_lines_read_as_row_by_row(tmp_path: Path) -> None:
    lines = [",".join(HEADER), *(",".join(r) for r in ROWS)]
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode())
    fast, slow = _store(tmp_path, "fast.db"), _store(tmp_path, "slow.db")
    assert columnar.load_clean(fast, path, INPUTS) is not None
    _row_by_row(slow, path, INPUTS)
    assert _stored(fast) == _stored(slow)


def test_ids_with_commas_quotes_and_exact_cents_store_as_row_by_row(
    store: Store, tmp_path: Path
) -> None:
    # PostgreSQL reads the chunk as CSV written by Polars: a comma, a quote or a value on every
    # row (written into the SQLite statement once) must come back as the file said.
    rows = [
        ("T,1", "2018-04-01 00:00:31.123456", 'O\'Brien, "J"', "T'1", "99999999999.99", "0"),
        ('T"2', "2018-05-01T00:00:00Z", 'O\'Brien, "J"', "T'1", "0.10", "1"),
        ("T3", "2018-05-31 23:59:59-01:00", 'O\'Brien, "J"', "T'1", "12", "0"),
    ]
    path = write_csv(tmp_path / "odd.csv", HEADER, rows)
    summary = load_events(store, path, inputs=INPUTS)
    assert summary.written == {"transactions": 3, "logins": 0, "feedback": 3}
    slow = _store(tmp_path, "slow.db")
    _row_by_row(slow, path, INPUTS)
    assert _stored(store) == _stored(slow)
    assert {e.amount for e in _stored(store)[0]} == {
        Decimal("99999999999.99"),
        Decimal("0.10"),
        Decimal("12"),
    }


def test_a_value_on_every_row_is_not_bound_per_row(tmp_path: Path) -> None:
    # A card file's type, phase, channel, currency, direction and StandIn flag are the same on
    # every row: SQLite gets them once, in the statement, and binds only what varies.
    store = _store(tmp_path, "v.db")
    bound: list[int] = []

    def seen(*_: Any, statement: str, **__: Any) -> None:
        if statement.startswith('INSERT INTO "transactions"'):
            first_row = statement.split(" VALUES ", 1)[1].split(")", 1)[0]
            bound.append(first_row.count("?"))

    event.listen(store.engine, "before_cursor_execute", seen, named=True)
    path = write_csv(tmp_path / "cards.csv", HEADER, ROWS)
    assert columnar.load_clean(store, path, INPUTS) is not None
    # event_id, timestamp, transaction_id, amount, card_id and terminal_id (None in a chunk).
    assert bound and max(bound) == 6
    slow = _store(tmp_path, "slow.db")
    _row_by_row(slow, path, INPUTS)
    assert _stored(store) == _stored(slow)


def test_the_cycle_collector_rests_while_rows_are_written(tmp_path: Path) -> None:
    # Each chunk makes a tuple a row, which the collector would scan again and again.
    store = _store(tmp_path, "v.db")
    enabled: list[bool] = []
    event.listen(store.engine, "before_cursor_execute", lambda *_: enabled.append(gc.isenabled()))
    path = write_csv(tmp_path / "cards.csv", HEADER, ROWS)
    assert columnar.load_clean(store, path, INPUTS) is not None
    assert enabled and not any(enabled)
    assert gc.isenabled()


def test_chunks_are_read_and_checked_ahead_on_another_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Reading and checking the next chunk, and making SQLite's values of its transactions
    # (Polars), overlap writing this one (the database); the labels, after them all, too.
    where: dict[str, list[str]] = {"_checked": [], "sqlite_values": []}

    def on_its_thread(name: str) -> None:
        work = getattr(columnar, name)

        def traced(*args: Any, **kwargs: Any) -> Any:
            where[name].append(threading.current_thread().name)
            return work(*args, **kwargs)

        monkeypatch.setattr(columnar, name, traced)

    on_its_thread("_checked")
    on_its_thread("sqlite_values")
    path = write_csv(tmp_path / "cards.csv", HEADER, ROWS)
    assert columnar.load_clean(_store(tmp_path, "v.db"), path, INPUTS) is not None
    assert len(where["_checked"]) == 3 and len(where["sqlite_values"]) == 3 + 2  # 4 labels
    assert threading.main_thread().name not in where["_checked"] + where["sqlite_values"]


def test_a_file_of_a_header_alone_stores_nothing(store: Store, tmp_path: Path) -> None:
    summary = columnar.load_clean(store, write_csv(tmp_path / "c.csv", HEADER, []), INPUTS)
    assert summary is not None and summary.written == {
        "transactions": 0,
        "logins": 0,
        "feedback": 0,
    }


def test_labels_are_written_in_key_order_after_the_transactions(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each index of feedback then takes its rows as appends, page by page: in the file's
    # order, ids such as 9, 10, 100 land all over the index (twice as slow on PostgreSQL).
    writer = columnar._SqliteWriter if store.dialect == "sqlite" else columnar._PostgresWriter
    prepare = writer.prepare
    order: list[str] = []

    def traced(self: Any, table: str, frame: pl.DataFrame) -> Any:
        order.extend(f"{table}:{i}" for i in frame.get_column("event_id"))
        return prepare(self, table, frame)

    monkeypatch.setattr(writer, "prepare", traced)
    ids = ["9", "10", "100", "11", "2", "1"]
    rows = [(i, f"2018-04-01 00:00:0{n}", "C1", "T1", "1.00", "0") for n, i in enumerate(ids)]
    inputs = replace(INPUTS, mapping={**INPUTS.mapping, "event_id": "TRANSACTION_ID"})
    assert columnar.load_clean(store, write_csv(tmp_path / "c.csv", HEADER, rows), inputs)
    assert order == [f"transactions:{i}" for i in ids] + [f"feedback:fb-{i}" for i in sorted(ids)]


def test_a_failed_write_stops_the_reading_and_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(tmp_path, "v.db")
    write = columnar._SqliteWriter.__call__
    calls: list[str] = []

    def failing(self: columnar._SqliteWriter, table: str, frame: pl.DataFrame) -> int:
        calls.append(table)
        if len(calls) == 3:  # the second chunk's transactions
            raise OSError("disk full")
        return write(self, table, frame)

    monkeypatch.setattr(columnar._SqliteWriter, "__call__", failing)
    path = write_csv(tmp_path / "cards.csv", HEADER, ROWS)
    before = _indexes(store)
    with pytest.raises(OSError, match="disk full"):
        columnar.load_clean(store, path, INPUTS)
    assert _stored(store) == ([], []) and _indexes(store) == before
    assert not [t for t in threading.enumerate() if t.name == "vigil-import-read-ahead"]


def test_postgresql_takes_each_chunk_as_one_csv_copy(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No dict, no Python object per row: Polars writes the chunk as CSV and COPY reads it.
    if store.dialect != "postgresql":
        pytest.skip("PostgreSQL's COPY")
    import vigil.storage.bulk as bulk_module

    def row_by_row(*_: Any, **__: Any) -> int:
        raise AssertionError("a chunk was copied row by row")

    monkeypatch.setattr(bulk_module, "copy_insert", row_by_row)
    path = write_csv(tmp_path / "cards.csv", HEADER, ROWS)
    summary = columnar.load_clean(store, path, INPUTS)
    assert summary is not None and summary.written["transactions"] == len(ROWS)


def test_indexes_are_built_again_with_a_larger_page_cache_and_threads_then_set_back(
    tmp_path: Path,
) -> None:
    # Sorting six indexes over a large load in the store's 64 MiB cache spills to temporary
    # files; the build gets more, and the pooled connection gets its own size back.
    store = _store(tmp_path, "v.db")
    statements: list[str] = []
    event.listen(
        store.engine,
        "before_cursor_execute",
        lambda *_, statement, **__: statements.append(statement),
        named=True,
    )
    path = write_csv(tmp_path / "cards.csv", HEADER, ROWS)
    assert columnar.load_clean(store, path, INPUTS) is not None
    raised = statements.index(f"PRAGMA cache_size=-{bulk.INDEX_BUILD_CACHE_MIB * 1024}")
    # The sorter may take the other cores too (the reading thread has ended by then).
    threads = [i for i, s in enumerate(statements) if s.startswith("PRAGMA threads=")]
    built = [i for i, s in enumerate(statements) if s.startswith("CREATE INDEX")]
    assert built and raised < min(built) and threads[0] < min(built)
    assert statements[threads[0]] != "PRAGMA threads=0"
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA cache_size").scalar_one() == -65536
        assert conn.exec_driver_sql("PRAGMA threads").scalar_one() == 0
