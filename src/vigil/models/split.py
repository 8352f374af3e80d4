"""Time-ordered train / validation / test split: by shares of rows with a gap for the label
delay, or by explicit periods with labels as known when the model is trained.

A model is judged on the future it did not see. The rows are cut at two instants chosen so
the three parts hold the given shares of rows; rows within ``gap`` after each cut are dropped,
because when the model is trained at the cut their labels would not be known yet (fraud is
confirmed days after it happens), and training on them would flatter validation.

>>> import polars as pl
>>> from datetime import datetime, timedelta, UTC
>>> t0 = datetime(2022, 1, 1, tzinfo=UTC)
>>> f = pl.DataFrame({"timestamp": [t0 + timedelta(days=d) for d in range(10)]})
>>> s = time_split(f, fractions=(0.6, 0.2, 0.2), gap=timedelta(days=1))
>>> s.train.height, s.validation.height, s.test.height, s.dropped
(6, 1, 1, 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import polars as pl


@dataclass(frozen=True)
class Split:
    """The three parts, the two cut instants and how many rows fell into a gap.

    >>> Split(pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), None, None, 0).dropped
    0
    """

    train: pl.DataFrame
    validation: pl.DataFrame
    test: pl.DataFrame
    validation_from: datetime | None
    test_from: datetime | None
    dropped: int
    # Periods only: the periods asked for, and the fraud labels of the train part not yet
    # known at the test period's start (trained on as legitimate, as the bank knew them).
    periods: Periods | None = None
    held_back: int = 0

    def card(self) -> dict[str, object]:
        """The split as the model's card records it."""
        out: dict[str, object] = {"ranges": self.ranges(), "gap_rows_dropped": self.dropped}
        if self.periods is not None:
            out |= self.periods.as_dict()
            out["labels_not_yet_known"] = self.held_back
        return out

    def ranges(self, time_column: str = "timestamp") -> dict[str, list[str | None]]:
        """``[first, last]`` event time of each part, ISO-formatted (for the manifest)."""
        out: dict[str, list[str | None]] = {}
        for name, part in (
            ("train", self.train),
            ("validation", self.validation),
            ("test", self.test),
        ):
            if part.is_empty():
                out[name] = [None, None]
                continue
            column = part.get_column(time_column)
            out[name] = [column.min().isoformat(), column.max().isoformat()]  # type: ignore[union-attr]
        return out


def time_split(
    frame: pl.DataFrame,
    *,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    gap: timedelta = timedelta(0),
    time_column: str = "timestamp",
) -> Split:
    """Cut ``frame`` by event time into train, validation and test (see the module doc)."""
    if time_column not in frame.columns:
        raise ValueError(f"{time_column}: no such column (have {', '.join(frame.columns)})")
    if len(fractions) != 3 or any(f <= 0 for f in fractions):
        raise ValueError(f"fractions: {fractions} must be three positive shares")
    if gap < timedelta(0):
        raise ValueError(f"gap: {gap} must not be negative")
    ordered = frame.sort(time_column, maintain_order=True)
    n = ordered.height
    if n < 3:
        raise ValueError(f"{time_column}: {n} rows are too few to split in three")
    total = sum(fractions)
    times = ordered.get_column(time_column)
    first_valid = times[min(n - 1, int(n * fractions[0] / total))]
    first_test = times[min(n - 1, int(n * (fractions[0] + fractions[1]) / total))]
    t = pl.col(time_column)
    train = ordered.filter(t < first_valid)
    validation = ordered.filter((t >= first_valid + gap) & (t < first_test))
    test = ordered.filter(t >= first_test + gap)
    dropped = n - train.height - validation.height - test.height
    return Split(train, validation, test, first_valid, first_test, dropped)


