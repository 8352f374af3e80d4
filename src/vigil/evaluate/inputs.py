"""Check and normalise the frames the evaluation reads: decisions, labels, events, terminals.

Every problem is reported as a ``ValueError`` naming the frame and the column, before any
figure is computed, so a bad file never yields a half-true report.

>>> import polars as pl
>>> labels = normalise_labels(pl.DataFrame({"event_id": ["e1"], "transaction_id": [""],
...                                         "pattern": ["account_takeover"]}))
>>> labels.row(0)
('e1', None, 'account_takeover')
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

#: Actions in order of severity; a unit's action is the most severe of its decisions.
ACTIONS: tuple[str, ...] = ("allow", "step_up", "review", "block")


def _require(frame: pl.DataFrame, name: str, columns: Iterable[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name}.{missing[0]}: column missing (has {', '.join(frame.columns) or 'none'})"
        )


def _no_nulls(frame: pl.DataFrame, name: str, column: str) -> None:
    nulls = frame.get_column(column).null_count()
    if nulls:
        raise ValueError(f"{name}.{column}: {nulls} empty value(s)")


def _as_text(frame: pl.DataFrame, name: str, column: str) -> pl.Expr:
    """The column as stripped text, empty strings as null (CSV readers differ on which)."""
    dtype = frame.schema[column]
    if dtype == pl.Null:
        return pl.lit(None, dtype=pl.String).alias(column)
    if not (dtype == pl.String or dtype.is_integer() or dtype == pl.Categorical):
        raise ValueError(f"{name}.{column}: expected text, got {dtype}")
    text = pl.col(column).cast(pl.String).str.strip_chars()
    return pl.when(text == "").then(None).otherwise(text).alias(column)


def _optional_text(frame: pl.DataFrame, name: str, columns: Iterable[str]) -> list[pl.Expr]:
    return [
        _as_text(frame, name, c) if c in frame.columns else pl.lit(None, pl.String).alias(c)
        for c in columns
    ]


def _utc(frame: pl.DataFrame, name: str, column: str) -> pl.Expr:
    dtype = frame.schema[column]
    if dtype == pl.Null:
        return pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias(column)
    if not isinstance(dtype, pl.Datetime):
        raise ValueError(f"{name}.{column}: expected a timezone-aware datetime, got {dtype}")
    if dtype.time_zone is None:
        raise ValueError(f"{name}.{column}: datetimes must carry a timezone (UTC)")
    return pl.col(column).dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias(column)


def normalise_decisions(decisions: pl.DataFrame) -> pl.DataFrame:
    """One row per decided event with the columns the evaluation uses, validated.

    ``unit_id`` is filled from ``coalesce(transaction_id, event_id)`` where it is missing;
    optional columns (ids, ``event_kind``, ``reason_codes``, ``evidence``) are filled with
    nulls or empty lists. ``severity`` is the action's index in :data:`ACTIONS`.

    >>> import polars as pl
    >>> from datetime import datetime, UTC
    >>> d = normalise_decisions(pl.DataFrame({"event_id": ["e1"], "score": [0.9],
    ...     "action": ["block"], "event_time": [datetime(2022, 1, 1, tzinfo=UTC)]}))
    >>> d.select("unit_id", "severity", "reason_codes").row(0)
    ('e1', 3, [])
    """
    name = "decisions"
    _require(decisions, name, ("event_id", "event_time", "score", "action"))
    if decisions.height == 0:
        raise ValueError(f"{name}: no rows to evaluate")
    for column in ("event_id", "event_time", "score", "action"):
        _no_nulls(decisions, name, column)

    if not decisions.schema["score"].is_numeric():
        raise ValueError(f"{name}.score: expected numbers, got {decisions.schema['score']}")
    score = decisions.get_column("score").cast(pl.Float64)
    bad = decisions.filter(~score.is_finite() | (score < 0) | (score > 1))
    if bad.height:
        raise ValueError(
            f"{name}.score: {bad.height} value(s) outside [0, 1] "
            f"(e.g. {bad.get_column('score')[0]!r} on event {bad.get_column('event_id')[0]!r})"
        )

    actions = decisions.get_column("action").cast(pl.String)
    unknown = sorted(set(actions.unique().to_list()) - set(ACTIONS))
    if unknown:
        raise ValueError(f"{name}.action: unknown action(s) {unknown}; expected one of {ACTIONS}")

    duplicated = decisions.get_column("event_id").is_duplicated()
    if duplicated.any():
        example = decisions.filter(duplicated).get_column("event_id")[0]
        raise ValueError(
            f"{name}.event_id: {int(duplicated.sum())} rows share an event id "
            f"(e.g. {example!r}); evaluate one decision per event"
        )

    reasons, evidence = (_text_list(decisions, name, c) for c in ("reason_codes", "evidence"))

    ids = ("transaction_id", "user_id", "card_id", "terminal_id", "event_kind")
    frame = decisions.select(
        _as_text(decisions, name, "event_id"),
        *_optional_text(decisions, name, (*ids, "unit_id")),
        _utc(decisions, name, "event_time"),
        pl.col("score").cast(pl.Float64),
        pl.col("action").cast(pl.String),
        reasons,
        evidence,
    )
    return frame.with_columns(
        pl.coalesce("unit_id", "transaction_id", "event_id").alias("unit_id"),
        pl.col("action").replace_strict(ACTIONS, range(len(ACTIONS))).alias("severity"),
    )


def _text_list(frame: pl.DataFrame, name: str, column: str) -> pl.Expr:
    """An optional list-of-text column, empty lists where it is missing or null."""
    dtype = frame.schema.get(column)
    if dtype is None or dtype == pl.Null:
        return pl.lit([], dtype=pl.List(pl.String)).alias(column)
    if isinstance(dtype, pl.List) and dtype.inner in (pl.String, pl.Null):
        return pl.col(column).cast(pl.List(pl.String)).fill_null([])
    raise ValueError(f"{name}.{column}: expected a list of text, got {dtype}")


def normalise_labels(labels: pl.DataFrame) -> pl.DataFrame:
    """``event_id, transaction_id, pattern`` as text, empty ``transaction_id`` as null.

    Exact duplicate rows are dropped; one event labelled with two patterns is an error.
    """
    name = "labels"
    _require(labels, name, ("event_id", "pattern"))
    frame = labels.select(
        _as_text(labels, name, "event_id"),
        *_optional_text(labels, name, ("transaction_id",)),
        _as_text(labels, name, "pattern"),
    )
    for column in ("event_id", "pattern"):
        _no_nulls(frame, name, column)
    frame = frame.unique(maintain_order=True)
    conflicting = frame.get_column("event_id").is_duplicated()
    if conflicting.any():
        example = frame.filter(conflicting).get_column("event_id")[0]
        raise ValueError(f"labels.pattern: event {example!r} is labelled with several patterns")
    return frame


def normalise_events(events: pl.DataFrame) -> pl.DataFrame:
    """The event-stream columns the evaluation reads (ids, times, amount, coordinates)."""
    name = "events"
    _require(events, name, ("event_id", "timestamp"))
    texts = ("transaction_id", "card_id", "user_id", "terminal_id", "type")
    numbers = [
        (pl.col(c).cast(pl.Float64) if c in events.columns else pl.lit(None, pl.Float64)).alias(c)
        for c in ("amount", "latitude", "longitude")
    ]
    for column in ("amount", "latitude", "longitude"):
        dtype = events.schema.get(column)
        if dtype is not None and not (dtype.is_numeric() or dtype == pl.Null):
            raise ValueError(f"{name}.{column}: expected numbers, got {dtype}")
    started = (
        _utc(events, name, "started_at")
        if "started_at" in events.columns
        else pl.lit(None, pl.Datetime("us", "UTC")).alias("started_at")
    )
    frame = events.select(
        _as_text(events, name, "event_id"),
        *_optional_text(events, name, texts),
        _utc(events, name, "timestamp"),
        started,
        *numbers,
    )
    for column in ("event_id", "timestamp"):
        _no_nulls(frame, name, column)
    return frame.with_columns(pl.coalesce("transaction_id", "event_id").alias("unit_id"))


def normalise_terminals(terminals: pl.DataFrame) -> pl.DataFrame:
    """``terminal_id, latitude, longitude, city, internal`` with checked coordinates."""
    name = "terminals"
    _require(terminals, name, ("terminal_id", "latitude", "longitude"))
    for column in ("latitude", "longitude"):
        if not terminals.schema[column].is_numeric():
            raise ValueError(f"{name}.{column}: expected numbers, got {terminals.schema[column]}")
    internal = (
        pl.col("internal").cast(pl.Boolean)
        if "internal" in terminals.columns
        else pl.lit(None, pl.Boolean)
    )
    frame = terminals.select(
        _as_text(terminals, name, "terminal_id"),
        pl.col("latitude").cast(pl.Float64),
        pl.col("longitude").cast(pl.Float64),
        *_optional_text(terminals, name, ("city",)),
        internal.alias("internal"),
    )
    _no_nulls(frame, name, "terminal_id")
    outside = frame.filter(
        ~pl.col("latitude").is_between(-90, 90) | ~pl.col("longitude").is_between(-180, 180)
    )
    if outside.height:
        raise ValueError(
            f"{name}.latitude/longitude: terminal {outside.get_column('terminal_id')[0]!r} "
            "has coordinates outside the globe"
        )
    return frame.unique("terminal_id", keep="first", maintain_order=True)
