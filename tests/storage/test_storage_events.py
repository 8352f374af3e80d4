"""Transactions, logins and feedback: exact round trips, idempotency, ordered streaming."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text

from vigil.domain import Feedback, Transaction
from vigil.storage import Store

T0 = datetime(2022, 1, 3, 10, 0, tzinfo=UTC)  # the make fixture's default event time


def test_transactions_round_trip_exact_decimals_and_utc(store: Store, make) -> None:
    lagos = timezone(timedelta(hours=1))
    txs = [
        make.tx("e1", amount=Decimal("999999999999.99")),
        make.tx("e2", minutes=1, amount=Decimal("0.01")),
        make.tx(
            "e3",
            minutes=2,
            amount="1234567.89",
            type="transfer",
            channel="online",
            counterparty_account="a-X-9",
            counterparty_country="GB",
            ip="10.0.0.1",
            device_id="dev-1",
            latitude=6.5,
            longitude=3.4,
            country="NG",
            standin=True,
            currency="USD",
            terminal_id=None,
        ),
        make.tx("e4s", minutes=3, phase="start", amount=None),
        make.tx(
            "e4e",
            minutes=4,
            phase="end",
            started_at=T0 + timedelta(minutes=3),
            amount=Decimal("0.10"),
        ),
        make.tx("e5", minutes=5, type="balance_inquiry", amount=None),
        make.tx("e6", at=datetime(2022, 1, 3, 12, 30, tzinfo=lagos), type="deposit", amount="7"),
    ]
    assert store.insert_transactions(txs) == len(txs)
    got = list(store.iter_events())
    # IPs and device fingerprints are stored only as pseudonyms (vigil.privacy).
    stored = [store.privacy.pseudonyms.event(t) for t in txs]
    assert got == sorted(stored, key=lambda t: (t.timestamp, t.event_id))
    by_id = {t.event_id: t for t in got}
    assert by_id["e1"].amount == Decimal("999999999999.99")
    assert str(by_id["e2"].amount) == "0.01"
    assert by_id["e4s"].amount is None
    assert by_id["e5"].amount == Decimal("0")
    assert by_id["e6"].timestamp == datetime(2022, 1, 3, 11, 30, tzinfo=UTC)
    assert by_id["e6"].direction.value == "credit"
    assert all(t.timestamp.utcoffset() == timedelta(0) for t in got)
    assert by_id["e4e"].started_at == T0 + timedelta(minutes=3)
    assert by_id["e3"].standin is True and by_id["e3"].counterparty_country == "GB"


def test_amount_finer_than_cents_is_refused_naming_field_and_event(store: Store, make) -> None:
    with pytest.raises(ValueError, match=r"amount\n.*10\.005 has more than 2 decimal places"):
        make.tx("e2", amount=Decimal("10.005"))  # at the door: the event cannot be made
    # One made without validation still never reaches the table.
    unchecked = make.tx("e2").model_copy(update={"amount": Decimal("10.005")})
    with pytest.raises(ValueError, match=r"amount: 10\.005 on event e2"):
        store.insert_transactions([make.tx("e1"), unchecked])
    assert store.counts()["transactions"] == 0


def test_logins_and_feedback_round_trip(store: Store, make) -> None:
    logins = [
        make.login(
            "l1",
            success=False,
            ip="203.0.113.7",
            device_id="dev-9",
            latitude=51.5,
            longitude=-0.12,
            country="GB",
            session_seconds=12.5,
        ),
        make.login("l2", minutes=1),
    ]
    assert store.insert_logins(logins) == 2
    assert list(store.iter_events()) == [store.privacy.pseudonyms.event(e) for e in logins]
    feedback = [
        Feedback(
            event_id="f1",
            target_event_id="l1",
            label="fraud",
            timestamp=T0 + timedelta(days=2),
            source="customer",
            pattern="account_takeover",
            note="not me",
        ),
        Feedback(
            event_id="f2",
            target_event_id="e9",
            label="standin_loss",
            timestamp=T0 + timedelta(days=1),
        ),
    ]
    assert store.insert_feedback(feedback) == 2
    assert store.insert_feedback(feedback) == 0
    assert store.load_feedback() == [feedback[1], feedback[0]]
    assert store.load_feedback("l1") == [feedback[0]]


def test_duplicate_event_ids_are_ignored(store: Store, make) -> None:
    first = [make.tx("e1"), make.tx("e2", minutes=1), make.tx("e3", minutes=2)]
    assert store.insert_transactions(first) == 3
    assert store.insert_transactions(first) == 0
    again = [make.tx("e2", minutes=1), make.tx("e4", minutes=3), make.tx("e4", minutes=3)]
    assert store.insert_transactions(again) == 1
    assert store.insert_logins([make.login("l1"), make.login("l1")]) == 1
    assert store.insert_logins([make.login("l1")]) == 0
    counts = store.counts()
    assert (counts["transactions"], counts["logins"]) == (4, 1)


def test_iter_events_merges_kinds_in_time_order_across_months(store: Store, make) -> None:
    rng = random.Random(7)
    start = datetime(2021, 12, 30, tzinfo=UTC)
    events = []
    for i in range(60):
        at = start + timedelta(hours=rng.randrange(0, 24 * 45))
        if i % 3 == 0:
            events.append(make.login(f"l{i:02d}", at=at))
        else:
            events.append(make.tx(f"e{i:02d}", at=at, amount=Decimal(i) / 4))
    events.append(make.tx("z-dec", at=datetime(2021, 12, 31, 23, 59, 59, tzinfo=UTC)))
    # Two events at the same instant: ties break by event id.
    events.append(make.login("a-tie", at=datetime(2022, 1, 15, tzinfo=UTC)))
    events.append(make.tx("b-tie", at=datetime(2022, 1, 15, tzinfo=UTC)))
    rng.shuffle(events)
    store.insert_transactions([e for e in events if isinstance(e, Transaction)])
    store.insert_logins([e for e in events if not isinstance(e, Transaction)])

    expected = sorted(events, key=lambda e: (e.timestamp, e.event_id))
    assert list(store.iter_events(batch_size=4)) == expected
    assert {e.timestamp.month for e in expected} == {12, 1, 2}

    lo, hi = datetime(2022, 1, 1, tzinfo=UTC), datetime(2022, 2, 1, tzinfo=UTC)
    window = list(store.iter_events(lo, hi))
    assert window == [e for e in expected if lo <= e.timestamp < hi]
    assert window and window[0].timestamp >= lo
    with pytest.raises(ValueError, match="start: naive datetime"):
        next(store.iter_events(datetime(2022, 1, 1)))


def test_iter_events_streams_and_can_stop_early(store: Store, make) -> None:
    store.insert_transactions([make.tx(f"e{i:03d}", minutes=i) for i in range(50)])
    stream = store.iter_events(batch_size=5)
    head = [next(stream) for _ in range(3)]
    stream.close()
    assert [e.event_id for e in head] == ["e000", "e001", "e002"]
    assert store.insert_transactions([make.tx("e999", minutes=999)]) == 1


def test_postgres_creates_one_partition_per_month(store: Store, make) -> None:
    if store.dialect != "postgresql":
        pytest.skip("monthly partitions exist on PostgreSQL only")
    store.insert_transactions(
        [
            make.tx("e1", at=datetime(2022, 1, 31, 23, 59, 59, tzinfo=UTC)),
            make.tx("e2", at=datetime(2022, 2, 1, tzinfo=UTC)),
            make.tx("e3", at=datetime(2022, 2, 14, tzinfo=UTC)),
            make.tx("e4", at=datetime(2023, 3, 1, tzinfo=UTC)),
        ]
    )
    store.insert_logins([make.login("l1", at=datetime(2022, 2, 2, tzinfo=UTC))])
    query = text(
        "SELECT parent.relname, child.relname FROM pg_inherits "
        "JOIN pg_class parent ON parent.oid = pg_inherits.inhparent "
        "JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
        "JOIN pg_namespace ns ON ns.oid = parent.relnamespace "
        "WHERE ns.nspname = current_schema() AND child.relkind = 'r' ORDER BY 1, 2"
    )
    with store.engine.connect() as conn:
        partitions = conn.execute(query).all()
        per_partition = conn.execute(text("SELECT count(*) FROM transactions_2022_02")).scalar_one()
        kind = conn.execute(
            text("SELECT relkind FROM pg_class WHERE oid = 'transactions'::regclass")
        ).scalar_one()
    assert partitions == [
        ("logins", "logins_2022_02"),
        ("transactions", "transactions_2022_01"),
        ("transactions", "transactions_2022_02"),
        ("transactions", "transactions_2023_03"),
    ]
    assert per_partition == 2
    assert kind == "p"  # partitioned table


def test_a_few_rows_go_in_by_insert_and_many_by_copy(store: Store, make, monkeypatch) -> None:
    # COPY goes through a temporary table made and dropped in the catalog, milliseconds a call
    # whatever the rows: a server's commit of a few decisions must not pay it (bench/commits.py).
    from vigil.storage import bulk

    copied: list[int] = []
    copy = bulk.copy_insert

    def counted(conn, table, rows, *, skip_existing):
        copied.append(len(rows))
        return copy(conn, table, rows, skip_existing=skip_existing)

    monkeypatch.setattr(bulk, "copy_insert", counted)
    few = [make.tx(f"f{i}", minutes=i) for i in range(8)]
    assert store.insert_transactions(few) == 8
    assert store.insert_transactions([*few[:3], make.tx("f8", minutes=8)]) == 1  # new only
    many = [make.tx(f"m{i}", minutes=i) for i in range(bulk.COPY_FROM)]
    assert store.insert_transactions(many) == bulk.COPY_FROM
    assert copied == ([bulk.COPY_FROM] if store.dialect == "postgresql" else [])
    assert len(list(store.iter_events())) == 9 + bulk.COPY_FROM
