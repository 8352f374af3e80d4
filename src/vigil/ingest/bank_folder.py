"""The ATM bank layout: a folder of CSV files describing banks, ATMs, cards and users.

Files (all required except ``users.csv``): ``bank.csv``, ``atm.csv``, ``card.csv``,
``atm-bank-internal.csv`` and ``atm-bank-external.csv`` (``code,ATM_id``), ``card-bank.csv``
(``code,number_id``), ``users.csv``. How they become reference data:

- a terminal is ``internal`` when atm-bank-internal lists it, external when atm-bank-external
  does, and its ``bank_code`` is the code on that row; each ATM may be listed once across the two
  files. An ATM neither file lists is kept as external with no bank (no bank claims it);
- a card's ``user_id`` is its ``client_id``, its ``bank_code`` comes from card-bank.csv (none when
  unlisted), the behaviour columns become its ``CardBehaviour`` (profile priors), and
  ``expiration`` accepts ``2025-12``, ``12/25``, ``12/2025`` or an ISO date;
- the CVC column is removed as each row is read: it is checked (3 or 4 digits) but never kept,
  logged, echoed in an error or written to a reject file;
- every client_id without a users.csv row gets a user with only its user_id.

Mapping rows must name a bank in bank.csv and an ATM/card of the folder (a row naming one whose
own row was rejected is rejected too, saying so).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> for name, text in {
...     "bank.csv": "name,code,loc_latitude,loc_longitude\\nFirst,B1,6.45,3.39\\n",
...     "atm.csv": "ATM_id,loc_latitude,loc_longitude,city,country\\nB1-1,6.5,3.4,Lagos,Nigeria\\n",
...     "card.csv": ",".join(CARD_COLUMNS) + "\\nc-B1-1,u-B1-1,12/27,123,6.4,3.3,50000"
...                 + ",0" * 10 + "\\n",
...     "atm-bank-internal.csv": "code,ATM_id\\nB1,B1-1\\n",
...     "atm-bank-external.csv": "code,ATM_id\\n",
...     "card-bank.csv": "code,number_id\\nB1,c-B1-1\\n"}.items():
...     _ = (d / name).write_text(text)
>>> f = read_bank_folder(d)
>>> f.terminals[0].internal, f.cards[0].bank_code, str(f.cards[0].expiration), f.users[0].user_id
(True, 'B1', '2027-12-31', 'u-B1-1')
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from vigil.domain import Bank, Card, Terminal, User
from vigil.domain.entities import CardBehaviour
from vigil.ingest.errors import RowError, SourceFileError, show_value, validation_errors
from vigil.ingest.gc_pause import paused_gc
from vigil.ingest.rejects import RejectedRows
from vigil.ingest.source import SourceTable
from vigil.ingest.values import parse_expiration, parse_timestamp

BANK_COLUMNS = ("name", "code", "loc_latitude", "loc_longitude")
ATM_COLUMNS = ("ATM_id", "loc_latitude", "loc_longitude", "city", "country")
BEHAVIOUR_COLUMNS = tuple(CardBehaviour.model_fields)
CARD_COLUMNS = (
    "number_id",
    "client_id",
    "expiration",
    "CVC",
    "loc_latitude",
    "loc_longitude",
    "extract_limit",
    *BEHAVIOUR_COLUMNS,
)

FILES = (
    "bank.csv",
    "atm.csv",
    "card.csv",
    "atm-bank-internal.csv",
    "atm-bank-external.csv",
    "card-bank.csv",
)
USERS_FILE = "users.csv"

_M = TypeVar("_M", bound=BaseModel)


def _check_cvc(value: str | None) -> str | None:
    if value is None or (value.isdigit() and len(value) in (3, 4)):
        return None
    return "must be 3 or 4 digits"


@dataclass
class BankFolder:
    """The reference data of one folder, and the errors of the rows that failed.

    ``rows_read`` counts data rows over all files; ``rejects`` holds the bad rows of each file
    (CVC removed) for the reject files.

    >>> BankFolder().ok
    True
    """

    banks: list[Bank] = field(default_factory=list)
    terminals: list[Terminal] = field(default_factory=list)
    cards: list[Card] = field(default_factory=list)
    users: list[User] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows_read: int = 0
    rejects: dict[str, RejectedRows] = field(default_factory=dict)

    @property
    def rows_rejected(self) -> int:
        return len({(e.file, e.line) for e in self.errors})

    @property
    def ok(self) -> bool:
        return not self.errors


class _FileReader:
    """One file of the folder: rows as dicts, errors and rejects recorded on the folder."""

    def __init__(self, folder: BankFolder, table: SourceTable, key: str | None = None) -> None:
        self.folder, self.table, self.name, self.key = folder, table, table.name, key
        self.rejected = RejectedRows(str(table.path), table.columns)
        folder.rejects[self.name] = self.rejected
        self.bad_lines: set[int] = set()
        # Key -> first line, for every row that had a key (valid or not), to explain rejections.
        self.first: dict[str, int] = {}
        # Key -> the entity built from the row, for rows that passed.
        self.valid: dict[str, Any] = {}

    def rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        columns = self.table.columns
        for row in self.table.rows():
            self.folder.rows_read += 1
            if row.problems:
                self.reject(row.line, [RowError(self.name, row.line, *p) for p in row.problems])
                self.rejected.add(row.line, self.table.raw_text(row.cells))
                if self.key is not None and row.cells:
                    key = row.cells[columns.index(self.key)]
                    if key is not None:
                        self.first.setdefault(str(key), row.line)
                continue
            values = dict(zip(columns, row.cells, strict=True))
            self.rejected.rows[row.line] = self.table.raw_text(row.cells)
            yield row.line, values

    def reject(self, line: int, errors: list[RowError]) -> None:
        self.folder.errors += errors
        self.bad_lines.add(line)

    def error(self, line: int, column: str, message: str, value: object = None) -> None:
        self.reject(line, [RowError(self.name, line, column, message, show_value(value))])

    def build(
        self, model: type[_M], line: int, data: dict[str, Any], source_of: dict[str, str]
    ) -> _M | None:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            self.reject(
                line,
                validation_errors(exc, file=self.name, line=line, source_of=source_of, values=data),
            )
            return None

    def finish(self) -> None:
        # Only bad rows stay in the reject buffer; good ones were kept just in case.
        self.rejected.rows = {k: v for k, v in self.rejected.rows.items() if k in self.bad_lines}


def _unique(reader: _FileReader, key_column: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows whose key is present and not repeated; ``reader.first`` maps each key to its line."""
    first = reader.first
    for line, values in reader.rows():
        key = values.get(key_column)
        if key is None:
            reader.error(line, key_column, "required")
            continue
        if key in first:
            reader.error(line, key_column, f"repeated; first at line {first[key]}", key)
            continue
        first[key] = line
        yield line, values


