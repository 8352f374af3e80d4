"""Time-ordered train / validation / test split, with a gap for the label delay.

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
from datetime import datetime, timedelta

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
