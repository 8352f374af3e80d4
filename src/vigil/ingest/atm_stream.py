"""The ATM transaction stream layout: one CSV, each transaction as two rows or one.

Columns: ``transaction_id,number_id,ATM_id,transaction_type,transaction_start,transaction_end,
transaction_amount``; types 0 withdrawal, 1 deposit, 2 balance inquiry, 3 transfer.

How rows become events (all with channel ``atm``, card_id = number_id, terminal_id = ATM_id):

- a *start row* (empty end and amount) → phase ``start``, event_id ``<transaction_id>-s``,
  timestamp = transaction_start;
- a later row with an end for a started transaction → phase ``end``, event_id
  ``<transaction_id>-e``, timestamp = transaction_end, started_at = the start, with the amount;
- a row with start, end and amount for a transaction not started before → phase ``single``,
  event_id = transaction_id, timestamp = transaction_start (as the domain defines it for single
  events: when the customer began), ``started_at`` unset; the end time is not kept;
- a row with an end but no start, for a transaction never started → error on transaction_id.

A start row that was itself rejected still counts as "started", so its end row stays an end
event (``-e``) and re-importing the fixed start row later pairs with it.

A row identical to an earlier one is a duplicate (counted, not imported twice); a different row
for a transaction already started or finished is an error. Unknown card or ATM ids are
accepted: the engine flags them with ``unknown_card``/``unknown_terminal``, and the file
importer does not need reference data loaded first. Timestamps without a zone are UTC.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "atm.csv"
>>> _ = p.write_text(HEADER + "\\n"
...     "t1,c-1,A1,0,2022-01-03 10:00:00,,\\n"
...     "t1,c-1,A1,0,2022-01-03 10:00:00,2022-01-03 10:01:30,2500\\n")
>>> [(e.event_id, e.phase.value, str(e.amount)) for e in read_atm_transactions(p).events]
[('t1-s', 'start', 'None'), ('t1-e', 'end', '2500')]
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from vigil.domain import Channel, Phase, Transaction, TransactionType
from vigil.ingest.errors import RowError, field_label, show_value, validation_errors
from vigil.ingest.gc_pause import paused_gc
from vigil.ingest.rejects import RejectedRows
from vigil.ingest.result import ReadResult
from vigil.ingest.source import SourceTable
from vigil.ingest.values import cents, parse_timestamp

COLUMNS = (
    "transaction_id",
    "number_id",
    "ATM_id",
    "transaction_type",
    "transaction_start",
    "transaction_end",
    "transaction_amount",
)
HEADER = ",".join(COLUMNS)

TYPES = {
    "0": TransactionType.WITHDRAWAL,
    "1": TransactionType.DEPOSIT,
    "2": TransactionType.BALANCE_INQUIRY,
    "3": TransactionType.TRANSFER,
}

_SOURCE_OF = {
    "event_id": "transaction_id",
    "transaction_id": "transaction_id",
    "card_id": "number_id",
    "terminal_id": "ATM_id",
    "type": "transaction_type",
    "amount": "transaction_amount",
    "started_at": "transaction_start",
}


def is_atm_layout(columns: list[str]) -> bool:
    """True when a file's header is the ATM transaction stream layout."""
    return set(COLUMNS) <= set(columns)


class _Seen:
    """What earlier rows said about one transaction id."""

    __slots__ = ("line", "row", "start", "state")

    def __init__(self, state: str, line: int, row: tuple, start: datetime | None) -> None:
        self.state, self.line, self.row, self.start = state, line, row, start


def read_atm_transactions(path: Path | str, *, rounded: bool = False) -> ReadResult:
    """Read an ATM transaction stream CSV into validated transactions and row errors;
    ``rounded`` rounds amounts with sub-cent parts instead of refusing them."""
    with paused_gc():
        return _read_atm(path, rounded)


