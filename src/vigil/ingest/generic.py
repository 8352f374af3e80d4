"""Generic CSV and Parquet event files, mapped onto the domain by column name.

``mapping`` is ``{domain_field: source_column}`` (the CLI's ``--map amount=TX_AMOUNT``). A domain
field without a mapping is read from the column of the same name when the file has one, so the
engine's own ``events.parquet`` / ``events.csv`` (see the shared conventions) read with no
mapping at all. Per row:

- ``kind`` is ``transaction`` unless a kind column says ``login``; columns that do not apply to
  the row's kind are ignored (the event stream is the union of both kinds' columns);
- ``event_id`` missing → ``<file stem>-<line>`` (deterministic: re-importing the same file gives
  the same ids); ``transaction_id`` missing → the event_id; ``phase`` missing → ``single``;
- ``type_values`` maps source type values to domain types (``{"CASH_OUT": "withdrawal"}``);
  values it does not list pass through unchanged;
- ``defaults`` fills a transaction's ``type`` or ``channel`` when its row has none; a
  transaction without a channel is refused (never guessed: ATM would be wrong for payments);
- ``label_column`` turns a label into Feedback (event_id ``fb-<event_id>``, target the event,
  at the event's time plus ``label_delay``); ``label_values`` maps source labels (default
  ``1``/``true`` → fraud, ``0``/``false`` → legitimate; domain label names always work); an
  empty label gives none.

A row identical to an earlier one with the same event_id is a duplicate (counted, not imported
twice); a different row with the same event_id is an error. Unknown card, account or terminal
ids are accepted: the engine flags them (``unknown_card``/``unknown_terminal``). Timestamps
without a zone are UTC. Errors name the source column and the domain field
(``TX_AMOUNT (amount)``).

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "paysim.csv"
>>> _ = p.write_text("step_time,CUSTOMER_ID,TX_AMOUNT,kind_of,isFraud\\n"
...                  "2022-01-03 10:00:00,C1,99.5,CASH_OUT,1\\n")
>>> r = read_events(p, {"timestamp": "step_time", "card_id": "CUSTOMER_ID",
...     "amount": "TX_AMOUNT", "type": "kind_of"}, label_column="isFraud",
...     type_values={"CASH_OUT": "withdrawal"}, defaults={"channel": "mobile"})
>>> tx = r.events[0]
>>> tx.event_id, tx.type.value, str(tx.amount), r.feedback[0].label.value
('paysim-2', 'withdrawal', '99.5', 'fraud')
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from operator import itemgetter
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from vigil.domain import Feedback, FeedbackLabel, Login, Transaction
from vigil.ingest.errors import (
    ImportRejected,
    RowError,
    SourceFileError,
    field_label,
    show_value,
    validation_errors,
)
from vigil.ingest.gc_pause import paused_gc
from vigil.ingest.rejects import RejectedRows
from vigil.ingest.result import ReadResult
from vigil.ingest.source import SourceTable
from vigil.ingest.values import cents, parse_timestamp

TRANSACTION_FIELDS = tuple(f for f in Transaction.model_fields if f != "kind")
LOGIN_FIELDS = tuple(f for f in Login.model_fields if f != "kind")
DOMAIN_FIELDS = ("kind", *dict.fromkeys(TRANSACTION_FIELDS + LOGIN_FIELDS))
_TIME_FIELDS = frozenset({"timestamp", "started_at"})
_TEXT_FIELDS = frozenset(
    f
    for f in DOMAIN_FIELDS
    if f not in _TIME_FIELDS
    and f not in {"amount", "latitude", "longitude", "session_seconds", "standin", "success"}
)
_KIND_FIELDS = {"transaction": frozenset(TRANSACTION_FIELDS), "login": frozenset(LOGIN_FIELDS)}
_MODELS: dict[str, type[Transaction] | type[Login]] = {"transaction": Transaction, "login": Login}

DEFAULT_LABEL_VALUES = {
    "1": "fraud",
    "true": "fraud",
    "0": "legitimate",
    "false": "legitimate",
    **{label.value: label.value for label in FeedbackLabel},
}


def _key(value: object) -> str:
    """A cell as a lookup key: ``1``, ``1.0`` and ``True`` from typed files all read as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


@dataclass(slots=True)
class _Outcome:
    line: int
    cells: list[object]
    event: Transaction | Login | None = None
    feedback: Feedback | None = None
    errors: list[RowError] | None = None
    duplicate: bool = False


