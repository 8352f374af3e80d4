"""Schema migrations (Alembic, vigil.storage.migrations), on every backend: an empty database is
created at the newest revision; one from before decisions were sealed (version 4), made by its
revisions or by a vigil from before Alembic, is upgraded by `vigil db upgrade` with its rows
intact; replaying every revision gives the schema build_tables declares (partial indexes
included); a newer database or a downgrade is refused."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, inspect, select, text
from typer.testing import CliRunner

from vigil.cli import app
from vigil.domain import Decision, Transaction
from vigil.storage import Store, audit, migrations
from vigil.storage import log as event_log
from vigil.storage import rows as R
from vigil.storage.schema import SCHEMA_VERSION, build_tables

runner = CliRunner()
# The last revision before decisions were sealed (version 5): the upgrade from it changes rows,
# not only the schema, so these tests start there.
SEALED_AT = 5
BEFORE_SEALS = migrations.revision_of(SEALED_AT - 1)
ALL = tuple(migrations.revision_of(v) for v in range(1, SCHEMA_VERSION + 1))


def _versions(store: Store) -> list[int]:
    with store.engine.connect() as conn:
        return list(conn.execute(text("SELECT version FROM schema_version ORDER BY 1")).scalars())


def _revision(store: Store) -> str | None:
    with store.engine.connect() as conn:
        return migrations.current(conn)


def _columns(store: Store, table: str) -> set[str]:
    return {c["name"] for c in inspect(store.engine).get_columns(table)}


def _batch(make, start: int, n: int) -> tuple[list[Transaction], list[Decision]]:
    events = [
        make.tx(f"e{i:03d}", minutes=i, user_id=f"u-{i % 3}") for i in range(start, start + n)
    ]
    decisions = [
        make.decision(e, 0.95, "block", "amount_anomaly")
        if i % 2
        else make.decision(e, 0.1, "allow")
        for i, e in enumerate(events)
    ]
    return events, decisions


def _record_as_before(store: Store, events: list[Transaction], decisions: list[Decision]):
    """Write a batch as a release from before the log position did: a decision has no log
    position (seq stays NULL), a flagged one's risk event is chained."""
    now = R.utc_now()
    pseudonymise = store.privacy.pseudonyms.row
    by_id = {e.event_id: e for e in events}
    decision_rows = [
        pseudonymise(
            R.decision_row(
                d,
                transaction_id=by_id[d.event_id].transaction_id,
                terminal_id=by_id[d.event_id].terminal_id,
                created_at=now,
            )
        )
        for d in decisions
    ]
    risk_rows = [pseudonymise(R.risk_event_row(d, updated_at=now)) for d in decisions if d.flagged]
    assert all("seq" not in row for row in decision_rows)
    with store.transaction() as conn:
        store.insert_transactions(events, conn)
        conn.execute(store.tables.decisions.insert(), decision_rows)
        # risk_events as that release had it: chained in the link format it knew.
        risk_events = Table("risk_events", MetaData(), autoload_with=conn)
        audit.chain(conn, risk_events, risk_rows, store.privacy.pseudonyms)
        conn.execute(risk_events.insert(), risk_rows)


def _before_the_seals(store: Store, make) -> tuple[list[Transaction], list[Decision]]:
    """The store's database emptied, built again by the revisions of version 4, and given a
    batch written as version 4 wrote it."""
    store.drop_all()
    assert migrations.upgrade(store, BEFORE_SEALS).applied == ALL[: SEALED_AT - 1]
    assert "decision_links" not in inspect(store.engine).get_table_names()
    events, decisions = _batch(make, 0, 6)
    _record_as_before(store, events, decisions)
    return events, decisions


def _upgrade_command(store: Store, *args: str) -> tuple[Any, dict[str, Any]]:
    result = runner.invoke(app, ["db", "upgrade", "--database", store.url, *args])
    store.engine.dispose()  # as a server restarted after an upgrade: no connection from before
    last = json.loads(result.output.splitlines()[-1]) if result.exit_code == 0 else {}
    return result, last


def _rows_intact(store: Store, make, events: list[Transaction], decisions: list[Decision]) -> None:
    flagged = sum(d.flagged for d in decisions)
    counts = store.counts()
    assert (counts["transactions"], counts["decisions"], counts["risk_events"]) == (
        len(events),
        len(decisions),
        flagged,
    )
    stored = store.get_decisions([e.event_id for e in events])
    assert {k: (d.action, d.score) for k, d in stored.items()} == {
        d.event_id: (d.action, d.score) for d in decisions
    }
    report = audit.verify(store)
    assert report.ok and report.checked == flagged
    # Rows from before the log position stay unnumbered; the next batch is numbered from 1.
    with store.engine.connect() as conn:
        seqs = conn.execute(select(store.tables.decisions.c.seq)).scalars().all()
        assert seqs == [None] * len(decisions)
    store.record(*_batch(make, 100, 4))
    with store.engine.connect() as conn:
        assert event_log.position(conn, store) == 4
    assert audit.verify(store).checked == flagged + 2


