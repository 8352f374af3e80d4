"""The unit of evaluation: one transaction (its start and end events together) or one login.

A unit is *alerted* when any of its decisions is not ``allow``; its score is the highest score
of its decisions, its action the most severe, its reasons the union of its decisions' reasons.
``alert_reasons`` holds only the reasons of the alerting decisions, so a reason seen on an
allowed start event is not credited with an alert raised on the end event for another reason.
A unit is fraud when any of its events is labelled; it then carries the label's pattern.
A unit not alerted itself is *linked* when an alert names it as evidence (the earlier
operations of a burst): the analyst who opens that alert sees it, at ``linked_time``.

>>> import polars as pl
>>> from datetime import datetime, UTC
>>> from vigil.evaluate.inputs import normalise_decisions, normalise_labels
>>> t = datetime(2022, 1, 1, tzinfo=UTC)
>>> d = normalise_decisions(pl.DataFrame({"event_id": ["s", "e"], "transaction_id": ["t", "t"],
...     "event_time": [t, t], "score": [0.2, 0.9], "action": ["allow", "block"]}))
>>> l = normalise_labels(pl.DataFrame({"event_id": ["s"], "pattern": ["card_cloning"]}))
>>> units, missing = build_units(d, l)
>>> units.select("unit_id", "alerted", "score", "action", "pattern").row(0)
('t', True, 0.9, 'block', 'card_cloning')
"""

from __future__ import annotations

import polars as pl

from vigil.evaluate.inputs import ACTIONS

_UNION = {"keep_nulls": False, "empty_as_null": False}
_IDS = ("user_id", "card_id", "terminal_id")


def _union(expr: pl.Expr) -> pl.Expr:
    return expr.list.explode(**_UNION).drop_nulls().unique().sort()


def label_units(labels: pl.DataFrame, decisions: pl.DataFrame) -> pl.DataFrame:
    """``unit_id, pattern`` per labelled unit.

    A label reaches its unit through the decided event when there is one (so a label with a
    missing ``transaction_id`` still lands on the right transaction), else through
    ``coalesce(transaction_id, event_id)``. A unit with labels of several patterns takes the
    alphabetically first, so the result does not depend on row order.
    """
    known = decisions.select("event_id", pl.col("unit_id").alias("decided_unit"))
    return (
        labels.join(known, on="event_id", how="left")
        .with_columns(pl.coalesce("decided_unit", "transaction_id", "event_id").alias("unit_id"))
        .group_by("unit_id")
        .agg(pl.col("pattern").min())
    )


def _event_facts(events: pl.DataFrame) -> pl.DataFrame:
    """Per unit from the event stream: when it began, ids, transaction type and amount."""
    return events.group_by("unit_id").agg(
        pl.min_horizontal(pl.col("timestamp").min(), pl.col("started_at").min()).alias("ev_start"),
        *(pl.col(c).drop_nulls().first().alias(f"ev_{c}") for c in _IDS),
        pl.col("type").drop_nulls().first().alias("type"),
        pl.col("amount").max().alias("amount"),
    )


def _linked(alerts: pl.DataFrame) -> pl.DataFrame:
    """``unit_id, linked_time``: units named as evidence by an alert, and its earliest time."""
    return (
        alerts.select("unit_id", "event_time", "evidence")
        .explode("evidence")
        .filter(pl.col("evidence").is_not_null() & (pl.col("evidence") != pl.col("unit_id")))
        .group_by("evidence")
        .agg(pl.col("event_time").min().alias("linked_time"))
        .rename({"evidence": "unit_id"})
    )


def build_units(
    decisions: pl.DataFrame, labels: pl.DataFrame, events: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The units frame and the labelled units that have no decision (``unit_id, pattern``).

    Inputs are the normalised frames of :mod:`vigil.evaluate.inputs`. With ``events`` a
    unit's ``start_time`` also considers the stream's ``timestamp`` and ``started_at`` (a
    transaction's fraud begins when it starts, even if only its end was decided), missing
    ids are filled from the stream, and ``type`` and ``amount`` are added for the report.
    """
    ordered = decisions.sort("event_time", "event_id")
    alerting = pl.col("severity") > 0
    units = ordered.group_by("unit_id", maintain_order=True).agg(
        pl.col("event_kind").drop_nulls().first(),
        pl.col("transaction_id").drop_nulls().first(),
        *(pl.col(c).drop_nulls().first() for c in _IDS),
        pl.col("event_time").min().alias("start_time"),
        pl.col("event_time").filter(alerting).min().alias("alert_time"),
        pl.col("score").max(),
        pl.col("severity").max(),
        _union(pl.col("reason_codes")).alias("reasons"),
        _union(pl.col("reason_codes").filter(alerting)).alias("alert_reasons"),
        pl.len().alias("n_decisions"),
    )
    if events is not None:
        facts = _event_facts(events)
        units = (
            units.join(facts, on="unit_id", how="left")
            .with_columns(
                pl.min_horizontal("start_time", "ev_start").alias("start_time"),
                *(pl.coalesce(c, f"ev_{c}").alias(c) for c in _IDS),
            )
            .drop("ev_start", *(f"ev_{c}" for c in _IDS))
        )
    else:
        units = units.with_columns(
            pl.lit(None, pl.String).alias("type"), pl.lit(None, pl.Float64).alias("amount")
        )

    units = units.join(_linked(ordered.filter(alerting)), on="unit_id", how="left")
    labelled = label_units(labels, decisions)
    units = units.join(labelled, on="unit_id", how="left").with_columns(
        pl.col("pattern").is_not_null().alias("fraud"),
        (pl.col("severity") > 0).alias("alerted"),
        ((pl.col("severity") == 0) & pl.col("linked_time").is_not_null()).alias("linked"),
        pl.col("severity").replace_strict(range(len(ACTIONS)), ACTIONS).alias("action"),
        # Logins and transactions of one customer belong together (an account takeover is a
        # login then transfers), and each card here has one holder, so the user comes first.
        pl.coalesce("user_id", "card_id", "unit_id").alias("entity"),
    )
    missing = labelled.join(units.select("unit_id"), on="unit_id", how="anti").sort("unit_id")
    return units, missing
