"""Offline features: the declared features of every completed transaction, point-in-time correct.

Each value is what :func:`~vigil.features.online.online_features` reads from the profiles at
decision time: the state just *before* the event, from events decided earlier only. Windows
follow the profiles' convention ``t - W < s <= t`` (:mod:`vigil.features.timeline` does them
exactly, in integer microseconds and cents); amount statistics use the entity's earlier amounts
of the same transaction type; the p95 is the profile's own DDSketch answer (bucket midpoint of
the lower 95th-percentile value), so it matches online, and a true quantile within alpha.

>>> from datetime import datetime, timedelta, UTC
>>> import polars as pl
>>> events = pl.DataFrame({
...     "event_id": ["e0", "e1", "e2"], "type": ["withdrawal"] * 3, "card_id": ["c1"] * 3,
...     "amount": [100.0, 300.0, 200.0],
...     "timestamp": [datetime(2022, 1, 1, h, tzinfo=UTC) for h in (9, 10, 11)]})
>>> out = transaction_features(events, label_delay=timedelta(days=7))
>>> out.select("card_txn_count_1d", "card_avg_amount_1d", "card_amount_to_mean").row(2)
(2.0, 200.0, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from vigil.features.history import (
    US,
    Bools,
    EntityRows,
    Floats,
    History,
    Ints,
    as_microseconds,
    ordinary_pages,
    stable_order,
)
from vigil.features.spec import FEATURES, P95, TRANSACTION_TYPES, WINDOWED, Feature
from vigil.features.timeline import Timeline
from vigil.geo import haversine_km
from vigil.profiles.fraud import TILES as FRAUD_TILES
from vigil.profiles.fraud import WINDOW_INDEX as FRAUD_WINDOW_INDEX
from vigil.profiles.fraud import window_end_us
from vigil.profiles.sketch import ALPHA
from vigil.profiles.windows import CATEGORY_INDEX, TILES, WINDOWS, tile_of
from vigil.storage.reference import ReferenceData

_GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(_GAMMA)
_ZERO_BUCKET = -1e18  # the sketch counts values at or below 1e-9 as zeros, below every bucket
_DAY_US = 86_400 * US


def transaction_features(
    events: pl.DataFrame,
    *,
    labels: pl.DataFrame | None = None,
    label_delay: timedelta,
    reference: ReferenceData | None = None,
    features: tuple[Feature, ...] = FEATURES,
) -> pl.DataFrame:
    """One row per decided completed transaction with every declared feature (NaN: undefined).

    ``features`` are the built-in ones by default; a feature file's are added to them
    (:mod:`vigil.features.declared`).

    ``labels`` names fraudulent events (``event_id``, optionally ``transaction_id``); each is
    known ``label_delay`` after the transaction, which is what terminal risk may use, or,
    with a ``known_at`` column (a label's arrival, e.g. its feedback's time), from the later
    of the two, as the engine's :class:`~vigil.features.TerminalRisk` learns it. Without
    labels the terminal risk features are NaN and there is no ``label`` column. ``reference``
    supplies terminal locations and account creation dates, as the engine's enrichment does.
    """
    delay = as_microseconds(label_delay)
    if delay <= 0:
        raise ValueError("label_delay: must be positive (a zero delay leaks labels)")
    with ordinary_pages():
        return _transaction_features(events, labels, delay, reference, features)


def _transaction_features(
    events: pl.DataFrame,
    labels: pl.DataFrame | None,
    delay: int,
    reference: ReferenceData | None,
    features: tuple[Feature, ...],
) -> pl.DataFrame:
    history = History.build(events, reference)
    fraud = history.tx_flags(labels)
    # labels without arrival times all count from one delay on: nothing to look up
    has_times = labels is not None and "known_at" in labels.columns
    known = history.tx_known_at(labels) if has_times else None  # type: ignore[arg-type]
    builder = _Builder(history, fraud if labels is not None else None, delay, known)
    columns = builder.columns(features)
    out = history.tx.with_columns(
        pl.DataFrame(columns, schema={name: pl.Float64 for name in columns})
    )
    if labels is not None:
        out = out.with_columns(label=pl.Series(fraud.astype(np.int8)))
    return out


class _Builder:
    """Computes feature columns in each entity's sorted rows, sharing the intermediate steps,
    and scatters them back to transaction order.

    :meth:`columns` works through one entity at a time and, within it, one window width at
    a time, dropping each shared step once its features are done: the steps are arrays as
    long as the history, and memory touched for the first time is much of the cost.
    """

    def __init__(
        self, history: History, fraud: Bools | None, delay_us: int, known: Ints | None = None
    ) -> None:
        self.h = history
        self.fraud = fraud
        self.delay = delay_us
        self.known = known
        self._cache: dict[Any, Any] = {}

    def columns(self, features: tuple[Feature, ...]) -> dict[str, Floats]:
        """Every feature of ``features``, by name, in their order."""
        out: dict[str, Floats] = {}
        for entity in dict.fromkeys(f.entity for f in features):
            mine = [f for f in features if f.entity == entity]
            # the features over every row (logins too) first: the transactions' rows then
            # take the columns those read in order instead of gathering them again
            for f in mine:
                if f.aggregation in ("since_last", "km_from_last", "age_days"):
                    out[f.name] = self.feature(f)
            windows = [f for f in mine if f.aggregation in WINDOWED]
            for window in dict.fromkeys(f.window for f in windows):
                for f in windows:
                    if f.window == window:
                        out[f.name] = self.feature(f)
                self._forget(("edge", entity))
            for f in mine:
                if f.name not in out:
                    out[f.name] = self.feature(f)
            self._forget(entity)
        return {f.name: out[f.name] for f in features}

    def feature(self, f: Feature) -> Floats:
        return getattr(self, f"_{f.aggregation}")(f)

    def _memo(self, key: Any, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def _forget(self, prefix: Any) -> None:
        """Drop the shared steps whose key starts with ``prefix`` (a tuple or an entity)."""
        parts = prefix if isinstance(prefix, tuple) else (prefix,)
        for key in list(self._cache):
            if isinstance(key, tuple) and key[: len(parts)] == parts:
                del self._cache[key]

    def _scatter(self, entity: str, values: np.ndarray) -> Floats:
        """Values per row of the entity (logins included) → per transaction."""
        rows = self.h.rows[entity]
        if not rows.has_logins:
            return _scatter(self.h, rows, values)
        keep, index = self._memo(
            (entity, "scatter"), lambda: (rows.tx_index >= 0, rows.tx_index[rows.tx_index >= 0])
        )
        out = np.full(self.h.tx.height, np.nan)
        out[index] = values[keep]
        return out

    # -- windows -------------------------------------------------------------------------
    def _tx_rows(self, entity: str) -> EntityRows:
        return self._memo((entity, "tx_rows"), lambda: self.h.rows[entity].transactions())

    def _timeline(self, entity: str) -> Timeline:
        rows = self._tx_rows(entity)
        return self._memo((entity, "timeline"), lambda: Timeline(rows.code, rows.time))

    def _edge(self, entity: str, window: int) -> Ints:
        """Per row of the entity's transactions: its first row inside the profile window
        ``window`` read at the row (``edge(t) < s``, :mod:`vigil.profiles.windows`)."""
        rows = self._tx_rows(entity)
        width, tile = round(WINDOWS[window][1] * US), round(TILES[window] * US)
        return self._memo(
            ("edge", entity, window),
            lambda: self._timeline(entity).window_edges(rows.code, width, tile),
        )

    def _window(self, f: Feature) -> tuple[Ints, Ints | None, EntityRows]:
        """(count, sum of cents) of the entity's earlier transactions of ``f``'s types in the
        window, per row of the entity's transactions (returned too); the sum only for an
        amount feature."""
        rows = self._tx_rows(f.entity)
        lo = self._edge(f.entity, f.window_index)  # type: ignore[arg-type]
        # Rows before this one in replay order, after the window's edge: lo .. here.
        if self._every_type(f):
            count = self._memo((f.entity, "index"), lambda: np.arange(len(rows))) - lo
        else:
            counts = self._running(f.entity, f.category_indexes, "count")
            count = counts[:-1] - counts[lo]
        if f.aggregation == "count":
            return count, None, rows
        sums = self._running(f.entity, f.category_indexes, "cents")
        total = sums[lo]
        np.subtract(sums[:-1], total, out=total)
        return count, total, rows

    def _every_type(self, f: Feature) -> bool:
        """Whether ``f`` counts every transaction of the entity's rows (no filter)."""
        return set(f.categories) >= set(TRANSACTION_TYPES)

    def _running(self, entity: str, categories: tuple[int, ...], what: str) -> Ints:
        """Running count or amount (``what``) of the entity's transactions of
        ``categories``, from 0."""

        def make() -> Ints:
            rows = self._tx_rows(entity)
            out = np.zeros(len(rows) + 1, np.int64)
            every = set(categories) >= {CATEGORY_INDEX[c] for c in TRANSACTION_TYPES}
            wanted = None if every else np.isin(rows.category, categories)
            if what == "count":
                np.cumsum(np.ones(len(rows), np.int64) if wanted is None else wanted, out=out[1:])
            elif wanted is None:
                np.cumsum(rows.cents, out=out[1:])
            else:
                np.cumsum(np.where(wanted, rows.cents, 0), out=out[1:])
            return out

        return self._memo((entity, "running", what, categories), make)

    def _count(self, f: Feature) -> Floats:
        count, _, rows = self._window(f)
        return _scatter(self.h, rows, count)

    def _sum_amount(self, f: Feature) -> Floats:
        _, total, rows = self._window(f)
        return _scatter(self.h, rows, total / 100)  # type: ignore[operator]

    def _mean_amount(self, f: Feature) -> Floats:
        count, total, rows = self._window(f)
        mean = total / 100  # type: ignore[operator]
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(mean, count, out=mean)
        mean[count == 0] = np.nan
        return _scatter(self.h, rows, mean)

    # -- amount statistics ---------------------------------------------------------------
    def _stats(self, entity: str) -> dict[str, Floats]:
        return self._memo((entity, "stats"), lambda: _amount_stats(self.h, self._tx_rows(entity)))

    def _zscore(self, f: Feature) -> Floats:
        return self._stats(f.entity)["zscore"]

    def _to_mean(self, f: Feature) -> Floats:
        return self._stats(f.entity)["to_mean"]

    def _to_p95(self, f: Feature) -> Floats:
        return self._stats(f.entity)["to_p95"]

    # -- last event, place, age ----------------------------------------------------------
    def _last(self, entity: str) -> dict[str, Floats]:
        return self._memo((entity, "last"), lambda: _last_event(self.h.rows[entity]))

    def _since_last(self, f: Feature) -> Floats:
        rows = self.h.rows[f.entity]
        return self._scatter(f.entity, (rows.start - self._last(f.entity)["last_start"]) / US)

    def _km_from_last(self, f: Feature) -> Floats:
        last = self._last(f.entity)
        here = self._scatter(f.entity, last["lat"]), self._scatter(f.entity, last["lon"])
        h = self.h
        km = haversine_km(here[0], here[1], h.latitude, h.longitude)
        return np.where(np.isnan(here[0]) | np.isnan(h.latitude), np.nan, km)

    def _age_days(self, f: Feature) -> Floats:
        h = self.h
        if f.entity == "user":
            created = np.append(h.created_at, np.nan)[h.codes["user"]]  # code -1: the NaN
            return (h.start - created) / _DAY_US
        rows = h.rows[f.entity]
        age = (rows.start - self._last(f.entity)["first_start"]) / _DAY_US
        return self._scatter(f.entity, age)

    # -- terminal risk -------------------------------------------------------------------
    def _fraud_rate(self, f: Feature) -> Floats:
        """Per transaction at ``t``: the known-fraud share of its terminal's transactions in
        the window of ``f`` ending at ``floor((t - d) / h) * h``, read in the tiles ``h`` the
        terminal profile keeps (:mod:`vigil.profiles.fraud`)."""
        h = self.h
        if self.fraud is None:
            return np.full(h.tx.height, np.nan)
        rows = h.rows["terminal"]
        fraud = self.fraud

        def timeline() -> Timeline:
            return Timeline(rows.code, rows.time, fraud[rows.tx_index].astype(np.int64))

        line = self._memo(("terminal", "fraud_timeline"), timeline)
        window = FRAUD_WINDOW_INDEX[f.window_seconds]  # type: ignore[index]
        upto = window_end_us(window, rows.time, self.delay)
        hi = line.position_le(rows.code, upto)
        width = round(f.window_seconds * US)  # type: ignore[operator]
        lo = line.position_le(rows.code, upto - width)
        count = hi - lo
        frauds = line.cumulative[hi] - line.cumulative[lo]
        frauds = frauds - self._unknown_yet(rows, window, width)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(count > 0, frauds / count, np.nan)
        return self._scatter("terminal", rate)

    def _unknown_yet(self, rows: EntityRows, window: int, width: int) -> Ints:
        """Per terminal row at ``t``: the frauds in its window whose label arrived after ``t``.

        A label at ``s`` (in tile ``j`` of length ``h``) arriving at ``k`` later than
        ``j h + d`` sits in the windows read at ``j h + d <= t < j h + d + W`` but is unknown
        while ``t < k``: it is missing from the reads at ``j h + d <= t < min(k, j h + d + W)``,
        counted as (starts <= t) - (ends <= t).
        """
        h = self.h
        if self.known is None or self.fraud is None:
            return np.zeros(len(rows), np.int64)
        code = h.codes["terminal"]
        tile = round(FRAUD_TILES[window] * US)
        seen = tile_of(h.end, tile) * tile + self.delay
        late = np.flatnonzero(self.fraud & (self.known > seen) & (code >= 0))
        begin, stop = seen[late], np.minimum(self.known[late], seen[late] + width)
        keep = begin < stop
        late, begin, stop = late[keep], begin[keep], stop[keep]
        if not late.size:
            return np.zeros(len(rows), np.int64)
        out = np.zeros(len(rows), np.int64)
        for edge, sign in ((begin, 1), (stop, -1)):
            order = np.lexsort((edge, code[late]))
            line = Timeline(code[late][order], edge[order])
            out += sign * line.count_le(rows.code, rows.time)
        return out