def _parsed(
    reader: _FileReader, line: int, column: str, value: Any, parse: Callable[[Any], Any]
) -> tuple[bool, Any]:
    if value is None:
        return True, None
    try:
        return True, parse(value)
    except ValueError as exc:
        reader.error(line, column, str(exc), value)
        return False, None


def _missing(what: str, file_name: str, key: str, lines: dict[str, int]) -> str:
    if key in lines:
        return f"{what} {key!r} was rejected in {file_name} (line {lines[key]})"
    return f"{what} {key!r} is not in {file_name}"


def _read_banks(folder: BankFolder, directory: Path) -> _FileReader:
    table = SourceTable(directory / "bank.csv", required=BANK_COLUMNS)
    reader = _FileReader(folder, table, "code")
    source_of = {"latitude": "loc_latitude", "longitude": "loc_longitude"}
    for line, v in _unique(reader, "code"):
        data = {
            "code": v["code"],
            "name": v["name"],
            "latitude": v["loc_latitude"],
            "longitude": v["loc_longitude"],
        }
        bank = reader.build(Bank, line, data, source_of)
        if bank is not None:
            reader.valid[bank.code] = bank
    reader.finish()
    return reader


def _read_mapping(
    folder: BankFolder,
    path: Path,
    key_column: str,
    banks: _FileReader,
    targets: _FileReader,
    listed: dict[str, tuple[str, str]],
) -> Iterator[tuple[str, str]]:
    """(key, bank code) of each good row of a ``code,<key>`` file; ``listed`` maps each key to
    (bank code, where it was listed), shared across files so a key is listed only once."""
    reader = _FileReader(folder, SourceTable(path, required=("code", key_column)))
    what, source = ("ATM", "atm.csv") if key_column == "ATM_id" else ("card", "card.csv")
    for line, v in reader.rows():
        code, key = v["code"], v[key_column]
        if code is None or key is None:
            reader.error(line, "code" if code is None else key_column, "required")
        elif code not in banks.valid:
            reader.error(line, "code", _missing("bank", "bank.csv", code, banks.first), code)
        elif key not in targets.valid:
            reader.error(line, key_column, _missing(what, source, key, targets.first), key)
        elif key in listed:
            reader.error(line, key_column, f"{what} already listed in {listed[key][1]}", key)
        else:
            listed[key] = (code, f"{reader.name} line {line}")
            yield key, code
    reader.finish()


