"""SQLite shared by two writing processes (the server and its writer process; a CLI beside a
running server): a write unit waits for the other's lock instead of failing."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import text

from vigil.storage import Store


def test_a_write_unit_waits_for_another_writer_and_reads_what_it_committed(
    tmp_path: Path,
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'v.db'}")
    store.init_schema()
    other = sqlite3.connect(tmp_path / "v.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO schema_version (version, applied_at) VALUES (999, '2024-01-01')")
    threading.Timer(0.3, lambda: other.execute("COMMIT")).start()
    began = time.perf_counter()
    # Read, then write: begun deferred, the read's snapshot would predate the other's commit
    # and the write would fail with "database is locked" the moment that commit landed.
    with store.transaction() as conn:
        seen = conn.execute(text("SELECT count(*) FROM schema_version")).scalar_one()
        conn.execute(text("DELETE FROM schema_version WHERE version = 999"))
    assert time.perf_counter() - began >= 0.25
    assert seen == 2
    other.close()
    store.close()


def test_a_thread_that_commits_again_and_again_keeps_its_connection(tmp_path: Path) -> None:
    """SQLite drops a connection's whole page cache whenever another connection wrote since
    it last read. The server's writer commits on one thread again and again: handed the
    pool's connections in turn, each commit read its pages afresh."""
    store = Store(f"sqlite:///{tmp_path / 'v.db'}")
    store.init_schema()
    with store.engine.connect(), store.engine.connect():
        pass  # two connections now wait in the pool
    used = set()
    for _ in range(4):
        with store.transaction() as conn:
            conn.execute(text("DELETE FROM schema_version WHERE version = 999"))
            used.add(id(conn.connection.dbapi_connection))
    assert len(used) == 1
    store.close()