def _scatter(h: History, rows: EntityRows, values: np.ndarray) -> Floats:
    """Values per sorted entity row → per transaction (NaN where the entity is absent)."""
    out = np.full(h.tx.height, np.nan)
    index = rows.tx_index
    if rows.has_logins:
        keep = index >= 0
        index, values = index[keep], values[keep]
    out[index] = values
    return out


def _amount_stats(h: History, rows: EntityRows) -> dict[str, Floats]:
    """Per transaction: its amount's z-score, ratio to the mean and ratio to the sketch p95
    of the entity's earlier amounts of the same type (n, mean, std (n - 1) as Welford's
    RunningStats, the p95 as the QuantileSketch holds them); NaN where undefined. ``rows``
    are the entity's transactions (no logins)."""
    n_tx = h.tx.height
    out = {name: np.full(n_tx, np.nan) for name in ("zscore", "to_mean", "to_p95")}
    if not len(rows):
        return out
    # (type, entity) groups, each in replay order: the rows are sorted by entity already, so
    # a stable sort by type alone groups them
    by = stable_order(rows.category)
    group = rows.category[by]
    group *= int(rows.code.max()) + 1
    group += rows.code[by]
    cents = rows.cents[by]
    first = np.r_[True, group[1:] != group[:-1]]
    del group
    head = np.maximum.accumulate(np.where(first, np.arange(len(by)), 0))
    position = np.arange(len(by)) - head
    n = position.astype(np.float64)  # earlier values in the group
    # Shift by the group's first value: sums stay exact integers of cents and an unchanging
    # amount has exactly zero spread, as Welford's has. Squares are summed exactly in two
    # 32-bit halves so a long global running sum loses nothing.
    start = cents[head]
    d = cents - start
    s1 = _prior_sum(d, head).astype(np.float64)
    square = d
    square *= d
    s2 = _prior_sum(square >> 32, head) * 4294967296.0
    square &= 0xFFFFFFFF
    s2 += _prior_sum(square, head)
    del square
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_c = start + s1 / n
        var_c = np.maximum(s2 - s1**2 / n, 0.0) / (n - 1)
    del s1, s2, start
    amount = cents / 100
    keys = np.full(len(by), _ZERO_BUCKET)
    positive = amount > 1e-9
    keys[positive] = np.ceil(np.log(amount[positive]) / _LOG_GAMMA)
    del positive
    # The lower 95th-percentile bucket of the earlier values (the sketch's own answer): an
    # expanding quantile per group, as a rolling quantile over an index that leaves a gap as
    # long as the longest group between groups, read one row later.
    longest = int(position.max()) + 1
    roll_at = np.cumsum(first) * (2 * longest) + position
    quantile = (
        pl.DataFrame({"i": roll_at, "k": keys})
        .select(
            pl.col("k").rolling_quantile_by(
                "i", window_size=f"{longest}i", quantile=P95, interpolation="lower"
            )
        )["k"]
        .fill_null(np.nan)
        .to_numpy()
    )
    del roll_at, keys
    prior_key = np.where(position > 0, np.r_[np.nan, quantile[:-1]], np.nan)
    p95 = np.where(prior_key == _ZERO_BUCKET, 0.0, 2 * _GAMMA**prior_key / (_GAMMA + 1))
    del prior_key, quantile
    index = rows.tx_index[by]
    mean = mean_c / 100
    std = np.sqrt(var_c) / 100
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (amount - mean) / std
        out["zscore"][index] = np.where((n > 1) & (std > 0), z, np.nan)
        del z, std
        out["to_mean"][index] = np.where((n > 0) & (mean > 0), amount / mean, np.nan)
        out["to_p95"][index] = np.where((n > 0) & (p95 > 0), amount / p95, np.nan)
    return out


