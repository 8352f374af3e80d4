"""A payment file into PostgreSQL (issue 19): a month with no partition yet is loaded into a
table of the import's own, indexed once and attached as the month's partition, so readers of
``transactions`` are not locked out meanwhile; other rows are copied straight in while no key
clashes. Whatever the way, what is stored is what ``INSERT ... ON CONFLICT DO NOTHING``
stores, exactly once, also when the import is killed and run again."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

import vigil.ingest.columnar as columnar
from vigil.domain import Feedback, FeedbackLabel, Transaction, TransactionType
from vigil.ingest import load_events
from vigil.storage import Store

from .files import write_csv
from .test_columnar import (
    HEADER,
    INPUTS,
    ROWS,
    _row_by_row,
    _store,
    _stored,
    import_process,
    payments_file,
)

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(other_postgres_store: Store) -> Store:
    return other_postgres_store


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columnar, "CHUNK_ROWS", 2)  # several chunks, one transaction


def _other(store: Store) -> Engine:
    """A second session on the store's schema (as another process would be)."""
    return create_engine(store.engine.url, connect_args={"options": _search_path(store)})


def _search_path(store: Store) -> str:
    with store.engine.connect() as conn:
        return f"-csearch_path={conn.exec_driver_sql('SHOW search_path').scalar_one()}"


