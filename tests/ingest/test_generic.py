from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from vigil.domain import FeedbackLabel, Login, Phase, Transaction
from vigil.ingest import (
    ImportRejected,
    RowError,
    SourceFileError,
    iter_event_file,
    read_events,
)

from .files import write_csv

T0 = datetime(2022, 1, 3, 10, tzinfo=UTC)
# A card-payment file names no channel: the reader is told it (vigil never guesses ATM).
POS = {"channel": "pos"}
PAYSIM = ("step", "CUSTOMER_ID", "TX_AMOUNT", "TX_TYPE", "TERMINAL", "isFraud")
MAPPING = {
    "timestamp": "step",
    "card_id": "CUSTOMER_ID",
    "amount": "TX_AMOUNT",
    "type": "TX_TYPE",
    "terminal_id": "TERMINAL",
}
TYPES = {"CASH_OUT": "withdrawal", "PAYMENT": "payment", "TRANSFER": "transfer"}


def sample_events() -> list[Transaction | Login]:
    """The engine's own stream: a two-phase withdrawal, a single transfer, two logins."""
    return [
        Transaction(
            event_id="t1-s",
            transaction_id="t1",
            card_id="c-B1-1",
            account_id="a-B1-1",
            user_id="u-B1-1",
            terminal_id="B1-1",
            type="withdrawal",
            phase="start",
            timestamp=T0,
            latitude=6.5,
            longitude=3.4,
            country="NG",
        ),
        Transaction(
            event_id="t1-e",
            transaction_id="t1",
            card_id="c-B1-1",
            account_id="a-B1-1",
            user_id="u-B1-1",
            terminal_id="B1-1",
            type="withdrawal",
            phase="end",
            timestamp=T0 + timedelta(seconds=90),
            started_at=T0,
            amount=Decimal("2500.50"),
            standin=True,
        ),
        Login(
            event_id="l1",
            user_id="u-B1-1",
            timestamp=T0 + timedelta(minutes=5),
            success=False,
            ip="10.0.0.0/24",
            device_id="d-9",
            latitude=6.45,
            longitude=3.39,
            country="NG",
            session_seconds=12.5,
        ),
        Transaction(
            event_id="t2",
            transaction_id="t2",
            account_id="a-B1-1",
            user_id="u-B1-1",
            type="transfer",
            channel="mobile",
            timestamp=T0 + timedelta(minutes=6),
            amount=Decimal("100.00"),
            counterparty_account="x-77",
            counterparty_country="GH",
            device_id="d-9",
        ),
        Login(event_id="l2", user_id="u-B1-2", timestamp=T0 + timedelta(minutes=7)),
    ]


def event_frame(events: list[Transaction | Login]) -> pl.DataFrame:
    """Events as the shared convention lays them out: one row each, the union of columns."""
    columns = [
        "kind", "event_id", "transaction_id", "timestamp", "type", "phase", "channel",
        "started_at", "amount", "currency", "card_id", "account_id", "user_id", "terminal_id",
        "counterparty_account", "counterparty_country", "direction", "ip", "device_id",
        "latitude", "longitude", "country", "standin", "success", "session_seconds",
    ]  # fmt: skip
    rows = []
    for e in events:
        data = e.model_dump(mode="python")
        row = {c: data.get(c) for c in columns}
        row = {c: (v.value if hasattr(v, "value") else v) for c, v in row.items()}
        if row["amount"] is not None:
            row["amount"] = float(row["amount"])
        rows.append(row)
    schema = {
        c: pl.Utf8 for c in columns if c not in ("timestamp", "started_at", "amount", "latitude")
    }
    schema.update(
        {
            "timestamp": pl.Datetime("us", "UTC"),
            "started_at": pl.Datetime("us", "UTC"),
            "amount": pl.Float64,
            "latitude": pl.Float64,
            "longitude": pl.Float64,
            "session_seconds": pl.Float64,
            "standin": pl.Boolean,
            "success": pl.Boolean,
        }
    )
    return pl.DataFrame(rows, schema=schema)


