"""Parsing the cell values that pydantic cannot read on its own: timestamps and card expirations.

A timestamp without a timezone is taken as UTC: bank exports are written in UTC far more often
than in local time, and a naive value must not be rejected wholesale. Write an offset (``Z``,
``+01:00``) when the source is in another zone.

>>> parse_timestamp("2022-01-03 10:00:00").isoformat()
'2022-01-03T10:00:00+00:00'
>>> parse_timestamp("2022-01-03T11:00:00+01:00").isoformat()
'2022-01-03T11:00:00+01:00'
>>> parse_expiration("12/25"), parse_expiration("2025-12"), parse_expiration("2026-03-15")
(datetime.date(2025, 12, 31), datetime.date(2025, 12, 31), datetime.date(2026, 3, 15))
>>> cents(0.1 + 0.2), cents("12.500"), cents("12.5")
(Decimal('0.30'), Decimal('12.50'), '12.5')
>>> cents("10503.66015625", rounded=True), cents(2.675, rounded=True)
(Decimal('10503.66'), Decimal('2.68'))
"""

from __future__ import annotations

import calendar
import math
import re
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

_EXAMPLE = "e.g. 2022-01-03T10:00:00Z or 2022-01-03 10:00:00"
_YEAR_MONTH = re.compile(r"^(\d{4})[-/](\d{1,2})$")
_MONTH_YEAR = re.compile(r"^(\d{1,2})/(\d{2}|\d{4})$")
CENT = Decimal("0.01")
# A binary float's error on a money amount is far below this; a real sub-cent part is not.
_FLOAT_NOISE = Decimal("1e-6")


def parse_timestamp(value: object) -> datetime:
    """An ISO-8601 text (``T`` or space, optional fraction and offset) or a datetime, in UTC
    when it names no zone. Raises ``ValueError`` saying whether the text is unreadable or an
    impossible date such as 2022-02-30."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as exc:
            reason = str(exc)
            if reason.startswith("Invalid isoformat") or not reason:
                raise ValueError(f"unparseable timestamp; expected ISO-8601, {_EXAMPLE}") from None
            raise ValueError(f"impossible date or time: {reason}") from None
    else:
        raise ValueError(f"expected a timestamp, got {type(value).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _last_day(year: int, month: int) -> date:
    if not 1 <= month <= 12:
        raise ValueError(f"month {month} is not 1-12")
    return date(year, month, calendar.monthrange(year, month)[1])


def parse_expiration(value: object) -> date:
    """A card's expiry: ``2025-12``, ``12/25``, ``12/2025`` (valid through the month's last day,
    as printed cards are) or a full ISO date / datetime (taken as given)."""
    if isinstance(value, date):
        return value.date() if isinstance(value, datetime) else value
    text = str(value).strip()
    if m := _YEAR_MONTH.match(text):
        return _last_day(int(m[1]), int(m[2]))
    if m := _MONTH_YEAR.match(text):
        year = int(m[2]) + (2000 if len(m[2]) == 2 else 0)
        return _last_day(year, int(m[1]))
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueError(
            "unparseable expiration; expected 2025-12, 12/25, 12/2025 or 2025-12-31"
        ) from None


def cents(value: object, *, rounded: bool = False) -> object:
    """An amount the store can keep exactly (cents); text with at most two decimals is
    returned as it is, for the model to parse.

    A float's binary noise (``0.30000000000000004``) is rounded away; a real sub-cent part
    (``"12.345"``) raises ``ValueError``, unless ``rounded`` (``--amounts round``): then it is
    rounded half to even, as the value is written (``2.675`` is 2.68, not the binary 2.67499...).
    Values that are not numbers at all (text, NaN) pass through unchanged for the domain model
    to reject with its own message.
    """
    if isinstance(value, str):
        # The common case, decided without building a Decimal: at most two decimals, no exponent.
        dot = value.find(".")
        if (dot < 0 or len(value) - dot <= 3) and "e" not in value and "E" not in value:
            return value
    elif isinstance(value, bool) or not isinstance(value, float | Decimal):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return value
    try:
        amount = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if not amount.is_finite():
            return value
        quantized = amount.quantize(CENT, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:
        return value
    tolerance = _FLOAT_NOISE if isinstance(value, float) else 0
    if not rounded and abs(amount - quantized) > tolerance:
        raise ValueError(
            "more than 2 decimal places (amounts are kept in cents; --amounts round rounds them)"
        )
    return quantized
