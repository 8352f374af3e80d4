"""Writing what the readers built through the Store, all of a file in one transaction.

Policy ``on_error``:

- ``"reject"`` (default): any bad row rejects the whole file; nothing is written and
  ``ImportRejected`` carries every error (file, line, field);
- ``"skip"``: the good rows are written and the bad ones go to ``<name>.rejects.csv`` (in
  ``reject_dir``, default next to the source) with the original row and
  ``error_line,error_field,error_message``.

The reject file is written under a temporary name first and renamed once the rows are
committed; if the database write fails it is removed and nothing is left half-done.

>>> import tempfile, pathlib
>>> from vigil.storage import Store
>>> store = Store("sqlite://"); store.init_schema()
>>> p = pathlib.Path(tempfile.mkdtemp()) / "tx.csv"
>>> _ = p.write_text("transaction_id,number_id,ATM_id,transaction_type,transaction_start,"
...                  "transaction_end,transaction_amount\\n"
...                  "t1,c-1,A1,0,2022-01-03 10:00:00,2022-01-03 10:01:00,2500\\n")
>>> s = load_events(store, p)
>>> s.rows_imported, s.written["transactions"]
(1, 1)
>>> load_events(store, p).duplicates
1
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from vigil.domain import Login, Transaction
from vigil.ingest.bank_folder import read_bank_folder
from vigil.ingest.columnar import load_clean
from vigil.ingest.errors import ImportRejected, RowError
from vigil.ingest.feedback_file import read_feedback
from vigil.ingest.gc_pause import paused_gc
from vigil.ingest.inputs import EventInput
from vigil.ingest.rejects import RejectedRows
from vigil.ingest.result import ReadResult
from vigil.ingest.summary import ImportSummary

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from vigil.storage import Store

OnError = Literal["reject", "skip"]
_PARTIAL = ".partial"


def _check_policy(on_error: str) -> None:
    if on_error not in ("reject", "skip"):
        raise ValueError(f"on_error: expected 'reject' or 'skip', got {on_error!r}")


def _commit(
    store: Store,
    write: Callable[[Connection], dict[str, int]],
    rejected: Sequence[tuple[RejectedRows, list[RowError]]],
    reject_dir: Path | str | None,
) -> tuple[dict[str, int], list[str]]:
    """Write rejects under temporary names, run ``write`` in one transaction, then publish them."""
    partials: list[Path] = []
    try:
        for rows, errors in rejected:
            folder = Path(reject_dir) if reject_dir is not None else Path(rows.file).parent
            partials.append(rows.write(errors, folder, suffix=_PARTIAL))
        # The store builds a row per event: the same reason to pause the collector as reading.
        with paused_gc(), store.transaction() as conn:
            written = write(conn)
    except BaseException:
        for p in partials:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        raise
    final = []
    for p in partials:
        target = p.with_name(p.name.removesuffix(_PARTIAL))
        p.replace(target)
        final.append(str(target))
    return written, final


def _rejected_by_file(
    rejects: dict[str, RejectedRows], errors: list[RowError]
) -> list[tuple[RejectedRows, list[RowError]]]:
    out = []
    for name, rows in rejects.items():
        mine = [e for e in errors if e.file == name]
        if mine:
            out.append((rows, mine))
    return out


def load_bank_folder(
    store: Store,
    folder: Path | str,
    *,
    on_error: OnError = "reject",
    reject_dir: Path | str | None = None,
) -> ImportSummary:
    """Import an ATM bank layout folder (banks, terminals, cards, users) in one transaction.

    Raises ``SourceFileError`` (missing file or columns) or, with ``on_error="reject"``,
    ``ImportRejected``; in both cases nothing is written."""
    _check_policy(on_error)
    started = time.perf_counter()
    data = read_bank_folder(folder)
    if data.errors and on_error == "reject":
        raise ImportRejected(folder, data.errors)

    def write(conn: Connection) -> dict[str, int]:
        return {
            "banks": store.upsert_banks(data.banks, conn=conn),
            "users": store.upsert_users(data.users, conn=conn),
            "terminals": store.upsert_terminals(data.terminals, conn=conn),
            "cards": store.upsert_cards(data.cards, conn=conn),
        }

    written, files = _commit(store, write, _rejected_by_file(data.rejects, data.errors), reject_dir)
    return ImportSummary(
        file=str(folder),
        rows_read=data.rows_read,
        rows_imported=data.rows_read - data.rows_rejected,
        rows_rejected=data.rows_rejected,
        duplicates=0,
        reject_file=files[0] if len(files) == 1 else (", ".join(files) or None),
        seconds=time.perf_counter() - started,
        written=written,
    )


def _load_result(
    store: Store,
    result: ReadResult,
    path: Path | str,
    on_error: OnError,
    reject_dir: Path | str | None,
    started: float,
    *,
    feedback_rows: bool = False,
) -> ImportSummary:
    if result.errors and on_error == "reject":
        raise ImportRejected(path, result.errors)
    txs = [e for e in result.events if isinstance(e, Transaction)]
    logins = [e for e in result.events if isinstance(e, Login)]

    def write(conn: Connection) -> dict[str, int]:
        return {
            "transactions": store.insert_transactions(txs, conn=conn),
            "logins": store.insert_logins(logins, conn=conn),
            "feedback": store.insert_feedback(result.feedback, conn=conn),
        }

    rejected = [(result.rejects, result.errors)] if result.errors and result.rejects else []
    written, files = _commit(store, write, rejected, reject_dir)
    if feedback_rows:
        imported, built = written["feedback"], len(result.feedback)
    else:
        imported, built = written["transactions"] + written["logins"], len(result.events)
    return ImportSummary(
        file=str(path),
        rows_read=result.rows_read,
        rows_imported=imported,
        rows_rejected=result.rows_rejected,
        duplicates=result.duplicates + built - imported,
        reject_file=files[0] if files else None,
        seconds=time.perf_counter() - started,
        written=written,
    )


def load_events(
    store: Store,
    path: Path | str,
    *,
    inputs: EventInput | None = None,
    on_error: OnError = "reject",
    reject_dir: Path | str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import an event file, read as ``inputs`` says (:class:`~vigil.ingest.inputs.EventInput`:
    the ATM stream, the engine's layout or a mapped file; the layout found in the header by
    default), in one transaction. Events already stored (same event_id) count as duplicates.

    A clean CSV of the fields a payment file carries is read and written in chunks, column by
    column (:mod:`vigil.ingest.columnar`, ``on_progress`` told the rows of each); any other
    file, or one with a bad row, is read row by row, each bad row named by line and field."""
    _check_policy(on_error)
    started = time.perf_counter()
    inputs = inputs or EventInput()
    fast = load_clean(store, path, inputs, on_progress=on_progress)
    if fast is not None:
        return fast
    result = inputs.read(path)
    return _load_result(store, result, path, on_error, reject_dir, started)


def load_feedback(
    store: Store,
    path: Path | str,
    *,
    on_error: OnError = "reject",
    reject_dir: Path | str | None = None,
) -> ImportSummary:
    """Import a feedback.csv in one transaction; feedback already stored counts as duplicates."""
    _check_policy(on_error)
    started = time.perf_counter()
    result = read_feedback(path)
    return _load_result(store, result, path, on_error, reject_dir, started, feedback_rows=True)
