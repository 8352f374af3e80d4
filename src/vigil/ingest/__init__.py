"""File importers: named layouts and generic CSV/Parquet files into validated domain objects.

Readers (no I/O beyond the file) return the objects and every bad row's error; loaders write
them through the Store in one transaction, rejecting the file or skipping bad rows to a reject
file. Unknown card and terminal ids in event files are accepted (the engine flags them with
``unknown_card`` / ``unknown_terminal``); naive timestamps are UTC; the CVC is never kept.
"""

from vigil.ingest.atm_stream import read_atm_transactions
from vigil.ingest.bank_folder import BankFolder, read_bank_folder
from vigil.ingest.errors import ImportRejected, IngestError, RowError, SourceFileError
from vigil.ingest.feedback_file import read_feedback
from vigil.ingest.generic import iter_event_file, read_events
from vigil.ingest.inputs import EventInput
from vigil.ingest.load import load_bank_folder, load_events, load_feedback
from vigil.ingest.result import ReadResult
from vigil.ingest.summary import ImportSummary

__all__ = [
    "BankFolder",
    "EventInput",
    "ImportRejected",
    "ImportSummary",
    "IngestError",
    "ReadResult",
    "RowError",
    "SourceFileError",
    "iter_event_file",
    "load_bank_folder",
    "load_events",
    "load_feedback",
    "read_atm_transactions",
    "read_bank_folder",
    "read_events",
    "read_feedback",
]