def _indexes(store: Store, partition: str) -> list[tuple[str, str]]:
    """The partition's indexes, named and defined with its name as ``MONTH``, each with the
    parent index it is attached to."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid), "
                "p.inhparent::regclass::text FROM pg_index i "
                "LEFT JOIN pg_inherits p ON p.inhrelid = i.indexrelid "
                "WHERE i.indrelid = to_regclass(:t) ORDER BY 1"
            ),
            {"t": partition},
        ).all()
    month = partition.removeprefix("transactions_")
    return [(n.replace(month, "MONTH"), d.replace(month, "MONTH"), parent) for n, d, parent in rows]


def test_a_new_month_is_attached_with_the_indexes_a_partition_gets(
    store: Store, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "cards.csv", HEADER, ROWS)
    summary = load_events(store, path, inputs=INPUTS)
    assert summary.written == {"transactions": 5, "logins": 0, "feedback": 4}
    # A month the store made the usual way (CREATE TABLE ... PARTITION OF), for comparison.
    tx = Transaction(
        event_id="e-june",
        timestamp=datetime(2018, 6, 2, tzinfo=UTC),
        transaction_id="t-june",
        type=TransactionType.PAYMENT,
        amount=Decimal("1.00"),
        card_id="C1",
    )
    store.insert_transactions([tx])
    usual = _indexes(store, "transactions_2018_06")
    assert len(usual) == 6 and all(parent for *_, parent in usual)
    assert _indexes(store, "transactions_2018_04") == usual
    with store.engine.connect() as conn:
        left = conn.execute(text("SELECT count(*) FROM pg_class WHERE relname ~ '^_vigil_stage'"))
        assert left.scalar_one() == 0
    slow = _store(tmp_path, "slow.db")
    _row_by_row(slow, path, INPUTS)
    assert _stored(store)[0] == [*_stored(slow)[0], tx]
    assert _stored(store)[1] == _stored(slow)[1]


def test_readers_of_transactions_are_not_locked_out_while_a_new_month_loads(
    store: Store, tmp_path: Path
) -> None:
    # CREATE TABLE ... PARTITION OF would hold an ACCESS EXCLUSIVE lock on transactions until
    # the import commits: every reader waited for the whole import.
    path = write_csv(tmp_path / "cards.csv", HEADER, ROWS)
    other = _other(store)
    seen: list[int] = []

    def read(_: int) -> None:
        with other.connect() as conn:
            conn.exec_driver_sql("SET lock_timeout = '2s'")
            seen.append(conn.exec_driver_sql("SELECT count(*) FROM transactions").scalar_one())

    try:
        load_events(store, path, inputs=INPUTS, on_progress=read)
    finally:
        other.dispose()
    assert seen == [0, 0, 0]


def test_a_month_partitioned_meanwhile_by_another_session_gets_the_rows_once(
    store: Store, tmp_path: Path
) -> None:
    # Another session creates April's partition during the import and stores one of the
    # file's rows: the staged month cannot be attached, its rows go into that partition with
    # ON CONFLICT DO NOTHING, and the row stored meanwhile counts as a duplicate.
    path = write_csv(tmp_path / "cards.csv", HEADER, ROWS)
    other = _other(store)

    def meanwhile(_: int) -> None:
        if meanwhile.done:  # type: ignore[attr-defined]
            return
        meanwhile.done = True  # type: ignore[attr-defined]
        columns = "event_id, timestamp, transaction_id, type, phase, channel, amount, "
        columns += "currency, card_id, terminal_id, direction, standin"
        with other.begin() as conn:
            conn.exec_driver_sql("SET LOCAL lock_timeout = '5s'")
            conn.exec_driver_sql(
                "CREATE TABLE transactions_2018_04 PARTITION OF transactions FOR VALUES "
                "FROM ('2018-04-01 00:00:00+00') TO ('2018-05-01 00:00:00+00')"
            )
            conn.exec_driver_sql(
                f"INSERT INTO transactions ({columns}) VALUES ('cards-2', "
                "'2018-04-01 00:00:31+00', '0', 'payment', 'single', 'pos', 57.16, 'NGN', "
                "'C596', 'T3156', 'debit', false)"
            )

    meanwhile.done = False  # type: ignore[attr-defined]
    try:
        summary = load_events(store, path, inputs=INPUTS, on_progress=meanwhile)
    finally:
        other.dispose()
    assert (summary.rows_imported, summary.duplicates) == (4, 1)
    slow = _store(tmp_path, "slow.db")
    _row_by_row(slow, path, INPUTS)
    assert _stored(store) == _stored(slow)
    assert len(_indexes(store, "transactions_2018_04")) == 6


def test_labels_already_stored_are_skipped_not_copied_twice(store: Store, tmp_path: Path) -> None:
    # The COPY straight into feedback fails on the stored key; that chunk and the later ones
    # go through ON CONFLICT DO NOTHING.
    stored = Feedback(
        event_id="fb-cards-3",
        target_event_id="cards-3",
        label=FeedbackLabel.FRAUD,
        timestamp=datetime(2018, 4, 8, 0, 2, 10, tzinfo=UTC),
        source="import",
    )
    store.insert_feedback([stored])
    path = write_csv(tmp_path / "cards.csv", HEADER, ROWS)
    summary = load_events(store, path, inputs=INPUTS)
    assert summary.written == {"transactions": 5, "logins": 0, "feedback": 3}
    assert len(store.load_feedback()) == 4


def _import(path: Path, store: Store, name: str) -> subprocess.Popen[bytes]:
    url = store.engine.url.set(drivername="postgresql").update_query_dict(
        {"application_name": name}
    )
    return import_process(path, url.render_as_string(hide_password=False))


@pytest.mark.parametrize(
    "copying",
    [
        'COPY "_vigil_stage_%',  # a chunk after the first, into a month it loads
        'COPY "feedback"%',  # the labels, written last, in key order
    ],
    ids=["a month", "the labels"],
)
def test_killed_mid_import_then_run_again_stores_each_row_once(
    store: Store, tmp_path: Path, copying: str
) -> None:
    path = payments_file(tmp_path / "payments.csv", 400_000)  # four chunks over 33 days
    name = f"vigil-kill-test-{os.getpid()}"
    process = _import(path, store, name)
    try:
        with store.engine.connect() as conn:
            deadline = time.monotonic() + 120
            # Killed while the import copies into the table ``copying`` names.
            query = text(
                "SELECT count(*) FROM pg_stat_progress_copy c JOIN pg_stat_activity a "
                "USING (pid) WHERE a.application_name = :name AND c.relid <> 0 "
                "AND a.query LIKE :copying AND c.tuples_processed > 0"
            )
            copies = 0
            while copies < 2 and process.poll() is None:
                copies += conn.execute(query, {"name": name, "copying": copying}).scalar_one()
                assert time.monotonic() < deadline, "the import never began loading"
                conn.rollback()
                time.sleep(0.02)
        assert process.poll() is None, "the import ended before the kill"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    again = _import(path, store, name)
    output = again.communicate(timeout=600)[0].decode()
    assert again.returncode == 0, output[-3000:]
    with store.engine.connect() as conn:
        counts = conn.execute(
            text(
                "SELECT (SELECT count(*) FROM transactions), "
                "(SELECT count(DISTINCT event_id) FROM transactions), "
                "(SELECT count(*) FROM feedback), "
                "(SELECT count(*) FROM pg_class WHERE relname ~ '^_vigil_stage')"
            )
        ).one()
    assert tuple(counts) == (400_000, 400_000, 400_000, 0)
