"""feedback.csv: later labels on earlier events (``event_id,target_event_id,label,timestamp,
source``, optionally ``pattern`` and ``note``), from analysts, customers or settlement files.

The target event need not be in the store yet: feedback often arrives in a separate file and
is matched by event id when it is used. A row identical to an earlier one is a duplicate; a
different row with the same event_id is an error.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "feedback.csv"
>>> _ = p.write_text("event_id,target_event_id,label,timestamp,source\\n"
...                  "f1,t9-e,standin_loss,2022-01-05T00:00:00Z,settlement\\n")
>>> fb = read_feedback(p).feedback[0]
>>> fb.target_event_id, fb.label.value, fb.source
('t9-e', 'standin_loss', 'settlement')
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from vigil.domain import Feedback
from vigil.ingest.errors import RowError, show_value, validation_errors
from vigil.ingest.gc_pause import paused_gc
from vigil.ingest.rejects import RejectedRows
from vigil.ingest.result import ReadResult
from vigil.ingest.source import SourceTable
from vigil.ingest.values import parse_timestamp

REQUIRED = ("event_id", "target_event_id", "label", "timestamp")
OPTIONAL = ("source", "pattern", "note")


def read_feedback(path: Path | str) -> ReadResult:
    """Read a feedback CSV or Parquet file into validated Feedback and row errors."""
    with paused_gc():
        return _read(path)


def _read(path: Path | str) -> ReadResult:
    table = SourceTable(path, required=REQUIRED)
    name = table.name
    result = ReadResult(name, rejects=RejectedRows(str(table.path), table.columns))
    fields = [(f, table.index(f)) for f in (*REQUIRED, *OPTIONAL) if f in table.columns]
    identity = {f: f for f, _ in fields}
    seen: dict[str, tuple[int, Feedback]] = {}
    for row in table.rows():
        result.rows_read += 1
        line, cells = row.line, row.cells
        errors = [RowError(name, line, *p) for p in row.problems]
        item: Feedback | None = None
        if not errors:
            data = {f: cells[i] for f, i in fields if cells[i] is not None}
            if "timestamp" in data:
                try:
                    data["timestamp"] = parse_timestamp(data["timestamp"])
                except ValueError as exc:
                    errors.append(
                        RowError(name, line, "timestamp", str(exc), show_value(data["timestamp"]))
                    )
            if not errors:
                try:
                    item = Feedback.model_validate(data)
                except ValidationError as exc:
                    errors = validation_errors(
                        exc, file=name, line=line, source_of=identity, values=data
                    )
        if item is not None:
            prior = seen.get(item.event_id)
            if prior is None:
                seen[item.event_id] = (line, item)
                result.feedback.append(item)
                continue
            if prior[1] == item:
                result.duplicates += 1
                continue
            message = f"event_id already used by a different row at line {prior[0]}"
            errors = [RowError(name, line, "event_id", message, item.event_id)]
        result.errors += errors
        result.rejects.add(line, table.raw_text(cells))  # type: ignore[union-attr]
    return result