def _read_atm(path: Path | str, rounded: bool) -> ReadResult:
    table = SourceTable(path, required=COLUMNS)
    name = table.name
    result = ReadResult(name, rejects=RejectedRows(str(table.path), table.columns))
    idx = [table.index(c) for c in COLUMNS]
    seen: dict[str, _Seen] = {}
    for row in table.rows():
        result.rows_read += 1
        line = row.line
        if row.problems:
            result.errors += [RowError(name, line, f, m, v) for f, m, v in row.problems]
            result.rejects.add(line, table.raw_text(row.cells))  # type: ignore[union-attr]
            continue
        cells = row.cells
        tid, card, atm, code, start_s, end_s, amount = (cells[i] for i in idx)
        errors: list[RowError] = []

        def err(column: str, message: str, value: object, domain: str | None = None) -> None:
            label = field_label(column, domain) if domain else column
            errors.append(RowError(name, line, label, message, show_value(value)))  # noqa: B023

        amount_text = amount
        tx_type = TYPES.get(str(code)) if code is not None else None
        if code is None:
            err("transaction_type", "required", None, "type")
        elif tx_type is None:
            err(
                "transaction_type",
                "unknown transaction type; expected 0 withdrawal, 1 deposit, "
                "2 balance inquiry, 3 transfer",
                code,
                "type",
            )
        start = end = None
        if start_s is not None:
            try:
                start = parse_timestamp(start_s)
            except ValueError as exc:
                err("transaction_start", str(exc), start_s)
        if end_s is not None:
            try:
                end = parse_timestamp(end_s)
            except ValueError as exc:
                err("transaction_end", str(exc), end_s)

        if start is not None and end is not None and end < start:
            err("transaction_end", "before transaction_start", end_s)

        key = tuple(cells)
        prior = seen.get(tid) if tid is not None else None
        is_start_row = end_s is None and amount is None
        if end_s is None and amount is not None:
            err("transaction_end", "empty, but transaction_amount is given", None)
        if start_s is None and (is_start_row or (prior is None and tid is not None)):
            if is_start_row:
                err("transaction_start", "required on a start row", None)
            else:
                err("transaction_id", "end row without its start row", tid)

        phase = Phase.START if is_start_row else Phase.SINGLE
        if prior is not None:
            if prior.row == key:
                result.duplicates += 1
                continue
            if is_start_row or prior.state != "started":
                what = "started" if prior.state == "started" else "completed"
                err("transaction_id", f"transaction already {what} at line {prior.line}", tid)
            else:
                phase = Phase.END
                if start is None:
                    start = prior.start
        if tid is None:
            err("transaction_id", "required", None)
        try:
            amount = cents(amount, rounded=rounded)
        except ValueError as exc:
            err("transaction_amount", str(exc), amount_text, "amount")

        if not errors:
            data = {
                "event_id": tid,
                "transaction_id": tid,
                "type": tx_type,
                "phase": phase,
                "channel": Channel.ATM,
                "card_id": card,
                "terminal_id": atm,
            }
            if phase is Phase.START:
                data["event_id"] = f"{tid}-s"
                data["timestamp"] = start
            elif phase is Phase.END:
                data["event_id"] = f"{tid}-e"
                data["timestamp"] = end
                data["started_at"] = start
                data["amount"] = amount
            else:
                data["timestamp"] = start
                data["amount"] = amount
            try:
                result.events.append(Transaction.model_validate(data))
            except ValidationError as exc:
                source_of = dict(_SOURCE_OF)
                source_of["timestamp"] = (
                    "transaction_end" if phase is Phase.END else "transaction_start"
                )
                said = {
                    "event_id": tid,
                    "transaction_id": tid,
                    "card_id": card,
                    "terminal_id": atm,
                    "type": code,
                    "amount": amount_text,
                    "started_at": start_s,
                    "timestamp": end_s if phase is Phase.END else start_s,
                }
                errors += validation_errors(
                    exc, file=name, line=line, source_of=source_of, values=said
                )
        # A start row counts even when rejected (see the module notes); an end or single row
        # only when it was accepted, so a bad one does not hide the next attempt.
        if tid is not None and (prior is None or prior.state == "started"):
            if is_start_row and prior is None:
                seen[tid] = _Seen("started", line, key, start)
            elif not errors and not is_start_row:
                state = "ended" if phase is Phase.END else "single"
                seen[tid] = _Seen(state, line, key, start)
        if errors:
            result.errors += errors
            result.rejects.add(line, table.raw_text(cells))  # type: ignore[union-attr]
    return result