def _prior_sum(values: Ints, head: Ints) -> Ints:
    """Per row: the sum of the earlier values of its group (exact, in integers)."""
    cum = np.concatenate([[0], np.cumsum(values)])
    return cum[:-1] - cum[head]


def _last_event(rows: EntityRows) -> dict[str, Floats]:
    """Per entity row: the entity's latest start, last known place and first start before it."""
    n = len(rows)
    if not n:
        empty = np.zeros(0)
        return {"last_start": empty, "lat": empty, "lon": empty, "first_start": empty}
    code, start = rows.code, rows.start
    first = np.r_[True, code[1:] != code[:-1]]  # the entity's first row: nothing before it
    heads = np.flatnonzero(first)
    head = np.repeat(heads, np.diff(np.r_[heads, n]))
    # Latest start so far: a running maximum that restarts per entity, by lifting each
    # entity's starts above every earlier entity's (codes ascend through the rows); the value
    # before a row is the one its previous row left.
    low = int(start.min())
    span = int(start.max()) - low + 1
    last_start = np.empty(n)
    last_start[0] = np.nan
    if (int(code.max()) + 1) * span < 2**62:
        base = code * span
        running = base + start
        running -= low
        np.maximum.accumulate(running, out=running)
        running -= base
        del base
        running += low
    else:  # too wide for one integer: let Polars restart the maximum per entity
        running = (
            pl.DataFrame({"c": code, "s": start}).select(pl.col("s").cum_max().over("c"))["s"]
        ).to_numpy()
    last_start[1:] = running[:-1]
    del running
    last_start[first] = np.nan
    # The last row before this one, in the same entity, that placed it.
    located = np.where(np.isnan(rows.latitude), -1, np.arange(n))
    np.maximum.accumulate(located, out=located)
    source = np.empty(n, np.int64)
    source[0] = -1
    source[1:] = located[:-1]
    del located
    unknown = source < head
    np.maximum(source, 0, out=source)
    lat, lon = rows.latitude[source], rows.longitude[source]
    lat[unknown] = np.nan
    lon[unknown] = np.nan
    del source, unknown
    first_start = start[head].astype(np.float64)
    first_start[first] = np.nan
    return {"last_start": last_start, "lat": lat, "lon": lon, "first_start": first_start}