def test_an_empty_database_is_created_at_the_newest_revision(store: Store) -> None:
    assert migrations.head() == migrations.revision_of(SCHEMA_VERSION)
    assert _revision(store) == migrations.head()
    assert _versions(store) == [SCHEMA_VERSION]
    # Alembic's table lives beside vigil's: on PostgreSQL in the store's own schema, which the
    # URL's search_path names, not in public (whatever else the server's public schema holds).
    if store.dialect == "postgresql":
        with store.engine.connect() as conn:
            own, found = conn.execute(
                text(
                    "SELECT current_schema(), count(*) FROM information_schema.tables "
                    "WHERE table_name = 'alembic_version' AND table_schema = current_schema()"
                )
            ).one()
            assert own != "public" and found == 1
    assert "alembic_version" in inspect(store.engine).get_table_names()
    again = migrations.upgrade(store)
    assert (again.before, again.after, again.applied, again.created) == (
        migrations.head(),
        migrations.head(),
        (),
        False,
    )


def test_a_database_from_before_the_seals_is_upgraded_by_vigil_db_upgrade(
    store: Store, make
) -> None:
    events, decisions = _before_the_seals(store, make)
    result, last = _upgrade_command(store)
    assert result.exit_code == 0, result.output
    assert f"from revision {BEFORE_SEALS} to {migrations.head()}" in result.output
    assert last == {
        "dialect": store.dialect,
        "before": BEFORE_SEALS,
        "after": migrations.head(),
        "applied": list(ALL[SEALED_AT - 1 :]),
        "created": False,
    }
    assert _revision(store) == migrations.head()
    assert "seq" in _columns(store, "decisions")
    assert {"assignee", "closed_at"} <= _columns(store, "risk_events")
    assert _versions(store) == list(range(1, SCHEMA_VERSION + 1))
    _rows_intact(store, make, events, decisions)
    again, last = _upgrade_command(store)
    assert again.exit_code == 0 and "already at revision" in again.output
    assert last["applied"] == []


@pytest.mark.parametrize("version", [SEALED_AT - 1, SEALED_AT])
def test_a_database_from_before_alembic_is_stamped_then_upgraded(
    store: Store, make, version: int
) -> None:
    events, decisions = _before_the_seals(store, make)
    with store.transaction() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("DELETE FROM schema_version"))
        conn.execute(text(f"INSERT INTO schema_version VALUES ({version}, '2024-01-01 00:00:00')"))
        if version == SEALED_AT:  # what that vigil's own migration had added
            conn.execute(text("ALTER TABLE decisions ADD COLUMN batch BIGINT"))
            conn.execute(text("CREATE INDEX ix_decisions_batch ON decisions (batch)"))
            conn.execute(text("ALTER TABLE risk_events ADD COLUMN link_format SMALLINT"))
            conn.execute(
                text("ALTER TABLE risk_events ADD COLUMN erased SMALLINT NOT NULL DEFAULT 0")
            )
            tables = build_tables(store.dialect)
            tables.decision_links.create(conn)
            pseudonyms = store.privacy.pseudonyms
            audit.seal_existing(conn, tables.decisions, tables.decision_links, pseudonyms)
    store.engine.dispose()
    done = migrations.upgrade(store)
    assert done.before == migrations.revision_of(version)
    assert done.applied == ALL[version:]
    assert _revision(store) == migrations.head()
    assert _versions(store) == list(range(version, SCHEMA_VERSION + 1))
    _rows_intact(store, make, events, decisions)


def test_profiles_checkpointed_before_version_7_are_read_after_it(store: Store) -> None:
    """Version 7 writes a checkpoint in parts beside the profiles already saved: those stay
    current until a later checkpoint completes."""
    store.drop_all()
    migrations.upgrade(store, migrations.revision_of(6))
    with store.transaction() as conn:
        for key, data in (("c-1", b"one"), ("c-2", b"two")):
            conn.execute(
                text(
                    "INSERT INTO profiles (kind, key, data, updated_at)"
                    " VALUES ('card', :key, :data, '2026-12-01 00:00:00')"
                ),
                {"key": key, "data": data},
            )
    store.save_profile_state("snapshot", {"position": 40})
    migrations.upgrade(store)
    before = [("card", "c-1", b"one"), ("card", "c-2", b"two")]
    assert list(store.load_profiles()) == before
    store.save_checkpoint_part([("card", "c-1", b"one@50")], 50)
    assert list(store.load_profiles()) == before
    store.save_checkpoint_part([], 50, complete=True)
    assert list(store.load_profiles()) == [("card", "c-1", b"one@50"), ("card", "c-2", b"two")]


