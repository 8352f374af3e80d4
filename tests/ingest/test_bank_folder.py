from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from vigil.ingest import SourceFileError, read_bank_folder

from .files import CVCS, card_row, make_bank_folder


def test_reads_every_entity(tmp_path: Path) -> None:
    folder = make_bank_folder(
        tmp_path / "bank",
        users=[("u-B1-1", "2020-05-01 09:00:00", "NG", 6.4, 3.3, "a@example.com", "+234 1")],
    )
    data = read_bank_folder(folder)
    assert data.errors == []
    assert data.rows_read == 2 + 3 + 3 + 2 + 1 + 3 + 1
    assert {b.code: b.name for b in data.banks} == {"B1": "First Bank", "B2": "Second Bank"}
    terminals = {t.terminal_id: (t.bank_code, t.internal) for t in data.terminals}
    assert terminals == {"B1-1": ("B1", True), "B2-1": ("B2", True), "EXT-1": ("B1", False)}
    cards = {c.card_id: c for c in data.cards}
    assert {k: (c.user_id, c.bank_code) for k, c in cards.items()} == {
        "c-B1-1": ("u-B1-1", "B1"),
        "c-B1-2": ("u-B1-2", "B1"),
        "c-B2-1": ("u-B2-1", "B2"),
    }
    assert [cards[k].expiration for k in ("c-B1-1", "c-B1-2", "c-B2-1")] == [
        date(2027, 12, 31),
        date(2026, 3, 31),
        date(2027, 1, 31),
    ]
    behaviour = cards["c-B1-1"].behaviour
    assert behaviour is not None
    assert (behaviour.amount_avg_withdrawal, behaviour.withdrawal_day) == (2000.0, 0.6)
    assert cards["c-B1-1"].extract_limit == 50000.0
    users = {u.user_id: u for u in data.users}
    assert sorted(users) == ["u-B1-1", "u-B1-2", "u-B2-1"]
    assert users["u-B1-1"].created_at == datetime(2020, 5, 1, 9, tzinfo=UTC)
    assert users["u-B1-1"].email == "a@example.com"
    # Synthesised from card.csv's client_id: the id and nothing else.
    assert users["u-B2-1"].model_dump(exclude_defaults=True) == {"user_id": "u-B2-1"}


def test_cvc_is_in_no_object(tmp_path: Path) -> None:
    data = read_bank_folder(make_bank_folder(tmp_path / "bank"))
    dumped = repr([c.model_dump() for c in data.cards]) + repr(data)
    for cvc in CVCS:
        assert cvc not in dumped
    assert all("CVC" not in rows.columns for rows in data.rejects.values())


def test_bad_cvc_error_does_not_echo_it(tmp_path: Path) -> None:
    folder = make_bank_folder(
        tmp_path / "bank",
        cards=[card_row("c-B1-1", "u-B1-1", "91x7"), card_row("c-B1-2", "u-B1-2", "4862")],
        card_bank=[("B1", "c-B1-1"), ("B1", "c-B1-2")],
    )
    data = read_bank_folder(folder)
    (error,) = [e for e in data.errors if e.file == "card.csv"]
    assert (error.line, error.field, error.value) == (2, "CVC", "[redacted]")
    assert "91x7" not in str(error) and "91x7" not in repr(data)
    # card-bank.csv's row for the rejected card is rejected too, saying why.
    (mapping_error,) = [e for e in data.errors if e.file == "card-bank.csv"]
    assert mapping_error.field == "number_id"
    assert "was rejected in card.csv (line 2)" in mapping_error.message
    assert [c.card_id for c in data.cards] == ["c-B1-2"]


def test_malformed_card_row_keeps_no_field(tmp_path: Path) -> None:
    folder = make_bank_folder(tmp_path / "bank")
    with (folder / "card.csv").open("a") as fh:
        fh.write("c-B1-9,u-B1-9,12/27,5551,6.4\n")
    data = read_bank_folder(folder)
    (error,) = [e for e in data.errors if e.file == "card.csv"]
    assert (error.line, error.field) == (5, "(row)")
    assert "5551" not in str(error)
    assert data.rejects["card.csv"].rows[5] == []


