"""Schema creation, URL handling and reference data, on every backend."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, select, text

from vigil.domain import Bank, Card, Terminal, User
from vigil.domain.entities import CardBehaviour
from vigil.storage import Store, normalise_url
from vigil.storage.schema import SCHEMA_VERSION

ALL_TABLES = {
    "banks",
    "terminals",
    "cards",
    "users",
    "transactions",
    "logins",
    "feedback",
    "decisions",
    "risk_events",
    "profiles",
    "profile_state",
    "schema_version",
}


def test_urls_are_normalised_and_unknown_backends_named() -> None:
    assert normalise_url("postgresql://u:pw@h:5433/db") == "postgresql+psycopg://u:pw@h:5433/db"
    assert normalise_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_url("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"
    with pytest.raises(ValueError, match="url: 'mysql"):
        normalise_url("mysql://u@h/db")
    with pytest.raises(ValueError, match="url: PostgreSQL is used through psycopg 3"):
        normalise_url("postgresql+psycopg2://u@h/db")
    assert Store("postgresql://u@h/db").dialect == "postgresql"
    assert "pw" not in repr(Store("postgresql://u:pw@h/db"))


def test_init_schema_is_idempotent_and_keeps_data(store: Store) -> None:
    store.upsert_banks([Bank(code="B1", name="First Bank")])
    store.init_schema()
    store.init_schema()
    assert set(inspect(store.engine).get_table_names()) >= ALL_TABLES
    with store.engine.connect() as conn:
        versions = conn.execute(select(store.tables.schema_version.c.version)).scalars().all()
    assert versions == [SCHEMA_VERSION]
    assert store.counts()["banks"] == 1


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'sub' / 'v.db'}")
    store.init_schema()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.close()


@pytest.mark.parametrize("column", ["user_id", "account_id"])
def test_lookups_by_user_or_account_use_their_partial_index(
    store: Store, make, column: str
) -> None:
    """The indexes hold only rows that have the column (schema version 6); a lookup by it
    is still served from them, not by reading the table."""
    rows = [
        make.tx(f"e{i}", minutes=i, **{column: f"x-{i % 7}" if i % 2 else None}) for i in range(60)
    ]
    store.insert_transactions(rows)
    query = f"SELECT event_id FROM transactions WHERE {column} = :v ORDER BY timestamp"
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {query.replace(':v', '?')}", ("x-3",))
            [used] = [row[-1].split(" USING INDEX ")[1].split()[0] for row in plan]
            definition = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = ?", (used,)
            ).scalar_one()
        else:  # a 60-row table would be read whole unless told not to
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = conn.execute(text(f"EXPLAIN {query}"), {"v": "x-3"}).scalars().all()
            # The month's partition holds its own copy of the index, named after it.
            [used] = [line.split(" using ")[1].split()[0] for line in plan if " using " in line]
            definition = conn.execute(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": used}
            ).scalar_one()
        found = conn.execute(text(query), {"v": "x-3"}).scalars().all()
    assert f"WHERE {column} IS NOT NULL" in definition.replace("(", "").replace(")", "")
    assert found == [f"e{i}" for i in range(60) if i % 2 and i % 7 == 3]


def test_no_table_has_a_cvc_column(store: Store) -> None:
    inspector = inspect(store.engine)
    columns = {
        (table, col["name"].lower())
        for table in inspector.get_table_names()
        for col in inspector.get_columns(table)
    }
    assert ("cards", "card_id") in columns
    assert [c for c in columns if "cvc" in c[1] or "cvv" in c[1]] == []


def test_drop_all_then_init_schema_starts_empty(store: Store, make) -> None:
    store.insert_transactions([make.tx("e1")])
    store.drop_all()
    assert not ALL_TABLES & set(inspect(store.engine).get_table_names())
    store.init_schema()
    assert store.counts()["transactions"] == 0
    assert store.insert_transactions([make.tx("e1")]) == 1


def test_reference_upsert_and_load_round_trip(store: Store) -> None:
    lagos = timezone(timedelta(hours=1))
    banks = [
        Bank(code="B1", name="First Bank", latitude=6.45, longitude=3.39),
        Bank(code="B2", name="Second"),
    ]
    terminals = [
        Terminal(
            terminal_id="B1-1",
            latitude=6.5,
            longitude=3.4,
            city="Lagos",
            country="Nigeria",
            bank_code="B1",
        ),
        Terminal(terminal_id="EXT-1", latitude=9.06, longitude=7.49, kind="pos", internal=False),
    ]
    behaviour = CardBehaviour(
        amount_avg_withdrawal=5000.5, amount_std_withdrawal=120.25, withdrawal_day=0.4
    )
    cards = [
        Card(
            card_id="c-B1-1",
            user_id="u-B1-1",
            bank_code="B1",
            expiration=date(2027, 5, 31),
            latitude=6.45,
            longitude=3.39,
            extract_limit=50000,
            behaviour=behaviour,
        ),
        Card(card_id="c-B1-2"),
    ]
    users = [
        User(
            user_id="u-B1-1",
            created_at=datetime(2020, 3, 1, 9, 30, tzinfo=lagos),
            country="NG",
            latitude=6.45,
            longitude=3.39,
            email="a@example.com",
            phone="+2348000000",
            address="1 Marina",
        ),
        User(user_id="u-B1-2"),
    ]
    assert store.upsert_banks(banks) == 2
    assert store.upsert_terminals(terminals) == 2
    assert store.upsert_cards(cards) == 2
    assert store.upsert_users(users) == 2

    ref = store.load_reference()
    assert ref.banks == {b.code: b for b in banks}
    assert ref.terminals == {t.terminal_id: t for t in terminals}
    assert ref.cards == {c.card_id: c for c in cards}
    assert ref.users == {u.user_id: u for u in users}
    assert ref.users["u-B1-1"].created_at == datetime(2020, 3, 1, 8, 30, tzinfo=UTC)
    assert ref.users["u-B1-1"].created_at.utcoffset() == timedelta(0)
    assert ref.cards["c-B1-1"].behaviour.amount_avg_withdrawal == 5000.5


def test_upsert_replaces_by_id_and_last_duplicate_wins(store: Store) -> None:
    store.upsert_banks([Bank(code="B1", name="Old name"), Bank(code="B2", name="Two")])
    written = store.upsert_banks(
        [Bank(code="B1", name="Interim"), Bank(code="B1", name="New name")]
    )
    assert written == 1
    ref = store.load_reference()
    assert {c: b.name for c, b in ref.banks.items()} == {"B1": "New name", "B2": "Two"}
    assert store.counts()["banks"] == 2


def test_upsert_rejects_the_wrong_model_by_position(store: Store) -> None:
    with pytest.raises(TypeError, match=r"cards\[1\]: expected Card, got Bank"):
        store.upsert_cards([Card(card_id="c-1"), Bank(code="B1", name="x")])
    assert store.counts()["cards"] == 0


def test_outer_transaction_commits_all_or_nothing(store: Store, make) -> None:
    with pytest.raises(RuntimeError, match="boom"), store.transaction() as conn:
        store.upsert_banks([Bank(code="B1", name="First")], conn)
        assert store.insert_transactions([make.tx("e1")], conn) == 1
        raise RuntimeError("boom")
    assert store.counts()["banks"] == 0
    assert store.counts()["transactions"] == 0
    with store.transaction() as conn:
        store.upsert_banks([Bank(code="B1", name="First")], conn)
        store.insert_transactions([make.tx("e1")], conn)
    assert (store.counts()["banks"], store.counts()["transactions"]) == (1, 1)