class _Plan:
    """Which column feeds which domain field, worked out once per file."""

    def __init__(
        self,
        table: SourceTable,
        mapping: Mapping[str, str] | None,
        label_column: str | None,
        label_values: Mapping[str, str] | None,
        type_values: Mapping[str, str] | None,
        defaults: Mapping[str, str] | None = None,
        rounded: bool = False,
        label_delay: timedelta = timedelta(0),
    ) -> None:
        mapping = dict(mapping or {})
        unknown = sorted(set(mapping) - set(DOMAIN_FIELDS))
        if unknown:
            raise ValueError(
                f"mapping names unknown domain fields: {', '.join(unknown)} "
                f"(known: {', '.join(DOMAIN_FIELDS)})"
            )
        columns = set(table.columns)
        for f in DOMAIN_FIELDS:
            if f not in mapping and f in columns:
                mapping[f] = f
        self.source_of = mapping
        # Transaction fields the file may lack, filled where a row has no value for them.
        self.defaults = {f: v for f, v in (defaults or {}).items() if v is not None}
        wanted = list(mapping.values())
        if label_column is not None:
            wanted.append(label_column)
        if "timestamp" not in mapping:
            wanted.append("timestamp")
        if "type" not in mapping and "kind" not in mapping and "type" not in self.defaults:
            wanted.append("type")
        table.require(wanted)
        # A transaction's channel is never guessed: ATM is the domain's default, wrong for a
        # card-payment file. A file of transactions only must say it (column or default).
        if "channel" not in mapping and "channel" not in self.defaults and "kind" not in mapping:
            raise SourceFileError(
                table.path,
                "no channel column: map one (--map channel=COLUMN) or give "
                "--default-channel atm|pos|online|mobile",
                missing_columns=("channel",),
            )
        self.fields = [(f, table.index(c)) for f, c in mapping.items()]
        self.names = [f for f, _ in self.fields]
        indexes = [i for _, i in self.fields]
        self.pick: Callable[[list[object]], Iterable[object]] = lambda cells: [
            cells[i] for i in indexes
        ]
        if len(indexes) > 1:
            self.pick = itemgetter(*indexes)  # type: ignore[assignment]
        # Only the fields that need it are converted; a typed (Parquet) column that is not
        # text but feeds a text field (integer ids) is turned into text.
        converters: list[tuple[str, Callable[[Any], Any]]] = []
        for f, c in mapping.items():
            if f in _TIME_FIELDS:
                converters.append((f, parse_timestamp))
            elif f == "amount":
                converters.append((f, partial(cents, rounded=rounded)))
            elif f in _TEXT_FIELDS and not table.is_text(c):
                converters.append((f, _key))
        self.converters = converters
        self.label_index = table.index(label_column) if label_column is not None else None
        self.label_column = label_column
        labels = {k.lower(): v for k, v in DEFAULT_LABEL_VALUES.items()}
        if label_values:
            labels.update({_key(k).lower(): v for k, v in label_values.items()})
        self.label_values = labels
        self.type_values = {_key(k): v for k, v in (type_values or {}).items()}
        self.stem = table.path.stem
        self.label_delay = label_delay


