"""What reading one event file gives: the valid events and feedback, and every bad row.

>>> r = ReadResult("tx.csv")
>>> r.rows_read, r.rows_rejected, r.ok
(0, 0, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.domain import Feedback, Login, Transaction
from vigil.ingest.errors import RowError
from vigil.ingest.rejects import RejectedRows


@dataclass
class ReadResult:
    """Events and feedback built from a file, with the errors of the rows that failed.

    ``rows_read`` counts data rows; each is either an event, a repeat of an earlier identical
    row (``duplicates``), or rejected (its line appears in ``errors``).

    >>> ReadResult("a.csv", rows_read=2, errors=[RowError("a.csv", 3, "type", "x")]).rows_rejected
    1
    """

    file: str
    events: list[Transaction | Login] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows_read: int = 0
    duplicates: int = 0
    rejects: RejectedRows | None = None

    @property
    def rows_rejected(self) -> int:
        return len({e.line for e in self.errors})

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def transactions(self) -> list[Transaction]:
        return [e for e in self.events if isinstance(e, Transaction)]

    @property
    def logins(self) -> list[Login]:
        return [e for e in self.events if isinstance(e, Login)]
