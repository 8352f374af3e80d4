"""Impossible-travel legs: from a card's previous terminal to the terminal that raised the flag.

The card's terminal history comes from the event stream when it is given (it holds every
transaction, decided or not) and otherwise from the decided units.

>>> import polars as pl
>>> from datetime import datetime, timedelta, UTC
>>> t = datetime(2022, 1, 1, tzinfo=UTC)
>>> units = pl.DataFrame({"unit_id": ["t1", "t2"], "card_id": ["c-1", "c-1"],
...     "terminal_id": ["B-1", "EXT-7"], "start_time": [t, t + timedelta(minutes=20)],
...     "reasons": [[], ["impossible_travel"]], "alerted": [False, True],
...     "pattern": [None, "card_cloning"]})
>>> impossible_travel_legs(units).select("from_terminal", "to_terminal", "pattern").row(0)
('B-1', 'EXT-7', 'card_cloning')
"""

from __future__ import annotations

import polars as pl

#: The reason code the geo detector gives to a move faster than travel allows.
IMPOSSIBLE_TRAVEL = "impossible_travel"


def _history(units: pl.DataFrame, events: pl.DataFrame | None) -> pl.DataFrame:
    columns = ("unit_id", "card_id", "terminal_id")
    decided = units.select(*columns, pl.col("start_time").alias("time"))
    if events is None:
        history = decided
    else:
        streamed = events.group_by("unit_id").agg(
            pl.col("card_id").drop_nulls().first(),
            pl.col("terminal_id").drop_nulls().first(),
            pl.min_horizontal(pl.col("timestamp").min(), pl.col("started_at").min()).alias("time"),
        )
        # The stream's view wins for units it holds; decided units it lacks still count.
        history = pl.concat(
            [streamed, decided.join(streamed, on="unit_id", how="anti")], how="diagonal"
        )
    return history.filter(pl.col("card_id").is_not_null() & pl.col("terminal_id").is_not_null())


def impossible_travel_legs(
    units: pl.DataFrame, events: pl.DataFrame | None = None, code: str = IMPOSSIBLE_TRAVEL
) -> pl.DataFrame:
    """One row per unit whose reasons include ``code`` and whose card came from elsewhere.

    Columns: ``unit_id, card_id, from_terminal, to_terminal, from_time, to_time, alerted,
    pattern``. Units whose card has no earlier terminal, or the same one, give no leg.
    """
    history = (
        _history(units, events)
        .sort("card_id", "time", "unit_id")
        .with_columns(
            pl.col("terminal_id").shift(1).over("card_id").alias("from_terminal"),
            pl.col("time").shift(1).over("card_id").alias("from_time"),
        )
        .select(
            "unit_id",
            "from_terminal",
            "from_time",
            pl.col("terminal_id").alias("to_terminal"),
            pl.col("time").alias("to_time"),
        )
    )
    flagged = units.filter(pl.col("reasons").list.contains(code)).select(
        "unit_id", "card_id", "alerted", "pattern"
    )
    return (
        flagged.join(history, on="unit_id", how="inner")
        .filter(
            pl.col("from_terminal").is_not_null()
            & (pl.col("from_terminal") != pl.col("to_terminal"))
        )
        .select(
            "unit_id",
            "card_id",
            "from_terminal",
            "to_terminal",
            "from_time",
            "to_time",
            "alerted",
            "pattern",
        )
        .sort("to_time", "unit_id")
    )