@pytest.mark.parametrize("suffix", ["parquet", "csv"])
def test_reads_the_engines_own_stream_without_mapping(tmp_path: Path, suffix: str) -> None:
    events = sample_events()
    frame = event_frame(events)
    path = tmp_path / f"events.{suffix}"
    if suffix == "parquet":
        frame.write_parquet(path)
    else:
        frame.with_columns(
            pl.col("timestamp", "started_at").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
        ).write_csv(path)
    result = read_events(path)
    assert result.errors == []
    assert result.events == events
    assert [type(e).__name__ for e in iter_event_file(path)] == [
        "Transaction",
        "Transaction",
        "Login",
        "Transaction",
        "Login",
    ]


def test_mapping_type_values_labels_and_derived_ids(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "paysim.csv",
        PAYSIM,
        [
            ("2022-01-03 10:00:00", "C1", "99.5", "CASH_OUT", "T9", "1"),
            ("2022-01-03 10:05:00", "C2", "10", "PAYMENT", "", "0"),
            ("2022-01-03 10:06:00", "C2", "11", "TRANSFER", "", ""),
        ],
    )
    result = read_events(path, MAPPING, label_column="isFraud", type_values=TYPES, defaults=POS)
    assert result.errors == []
    first, _, third = result.events
    assert (first.event_id, first.transaction_id) == ("paysim-2", "paysim-2")
    assert (first.card_id, first.terminal_id, first.amount) == ("C1", "T9", Decimal("99.50"))
    assert [e.type.value for e in result.events] == ["withdrawal", "payment", "transfer"]
    assert (third.event_id, third.phase) == ("paysim-4", Phase.SINGLE)
    assert [(f.event_id, f.target_event_id, f.label) for f in result.feedback] == [
        ("fb-paysim-2", "paysim-2", FeedbackLabel.FRAUD),
        ("fb-paysim-3", "paysim-3", FeedbackLabel.LEGITIMATE),
    ]
    assert result.feedback[0].timestamp == first.timestamp
    # Deterministic ids: reading again gives the same events.
    again = read_events(path, MAPPING, label_column="isFraud", type_values=TYPES, defaults=POS)
    assert again.events == result.events


def test_custom_label_values(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "f.csv",
        PAYSIM,
        [("2022-01-03 10:00:00", "C1", "5", "PAYMENT", "", "chargeback")],
    )
    labels = {"chargeback": "dispute"}
    result = read_events(
        path,
        MAPPING,
        label_column="isFraud",
        label_values=labels,
        type_values=TYPES,
        defaults=POS,
    )
    assert result.errors == []
    assert [f.label for f in result.feedback] == [FeedbackLabel.DISPUTE]


@pytest.mark.parametrize(
    ("cells", "field", "message"),
    [
        (("2022-01-03 10:00:00", "C1", "-1", "PAYMENT", "", ""), "TX_AMOUNT (amount)", "negative"),
        (("2022-01-03 10:00:00", "C1", "nan", "PAYMENT", "", ""), "TX_AMOUNT (amount)", "finite"),
        (("2022-01-03 10:00:00", "C1", "5", "REFUND", "", ""), "TX_TYPE (type)", "Input should be"),
        (("03/01/2022 10:00", "C1", "5", "PAYMENT", "", ""), "step (timestamp)", "unparseable"),
        (("2022-02-30 10:00:00", "C1", "5", "PAYMENT", "", ""), "step (timestamp)", "impossible"),
        (
            ("2022-01-03 10:00:00", "C" * 200, "5", "PAYMENT", "", ""),
            "CUSTOMER_ID (card_id)",
            "128",
        ),
        (("2022-01-03 10:00:00", "C1", "5", "PAYMENT", "", "maybe"), "isFraud (label)", "unknown"),
        (("2022-01-03 10:00:00", "C1", "", "PAYMENT", "", ""), "TX_AMOUNT (amount)", "required"),
    ],
)
def test_bad_rows_name_source_and_domain_field(
    tmp_path: Path, cells: tuple, field: str, message: str
) -> None:
    good = ("2022-01-03 09:00:00", "C0", "1", "PAYMENT", "", "")
    path = write_csv(tmp_path / "g.csv", PAYSIM, [good, cells])
    result = read_events(path, MAPPING, label_column="isFraud", type_values=TYPES, defaults=POS)
    assert len(result.errors) == 1, result.errors
    error = result.errors[0]
    assert (error.file, error.line, error.field) == ("g.csv", 3, field)
    assert message in error.message
    assert len(result.events) == 1


