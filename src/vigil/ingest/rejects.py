"""Bad rows kept for a person to fix: ``<name>.rejects.csv`` with the original row and why.

The reject file has the source's columns (secret columns such as the CVC never included), then
``error_line,error_field,error_message``; a row with several errors lists them joined by ``; ``.
Fixing the rows and importing the reject file again works: the error columns are ignored by
the layout readers and are not domain fields.

>>> import tempfile, pathlib
>>> from vigil.ingest.errors import RowError
>>> bad = RejectedRows("tx.csv", ["id", "amount"])
>>> bad.add(3, ["t2", "-5"])
>>> out = bad.write([RowError("tx.csv", 3, "amount", "must not be negative", "-5")],
...                 pathlib.Path(tempfile.mkdtemp()))
>>> out.name, out.read_text().splitlines()[1]
('tx.rejects.csv', 't2,-5,3,amount,must not be negative')
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from vigil.ingest.errors import RowError

ERROR_COLUMNS = ("error_line", "error_field", "error_message")


def reject_path(source: Path | str, directory: Path | str | None) -> Path:
    """Where the rejects of ``source`` go: ``<stem>.rejects.csv`` in ``directory`` (default: next
    to the source)."""
    source = Path(source)
    folder = Path(directory) if directory is not None else source.parent
    return folder / f"{source.stem}.rejects.csv"


@dataclass
class RejectedRows:
    """The original cells of the bad rows of one file, by line.

    >>> r = RejectedRows("a.csv", ["x"]); r.add(4, ["bad"]); r.rows
    {4: ['bad']}
    """

    file: str
    columns: list[str]
    rows: dict[int, list[str]] = field(default_factory=dict)

    def add(self, line: int, cells: list[str]) -> None:
        self.rows[line] = cells

    def write(self, errors: list[RowError], directory: Path, *, suffix: str = "") -> Path:
        """Write the reject file for this file's rows named in ``errors``; returns its path.

        ``suffix`` is appended to the file name (a temporary name while an import commits)."""
        by_line: dict[int, list[RowError]] = defaultdict(list)
        for e in errors:
            by_line[e.line].append(e)
        path = reject_path(self.file, directory)
        path = path.with_name(path.name + suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        width = len(self.columns)
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow([*self.columns, *ERROR_COLUMNS])
            for line in sorted(by_line):
                cells = list(self.rows.get(line, []))
                # A malformed row keeps every field: a short one is padded, a long one has its
                # surplus joined into the last column, so the error columns stay aligned.
                if len(cells) > width:
                    cells = [*cells[: width - 1], ",".join(cells[width - 1 :])]
                cells += [""] * (width - len(cells))
                errs = by_line[line]
                writer.writerow(
                    [
                        *cells,
                        line,
                        "; ".join(e.field for e in errs),
                        "; ".join(e.message for e in errs),
                    ]
                )
        return path
