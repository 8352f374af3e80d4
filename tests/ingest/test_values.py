from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from vigil.ingest.values import cents, parse_expiration, parse_timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-01-03T10:00:00Z", datetime(2022, 1, 3, 10, tzinfo=UTC)),
        ("2022-01-03 10:00:00", datetime(2022, 1, 3, 10, tzinfo=UTC)),
        ("2022-01-03T10:00:00.250", datetime(2022, 1, 3, 10, 0, 0, 250000, tzinfo=UTC)),
        (
            "2022-01-03T10:00:00-05:00",
            datetime(2022, 1, 3, 10, tzinfo=timezone(timedelta(hours=-5))),
        ),
        (datetime(2022, 1, 3, 10), datetime(2022, 1, 3, 10, tzinfo=UTC)),
    ],
)
def test_timestamps(text: object, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected and parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2022-02-30 10:00:00", "impossible date or time: day is out of range for month"),
        ("2022-01-03 24:00:00", "impossible date or time: hour must be in 0..23"),
        ("03/01/2022", "unparseable timestamp"),
        ("", "unparseable timestamp"),
        (1641204000, "expected a timestamp, got int"),
    ],
)
def test_bad_timestamps(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_timestamp(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-12", date(2025, 12, 31)),
        ("2024-02", date(2024, 2, 29)),
        ("12/25", date(2025, 12, 31)),
        ("2/2026", date(2026, 2, 28)),
        ("2025-06-15", date(2025, 6, 15)),
        ("2025-06-15T00:00:00", date(2025, 6, 15)),
    ],
)
def test_expirations(text: str, expected: date) -> None:
    assert parse_expiration(text) == expected


@pytest.mark.parametrize("text", ["13/25", "2025-00", "next year", "2025-02-30"])
def test_bad_expirations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_expiration(text)


def test_cents() -> None:
    assert cents(0.1 + 0.2) == Decimal("0.30")
    assert cents("2500") == "2500"  # already exact: left as text for the model
    assert cents(7) == 7
    assert cents("abc") == "abc"  # left for the model to reject with its own message
    assert cents("NaN") == "NaN"
    with pytest.raises(ValueError, match="2 decimal places"):
        cents("1.005")
    with pytest.raises(ValueError, match="2 decimal places"):
        cents(1.005)