def test_parquet_nan_amount_and_integer_ids(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pl.DataFrame(
        {
            "timestamp": [T0, T0, T0],
            "CUSTOMER_ID": [17, 18, 19],
            "amount": [5.0, float("nan"), 0.1 + 0.2],
            "type": ["payment"] * 3,
        }
    ).write_parquet(path)
    result = read_events(path, {"card_id": "CUSTOMER_ID"}, defaults=POS)
    assert [(e.line, e.field) for e in result.errors] == [(3, "amount")]
    assert [(e.card_id, e.amount) for e in result.events] == [
        ("17", Decimal("5.00")),
        ("19", Decimal("0.30")),
    ]


def test_missing_mapped_columns_and_unknown_fields(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "g.csv", ("when", "amount"), [("2022-01-03", "5")])
    with pytest.raises(SourceFileError) as info:
        read_events(path, {"timestamp": "when", "card_id": "CUSTOMER_ID"})
    assert "g.csv" in str(info.value)
    assert info.value.missing_columns == ("CUSTOMER_ID", "type")
    with pytest.raises(ValueError, match="unknown domain fields: amout"):
        read_events(path, {"amout": "amount"})
    with pytest.raises(SourceFileError, match="isFraud"):
        read_events(path, {"timestamp": "when", "type": "amount"}, label_column="isFraud")


def test_repeated_rows_are_duplicates_and_conflicts_are_errors(tmp_path: Path) -> None:
    header = ("event_id", "timestamp", "type", "card_id", "amount")
    path = write_csv(
        tmp_path / "e.csv",
        header,
        [
            ("e1", "2022-01-03T10:00:00Z", "payment", "c1", "5"),
            ("e1", "2022-01-03T10:00:00Z", "payment", "c1", "5"),
            ("e1", "2022-01-03T10:00:00Z", "payment", "c1", "6"),
        ],
    )
    result = read_events(path, defaults=POS)
    assert (len(result.events), result.duplicates) == (1, 1)
    assert [(e.line, e.field) for e in result.errors] == [(4, "event_id")]
    assert "line 2" in result.errors[0].message


def test_unknown_kind_is_an_error(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "e.csv",
        ("kind", "event_id", "timestamp", "user_id"),
        [("logon", "l1", "2022-01-03T10:00:00Z", "u1")],
    )
    (error,) = read_events(path).errors
    assert (error.line, error.field, error.value) == (2, "kind", "logon")


def test_iter_event_file_raises_at_the_bad_row_or_reports_it(tmp_path: Path) -> None:
    header = ("event_id", "timestamp", "type", "card_id", "amount")
    path = write_csv(
        tmp_path / "e.csv",
        header,
        [
            ("e1", "2022-01-03T10:00:00Z", "payment", "c1", "5"),
            ("e2", "2022-01-03T10:00:00Z", "payment", "c1", "-5"),
            ("e3", "2022-01-03T10:01:00Z", "payment", "c1", "7"),
        ],
    )
    seen: list[str] = []
    with pytest.raises(ImportRejected) as info:
        for event in iter_event_file(path, defaults=POS):
            seen.append(event.event_id)
    assert seen == ["e1"]
    assert [(e.line, e.field) for e in info.value.errors] == [(3, "amount")]

    reported: list[RowError] = []
    events = list(iter_event_file(path, defaults=POS, on_error=reported.append))
    assert [e.event_id for e in events] == ["e1", "e3"]
    assert [(e.file, e.line) for e in reported] == [("e.csv", 3)]