def _read_terminals(folder: BankFolder, directory: Path, banks: _FileReader) -> None:
    table = SourceTable(directory / "atm.csv", required=ATM_COLUMNS)
    reader = _FileReader(folder, table, "ATM_id")
    source_of = {"terminal_id": "ATM_id", "latitude": "loc_latitude", "longitude": "loc_longitude"}
    for line, v in _unique(reader, "ATM_id"):
        data = {
            "terminal_id": v["ATM_id"],
            "latitude": v["loc_latitude"],
            "longitude": v["loc_longitude"],
            "city": v["city"],
            "country": v["country"],
            # Unlisted in both mapping files means no bank claims it: external, no bank.
            "bank_code": None,
            "internal": False,
        }
        terminal = reader.build(Terminal, line, data, source_of)
        if terminal is not None:
            reader.valid[terminal.terminal_id] = terminal
    reader.finish()
    listed: dict[str, tuple[str, str]] = {}
    for file_name, internal in (("atm-bank-internal.csv", True), ("atm-bank-external.csv", False)):
        for atm, code in _read_mapping(
            folder, directory / file_name, "ATM_id", banks, reader, listed
        ):
            # The code was validated as a bank's code: copying it in needs no second check.
            update = {"bank_code": code, "internal": internal}
            reader.valid[atm] = reader.valid[atm].model_copy(update=update)
    folder.terminals = list(reader.valid.values())


def _read_cards(folder: BankFolder, directory: Path, banks: _FileReader) -> None:
    required = tuple(c for c in CARD_COLUMNS if c != "CVC")
    # CVV is the same secret under another network's name; neither is ever kept.
    secrets = {"CVC": _check_cvc, "CVV": _check_cvc}
    table = SourceTable(directory / "card.csv", required=required, secrets=secrets)
    reader = _FileReader(folder, table, "number_id")
    source_of = {
        "card_id": "number_id",
        "user_id": "client_id",
        "latitude": "loc_latitude",
        "longitude": "loc_longitude",
    }
    for line, v in _unique(reader, "number_id"):
        ok, expiration = _parsed(reader, line, "expiration", v["expiration"], parse_expiration)
        behaviour_data = {c: v[c] for c in BEHAVIOUR_COLUMNS if v[c] is not None}
        behaviour = None
        if behaviour_data:
            behaviour = reader.build(CardBehaviour, line, behaviour_data, {})
            ok = ok and behaviour is not None
        if not ok:
            continue
        data = {
            "card_id": v["number_id"],
            "user_id": v["client_id"],
            "expiration": expiration,
            "latitude": v["loc_latitude"],
            "longitude": v["loc_longitude"],
            "extract_limit": v["extract_limit"],
            "behaviour": behaviour,
        }
        card = reader.build(Card, line, data, source_of)
        if card is not None:
            reader.valid[card.card_id] = card
    reader.finish()
    for card_id, code in _read_mapping(
        folder, directory / "card-bank.csv", "number_id", banks, reader, {}
    ):
        reader.valid[card_id] = reader.valid[card_id].model_copy(update={"bank_code": code})
    folder.cards = list(reader.valid.values())


def _read_users(folder: BankFolder, path: Path) -> None:
    known: set[str] = set()
    if path.exists():
        reader = _FileReader(folder, SourceTable(path, required=("user_id",)), "user_id")
        source_of = {"latitude": "loc_latitude", "longitude": "loc_longitude"}
        for line, v in _unique(reader, "user_id"):
            ok, created = _parsed(reader, line, "created_at", v.get("created_at"), parse_timestamp)
            if not ok:
                continue
            data = {
                "user_id": v["user_id"],
                "created_at": created,
                "country": v.get("country"),
                "latitude": v.get("loc_latitude"),
                "longitude": v.get("loc_longitude"),
                "email": v.get("email"),
                "phone": v.get("phone"),
            }
            data = {k: x for k, x in data.items() if x is not None}
            user = reader.build(User, line, data, source_of)
            if user is not None:
                folder.users.append(user)
        reader.finish()
        # Rejected rows count as known too: a stub must not stand in for a real, fixable row.
        known.update(reader.first)
    for card in folder.cards:
        if card.user_id is not None and card.user_id not in known:
            known.add(card.user_id)
            folder.users.append(User(user_id=card.user_id))


def read_bank_folder(folder: Path | str) -> BankFolder:
    """Read an ATM bank layout folder into validated banks, terminals, cards and users.

    Raises ``SourceFileError`` naming the file when one is missing or lacks columns; bad rows
    are returned in ``errors`` (file, line, field), never dropped silently.
    """
    directory = Path(folder)
    missing = [name for name in FILES if not (directory / name).is_file()]
    if missing:
        raise SourceFileError(directory, f"missing files: {', '.join(missing)}")
    result = BankFolder()
    with paused_gc():
        banks = _read_banks(result, directory)
        result.banks = list(banks.valid.values())
        _read_terminals(result, directory, banks)
        _read_cards(result, directory, banks)
        _read_users(result, directory / USERS_FILE)
    return result
