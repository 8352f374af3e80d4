from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from vigil.domain import Phase, TransactionType
from vigil.ingest import RowError, SourceFileError, read_atm_transactions
from vigil.ingest.atm_stream import is_atm_layout

from .files import atm_file, write_csv

T0 = "2022-01-03 10:00:00"
T1 = "2022-01-03 10:01:30"


def only_error(errors: list[RowError]) -> RowError:
    assert len(errors) == 1, errors
    return errors[0]


def test_two_phase_and_single_rows(tmp_path: Path) -> None:
    path = atm_file(
        tmp_path / "stream.csv",
        [
            ("t1", "c-B1-1", "B1-1", 0, T0, "", ""),
            ("t2", "c-B1-2", "EXT-1", 1, "2022-01-03T10:00:10Z", "2022-01-03T10:00:50Z", "300.5"),
            ("t1", "c-B1-1", "B1-1", 0, T0, T1, "2500"),
            ("t3", "c-B2-1", "B2-1", 2, T0, "", ""),
            ("t3", "c-B2-1", "B2-1", 2, T0, T1, ""),
            ("t4", "c-B2-1", "B2-1", 3, T0, T1, "10"),
        ],
    )
    result = read_atm_transactions(path)
    assert result.errors == []
    assert result.rows_read == 6
    by_id = {e.event_id: e for e in result.events}
    assert list(by_id) == ["t1-s", "t2", "t1-e", "t3-s", "t3-e", "t4"]

    start, end, single = by_id["t1-s"], by_id["t1-e"], by_id["t2"]
    assert (start.phase, start.amount, start.type) == (
        Phase.START,
        None,
        TransactionType.WITHDRAWAL,
    )
    assert start.timestamp == datetime(2022, 1, 3, 10, tzinfo=UTC)
    assert (end.phase, end.amount, end.transaction_id) == (Phase.END, Decimal("2500.00"), "t1")
    assert end.timestamp == datetime(2022, 1, 3, 10, 1, 30, tzinfo=UTC)
    assert end.started_at == start.timestamp
    assert (end.card_id, end.terminal_id, end.channel.value) == ("c-B1-1", "B1-1", "atm")
    assert (single.phase, single.amount, single.type) == (
        Phase.SINGLE,
        Decimal("300.50"),
        TransactionType.DEPOSIT,
    )
    assert single.timestamp == datetime(2022, 1, 3, 10, 0, 10, tzinfo=UTC)
    assert single.started_at is None
    assert by_id["t3-e"].type is TransactionType.BALANCE_INQUIRY
    assert by_id["t3-e"].amount == 0
    assert by_id["t4"].type is TransactionType.TRANSFER


def test_naive_timestamps_are_utc_and_offsets_convert(tmp_path: Path) -> None:
    path = atm_file(
        tmp_path / "s.csv",
        [("t1", "c1", "A1", 0, "2022-01-03T11:00:00+01:00", "2022-01-03 10:05:00", "5")],
    )
    (tx,) = read_atm_transactions(path).events
    assert tx.timestamp == datetime(2022, 1, 3, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("row", "field", "message", "value"),
    [
        (("t1", "c1", "A1", 0, T0, T1, "-5"), "transaction_amount (amount)", "negative", "-5"),
        (("t1", "c1", "A1", 0, T0, T1, "NaN"), "transaction_amount (amount)", "finite", "NaN"),
        (("t1", "c1", "A1", 0, T0, T1, "abc"), "transaction_amount (amount)", "decimal", "abc"),
        (("t1", "c1", "A1", 0, T0, T1, "1.005"), "transaction_amount (amount)", "2 decimal", None),
        (("t1", "c1", "A1", 7, T0, T1, "5"), "transaction_type (type)", "unknown transaction", "7"),
        (("t1", "c1", "A1", 0, "yesterday", T1, "5"), "transaction_start", "unparseable", None),
        (
            ("t1", "c1", "A1", 0, "2022-02-30 10:00:00", "", ""),
            "transaction_start",
            "impossible",
            None,
        ),
        (
            ("t1", "c1", "A1", 0, T0, "2022-13-01 00:00:00", "5"),
            "transaction_end",
            "impossible",
            None,
        ),
        (("t1", "c1", "A1", 0, T1, T0, "5"), "transaction_end", "before transaction_start", T0),
        (
            ("t1", "c1", "A1", 0, "1970-01-01 00:00:00", T1, "5"),
            "transaction_start (timestamp)",
            "outside",
            None,
        ),
        (("t1", "c1", "A1", 0, T0, T1, ""), "transaction_amount (amount)", "required", None),
        (
            ("t1", "c1", "A1", 0, T0, "", "5"),
            "transaction_end",
            "transaction_amount is given",
            None,
        ),
        (("t1", "", "A1", 0, T0, T1, "5"), "number_id (card_id)", "needs a card_id", None),
        (("", "c1", "A1", 0, T0, T1, "5"), "transaction_id", "required", None),
        (("t1", "c" * 129, "A1", 0, T0, T1, "5"), "number_id (card_id)", "at most 128", None),
        (("t1", "c1", "A1", 0, "", T1, "5"), "transaction_id", "end row without its start", "t1"),
    ],
)
def test_bad_rows_name_file_line_and_field(
    tmp_path: Path, row: tuple, field: str, message: str, value: str | None
) -> None:
    good = ("t0", "c1", "A1", 0, T0, T1, "5")
    path = atm_file(tmp_path / "bad.csv", [good, row])
    result = read_atm_transactions(path)
    error = only_error(result.errors)
    assert (error.file, error.line, error.field) == ("bad.csv", 3, field)
    assert message in error.message
    if value is not None:
        assert error.value == value
    assert [e.event_id for e in result.events] == ["t0"]
    assert result.rows_rejected == 1