def _outcomes(
    table: SourceTable,
    plan: _Plan,
) -> Iterator[_Outcome]:
    name = table.name
    names, pick, converters = plan.names, plan.pick, plan.converters
    seen: dict[str, tuple[int, Transaction | Login]] = {}
    for row in table.rows():
        line = row.line
        if row.problems:
            yield _Outcome(line, row.cells, errors=[RowError(name, line, *p) for p in row.problems])
            continue
        cells = row.cells
        errors: list[RowError] = []
        data = {f: v for f, v in zip(names, pick(cells), strict=True) if v is not None}
        for f, convert in converters:
            if f in data:
                try:
                    data[f] = convert(data[f])
                except ValueError as exc:
                    label = field_label(plan.source_of[f], f)
                    errors.append(RowError(name, line, label, str(exc), show_value(data.pop(f))))
        kind = str(data.pop("kind", "transaction")).lower()
        fields = _KIND_FIELDS.get(kind)
        if fields is None:
            label = field_label(plan.source_of["kind"], "kind")
            errors.append(RowError(name, line, label, "expected transaction or login", kind))
        if errors or fields is None:
            yield _Outcome(line, cells, errors=errors)
            continue
        if not data.keys() <= fields:
            data = {f: v for f, v in data.items() if f in fields}
        event_id = data.setdefault("event_id", f"{plan.stem}-{line}")
        if kind == "transaction":
            data.setdefault("transaction_id", event_id)
            for f, value in plan.defaults.items():
                data.setdefault(f, value)
            if "channel" not in data:
                label = field_label(plan.source_of.get("channel", "channel"), "channel")
                message = "required for a transaction (map a column or give --default-channel)"
                yield _Outcome(line, cells, errors=[RowError(name, line, label, message)])
                continue
            if plan.type_values and "type" in data:
                data["type"] = plan.type_values.get(str(data["type"]), data["type"])
        try:
            event = _MODELS[kind].model_validate(data)
        except ValidationError as exc:
            said = {f: cells[i] for f, i in plan.fields}
            errs = validation_errors(
                exc, file=name, line=line, source_of=plan.source_of, values=said
            )
            yield _Outcome(line, cells, errors=errs)
            continue
        feedback = None
        if plan.label_index is not None and cells[plan.label_index] is not None:
            raw_label = cells[plan.label_index]
            label_name = plan.label_values.get(_key(raw_label).lower())
            if label_name is None:
                known = ", ".join(sorted(plan.label_values))
                message = f"unknown label; expected one of {known}"
                label = field_label(plan.label_column or "", "label")
                err = RowError(name, line, label, message, show_value(raw_label))
                yield _Outcome(line, cells, errors=[err])
                continue
            fb_data = {
                "event_id": f"fb-{event.event_id}",
                "target_event_id": event.event_id,
                "label": label_name,
                "timestamp": event.timestamp + plan.label_delay,
                "source": "import",
            }
            try:
                feedback = Feedback.model_validate(fb_data)
            except ValidationError as exc:
                # Only the derived id can fail here (an event_id near the length limit).
                errs = validation_errors(exc, file=name, line=line, source_of={}, values=fb_data)
                yield _Outcome(line, cells, errors=errs)
                continue
        prior = seen.get(event.event_id)
        if prior is not None:
            if prior[1] == event:
                yield _Outcome(line, cells, duplicate=True)
            else:
                label = field_label(plan.source_of.get("event_id", "event_id"), "event_id")
                message = f"event_id already used by a different row at line {prior[0]}"
                yield _Outcome(line, cells, errors=[RowError(name, line, label, message, event_id)])
            continue
        seen[event.event_id] = (line, event)
        yield _Outcome(line, cells, event=event, feedback=feedback)


def read_events(
    path: Path | str,
    mapping: dict[str, str] | None = None,
    *,
    label_column: str | None = None,
    label_values: dict[str, str] | None = None,
    type_values: dict[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
    rounded: bool = False,
    label_delay: timedelta = timedelta(0),
) -> ReadResult:
    """Read a generic CSV or Parquet event file into validated events, feedback and row errors.

    ``defaults`` fills transaction fields (``type``, ``channel``) a row has no value for;
    ``rounded`` rounds amounts with sub-cent parts instead of refusing them; a label is known
    ``label_delay`` after its event (the feedback's time).

    Raises ``SourceFileError`` when the file is missing or lacks a mapped column, and
    ``ValueError`` when the mapping names a field the domain does not have."""
    with paused_gc():
        table = SourceTable(path)
        plan = _Plan(
            table, mapping, label_column, label_values, type_values, defaults, rounded, label_delay
        )
        return _read(table, plan)


def _read(table: SourceTable, plan: _Plan) -> ReadResult:
    result = ReadResult(table.name, rejects=RejectedRows(str(table.path), table.columns))
    for out in _outcomes(table, plan):
        result.rows_read += 1
        if out.errors:
            result.errors += out.errors
            result.rejects.add(out.line, table.raw_text(out.cells))  # type: ignore[union-attr]
        elif out.duplicate:
            result.duplicates += 1
        else:
            result.events.append(out.event)  # type: ignore[arg-type]
            if out.feedback is not None:
                result.feedback.append(out.feedback)
    return result


def iter_event_file(
    path: Path | str,
    mapping: dict[str, str] | None = None,
    *,
    type_values: dict[str, str] | None = None,
    defaults: Mapping[str, str] | None = None,
    rounded: bool = False,
    on_error: Callable[[RowError], None] | None = None,
) -> Iterator[Transaction | Login]:
    """Yield the validated events of an event file in file order, for replay.

    A bad row raises ``ImportRejected`` with its errors when it is reached (events before it
    have been yielded); with ``on_error`` each error is passed to it instead and the row is
    skipped. Repeats of an identical row are yielded once. Reads the engine's own
    ``events.parquet``/``events.csv`` with no mapping.
    """
    table = SourceTable(path)
    plan = _Plan(table, mapping, None, None, type_values, defaults, rounded)
    for out in _outcomes(table, plan):
        if out.errors:
            if on_error is None:
                raise ImportRejected(table.name, out.errors)
            for e in out.errors:
                on_error(e)
        elif out.event is not None:
            yield out.event
