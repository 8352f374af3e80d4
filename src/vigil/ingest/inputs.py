"""How every command reads an event file and its labels: one vocabulary, defined once.

``vigil import events``, ``replay``, ``features build``, ``train``, ``score``, ``backtest`` and
``evaluate`` all take the same options (:mod:`vigil.cli_inputs` spells them for the command
line) and read through one :class:`EventInput`:

- ``format``: ``atm`` (the ATM transaction stream, :mod:`vigil.ingest.atm_stream`), ``engine``
  (the engine's own columns, what ``vigil generate`` writes), ``generic`` (any CSV or Parquet
  file, its columns mapped onto the domain's fields) or ``auto``: ``atm`` when the header is
  the ATM layout, else ``engine`` when nothing is mapped, defaulted or labelled and the header
  has ``event_id``, ``kind`` and ``timestamp``, else ``generic``;
- ``mapping``: ``{field: column}`` (``--map amount=TX_AMOUNT``);
- ``default_type`` / ``default_channel``: a transaction's type or channel when its row has none
  (a card-payment file has no type column); a transaction without a channel is refused, never
  taken for an ATM one;
- ``label_column``: the file's fraud label column (values: :data:`LABEL_VALUES`), and
  ``label_delay``: how long after its event a label is known (default 7 days);
- ``amounts``: ``strict`` refuses an amount with more than two decimals naming its line and
  field; ``round`` rounds it to cents (half to even).

Three ways to read, as the commands need them: :meth:`EventInput.read` (every row validated
into domain events, the labels as feedback, every bad row's error: import), :meth:`events`
(validated events one at a time, in event-time order: replay, backtest) and :meth:`frame` (a Polars
frame in the engine's layout and the fraud labels: features, training, scoring, evaluation).

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "cards.csv"
>>> _ = p.write_text("TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD\\n"
...                  "2018-04-01 00:00:31,C596,T3156,57.160001,0\\n"
...                  "2018-04-01 00:02:10,C4961,T3412,81.51,1\\n")
>>> spec = EventInput(mapping={"timestamp": "TX_DATETIME", "card_id": "CUSTOMER_ID",
...     "terminal_id": "TERMINAL_ID", "amount": "TX_AMOUNT"}, default_type="payment",
...     default_channel="pos", label_column="TX_FRAUD", amounts="round")
>>> spec.layout(p)
'generic'
>>> events, labels = spec.frame(p)
>>> events.select("event_id", "channel", "amount").rows()
[('cards-2', 'pos', 57.16), ('cards-3', 'pos', 81.51)]
>>> labels.rows()
[('cards-3', 'cards-3', 'TX_FRAUD')]
>>> EventInput(amounts="exact")
Traceback (most recent call last):
...
ValueError: amounts: expected strict or round, got 'exact'
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

import polars as pl

from vigil.domain import Channel, Feedback, FeedbackLabel, Login, Transaction, TransactionType
from vigil.ingest.atm_stream import is_atm_layout, read_atm_transactions
from vigil.ingest.errors import ImportRejected, RowError, SourceFileError
from vigil.ingest.generic import DEFAULT_LABEL_VALUES, DOMAIN_FIELDS, iter_event_file, read_events
from vigil.ingest.result import ReadResult
from vigil.ingest.source import SourceTable

Format = Literal["auto", "atm", "generic", "engine"]
Layout = Literal["atm", "generic", "engine"]
FORMATS: tuple[str, ...] = ("auto", "atm", "generic", "engine")
AMOUNTS: tuple[str, ...] = ("strict", "round")
#: How long after a transaction its fraud label is known, unless told otherwise.
DEFAULT_LABEL_DELAY = timedelta(days=7)
#: A label column's values and the label each means (case-insensitive); empty: no label.
LABEL_VALUES: dict[str, str] = DEFAULT_LABEL_VALUES
# The columns that make a file the engine's own layout (with nothing mapped).
_ENGINE_COLUMNS = ("event_id", "kind", "timestamp")

_TIME = pl.Datetime("us", "UTC")
#: The engine's event layout: the columns of a frame :meth:`EventInput.frame` returns.
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.String(),
    "event_id": pl.String(),
    "transaction_id": pl.String(),
    "timestamp": _TIME,
    "type": pl.String(),
    "phase": pl.String(),
    "channel": pl.String(),
    "started_at": _TIME,
    "amount": pl.Float64(),
    "currency": pl.String(),
    "card_id": pl.String(),
    "account_id": pl.String(),
    "user_id": pl.String(),
    "terminal_id": pl.String(),
    "counterparty_account": pl.String(),
    "counterparty_country": pl.String(),
    "direction": pl.String(),
    "ip": pl.String(),
    "device_id": pl.String(),
    "latitude": pl.Float64(),
    "longitude": pl.Float64(),
    "country": pl.String(),
    "standin": pl.Boolean(),
    "success": pl.Boolean(),
    "session_seconds": pl.Float64(),
}


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``, ``45s`` or plain seconds.

    >>> parse_duration("7d"), parse_duration("90")
    (datetime.timedelta(days=7), datetime.timedelta(seconds=90))
    """
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    text = text.strip()
    try:
        if text and text[-1] in units:
            return timedelta(seconds=float(text[:-1]) * units[text[-1]])
        return timedelta(seconds=float(text))
    except ValueError:
        raise ValueError(f"{text!r}: expected a duration such as 7d, 12h, 30m or 3600") from None