def test_oversized_value_is_shortened_in_the_error(tmp_path: Path) -> None:
    path = atm_file(tmp_path / "s.csv", [("t1", "c" * 5000, "A1", 0, T0, T1, "5")])
    error = only_error(read_atm_transactions(path).errors)
    assert error.field == "number_id (card_id)"
    assert error.value is not None and len(error.value) < 100
    assert error.value.endswith("(5000 characters)")


def test_malformed_row_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text(
        "transaction_id,number_id,ATM_id,transaction_type,"
        "transaction_start,transaction_end,transaction_amount\n"
        f"t1,c1,A1,0,{T0},{T1},5\n"
        f"t2,c1,A1,0,{T0}\n"
        f"t3,c1,A1,0,{T0},{T1},5,extra\n"
        f't4,"c\n1",A1,0,{T0},{T1},5\n'
        f"t5,c1,A1,0,{T0},{T1},x\n"
    )
    result = read_atm_transactions(path)
    lines = [(e.line, e.field, e.message) for e in result.errors]
    assert lines == [
        (3, "(row)", "expected 7 fields, found 5"),
        (4, "(row)", "expected 7 fields, found 8"),
        (
            5,
            "number_id (card_id)",
            "must not contain control or bidirectional characters (U+000A at position 1; not "
            "NUL, newline, tab, U+0085, U+202E, ...)",
        ),
        (7, "transaction_amount (amount)", "Input should be a valid decimal"),
    ]
    # The quoted newline in t4's card id spans lines 5-6 (and no id holds one), so t5 starts
    # on line 7.
    assert [e.event_id for e in result.events] == ["t1"]


def test_end_before_start_in_file_and_repeats(tmp_path: Path) -> None:
    path = atm_file(
        tmp_path / "s.csv",
        [
            ("t1", "c1", "A1", 0, T0, "", ""),
            ("t1", "c1", "A1", 0, T0, "", ""),  # identical: a duplicate, not an error
            ("t1", "c1", "A1", 0, T0, T1, "5"),
            ("t1", "c1", "A1", 0, T0, T1, "6"),  # a second, different end
            ("t1", "c1", "A2", 0, T0, "", ""),  # a start after completion
        ],
    )
    result = read_atm_transactions(path)
    assert result.duplicates == 1
    assert [e.event_id for e in result.events] == ["t1-s", "t1-e"]
    assert [(e.line, e.field) for e in result.errors] == [
        (5, "transaction_id"),
        (6, "transaction_id"),
    ]
    assert "already completed at line 4" in result.errors[0].message
    assert result.rows_read == len(result.events) + result.duplicates + result.rows_rejected


def test_rejected_start_still_pairs_its_end(tmp_path: Path) -> None:
    path = atm_file(
        tmp_path / "s.csv",
        [("t1", "c1", "A1", 9, T0, "", ""), ("t1", "c1", "A1", 0, T0, T1, "5")],
    )
    result = read_atm_transactions(path)
    assert [(e.line, e.field) for e in result.errors] == [(2, "transaction_type (type)")]
    (end,) = result.events
    assert (end.event_id, end.phase) == ("t1-e", Phase.END)


def test_missing_file_and_columns(tmp_path: Path) -> None:
    with pytest.raises(SourceFileError, match=r"nope\.csv: no such file"):
        read_atm_transactions(tmp_path / "nope.csv")
    path = write_csv(tmp_path / "s.csv", ["transaction_id", "number_id", "ATM_id"], [])
    with pytest.raises(SourceFileError) as info:
        read_atm_transactions(path)
    assert "s.csv" in str(info.value)
    assert info.value.missing_columns == (
        "transaction_type",
        "transaction_start",
        "transaction_end",
        "transaction_amount",
    )


def test_unknown_ids_are_accepted(tmp_path: Path) -> None:
    # No reference data is consulted: the engine flags unknown_card / unknown_terminal.
    path = atm_file(tmp_path / "s.csv", [("t1", "never-seen", "nowhere", 0, T0, T1, "5")])
    (tx,) = read_atm_transactions(path).events
    assert (tx.card_id, tx.terminal_id) == ("never-seen", "nowhere")


def test_layout_detection() -> None:
    assert is_atm_layout(
        [
            "transaction_id",
            "number_id",
            "ATM_id",
            "transaction_type",
            "transaction_start",
            "transaction_end",
            "transaction_amount",
        ]
    )
    assert not is_atm_layout(["event_id", "timestamp", "type"])
