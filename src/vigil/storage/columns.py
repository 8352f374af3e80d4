"""Column types that behave the same on SQLite and PostgreSQL: UTC instants and money.

SQLite has no time zone or decimal type, so these types carry the contract themselves: an
instant goes in as tz-aware, is stored as naive UTC where it must be, and comes back tz-aware UTC;
an amount goes in as ``Decimal`` with at most two decimal places and comes back as the same
``Decimal``.

>>> from datetime import datetime, timezone, timedelta
>>> UtcDateTime().process_bind_param(datetime(2022, 1, 1, 12, tzinfo=timezone(timedelta(hours=1))),
...                                  _Dialect("sqlite"))
datetime.datetime(2022, 1, 1, 11, 0)
>>> Money().process_result_value(2500.1, _Dialect("sqlite"))
Decimal('2500.10')
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric
from sqlalchemy.types import TypeDecorator

CENT = Decimal("0.01")
MONEY_PRECISION = 18
MONEY_SCALE = 2


class _Dialect:
    """The one attribute of a dialect these types read; lets the doctests run without an engine."""

    def __init__(self, name: str) -> None:
        self.name = name


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time, always tz-aware UTC in Python; naive values are refused.

    >>> from datetime import datetime, UTC
    >>> UtcDateTime().process_result_value(datetime(2022, 1, 1), _Dialect("sqlite"))
    datetime.datetime(2022, 1, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect | Any) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give a timezone (UTC)")
        value = value.astimezone(UTC)
        # SQLite's DATETIME text drops the offset; storing UTC keeps text order = time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: datetime | None, dialect: Dialect | Any
    ) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """``NUMERIC(18, 2)``: exact on PostgreSQL; on SQLite stored as REAL and re-quantised.

    A double holds 15 significant digits exactly, and the domain caps amounts at 1e12
    (13 integer digits + 2 decimals), so quantising to cents on read returns the value written.

    >>> Money().process_result_value(Decimal("999999999999.99"), _Dialect("postgresql"))
    Decimal('999999999999.99')
    """

    impl = Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True)
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect | Any) -> Decimal | None:
        if value is None:
            return None
        value = Decimal(value)
        if value != value.quantize(CENT):
            raise ValueError(f"amount {value} has more than {MONEY_SCALE} decimal places")
        return value

    def process_result_value(self, value: Any, dialect: Dialect | Any) -> Decimal | None:
        if value is None:
            return None
        return Decimal(str(value)).quantize(CENT)
