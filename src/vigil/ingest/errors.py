"""What goes wrong while importing: one bad row (``RowError``), a rejected file, an unusable file.

Every error names the file, the line (1-based; the header is line 1) and the field, in the
source file's own column names, with the domain name beside it when a mapping renamed it.

>>> e = RowError("tx.csv", 7, "TX_AMOUNT (amount)", "amount must not be negative", "-5")
>>> str(e)
"tx.csv:7: TX_AMOUNT (amount): amount must not be negative (value '-5')"
>>> ImportRejected("tx.csv", [e]).errors[0].line
7
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import ValidationError

# Values echoed in errors are cut short: an oversized field should not flood the terminal.
_MAX_SHOWN = 60
REDACTED = "[redacted]"


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem with one row: where it is, which field, what is wrong, and the value seen.

    >>> RowError("card.csv", 3, "CVC", "must be 3 or 4 digits", REDACTED).value
    '[redacted]'
    """

    file: str
    line: int
    field: str
    message: str
    value: str | None = None

    def __str__(self) -> str:
        shown = "" if self.value is None else f" (value {self.value!r})"
        return f"{self.file}:{self.line}: {self.field}: {self.message}{shown}"

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "field": self.field,
            "message": self.message,
            "value": self.value,
        }


class IngestError(Exception):
    """Base of every importer error, so a caller can catch them all in one place.

    >>> issubclass(ImportRejected, IngestError) and issubclass(SourceFileError, IngestError)
    True
    """


class SourceFileError(IngestError):
    """The file cannot be imported at all: missing, empty, unreadable, or lacking columns.

    >>> str(SourceFileError("atm.csv", "missing required columns: city, country"))
    'atm.csv: missing required columns: city, country'
    """

    def __init__(self, file: object, problem: str, *, missing_columns: tuple[str, ...] = ()):
        self.file = str(file)
        self.problem = problem
        self.missing_columns = missing_columns
        super().__init__(f"{self.file}: {problem}")


class ImportRejected(IngestError):
    """The file had bad rows and the policy was ``reject``: nothing was written.

    >>> err = ImportRejected("a.csv", [RowError("a.csv", 2, "type", "unknown")])
    >>> str(err).splitlines()[0]
    'a.csv: rejected, 1 bad row (1 error); nothing was imported'
    """

    # The message lists this many errors; the full list stays on ``.errors``.
    shown = 20

    def __init__(self, file: object, errors: list[RowError]):
        self.file = str(file)
        self.errors = list(errors)
        lines = {(e.file, e.line) for e in self.errors}
        row_word = "row" if len(lines) == 1 else "rows"
        err_word = "error" if len(self.errors) == 1 else "errors"
        head = (
            f"{self.file}: rejected, {len(lines)} bad {row_word} "
            f"({len(self.errors)} {err_word}); nothing was imported"
        )
        body = [f"  {e}" for e in self.errors[: self.shown]]
        if len(self.errors) > self.shown:
            body.append(f"  ... and {len(self.errors) - self.shown} more")
        super().__init__("\n".join([head, *body]))


def show_value(value: object) -> str | None:
    """The value as it may appear in an error message: text, cut short when long."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if len(text) > _MAX_SHOWN:
        return f"{text[:_MAX_SHOWN]}... ({len(text)} characters)"
    return text


def field_label(source: str, domain: str) -> str:
    """``TX_AMOUNT (amount)`` when a mapping renamed the field, else just the name."""
    return source if source == domain else f"{source} ({domain})"


def validation_errors(
    exc: ValidationError,
    *,
    file: str,
    line: int,
    source_of: Mapping[str, str],
    values: Mapping[str, object],
) -> list[RowError]:
    """Turn a pydantic error into row errors named by source column.

    ``values`` holds the source cells by domain field: errors echo what the file said, not the
    converted value. Model-level checks in the domain write ``"field: message"``; the field is
    taken from there.
    """
    out: list[RowError] = []
    for err in exc.errors(include_url=False):
        message = str(err["msg"]).removeprefix("Value error, ")
        loc = [part for part in err["loc"] if isinstance(part, str)]
        if loc:
            field = loc[-1]
            value = show_value(values[field] if field in values else err.get("input"))
        else:
            head, sep, rest = message.partition(": ")
            field = head if sep and " " not in head else "(row)"
            if field != "(row)":
                message = rest
            value = show_value(values.get(field))
        out.append(
            RowError(file, line, field_label(source_of.get(field, field), field), message, value)
        )
    return out
