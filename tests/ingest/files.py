"""Small layout files written into tmp_path for the importer tests."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from vigil.ingest.atm_stream import COLUMNS as ATM_COLUMNS
from vigil.ingest.bank_folder import CARD_COLUMNS

# CVC values chosen to be unlike any other value in the fixtures, so a search for them is exact.
CVCS = ("917", "4862", "735")


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def atm_file(path: Path, rows: Sequence[Sequence[object]]) -> Path:
    return write_csv(path, ATM_COLUMNS, rows)


def card_row(number: str, client: str, cvc: str = "917", **over: object) -> list[object]:
    values: dict[str, object] = {
        "number_id": number,
        "client_id": client,
        "expiration": "12/27",
        "CVC": cvc,
        "loc_latitude": 6.45,
        "loc_longitude": 3.39,
        "extract_limit": 50000,
        "amount_avg_withdrawal": 2000,
        "amount_std_withdrawal": 500,
        "withdrawal_day": 0.6,
        "amount_avg_deposit": 1000,
        "amount_std_deposit": 200,
        "deposit_day": 0.1,
        "inquiry_day": 0.1,
        "amount_avg_transfer": 1500,
        "amount_std_transfer": 300,
        "transfer_day": 0.2,
    }
    values.update(over)
    return [values[c] for c in CARD_COLUMNS]


def make_bank_folder(
    folder: Path,
    *,
    banks: Sequence[Sequence[object]] | None = None,
    atms: Sequence[Sequence[object]] | None = None,
    cards: Sequence[Sequence[object]] | None = None,
    internal: Sequence[Sequence[object]] | None = None,
    external: Sequence[Sequence[object]] | None = None,
    card_bank: Sequence[Sequence[object]] | None = None,
    users: Sequence[Sequence[object]] | None = None,
) -> Path:
    """A valid two-bank folder; pass any file's rows to replace them."""
    folder.mkdir(parents=True, exist_ok=True)
    write_csv(
        folder / "bank.csv",
        ("name", "code", "loc_latitude", "loc_longitude"),
        banks
        if banks is not None
        else [("First Bank", "B1", 6.45, 3.39), ("Second Bank", "B2", 9.06, 7.49)],
    )
    write_csv(
        folder / "atm.csv",
        ("ATM_id", "loc_latitude", "loc_longitude", "city", "country"),
        atms
        or [
            ("B1-1", 6.50, 3.40, "Lagos", "Nigeria"),
            ("B2-1", 9.05, 7.50, "Abuja", "Nigeria"),
            ("EXT-1", 6.60, 3.35, "Lagos", "Nigeria"),
        ],
    )
    write_csv(
        folder / "card.csv",
        CARD_COLUMNS,
        cards
        or [
            card_row("c-B1-1", "u-B1-1", CVCS[0]),
            card_row("c-B1-2", "u-B1-2", CVCS[1], expiration="2026-03"),
            card_row("c-B2-1", "u-B2-1", CVCS[2], expiration="2027-01-31"),
        ],
    )
    write_csv(
        folder / "atm-bank-internal.csv",
        ("code", "ATM_id"),
        internal if internal is not None else [("B1", "B1-1"), ("B2", "B2-1")],
    )
    write_csv(
        folder / "atm-bank-external.csv",
        ("code", "ATM_id"),
        external if external is not None else [("B1", "EXT-1")],
    )
    write_csv(
        folder / "card-bank.csv",
        ("code", "number_id"),
        card_bank
        if card_bank is not None
        else [("B1", "c-B1-1"), ("B1", "c-B1-2"), ("B2", "c-B2-1")],
    )
    if users is not None:
        write_csv(
            folder / "users.csv",
            ("user_id", "created_at", "country", "loc_latitude", "loc_longitude", "email", "phone"),
            users,
        )
    return folder
