"""Reading the workbench's form values."""

from __future__ import annotations

from datetime import UTC, datetime

from vigil.web.auth import PageRefused


def instant(value: str, field: str) -> datetime | None:
    """A datetime-local value (taken as UTC) or an ISO time; '' is None.

    >>> instant("2022-01-05T10:00", "since"), instant("", "since")
    (datetime.datetime(2022, 1, 5, 10, 0, tzinfo=datetime.timezone.utc), None)
    """
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PageRefused(422, f"{field}: {value!r} is not a date and time") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