def parse_map(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``FIELD=COLUMN`` pairs as a mapping.

    >>> parse_map(["amount=TX_AMOUNT", "card_id = CUSTOMER_ID"])
    {'amount': 'TX_AMOUNT', 'card_id': 'CUSTOMER_ID'}
    """
    mapping = {}
    for pair in pairs:
        name, sep, column = pair.partition("=")
        if not sep or not name.strip() or not column.strip():
            raise ValueError(f"--map {pair!r}: expected FIELD=COLUMN, e.g. amount=TX_AMOUNT")
        mapping[name.strip()] = column.strip()
    return mapping


@dataclass(frozen=True)
class EventInput:
    """How to read one event file: its layout, mapping, defaults, labels and amounts.

    >>> EventInput(default_channel="shop")
    Traceback (most recent call last):
    ...
    ValueError: default_channel: expected one of atm, pos, online, mobile, got 'shop'
    """

    format: Format = "auto"
    mapping: Mapping[str, str] = field(default_factory=dict)
    default_type: str | None = None
    default_channel: str | None = None
    label_column: str | None = None
    #: A timedelta, or text as on the command line (``"7d"``, ``"12h"``).
    label_delay: timedelta = DEFAULT_LABEL_DELAY
    amounts: Literal["strict", "round"] = "strict"
    #: Source values of the type column and the domain type each means (Python only).
    type_values: Mapping[str, str] | None = None
    #: Source values of the label column and the label each means, over :data:`LABEL_VALUES`.
    label_values: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.label_delay, str):  # "7d", as on the command line
            object.__setattr__(self, "label_delay", parse_duration(self.label_delay))
        _one_of("format", self.format, FORMATS)
        _one_of("amounts", self.amounts, AMOUNTS)
        if self.default_type is not None:
            _one_of("default_type", self.default_type, [t.value for t in TransactionType])
        if self.default_channel is not None:
            _one_of("default_channel", self.default_channel, [c.value for c in Channel])
        if self.label_delay <= timedelta(0):
            raise ValueError("label_delay: must be positive (a zero delay leaks labels)")
        unknown = sorted(set(self.mapping) - set(DOMAIN_FIELDS))
        if unknown:
            raise ValueError(
                f"--map names unknown fields: {', '.join(unknown)} "
                f"(known: {', '.join(DOMAIN_FIELDS)})"
            )
        if self.format == "atm" and self._shaped:
            raise ValueError(
                "the ATM layout takes no --map, --default-type, --default-channel or "
                "--label-column: its columns are fixed"
            )

    def as_dict(self) -> dict[str, object]:
        """The options as given, for a model's card: how its training file was read.

        >>> EventInput(default_channel="pos").as_dict()["default_channel"]
        'pos'
        """
        return {
            "format": self.format,
            "mapping": dict(self.mapping),
            "default_type": self.default_type,
            "default_channel": self.default_channel,
            "label_column": self.label_column,
            "label_delay_seconds": self.label_delay.total_seconds(),
            "amounts": self.amounts,
        }

    @property
    def _shaped(self) -> bool:
        """True when the file is mapped, defaulted or labelled: not read as it stands."""
        return bool(
            self.mapping
            or self.default_type
            or self.default_channel
            or self.label_column
            or self.type_values
        )

    def layout(self, path: Path | str) -> Layout:
        """The layout ``path`` is read in: ``format``, or what ``auto`` finds in its header."""
        if self.format != "auto":
            return self.format
        columns = SourceTable(path).columns
        if not self._shaped and is_atm_layout(columns):
            return "atm"
        if not self._shaped and set(_ENGINE_COLUMNS) <= set(columns):
            return "engine"
        return "generic"

    @property
    def _defaults(self) -> dict[str, str]:
        out = {"type": self.default_type, "channel": self.default_channel}
        return {f: v for f, v in out.items() if v is not None}

    def read(self, path: Path | str) -> ReadResult:
        """Every row validated: the events, the labels as feedback (known ``label_delay`` after
        their event) and the error of every bad row (line and field)."""
        if self.layout(path) == "atm":
            return read_atm_transactions(path, rounded=self.amounts == "round")
        return read_events(
            path,
            dict(self.mapping) or None,
            label_column=self.label_column,
            label_values=dict(self.label_values) if self.label_values else None,
            type_values=dict(self.type_values) if self.type_values else None,
            defaults=self._defaults,
            rounded=self.amounts == "round",
            label_delay=self.label_delay,
        )

    def events(self, path: Path | str) -> Iterator[Transaction | Login | Feedback]:
        """The events in event-time order (a file out of order is read through a sorted copy;
        equal times keep their file order), each validated as it is reached: a bad row raises
        ``ImportRejected`` naming it. With a label column, each label follows as feedback once
        known (``label_delay`` after its event), in time order with the events."""
        if self.label_column is not None or self.layout(path) == "atm":
            result = self.read(path)
            _refuse(path, result)
            ordered = sorted(result.events, key=lambda e: e.timestamp)
            yield from _with_labels(ordered, result.feedback)
            return
        from vigil.replay import in_event_time_order

        source = in_event_time_order(Path(path), self.mapping.get("timestamp", "timestamp"))
        yield from iter_event_file(
            source,
            dict(self.mapping) or None,
            type_values=dict(self.type_values) if self.type_values else None,
            defaults=self._defaults,
            rounded=self.amounts == "round",
        )

    def frame(
        self, path: Path | str, *, labels: Path | str | None = None
    ) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        """``(events, fraud)``: the events in the engine's layout (:data:`EVENT_SCHEMA`) and
        the ``event_id, transaction_id, pattern`` of every fraud event, from ``labels`` (a
        labels.csv) or the label column (the pattern is then the column's name); ``None``
        without either.

        The engine's own layout is read straight into Polars; any other is validated row by
        row first, as ``vigil import events`` would (a bad row raises ``ImportRejected``)."""
        path = Path(path)
        if self.layout(path) == "engine":
            from vigil.features.io import read_event_frame

            events = read_event_frame(path)
            fraud = None
            if self.label_column is not None:
                fraud = self._fraud_column(path, events)
        else:
            result = self.read(path)
            _refuse(path, result)
            events = _as_frame(result.events)
            fraud_ids = [
                f.target_event_id for f in result.feedback if f.label is FeedbackLabel.FRAUD
            ]
            fraud = (
                events.filter(pl.col("event_id").is_in(fraud_ids)).select(
                    "event_id", "transaction_id", pattern=pl.lit(self.label_column)
                )
                if self.label_column is not None
                else None
            )
        if labels is not None:
            from vigil.features.io import read_labels

            fraud = read_labels(Path(labels))
        return events, fraud

    def _fraud_column(self, path: Path, events: pl.DataFrame) -> pl.DataFrame:
        """The events whose label column says fraud; an unknown value is refused naming its
        line (the header is line 1) and the column."""
        column = self.label_column or ""
        if column not in events.columns:
            raise SourceFileError(path, f"missing required columns: {column}")
        meaning = {k.lower(): v for k, v in LABEL_VALUES.items()}
        meaning.update({str(k).lower(): v for k, v in (self.label_values or {}).items()})
        raw = events.get_column(column)
        text = (raw.cast(pl.Int64) if raw.dtype.is_float() else raw).cast(pl.String)
        said = text.str.strip_chars().str.to_lowercase().replace("", None)
        label = said.replace_strict(meaning, default=None, return_dtype=pl.String)
        bad = (said.is_not_null() & label.is_null()).arg_true()
        if bad.len():
            line = int(bad[0]) + 2
            raise ImportRejected(
                path.name,
                [
                    RowError(
                        path.name,
                        line,
                        f"{column} (label)",
                        f"unknown label; expected one of {', '.join(sorted(meaning))}",
                        str(raw[int(bad[0])]),
                    )
                ],
            )
        return events.filter(label == FeedbackLabel.FRAUD.value).select(
            "event_id", "transaction_id", pattern=pl.lit(column)
        )


def _one_of(name: str, value: object, allowed: list[str] | tuple[str, ...]) -> None:
    if value not in allowed:
        expected = " or ".join(allowed) if len(allowed) == 2 else f"one of {', '.join(allowed)}"
        raise ValueError(f"{name}: expected {expected}, got {value!r}")


def _refuse(path: Path | str, result: ReadResult) -> None:
    if result.errors:
        raise ImportRejected(Path(path).name, result.errors)


def _with_labels(
    events: list[Transaction | Login], feedback: list[Feedback]
) -> Iterator[Transaction | Login | Feedback]:
    """Events in their order, each label after the last event before it is known."""
    from vigil.replay import in_time_order

    yield from in_time_order(events, sorted(feedback, key=lambda f: f.timestamp))


def _as_frame(events: list[Transaction | Login]) -> pl.DataFrame:
    """Validated events in the engine's layout (logins stay: a user's time since the last
    event counts them, as the profile does)."""
    columns: dict[str, list[object]] = {name: [] for name in EVENT_SCHEMA}
    for event in events:
        values = event.model_dump()
        for name in EVENT_SCHEMA:
            value = values.get(name)
            if name == "amount" and value is not None:
                value = float(value)
            elif isinstance(value, str):
                value = str(value)  # enums are str subclasses; the frame wants plain text
            columns[name].append(value)
    return pl.DataFrame(columns, schema=EVENT_SCHEMA)


__all__ = [
    "AMOUNTS",
    "DEFAULT_LABEL_DELAY",
    "EVENT_SCHEMA",
    "FORMATS",
    "LABEL_VALUES",
    "EventInput",
    "parse_duration",
    "parse_map",
]
