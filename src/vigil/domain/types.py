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


# The years the validator accepts, in the schema too (JSON Schema has no date range): a
# generator or a client reading the document then sends what the API takes.
_YEARS = r"^(199\d|20\d\d)-"
UtcDatetime = Annotated[
    datetime, Field(json_schema_extra={"pattern": _YEARS}), AfterValidator(_to_utc)
]
Amount = Annotated[Decimal, BeforeValidator(_reject_float_nan), AfterValidator(_check_amount)]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
# No control characters in ids and short codes: none belongs there, PostgreSQL refuses NUL in
# text (one would fail a write instead of the request: 422 naming the field), and C1 controls
# and the bidirectional marks, embeddings, overrides and isolates change what an analyst reads
# (U+202E shows "gnirts" as "string"). Free text (notes) may hold newlines and tabs, nothing
# else of those.
_SPOOFING = r"\x80-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
PRINTABLE = rf"^[^\x00-\x1f\x7f{_SPOOFING}]+$"
FREE_TEXT = rf"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f{_SPOOFING}]*$"
_CONTROL = re.compile(rf"[\x00-\x1f\x7f{_SPOOFING}]")
_TEXT_CONTROL = re.compile(rf"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f{_SPOOFING}]")


def _refuse(found: re.Match[str], allowed: str) -> ValueError:
    return ValueError(
        f"must not contain control or bidirectional characters (U+{ord(found.group()):04X} at "
        f"position {found.start()}; {allowed})"
    )


def _printable(value: str) -> str:
    """
    >>> _printable("a\u202eb")
    Traceback (most recent call last):
    ...
    ValueError: must not contain control or bidirectional characters (U+202E at position 1; ...
    """
    if found := _CONTROL.search(value):
        raise _refuse(found, "not NUL, newline, tab, U+0085, U+202E, ...")
    return value


def _free_text(value: str) -> str:
    if found := _TEXT_CONTROL.search(value):
        raise _refuse(found, "newlines and tabs are fine")
    return value


# Checked by a validator for its plain message; the pattern documents it in the schema.
Printable = [Field(json_schema_extra={"pattern": PRINTABLE}), AfterValidator(_printable)]
FreeText = [Field(json_schema_extra={"pattern": FREE_TEXT}), AfterValidator(_free_text)]
Identifier = Annotated[str, Field(min_length=1, max_length=128), *Printable]
CountryCode = Annotated[str, Field(min_length=2, max_length=3, pattern=r"^[A-Z]{2,3}$")]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
