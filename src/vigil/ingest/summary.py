"""The figures of one import: what was read, written, rejected and skipped as already there.

>>> s = ImportSummary("tx.csv", rows_read=10, rows_imported=7, rows_rejected=2, duplicates=1)
>>> s.as_dict()["rows_imported"], s.accounted
(7, True)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class ImportSummary:
    """One file's (or one folder's) import.

    Every row read is exactly one of: imported, rejected (its errors are in the reject file or
    the exception), or a duplicate (repeated in the file, or its event_id already stored).
    ``written`` counts rows per table (for a bank folder: banks, terminals, cards, users,
    including users synthesised from cards' client ids; for events: transactions, logins,
    feedback).

    >>> ImportSummary("bank/", rows_read=3, rows_imported=3).rows_per_second
    0.0
    """

    file: str
    rows_read: int = 0
    rows_imported: int = 0
    rows_rejected: int = 0
    duplicates: int = 0
    reject_file: str | None = None
    seconds: float = 0.0
    written: dict[str, int] = field(default_factory=dict)

    @property
    def accounted(self) -> bool:
        """True when every row read is imported, rejected or a duplicate."""
        return self.rows_read == self.rows_imported + self.rows_rejected + self.duplicates

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 4)
        return out