ATM = ("Lagos", "Nigeria")
BAD_ROWS = [
    ("atm.csv", 2, "loc_latitude (latitude)", "finite", {"atms": [("B1-1", "NaN", 3.4, *ATM)]}),
    ("atm.csv", 2, "loc_latitude (latitude)", "90", {"atms": [("B1-1", 95, 3.4, *ATM)]}),
    ("atm.csv", 3, "ATM_id", "first at line 2", {"atms": [("B1-1", 6, 3, *ATM)] * 2}),
    ("bank.csv", 3, "code", "first at line 2", {"banks": [("A", "B1", 6, 3), ("B", "B1", 6, 3)]}),
    ("bank.csv", 2, "name", "at most 200", {"banks": [("x" * 201, "B1", 6.4, 3.3)]}),
    ("atm-bank-internal.csv", 2, "code", "'B9' is not in bank.csv", {"internal": [("B9", "B1-1")]}),
    ("atm-bank-internal.csv", 2, "ATM_id", "'B7' is not in atm.csv", {"internal": [("B1", "B7")]}),
    ("atm-bank-external.csv", 2, "ATM_id", "already listed in atm-bank-internal.csv line 2",
     {"external": [("B2", "B1-1")]}),
    ("card.csv", 2, "expiration", "unparseable expiration",
     {"cards": [card_row("c-B1-1", "u-B1-1", expiration="soon")]}),
    ("card.csv", 2, "expiration", "month 13",
     {"cards": [card_row("c-B1-1", "u-B1-1", expiration="13/27")]}),
    ("card.csv", 2, "withdrawal_day", "greater than or equal to 0",
     {"cards": [card_row("c-B1-1", "u-B1-1", withdrawal_day=-1)]}),
    ("card.csv", 2, "extract_limit", "valid number",
     {"cards": [card_row("c-B1-1", "u-B1-1", extract_limit="lots")]}),
    ("card.csv", 2, "number_id (card_id)", "at most 128",
     {"cards": [card_row("c" * 129, "u-B1-1")]}),
    ("users.csv", 2, "created_at", "impossible",
     {"users": [("u-B1-1", "2022-02-30", "NG", "", "", "", "")]}),
    ("users.csv", 2, "country", "at most 3",
     {"users": [("u-B1-1", "", "Nigeria", "", "", "", "")]}),
]  # fmt: skip


@pytest.mark.parametrize(("file", "line", "field", "message", "change"), BAD_ROWS)
def test_bad_rows(
    tmp_path: Path, file: str, line: int, field: str, message: str, change: dict
) -> None:
    data = read_bank_folder(make_bank_folder(tmp_path / "bank", **change))
    mine = [e for e in data.errors if e.file == file]
    assert len(mine) == 1, data.errors
    assert (mine[0].line, mine[0].field) == (line, field)
    assert message in mine[0].message


def test_rejected_user_row_is_not_replaced_by_a_stub(tmp_path: Path) -> None:
    folder = make_bank_folder(tmp_path / "bank", users=[("u-B1-1", "", "Nigeria", "", "", "", "")])
    data = read_bank_folder(folder)
    assert "u-B1-1" not in {u.user_id for u in data.users}


def test_unlisted_atm_is_external_without_bank(tmp_path: Path) -> None:
    folder = make_bank_folder(
        tmp_path / "bank",
        atms=[("B1-1", 6.5, 3.4, "Lagos", "Nigeria"), ("X-1", 6.5, 3.4, "", "")],
        internal=[("B1", "B1-1")],
        external=[],
    )
    data = read_bank_folder(folder)
    assert data.errors == []
    x = next(t for t in data.terminals if t.terminal_id == "X-1")
    assert (x.bank_code, x.internal, x.city) == (None, False, None)


def test_missing_file_and_columns_name_them(tmp_path: Path) -> None:
    folder = make_bank_folder(tmp_path / "bank")
    (folder / "card-bank.csv").unlink()
    with pytest.raises(SourceFileError, match=r"missing files: card-bank\.csv"):
        read_bank_folder(folder)
    folder = make_bank_folder(tmp_path / "bank2")
    (folder / "atm.csv").write_text("ATM_id,loc_latitude,loc_longitude\nB1-1,6.5,3.4\n")
    with pytest.raises(SourceFileError) as info:
        read_bank_folder(folder)
    assert "atm.csv" in str(info.value)
    assert info.value.missing_columns == ("city", "country")
