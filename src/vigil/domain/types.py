"""Field types shared by events and entities: validated at the edge, plain values inside."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field

# Events from before the first card network or from far in the future are typing errors,
# not history; rejecting them keeps windows and partitions sane.
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)

MAX_AMOUNT = Decimal("1e12")
# Amounts are stored exactly in NUMERIC(18, 2): at most two decimal places, fewer where the
# currency's minor unit is smaller (ISO 4217 currencies without one).
MAX_DECIMALS = 2
ZERO_DECIMAL_CURRENCIES = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()  # noqa: SIM905
)


def decimals(value: Decimal) -> int:
    """How many decimal places an amount needs (trailing zeros do not count).

    >>> decimals(Decimal("10.50")), decimals(Decimal("10.001")), decimals(Decimal("1E+3"))
    (1, 3, 0)
    """
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a timezone (e.g. '2022-01-01T10:00:00Z')")
    value = value.astimezone(UTC)
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"timestamp {value.isoformat()} is outside {EARLIEST.year}-{LATEST.year}")
    return value


def _check_amount(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("amount must be a finite number")
    if value < 0:
        raise ValueError("amount must not be negative")
    if value > MAX_AMOUNT:
        raise ValueError(f"amount must be at most {MAX_AMOUNT}")
    if decimals(value) > MAX_DECIMALS:
        raise ValueError(f"amount {value} has more than {MAX_DECIMALS} decimal places")
    return value


def _reject_float_nan(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("amount must be a finite number")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_to_utc)]
Amount = Annotated[Decimal, BeforeValidator(_reject_float_nan), AfterValidator(_check_amount)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
# No control characters in ids and short codes: none belongs there, and PostgreSQL refuses NUL
# in text, so one would fail a write instead of the request (422 naming the field).
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Free text (notes) may hold newlines and tabs, never NUL.
NO_NUL = r"^[^\x00]*$"


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters (NUL, newline, tab, ...)")
    return value


# Checked by a validator for its plain message; the pattern documents it in the schema.
Printable = [Field(json_schema_extra={"pattern": PRINTABLE}), AfterValidator(_printable)]
Identifier = Annotated[str, Field(min_length=1, max_length=128), *Printable]
CountryCode = Annotated[str, Field(min_length=2, max_length=3, pattern=r"^[A-Z]{2,3}$")]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
