"""Fraud episodes and how long vigil took to raise the first alert in each.

An episode is the run of one pattern's fraud units on one customer (the unit's ``entity``:
user, else card): a lost card's burst of withdrawals, an account takeover's login and
transfers. A unit starting more than :data:`EPISODE_GAP` after the previous one of the same
pattern and customer opens a new episode, so two amount spikes a fortnight apart are two
incidents, not one caught after two weeks.

The delay runs from the start of the episode's first unit to the first alerting decision
(for a transaction alerted only at its end, the end event's time). "Units before first
alert" counts the episode's units that started before its first alerted unit.

>>> import polars as pl
>>> from datetime import datetime, timedelta, UTC
>>> t = datetime(2022, 1, 1, tzinfo=UTC)
>>> units = pl.DataFrame({"unit_id": ["a", "b"], "pattern": ["lost_card"] * 2,
...     "entity": ["u1", "u1"], "start_time": [t, t + timedelta(minutes=10)],
...     "alert_time": [None, t + timedelta(minutes=15)], "alerted": [False, True]})
>>> episodes(units).select("delay_s", "units", "units_before_first_alert").row(0)
(900.0, 2, 1)
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

#: Longest quiet time inside one episode.
EPISODE_GAP = timedelta(hours=24)


def episodes(fraud_units: pl.DataFrame, gap: timedelta = EPISODE_GAP) -> pl.DataFrame:
    """One row per episode: pattern, entity, start, first alert, delay, units, caught.

    ``fraud_units`` needs ``unit_id, pattern, entity, start_time, alert_time, alerted``.
    """
    ordered = fraud_units.sort("pattern", "entity", "start_time", "unit_id")
    previous = pl.col("start_time").shift(1).over("pattern", "entity")
    opens = previous.is_null() | ((pl.col("start_time") - previous) > gap)
    numbered = ordered.with_columns(opens.cum_sum().over("pattern", "entity").alias("episode"))
    first_alerted_start = pl.col("start_time").filter(pl.col("alerted")).min()
    return (
        numbered.group_by("pattern", "entity", "episode", maintain_order=True)
        .agg(
            pl.col("start_time").min().alias("first_fraud_time"),
            pl.col("alert_time").min().alias("first_alert_time"),
            pl.len().alias("units"),
            (pl.col("start_time") < first_alerted_start).sum().alias("units_before_first_alert"),
            pl.col("alerted").any().alias("caught"),
        )
        .with_columns(
            (pl.col("first_alert_time") - pl.col("first_fraud_time"))
            .dt.total_microseconds()
            .truediv(1e6)
            .alias("delay_s"),
            pl.when(pl.col("caught")).then(pl.col("units_before_first_alert")),
        )
    )