def test_a_database_newer_than_this_vigil_is_refused(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    result, _ = _upgrade_command(store)
    assert result.exit_code != 0
    assert "revision 0099, unknown to this vigil" in result.output
    assert "upgrade vigil" in result.output
    with store.transaction() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(
            text(f"INSERT INTO schema_version VALUES ({SCHEMA_VERSION + 1}, '2030-01-01')")
        )
    with pytest.raises(RuntimeError, match=f"version {SCHEMA_VERSION + 1}, newer than"):
        store.init_schema()


def test_a_downgrade_or_an_unknown_revision_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="does not downgrade"):
        migrations.upgrade(store, BEFORE_SEALS)
    result, _ = _upgrade_command(store, "--to", "0042")
    assert result.exit_code != 0 and "'0042' is not one of vigil's revisions" in result.output
    assert _revision(store) == migrations.head()


# Declared types SQLite does not enforce, which revision 0002 leaves as they were (widening them
# would mean rebuilding the users table, for no difference a row could see).
_UNENFORCED_ON_SQLITE = {("users", "email"), ("users", "phone"), ("users", "address")}


def _shape(store: Store) -> dict[str, Any]:
    """Everything the database says about its tables, as comparable values."""
    inspector = inspect(store.engine)
    shape: dict[str, Any] = {}
    for name in inspector.get_table_names():
        columns = {}
        for c in inspector.get_columns(name):
            loose = store.dialect == "sqlite" and (name, c["name"]) in _UNENFORCED_ON_SQLITE
            declared = "(not enforced)" if loose else str(c["type"])
            columns[c["name"]] = (declared, c["nullable"], str(c.get("default")))
        shape[name] = {
            "columns": columns,
            "primary key": inspector.get_pk_constraint(name)["constrained_columns"],
            "foreign keys": sorted(
                (fk["name"], *fk["constrained_columns"], fk["referred_table"])
                for fk in inspector.get_foreign_keys(name)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]), _predicate(i))
                for i in inspector.get_indexes(name)
            ),
            "unique": sorted(
                (str(u["name"]), tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(name)
            ),
            "checks": sorted(
                (c["name"], c["sqltext"]) for c in inspector.get_check_constraints(name)
            ),
        }
    if store.dialect == "postgresql":
        shape["(sequences)"] = sorted(inspector.get_sequence_names())
    return shape


def _predicate(index: dict[str, Any]) -> str | None:
    """A partial index's WHERE clause, as the database gives it back (None: every row)."""
    options = index.get("dialect_options", {})
    where = options.get("sqlite_where", options.get("postgresql_where"))
    return None if where is None else " ".join(str(where).split())


def test_replaying_every_revision_gives_the_schema_build_tables_declares(store: Store) -> None:
    created = _shape(store)  # the fixture's empty database: build_tables' tables, stamped
    store.drop_all()
    done = migrations.upgrade(store, replay=True)
    assert done.applied == ALL and not done.created
    replayed = _shape(store)
    declared = {
        table.name: {c.name for c in table.columns}
        for table in build_tables(store.dialect).metadata.tables.values()
    }
    columns = {name: set(table["columns"]) for name, table in replayed.items() if name[0] != "("}
    assert columns == {**declared, "alembic_version": {"version_num"}}
    for name in created:
        assert replayed[name] == created[name], name
    assert replayed.keys() == created.keys()
    assert _versions(store) == list(range(1, SCHEMA_VERSION + 1))


def test_servers_starting_at_once_on_an_empty_database_create_it_once(store: Store) -> None:
    store.drop_all()
    starting = [Store(store.url) for _ in range(3)]
    barrier = threading.Barrier(len(starting))
    done: list[migrations.Upgrade] = []
    failed: list[BaseException] = []

    def start(server: Store) -> None:
        barrier.wait()
        try:
            done.append(migrations.upgrade(server))
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in starting]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for server in starting:
        server.close()
    assert failed == []
    assert sorted(d.created for d in done) == [False, False, True]
    assert _revision(store) == migrations.head()
    assert _versions(store) == [SCHEMA_VERSION]


def test_vigil_db_init_still_creates_and_keeps_the_schema(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'v.db'}"
    for _ in range(2):
        result = runner.invoke(app, ["db", "init", "--database", db])
        assert result.exit_code == 0, result.output
    with Store(db) as store:
        assert _revision(store) == migrations.head()
        assert _versions(store) == [SCHEMA_VERSION]
