"""Reading the builders' inputs from files: events, fraud labels, feedback and reference data.

The offline builders need whole columns, so the engine's own event layout (``vigil generate``'s
events.parquet, or the same columns in CSV) is read straight into Polars; other layouts go
through the generic importer first (``vigil import events``). Reference data is read and
validated by the bank-folder importer, the same objects the engine enriches with.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "labels.csv"
>>> _ = p.write_text("event_id,transaction_id,pattern\\nt-1-e,t-1,card_cloning\\n")
>>> read_labels(p)["transaction_id"].to_list()
['t-1']
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl

from vigil.features.history import UnreadableValues, check_values, typed_events
from vigil.ingest import (
    ImportRejected,
    RowError,
    SourceFileError,
    iter_event_file,
    read_bank_folder,
)
from vigil.storage.reference import ReferenceData


def _read(path: Path | str, what: str, columns: Iterable[str] | None = None) -> pl.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise SourceFileError(str(path), f"no such file (the {what})")
    try:
        scan = (
            pl.scan_parquet(path)
            if path.suffix == ".parquet"
            else pl.scan_csv(path, infer_schema_length=10_000)
        )
        if columns is not None:
            present = set(scan.collect_schema().names())
            scan = scan.select([c for c in dict.fromkeys(columns) if c in present])
        return scan.collect()
    except (pl.exceptions.PolarsError, OSError) as exc:
        # Polars' own message names neither the file nor what it was meant to be. The CLI's
        # helper, as the importers word it; imported here, so reading pulls in no CLI.
        from vigil.cli_common import unreadable

        raise unreadable(path, exc) from exc


def _require(path: Path | str, frame: pl.DataFrame, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        has = ", ".join(frame.columns) or "none"
        raise SourceFileError(str(path), f"{missing[0]}: column missing (has {has})")


def read_event_frame(path: Path | str, columns: Iterable[str] | None = None) -> pl.DataFrame:
    """An event file in the engine's layout (Parquet or CSV), as one frame; only ``columns``
    of it when given (e.g. :data:`~vigil.features.history.EVENT_COLUMNS`, all the builders
    read), which saves reading the rest."""
    path = Path(path)
    frame = _read(path, "events", columns)
    _require(path, frame, ("event_id", "timestamp"))
    typed = typed_events(frame)
    try:
        check_values(frame, typed)
    except UnreadableValues as exc:
        # Here the file is known: name it, with the line of the first bad value.
        raise _first_bad_line(path, exc) from exc
    # CSV times are text: read as UTC datetimes, as the builders and the evaluation want them.
    times = [c for c in ("timestamp", "started_at") if c in frame.columns]
    return frame.with_columns(typed.get_column(c) for c in times)


def _first_bad_line(path: Path, exc: UnreadableValues) -> Exception:
    """The error of the first row whose value in one of ``exc``'s columns the importer refuses,
    naming file, line and field as ``vigil replay`` does (its reader numbers the lines:
    quoted line breaks, Parquet rows); else ``exc`` naming the file, without a line.

    The importer reads every field and more strictly than the builders: an error in a column
    the builders read fine is passed over, and amounts are rounded, not refused, beyond cents.
    """

    def stop(error: RowError) -> None:
        if error.field in exc.counts:
            raise ImportRejected(error.file, [error])

    try:
        for _ in iter_event_file(path, rounded=True, on_error=stop):
            pass
    except ImportRejected as found:
        return found
    except SourceFileError:
        pass  # a layout the builders read but the importer does not (no type column)
    return SourceFileError(path, str(exc))


def read_labels(path: Path | str) -> pl.DataFrame:
    """Fraud labels: ``event_id`` (required), ``transaction_id`` and ``pattern`` (optional)."""
    frame = _read(path, "labels")
    _require(path, frame, ("event_id",))
    return frame.with_columns(pl.col(c).cast(pl.String) for c in frame.columns)


def read_feedback_frame(path: Path | str) -> pl.DataFrame:
    """Feedback (``target_event_id, label, timestamp``): StandIn outcomes, disputes, frauds."""
    frame = _read(path, "feedback")
    _require(path, frame, ("target_event_id", "label", "timestamp"))
    return frame


def read_reference(folder: Path | str) -> ReferenceData:
    """The bank folder's terminals, cards, users and banks, keyed by id (bad rows rejected)."""
    bank = read_bank_folder(folder)
    return ReferenceData(
        banks={b.code: b for b in bank.banks},
        terminals={t.terminal_id: t for t in bank.terminals},
        cards={c.card_id: c for c in bank.cards},
        users={u.user_id: u for u in bank.users},
    )
