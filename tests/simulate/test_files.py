"""The output folder: layouts, formats, determinism, and how counts follow the parameters."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from vigil.domain.events import parse_event
from vigil.ingest.atm_stream import read_atm_transactions
from vigil.simulate import PATTERNS, BankConfig, generate

from .conftest import CONFIG, Generated

# The event stream contract of common.md, spelled out here so a drift in the writer fails.
EVENT_COLUMNS = [
    "kind", "event_id", "transaction_id", "timestamp", "type", "phase", "channel", "started_at",
    "amount", "currency", "card_id", "account_id", "user_id", "terminal_id",
    "counterparty_account", "counterparty_country", "direction", "ip", "device_id", "latitude",
    "longitude", "country", "standin", "success", "session_seconds",
]  # fmt: skip
REFERENCE_HEADERS = {
    "bank.csv": "name,code,loc_latitude,loc_longitude",
    "atm.csv": "ATM_id,loc_latitude,loc_longitude,city,country",
    "card.csv": "number_id,client_id,expiration,CVC,loc_latitude,loc_longitude,extract_limit,"
    "amount_avg_withdrawal,amount_std_withdrawal,withdrawal_day,amount_avg_deposit,"
    "amount_std_deposit,deposit_day,inquiry_day,amount_avg_transfer,amount_std_transfer,"
    "transfer_day",
    "atm-bank-internal.csv": "code,ATM_id",
    "atm-bank-external.csv": "code,ATM_id",
    "card-bank.csv": "code,number_id",
    "users.csv": "user_id,created_at,country,loc_latitude,loc_longitude,email,phone",
    "labels.csv": "event_id,transaction_id,pattern",
    "feedback.csv": "event_id,target_event_id,label,timestamp,source",
}
SMALL = BankConfig(seed=5, cards=300, days=10, fraud_rate=0.05)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_reference_files_have_the_layout_headers(generated: Generated) -> None:
    for name, header in REFERENCE_HEADERS.items():
        first = (generated.folder / name).read_text().splitlines()[0]
        assert first == header, name
    bank = pl.read_csv(generated.folder / "bank.csv")
    assert bank.rows() == [("Vigil Bank", "VGB", 6.4541, 3.3947)]


def test_events_parquet_has_exactly_the_contract_columns(generated: Generated) -> None:
    events = generated.events
    assert events.columns == EVENT_COLUMNS
    assert events.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert events.schema["amount"] == pl.Float64
    assert events.schema["standin"] == pl.Boolean
    assert events["timestamp"].is_sorted()
    assert events["event_id"].n_unique() == events.height
    assert events.height == generated.summary.events


def test_ids_follow_the_conventions(generated: Generated) -> None:
    tx = generated.events.filter(pl.col("kind") == "transaction")
    card = tx["card_id"].drop_nulls()
    assert card.str.contains(r"^c-VGB-\d+$").all()
    assert tx["account_id"].str.contains(r"^a-VGB-\d+$").all()
    assert tx["user_id"].str.contains(r"^u-VGB-\d+$").all()
    assert tx["terminal_id"].drop_nulls().str.contains(r"^(VGB|EXT)-\d+$").all()
    # Account, user and card of a transaction are the same customer.
    same = tx.drop_nulls("card_id").select(
        pl.col("card_id").str.slice(2), pl.col("account_id").str.slice(2),
        pl.col("user_id").str.slice(2),
    )  # fmt: skip
    assert (same["card_id"] == same["account_id"]).all()
    assert (same["user_id"] == same["account_id"]).all()
    # Transactions are numbered 1..N in order of their start.
    first = tx.filter(pl.col("phase") != "end").with_columns(
        pl.col("transaction_id").str.extract(r"^t-VGB-(\d+)$").cast(pl.Int64).alias("n")
    )
    assert sorted(first["n"]) == list(range(1, first.height + 1))
    assert first.sort("n")["timestamp"].is_sorted()
    internal = pl.read_csv(generated.folder / "atm-bank-internal.csv")["ATM_id"]
    external = pl.read_csv(generated.folder / "atm-bank-external.csv")["ATM_id"]
    assert internal.len() == CONFIG.atms_internal
    assert external.len() >= CONFIG.atms_external  # cloning may add far external ATMs
    assert set(generated.atms["ATM_id"]) == set(internal) | set(external)
    assert set(tx["terminal_id"].drop_nulls()) <= set(generated.atms["ATM_id"])


def test_two_phase_events_pair_up(generated: Generated) -> None:
    atm = generated.events.filter(pl.col("channel") == "atm")
    starts = atm.filter(pl.col("phase") == "start")
    ends = atm.filter(pl.col("phase") == "end")
    assert starts.height == ends.height > 0
    assert (starts["event_id"] == starts["transaction_id"] + "-s").all()
    assert (ends["event_id"] == ends["transaction_id"] + "-e").all()
    assert starts["amount"].null_count() == starts.height
    assert ends["amount"].null_count() == 0
    assert starts["started_at"].null_count() == starts.height
    pair = starts.select("transaction_id", pl.col("timestamp").alias("s")).join(
        ends.select("transaction_id", "started_at", pl.col("timestamp").alias("e")),
        on="transaction_id",
    )
    assert pair.height == ends.height
    assert (pair["s"] == pair["started_at"]).all()
    seconds = (pair["e"] - pair["s"]).dt.total_seconds()
    assert seconds.min() >= 30 and seconds.max() <= 600


def test_rows_validate_as_domain_events(generated: Generated) -> None:
    sample = pl.concat(
        [
            generated.events.filter(pl.col("kind") == kind).head(300)
            for kind in ("transaction", "login")
        ]
        + [generated.labelled(p) for p in PATTERNS]
    )
    for row in sample.iter_rows(named=True):
        data = {k: v for k, v in row.items() if v is not None}
        if row["kind"] == "login":
            for key in ("type", "phase", "channel", "currency", "standin", "started_at"):
                data.pop(key, None)
        else:
            data.pop("success", None)
            data.pop("session_seconds", None)
        event = parse_event(data)
        assert event.event_id == row["event_id"]


def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path: Path) -> None:
    a = generate(SMALL, tmp_path / "a")
    generate(SMALL, tmp_path / "b")
    generate(BankConfig(**{**SMALL.__dict__, "seed": 6}), tmp_path / "c")
    first, second, other = (_digests(tmp_path / d) for d in "abc")
    assert first == second
    assert set(first) == set(a.paths)
    differing = {name for name in first if first[name] != other[name]}
    assert {"events.parquet", "card.csv", "atm.csv", "labels.csv"} <= differing


def test_csv_formats(tmp_path: Path) -> None:
    csv = generate(SMALL, tmp_path / "csv", fmt="csv")
    atm = generate(SMALL, tmp_path / "atm", fmt="atm-csv")
    assert "events.parquet" not in csv.paths and "events.csv" in csv.paths
    assert "atm_transactions.csv" in atm.paths
    parquet = generate(SMALL, tmp_path / "pq")
    expected = pl.read_parquet(parquet.paths["events.parquet"])
    text = (tmp_path / "csv" / "events.csv").read_text().splitlines()
    assert text[0] == ",".join(EVENT_COLUMNS)
    assert text[1].split(",")[3].endswith("Z")
    got = pl.read_csv(tmp_path / "csv" / "events.csv", infer_schema=False).with_columns(
        pl.col("timestamp", "started_at").str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC"),
        pl.col("amount", "latitude", "longitude", "session_seconds").cast(pl.Float64),
    )
    assert got.height == expected.height
    assert got["event_id"].to_list() == expected["event_id"].to_list()
    assert got["amount"].equals(expected["amount"].cast(pl.Float64))
    assert got["timestamp"].cast(pl.Datetime("us", "UTC")).equals(expected["timestamp"])
    assert got["standin"].to_list() == [
        None if v is None else str(v).lower() for v in expected["standin"]
    ]


def test_atm_transaction_stream_layout(tmp_path: Path) -> None:
    summary = generate(SMALL, tmp_path, fmt="atm-csv")
    stream = pl.read_csv(summary.paths["atm_transactions.csv"], infer_schema=False)
    assert stream.columns == [
        "transaction_id", "number_id", "ATM_id", "transaction_type", "transaction_start",
        "transaction_end", "transaction_amount",
    ]  # fmt: skip
    assert set(stream["transaction_type"]) <= {"0", "1", "2", "3"}
    starts = stream.filter(pl.col("transaction_end").is_null())
    ends = stream.filter(pl.col("transaction_end").is_not_null())
    assert starts.height == ends.height > 0
    assert starts["transaction_amount"].null_count() == starts.height
    assert ends["transaction_amount"].null_count() == 0
    # Every start row comes before its end row, which repeats the start time.
    position = {tid: k for k, tid in enumerate(starts["transaction_id"])}
    assert set(position) == set(ends["transaction_id"])
    joined = starts.join(ends, on="transaction_id", suffix="_end")
    assert (joined["transaction_start"] == joined["transaction_start_end"]).all()
    assert (joined["transaction_end_end"] > joined["transaction_start"]).all()
    events = pl.read_csv(summary.paths["events.csv"], infer_schema=False)
    withdrawals = events.filter((pl.col("type") == "withdrawal") & (pl.col("phase") == "end"))
    assert ends.filter(pl.col("transaction_type") == "0").height == withdrawals.height


def test_the_atm_stream_reads_back_through_the_importer(tmp_path: Path) -> None:
    summary = generate(SMALL, tmp_path, fmt="atm-csv")
    read = read_atm_transactions(summary.paths["atm_transactions.csv"])
    assert read.ok, read.errors[:3]
    events = pl.read_csv(summary.paths["events.csv"], infer_schema=False)
    atm = events.filter((pl.col("channel") == "atm") & pl.col("phase").is_in(["start", "end"]))
    assert len(read.events) == atm.height
    ends = {e.transaction_id: e for e in read.events if e.phase.value == "end"}
    expected = atm.filter(pl.col("phase") == "end")
    assert set(ends) == set(expected["transaction_id"])
    for row in expected.head(200).iter_rows(named=True):
        got = ends[row["transaction_id"]]
        assert (got.card_id, got.terminal_id, got.type.value) == (
            row["card_id"],
            row["terminal_id"],
            row["type"],
        )
        assert float(got.amount) == pytest.approx(float(row["amount"]), abs=0.005)


def test_counts_follow_the_parameters(tmp_path: Path) -> None:
    base = generate(BankConfig(seed=3, cards=400, days=10), tmp_path / "a")
    more_cards = generate(BankConfig(seed=3, cards=800, days=10), tmp_path / "b")
    more_days = generate(BankConfig(seed=3, cards=400, days=20), tmp_path / "c")
    frauds = generate(
        BankConfig(seed=3, cards=400, days=10, fraud_rate=0.1, atms_internal=12, atms_external=4),
        tmp_path / "d",
    )
    assert more_cards.cards == 800 and more_cards.users == 800
    assert 1.7 < more_cards.transactions / base.transactions < 2.3
    assert 1.7 < more_days.transactions / base.transactions < 2.3
    assert 1.7 < more_days.logins / base.logins < 2.3
    assert base.atms == 50 and frauds.atms >= 16
    assert sum(base.frauds.values()) == 4  # 1 % of 400 cards
    assert sum(frauds.frauds.values()) == 40
    assert min(frauds.frauds.values()) >= 5
    # About 0.66 ATM operations per card and day in the Wisabi behaviour, plus online transfers.
    assert 0.6 < base.transactions / (400 * 10) < 1.2


def test_users_and_cards(generated: Generated) -> None:
    users, cards = generated.users, generated.cards
    assert users.height == cards.height == CONFIG.cards
    created = users["created_at"].str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC")
    assert (created < datetime(2022, 1, 1, tzinfo=UTC)).all()
    assert (users["country"] == "NG").all()
    assert cards["CVC"].str.contains(r"^\d{3}$").all()
    assert (cards["number_id"].str.slice(2) == cards["client_id"].str.slice(2)).all()
    # Homes are in Nigeria, in a city that has an ATM.
    assert cards["loc_latitude"].is_between(4.0, 14.0).all()


def test_extract_limit_is_five_times_the_average_withdrawal(generated: Generated) -> None:
    cards = generated.cards
    assert (cards["extract_limit"] - 5 * cards["amount_avg_withdrawal"]).abs().max() < 0.011


@pytest.mark.parametrize("pattern", PATTERNS)
def test_each_pattern_is_present(generated: Generated, pattern: str) -> None:
    assert generated.summary.frauds[pattern] >= 8
    assert generated.labelled(pattern).height >= 8
