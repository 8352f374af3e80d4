"""Daily snapshots of user and card aggregates, and the StandIn training sets built on them.

A snapshot for ``agg_reference_date`` D is read just before midnight starting D: windows hold
the events with ``D - W <= s < D`` (the profiles' ``t - W < s <= t`` at ``t`` one microsecond
before D), and feedback counts only if it arrived before D. So a StandIn transaction on day D,
scored with its user's and card's snapshot of D, is scored with nothing from its own day on.

- ``txn_count_30d`` / ``avg_txn_amount_30d``: completed transactions (any type) in 30 days;
- ``standin_success_rate_90d``: of the StandIn transactions in 90 days whose settlement is
  known, the share recovered (NaN when none is known yet);
- ``dispute_rate_90d``: share of the transactions in 90 days disputed or reported as fraud
  by D (feedback ``dispute``/``fraud`` at its time; ``labels`` at transaction + label delay);
- ``account_age_days``: since the user's account was created (reference data);
  ``card_age_days``: since the card's first transaction began.

>>> from datetime import datetime, timedelta, UTC
>>> import polars as pl
>>> events = pl.DataFrame({"event_id": ["a", "b"], "type": ["withdrawal", "withdrawal"],
...     "card_id": ["c1", "c1"], "user_id": ["u1", "u1"], "amount": [100.0, 300.0],
...     "standin": [True, False],
...     "timestamp": [datetime(2022, 1, 1, 9, tzinfo=UTC), datetime(2022, 1, 2, 9, tzinfo=UTC)]})
>>> feedback = pl.DataFrame({"target_event_id": ["a"], "label": ["standin_recovered"],
...     "timestamp": [datetime(2022, 1, 2, 8, tzinfo=UTC)]})
>>> snap = card_aggregated_features(events, feedback=feedback, label_delay=timedelta(days=7))
>>> snap.select("agg_reference_date", "card_txn_count_30d", "card_standin_success_90d").rows()
[(datetime.date(2022, 1, 2), 1, nan), (datetime.date(2022, 1, 3), 2, 1.0)]
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from vigil.features.history import DAY_US, Floats, History, Ints, as_microseconds
from vigil.features.spec import TRANSACTION_TYPES
from vigil.features.timeline import Timeline
from vigil.profiles.windows import CATEGORY_INDEX
from vigil.storage.reference import ReferenceData

USER_SNAPSHOT_FEATURES: tuple[str, ...] = (
    "txn_count_30d",
    "avg_txn_amount_30d",
    "standin_success_rate_90d",
    "dispute_rate_90d",
    "account_age_days",
)
CARD_SNAPSHOT_FEATURES: tuple[str, ...] = (
    "card_txn_count_30d",
    "card_avg_txn_amount_30d",
    "card_standin_success_90d",
    "card_age_days",
)
_NEVER = np.iinfo(np.int64).min
_DISPUTES = ("dispute", "fraud")


def user_aggregated_features(
    events: pl.DataFrame,
    *,
    feedback: pl.DataFrame | None = None,
    labels: pl.DataFrame | None = None,
    label_delay: timedelta,
    reference: ReferenceData | None = None,
    dates: list[date] | None = None,
) -> pl.DataFrame:
    """One row per user and reference date (every day after its first event by default)."""
    return Snapshots(
        events, feedback=feedback, labels=labels, label_delay=label_delay, reference=reference
    ).table("user", dates)


def card_aggregated_features(
    events: pl.DataFrame,
    *,
    feedback: pl.DataFrame | None = None,
    labels: pl.DataFrame | None = None,
    label_delay: timedelta,
    reference: ReferenceData | None = None,
    dates: list[date] | None = None,
) -> pl.DataFrame:
    """One row per card and reference date (every day after its first event by default)."""
    return Snapshots(
        events, feedback=feedback, labels=labels, label_delay=label_delay, reference=reference
    ).table("card", dates)


def user_model_training_data(
    events: pl.DataFrame,
    *,
    feedback: pl.DataFrame,
    labels: pl.DataFrame | None = None,
    label_delay: timedelta,
    reference: ReferenceData | None = None,
) -> pl.DataFrame:
    """Per settled StandIn transaction: its user's snapshot of that day and ``label`` 1 = lost."""
    return Snapshots(
        events, feedback=feedback, labels=labels, label_delay=label_delay, reference=reference
    ).training("user")


def card_model_training_data(
    events: pl.DataFrame,
    *,
    feedback: pl.DataFrame,
    labels: pl.DataFrame | None = None,
    label_delay: timedelta,
    reference: ReferenceData | None = None,
) -> pl.DataFrame:
    """Per settled StandIn transaction: its card's snapshot of that day and ``label`` 1 = lost."""
    return Snapshots(
        events, feedback=feedback, labels=labels, label_delay=label_delay, reference=reference
    ).training("card")


