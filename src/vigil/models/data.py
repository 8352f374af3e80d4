"""Labelled event files for training: the engine's own layout, or any file the importer maps.

The engine's ``events.parquet``/``.csv`` (what ``vigil generate`` writes) is read as it is,
with the fraud labels from a separate ``labels.csv`` (``event_id`` of every fraud event). Any
other file goes through the generic importer (:mod:`vigil.ingest.generic`) with a column map
(``card_id=CUSTOMER_ID``, ``amount=TX_AMOUNT``…) and a label column, so its rows are
validated exactly as ``vigil import events`` would, then laid out as the engine's events.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "tx.csv"
>>> _ = p.write_text("WHEN,CUSTOMER,TERM,AMT,FRAUD\\n2022-01-03 10:00:00,C1,T1,99.5,1\\n"
...                  "2022-01-03 11:00:00,C2,T1,20,0\\n")
>>> events, labels = labelled_events(p, {"timestamp": "WHEN", "card_id": "CUSTOMER",
...     "terminal_id": "TERM", "amount": "AMT"}, label_column="FRAUD",
...     type_values={}, default_type="payment")
>>> events.select("event_id", "card_id", "amount", "type").rows()
[('tx-2', 'C1', 99.5, 'payment'), ('tx-3', 'C2', 20.0, 'payment')]
>>> labels.get_column("event_id").to_list()
['tx-2']
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import polars as pl

from vigil.ingest import ImportRejected, read_events

_TIME = pl.Datetime("us", "UTC")
_COLUMNS: dict[str, pl.DataType] = {
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


def labelled_events(
    path: Path | str,
    mapping: dict[str, str] | None = None,
    *,
    label_column: str | None = None,
    labels_path: Path | str | None = None,
    type_values: dict[str, str] | None = None,
    default_type: str | None = None,
    required: bool = True,
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """``(events, labels)``: events in the engine's layout, labels as fraud ``event_id``s.

    Labels come from ``labels_path`` (a labels.csv) or from ``label_column`` of the event file
    (mapped like ``vigil import events --label-column``); without either they are None, which
    only a caller that does not need them (``required=False``: the StandIn models, whose
    outcomes come from feedback) accepts. ``default_type`` fills a ``type`` the file has no
    column for (a card-payment file). Bad rows raise ``ImportRejected`` naming the line, the
    source column and the field.
    """
    if required and labels_path is None and label_column is None:
        raise ValueError("labels: give a labels file or the label column of the event file")
    path = Path(path)
    if not mapping and label_column is None and default_type is None:
        from vigil.features import read_event_frame

        events = read_event_frame(path)
    else:
        events = _mapped(path, mapping, label_column, type_values, default_type)
        if label_column is not None:
            return events.drop("_fraud"), events.filter(pl.col("_fraud")).select("event_id")
    if labels_path is None:
        return events, None
    from vigil.features import read_labels

    return events, read_labels(Path(labels_path))


def _mapped(
    path: Path,
    mapping: dict[str, str] | None,
    label_column: str | None,
    type_values: dict[str, str] | None,
    default_type: str | None,
) -> pl.DataFrame:
    source = path
    if default_type is not None and "type" not in (mapping or {}):
        # The importer reads ``type`` from a column; a file without one gets a constant column.
        scan = (
            pl.scan_parquet(path)
            if path.suffix == ".parquet"
            else pl.scan_csv(path, infer_schema=False)
        )
        # Same file name in a private folder: the importer's generated ids use the stem.
        source = Path(tempfile.mkdtemp(prefix="vigil-train-")) / path.name
        typed = scan.with_columns(pl.lit(default_type).alias("type"))
        typed.sink_parquet(source) if path.suffix == ".parquet" else typed.sink_csv(source)
    try:
        result = read_events(source, mapping, label_column=label_column, type_values=type_values)
    finally:
        if source != path:
            shutil.rmtree(source.parent, ignore_errors=True)
    if result.errors:
        raise ImportRejected(path.name, result.errors)
    fraud = {f.target_event_id for f in result.feedback if f.label.value == "fraud"}
    columns: dict[str, list] = {name: [] for name in (*_COLUMNS, "_fraud")}
    for event in result.events:
        # Logins stay: a user's time since the last event counts them, as the profile does.
        values = event.model_dump()
        for name in _COLUMNS:
            value = values.get(name)
            if name == "amount" and value is not None:
                value = float(value)
            elif isinstance(value, str):
                value = str(value)  # enums are str subclasses; the frame wants plain text
            columns[name].append(value)
        columns["_fraud"].append(event.event_id in fraud)
    return pl.DataFrame(columns, schema={**_COLUMNS, "_fraud": pl.Boolean()})