@dataclass(frozen=True)
class Period:
    """``[start, end)`` in UTC, written ``FROM..UNTIL``: dates (both days included) or
    ISO-8601 times (``UNTIL`` excluded).

    >>> p = Period.parse("2018-07-25..2018-07-31")
    >>> p.start.isoformat(), p.end.isoformat()
    ('2018-07-25T00:00:00+00:00', '2018-08-01T00:00:00+00:00')
    >>> Period.parse("2018-07-25T12:00..2018-07-26T12:00").end.isoformat()
    '2018-07-26T12:00:00+00:00'
    >>> Period.parse("2018-07-31..2018-07-25")
    Traceback (most recent call last):
    ...
    ValueError: '2018-07-31..2018-07-25': the period ends before it starts
    """

    start: datetime
    end: datetime

    @classmethod
    def parse(cls, text: str) -> Period:
        first, sep, last = text.partition("..")
        if not sep or not first.strip() or not last.strip():
            raise ValueError(f"{text!r}: expected FROM..UNTIL, e.g. 2018-07-25..2018-07-31")
        period = cls(_instant(first, text), _instant(last, text, end=True))
        if period.end <= period.start:
            raise ValueError(f"{text!r}: the period ends before it starts")
        return period

    def contains(self, column: str = "timestamp") -> pl.Expr:
        return (pl.col(column) >= self.start) & (pl.col(column) < self.end)

    def as_list(self) -> list[str]:
        return [self.start.isoformat(), self.end.isoformat()]


def _instant(text: str, whole: str, *, end: bool = False) -> datetime:
    text = text.strip()
    try:
        if len(text) == 10:  # a date: the whole day
            day = date.fromisoformat(text)
            return datetime.combine(day + timedelta(days=1 if end else 0), time(), UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{whole!r}: {text!r} is not a date or an ISO-8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Periods:
    """Train on one period, test on a later one; labels count once known.

    The model is trained when the test period starts: a train row's fraud label counts only
    if it arrived by then (``label_delay`` after the row), else the row trains as legitimate,
    as the bank knew it. Validation (early stopping, calibration) is the last
    ``validation_share`` of the train period's rows. The history before the train period
    feeds the features (windows, profiles) but is not trained on.
    """

    train: Period
    test: Period
    label_delay: timedelta
    validation_share: float = 0.2

    def __post_init__(self) -> None:
        if self.test.start < self.train.end:
            raise ValueError("test: the test period must start after the train period ends")
        if not 0 < self.validation_share < 1:
            raise ValueError("validation_share: must be between 0 and 1")

    def as_dict(self) -> dict[str, object]:
        return {
            "train_period": self.train.as_list(),
            "test_period": self.test.as_list(),
            "label_delay_seconds": self.label_delay.total_seconds(),
            "labels_known_at": self.test.start.isoformat(),
            "validation_share": self.validation_share,
        }


def period_split(frame: pl.DataFrame, periods: Periods, time_column: str = "timestamp") -> Split:
    """The train period's rows (labels as known at the test start; the last share of them for
    validation) and the test period's rows (labels as they turned out).

    >>> from datetime import datetime, timedelta, UTC
    >>> t0 = datetime(2022, 1, 1, tzinfo=UTC)
    >>> f = pl.DataFrame({"timestamp": [t0 + timedelta(days=d) for d in range(20)],
    ...                   "label": [d in (3, 8, 15) for d in range(20)]})
    >>> train, test = Period.parse("2022-01-02..2022-01-10"), Period.parse("2022-01-14..2022-01-20")
    >>> s = period_split(f, Periods(train, test, label_delay=timedelta(days=7)))
    >>> s.train.height, s.validation.height, s.test.height, s.held_back
    (7, 2, 7, 1)
    >>> s.train.get_column("label").sum(), s.test.get_column("label").sum()
    (1, 1)
    """
    if time_column not in frame.columns:
        raise ValueError(f"{time_column}: no such column (have {', '.join(frame.columns)})")
    ordered = frame.sort(time_column, maintain_order=True)
    t = pl.col(time_column)
    known = t + periods.label_delay <= periods.test.start
    fitted = ordered.filter(periods.train.contains(time_column))
    held_back = fitted.filter(pl.col("label").cast(pl.Boolean) & ~known).height
    fitted = fitted.with_columns(
        pl.when(known).then(pl.col("label")).otherwise(pl.lit(0).cast(frame.schema["label"]))
    )
    test = ordered.filter(periods.test.contains(time_column))
    for name, part in (("train", fitted), ("test", test)):
        if part.height < 2:
            raise ValueError(
                f"--{name} {getattr(periods, name).as_list()}: {part.height} rows in the period"
            )
    cut = fitted.get_column(time_column)[int(fitted.height * (1 - periods.validation_share))]
    train, validation = fitted.filter(t < cut), fitted.filter(t >= cut)
    outside = ordered.height - fitted.height - test.height
    return Split(train, validation, test, cut, periods.test.start, outside, periods, held_back)