class Snapshots:
    """The event history built once, and every snapshot and training table read from it.

    The four functions above each build the history (:meth:`History.build`, the costly step)
    for one table; a job that needs several builds one ``Snapshots`` (or passes a ``History``
    it built already) and asks it for each.

    >>> from datetime import datetime, timedelta, UTC
    >>> events = pl.DataFrame({"event_id": ["a"], "type": ["withdrawal"], "card_id": ["c1"],
    ...     "user_id": ["u1"], "amount": [100.0], "standin": [True],
    ...     "timestamp": [datetime(2022, 1, 1, 9, tzinfo=UTC)]})
    >>> feedback = pl.DataFrame({"target_event_id": ["a"], "label": ["standin_loss"],
    ...     "timestamp": [datetime(2022, 1, 3, tzinfo=UTC)]})
    >>> snaps = Snapshots(events, feedback=feedback, label_delay=timedelta(days=1))
    >>> snaps.table("user", None).height, snaps.training("card")["label"].to_list()
    (1, [1])
    """

    def __init__(
        self,
        events: pl.DataFrame | History,
        *,
        feedback: pl.DataFrame | None = None,
        labels: pl.DataFrame | None = None,
        label_delay: timedelta,
        reference: ReferenceData | None = None,
    ) -> None:
        self.delay = as_microseconds(label_delay)
        if self.delay <= 0:
            raise ValueError("label_delay: must be positive (a zero delay leaks labels)")
        h = self.h = events if isinstance(events, History) else History.build(events, reference)
        outcomes = _feedback(feedback)
        target = h.tx_index(outcomes["target_event_id"])
        known = outcomes["timestamp"].dt.epoch("us").to_numpy().astype(np.int64)
        label = outcomes["label"].to_numpy()
        # settlement: one outcome per transaction, the first to arrive
        settled = (target >= 0) & np.isin(label, ["standin_recovered", "standin_loss"])
        self.settled = _first_per_transaction(
            target[settled], known[settled], label[settled] == "standin_loss"
        )
        disputed = (target >= 0) & np.isin(label, _DISPUTES)
        flagged = np.flatnonzero(h.tx_flags(labels))
        tx = np.concatenate([target[disputed], flagged])
        at = np.concatenate([known[disputed], h.end[flagged] + self.delay])
        self.disputed = _first_per_transaction(tx, at, np.ones(len(tx), dtype=bool))
        self.categories = [CATEGORY_INDEX[c] for c in TRANSACTION_TYPES]

    def table(self, entity: str, dates: list[date] | None = None) -> pl.DataFrame:
        """``user_aggregated_features`` / ``card_aggregated_features`` (``entity``)."""
        h = self.h
        first = self._first_seen(entity)
        if dates is None:
            if not len(h.end):
                return self._frame(entity, np.empty(0, np.int64), np.empty(0, np.int64))
            lo = (int(h.end.min()) // DAY_US + 1) * DAY_US
            hi = (int(h.end.max()) // DAY_US + 1) * DAY_US
            days = np.arange(lo, hi + 1, DAY_US, dtype=np.int64)
        else:
            days = np.array(
                sorted({(d - date(1970, 1, 1)).days * DAY_US for d in dates}), dtype=np.int64
            )
        n_entities = len(h.names[entity])
        grid_codes = np.repeat(np.arange(n_entities, dtype=np.int64), len(days))
        grid_days = np.tile(days, n_entities)
        alive = first[grid_codes] < grid_days
        return self._frame(entity, grid_codes[alive], grid_days[alive])

    def training(self, entity: str) -> pl.DataFrame:
        """``user_model_training_data`` / ``card_model_training_data`` (``entity``)."""
        h = self.h
        tx, known, lost = self.settled
        keep = h.standin[tx] & (h.codes[entity][tx] >= 0)
        tx, known, lost = tx[keep], known[keep], lost[keep]
        days = h.end[tx] // DAY_US * DAY_US
        snap = self._frame(entity, h.codes[entity][tx], days).drop(f"{entity}_id")
        rows = h.tx[tx].select("event_id", "timestamp", "user_id", "card_id", "amount")
        return (
            pl.concat([rows, snap], how="horizontal")
            .with_columns(
                outcome_at=pl.Series(known).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
                label=pl.Series(lost.astype(np.int8)),
            )
            .sort("timestamp", "event_id")
        )

    # -- values at (entity, midnight) ----------------------------------------------------
    def _frame(self, entity: str, codes: Ints, days: Ints) -> pl.DataFrame:
        h = self.h
        before = days - 1  # just before midnight: s <= D - 1 µs, i.e. s < D
        line = self._timeline(entity)
        n30, total30 = line.sum_between(codes, before - 30 * DAY_US, before)
        n90, _ = line.sum_between(codes, before - 90 * DAY_US, before)
        settled = self._active(entity, self.settled, codes, before, np.ones_like)
        lost = self._active(entity, self.settled, codes, before, lambda x: x)
        disputed = self._active(entity, self.disputed, codes, before, np.ones_like)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean30 = np.where(n30 > 0, total30 / 100 / n30, np.nan)
            success = np.where(settled > 0, (settled - lost) / settled, np.nan)
            dispute_rate = np.where(n90 > 0, disputed / n90, np.nan)
        ids = h.names[entity].gather(codes) if len(codes) else h.names[entity].clear()
        reference_date = pl.Series(days // DAY_US, dtype=pl.Int32).cast(pl.Date)
        if entity == "user":
            created = np.append(h.created_at, np.nan)[codes]
            columns = {
                "txn_count_30d": n30,
                "avg_txn_amount_30d": mean30,
                "standin_success_rate_90d": success,
                "dispute_rate_90d": dispute_rate,
                "account_age_days": (days - created) / DAY_US,
            }
        else:
            # a card not seen before D has no age yet (its first transaction is D's or later)
            seen = self._first_seen("card")[codes] < days
            first = np.where(seen, self._first_start("card")[codes], np.nan)
            columns = {
                "card_txn_count_30d": n30,
                "card_avg_txn_amount_30d": mean30,
                "card_standin_success_90d": success,
                "card_age_days": (days - first) / DAY_US,
            }
        return pl.DataFrame(
            {f"{entity}_id": ids, "agg_reference_date": reference_date, **columns}
        ).with_columns(pl.col("^.*txn_count_30d$").cast(pl.Int64))

    def _timeline(self, entity: str) -> Timeline:
        rows = self.h.rows[entity]
        keep = np.isin(rows.category, self.categories) & (rows.tx_index >= 0)
        return Timeline(rows.code[keep], rows.time[keep], rows.cents[keep])

    def _active(self, entity, marks, codes: Ints, before: Ints, weight) -> Floats:
        """How many marked transactions count at ``before``: the transaction within 90 days
        (``before - 90 d < s``) and its mark already known (``known <= before``)."""
        h = self.h
        tx, known, flag = marks
        owner = h.codes[entity][tx]
        s = h.end[tx]
        # a mark counts from when it is known until its transaction leaves the 90-day window
        begin = np.maximum(known, s)
        end = s + 90 * DAY_US
        ok = (owner >= 0) & (begin < end)
        w = weight(flag.astype(np.int64))[ok]
        owner, begin, end = owner[ok], begin[ok], end[ok]
        times = np.concatenate([begin, end])
        owners = np.concatenate([owner, owner])
        by = np.lexsort((times, owners))
        line = Timeline(owners[by], times[by], np.concatenate([w, -w])[by])
        _, value = line.sum_between(codes, np.full_like(before, _NEVER), before)
        return value.astype(np.float64)

    def _first_seen(self, entity: str) -> Floats:
        """Per entity code: the time of its first event (µs), for the snapshot grid."""
        rows = self.h.rows[entity]
        first = np.full(len(self.h.names[entity]), np.inf)
        np.minimum.at(first, rows.code, rows.time.astype(np.float64))
        return first

    def _first_start(self, entity: str) -> Floats:
        """Per entity code: when its first transaction in replay order began (the profile's
        ``first_time``)."""
        rows = self.h.rows[entity]
        first = np.full(len(self.h.names[entity]), np.nan)
        head = rows.group_start()
        first[rows.code] = rows.start[head]
        return first


def snapshot_rows(frame: pl.DataFrame) -> list[dict]:
    """The rows of a snapshot table for the store: NaN (undefined) becomes NULL."""
    floats = [c for c, t in frame.schema.items() if t == pl.Float64]
    return frame.with_columns(pl.col(floats).fill_nan(None)).to_dicts()


def _feedback(feedback: pl.DataFrame | None) -> pl.DataFrame:
    empty = pl.DataFrame(
        schema={
            "target_event_id": pl.String,
            "label": pl.String,
            "timestamp": pl.Datetime("us", "UTC"),
        }
    )
    if feedback is None:
        return empty
    for column in ("target_event_id", "label", "timestamp"):
        if column not in feedback.columns:
            raise ValueError(f"{column}: required column missing from the feedback")
    time = pl.col("timestamp")
    if feedback.schema["timestamp"] == pl.String:
        time = time.str.to_datetime(time_zone="UTC", time_unit="us", strict=False)
    elif feedback.schema["timestamp"].time_zone is None:  # type: ignore[union-attr]
        time = time.dt.replace_time_zone("UTC")
    frame = feedback.select(
        pl.col("target_event_id").cast(pl.String),
        pl.col("label").cast(pl.String),
        time.dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias("timestamp"),
    )
    if frame["timestamp"].null_count():
        raise ValueError("timestamp: feedback with a missing or unreadable timestamp")
    return frame


def _first_per_transaction(
    tx: Ints, known: Ints, flag: np.ndarray
) -> tuple[Ints, Ints, np.ndarray]:
    """Keep, per transaction, the mark that became known first."""
    by = np.lexsort((known, tx))
    tx, known, flag = tx[by], known[by], flag[by]
    first = np.r_[True, tx[1:] != tx[:-1]] if len(tx) else np.zeros(0, dtype=bool)
    return tx[first], known[first], flag[first]


__all__ = [
    "CARD_SNAPSHOT_FEATURES",
    "USER_SNAPSHOT_FEATURES",
    "card_aggregated_features",
    "card_model_training_data",
    "snapshot_rows",
    "user_aggregated_features",
    "user_model_training_data",
]
