"""The event history as the engine replays it, in flat arrays for the offline feature builders.

Mirrors the engine: events in event-time order with ties kept in file order, a repeated
event_id decided once, start events only opening a transaction, the end (or single) event
completing it at its timestamp (``end``) with its start taken from ``started_at`` or else the
start event; the place from the terminal's reference location, else the event's own; amounts
in integer cents; logins touch only the user. No decision is needed: the engine's profiles
count every event whatever its action (a blocked transaction's amount included), so a replay
with any policy agrees.

>>> from datetime import datetime, UTC
>>> import polars as pl
>>> events = pl.DataFrame({"event_id": ["b", "a", "a"], "transaction_id": ["t2", "t1", "t1"],
...     "timestamp": [datetime(2022, 1, 2, tzinfo=UTC), datetime(2022, 1, 1, tzinfo=UTC),
...                   datetime(2022, 1, 1, tzinfo=UTC)],
...     "type": ["withdrawal", "deposit", "deposit"], "amount": [12.5, 3.0, 3.0],
...     "card_id": ["c1", "c1", "c1"]})
>>> h = History.build(events)
>>> h.tx["event_id"].to_list(), h.cents.tolist(), h.category.tolist()
(['a', 'b'], [300, 1250], [1, 0])
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import numpy.typing as npt
import polars as pl

from vigil.domain.events import TransactionType
from vigil.profiles.windows import CATEGORY_INDEX
from vigil.storage.reference import ReferenceData

US = 1_000_000
DAY_US = 86_400 * US
# A label's known time (µs) when it has none (known as early as any), and for no label.
KNOWN_ALWAYS = np.iinfo(np.int64).min
KNOWN_NEVER = np.iinfo(np.int64).max
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

_OPTIONAL: dict[str, pl.DataType] = {
    "kind": pl.String(),
    "transaction_id": pl.String(),
    "type": pl.String(),
    "phase": pl.String(),
    "started_at": pl.Datetime("us", "UTC"),
    "amount": pl.Float64(),
    "card_id": pl.String(),
    "user_id": pl.String(),
    "terminal_id": pl.String(),
    "latitude": pl.Float64(),
    "longitude": pl.Float64(),
    "success": pl.Boolean(),
    "standin": pl.Boolean(),
    "channel": pl.String(),
    "direction": pl.String(),
}
ENTITY_COLUMNS = {"card": "card_id", "user": "user_id", "terminal": "terminal_id"}
# Every event column the builders read.
EVENT_COLUMNS: tuple[str, ...] = ("event_id", "timestamp", *_OPTIONAL)


def _hugepage_switch() -> Callable[[bool], bool] | None:
    try:
        from numpy._core import multiarray
    except ImportError:  # NumPy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    return getattr(multiarray, "_set_madvise_hugepage", None)


_SET_HUGEPAGE = _hugepage_switch()


@contextmanager
def ordinary_pages() -> Iterator[None]:
    """NumPy's large arrays on ordinary pages for the duration, then as they were.

    On Linux NumPy asks the kernel for transparent huge pages for every array of 4 MB or
    more. The builders make hundreds of short-lived arrays as long as the history, each one
    memory freshly mapped; a kernel that defragments on request (``defrag = madvise``, the
    common default) then stalls on every first touch, which here cost more than all the
    arithmetic (about 60 % of the features' time on the 1.9 M-transaction bench). Ordinary
    pages change no value; the switch is NumPy's own (``NUMPY_MADVISE_HUGEPAGE``), process
    wide, and put back on exit.
    """
    if _SET_HUGEPAGE is None:
        yield
        return
    before = _SET_HUGEPAGE(False)
    try:
        yield
    finally:
        _SET_HUGEPAGE(before)


def as_microseconds(delay: timedelta, field: str = "label_delay") -> int:
    if not isinstance(delay, timedelta):
        raise TypeError(f"{field}: expected a timedelta, got {type(delay).__name__}")
    return delay // timedelta(microseconds=1)


def time_column(frame: pl.DataFrame, name: str) -> pl.Expr:
    """The column as UTC microsecond datetimes: ISO-8601 text parsed, naive times taken as UTC."""
    dtype = frame.schema[name]
    col = pl.col(name)
    if dtype == pl.String:
        return col.str.to_datetime(time_zone="UTC", time_unit="us", strict=False)
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:  # naive times are UTC, as the importers read them
            return col.dt.cast_time_unit("us").dt.replace_time_zone("UTC")
        return col.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    raise ValueError(f"{name}: expected a datetime or ISO-8601 text column, got {dtype}")


class UnreadableValues(ValueError):
    """Events with a value the builders cannot read (a missing ``event_id`` or ``timestamp``,
    or a value that is not of its column's type): per column, how many; the message names the
    first column."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        field, count = next(iter(counts.items()))
        super().__init__(f"{field}: {count} event(s) with a missing or unreadable {field}")


def typed_events(events: pl.DataFrame) -> pl.DataFrame:
    """The builders' columns ``events`` has, in the builders' types; a value that does not
    convert is null, for :func:`check_values` to count (rather than an error naming neither
    row nor file, which the caller that knows the file can then name)."""
    present = [c for c in _OPTIONAL if c in events.columns]
    return events.select(
        pl.col("event_id").cast(pl.String),
        time_column(events, "timestamp").alias("timestamp"),
        *(_typed(events, c).alias(c) for c in present),
    )


def _typed(events: pl.DataFrame, name: str) -> pl.Expr:
    dtype = _OPTIONAL[name]
    if name == "started_at":
        return time_column(events, name)
    if dtype == pl.Boolean and events.schema[name] == pl.String:
        # Polars casts no text to booleans (it refuses the whole column), and a CSV column
        # holding anything but true/false is read as text: the rest is what is unreadable.
        return (
            pl.col(name)
            .str.to_lowercase()
            .replace_strict({"true": True, "false": False}, default=None, return_dtype=dtype)
        )
    return pl.col(name).cast(dtype, strict=False)


def check_values(events: pl.DataFrame, typed: pl.DataFrame) -> None:
    """Raises :class:`UnreadableValues` when ``typed`` (:func:`typed_events` of ``events``)
    lost a value in conversion, or lacks an ``event_id`` or ``timestamp``."""
    lost = typed.select(
        pl.col("event_id").null_count(),
        pl.col("timestamp").null_count(),
        *(
            (pl.col(c).is_null() & events.get_column(c).is_not_null()).sum().alias(c)
            for c in typed.columns
            if c not in ("event_id", "timestamp")
        ),
    ).row(0, named=True)
    counts = {field: int(n) for field, n in lost.items() if n}
    if counts:
        raise UnreadableValues(counts)


def normalise_events(events: pl.DataFrame) -> pl.DataFrame:
    """The events with every column the builders use, typed, deduplicated, in replay order."""
    for required in ("event_id", "timestamp"):
        if required not in events.columns:
            raise ValueError(f"{required}: required column missing from the events")
    frame = typed_events(events)
    check_values(events, frame)
    frame = frame.with_columns(
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in _OPTIONAL.items()
        if name not in frame.columns
    ).with_columns(
        kind=pl.col("kind").fill_null("transaction"),
        phase=pl.col("phase").fill_null("single"),
        transaction_id=pl.coalesce("transaction_id", "event_id"),
        success=pl.col("success").fill_null(True),
        standin=pl.col("standin").fill_null(False),
        channel=pl.col("channel").fill_null("atm"),
    )
    distinct = _check_transactions(frame)
    if not frame["timestamp"].is_sorted():
        frame = frame.sort("timestamp", maintain_order=True)
    # A repeated event id is decided once (the engine is idempotent by event id). Hashes
    # find that cheaply; equal hashes are confirmed on the ids themselves.
    if distinct < frame.height:
        frame = frame.unique("event_id", keep="first", maintain_order=True)
    return frame.with_row_index("order")


def _check_transactions(frame: pl.DataFrame) -> int:
    """Raises naming the first bad field; returns the number of distinct event id hashes
    (counted in the same pass, side by side with the checks)."""
    is_tx = pl.col("kind") == "transaction"
    problems = frame.select(
        type=(is_tx & ~pl.col("type").is_in([t.value for t in TransactionType])).sum(),
        amount=(
            is_tx
            & (pl.col("phase") != "start")
            & (pl.col("type") != "balance_inquiry")
            & pl.col("amount").is_null()
        ).sum(),
        kind=(~pl.col("kind").is_in(["transaction", "login", "feedback"])).sum(),
        distinct=pl.col("event_id").hash().n_unique(),
    ).row(0, named=True)
    distinct = problems.pop("distinct")
    for field, count in problems.items():
        if count:
            raise ValueError(f"{field}: {count} event(s) with a missing or unknown {field}")
    return int(distinct)


class EntityRows:
    """The events touching one kind of entity, sorted by (entity code, replay order).

    Logins touch users only; their ``tx_index`` is -1 and their category a login one.
    Columns are gathered from the unsorted ``source`` on first use: each is a random gather
    over millions of rows, and not every feature needs every column.
    """

    COLUMNS = ("code", "time", "start", "category", "cents", "latitude", "longitude", "tx_index")
    code: Ints
    time: Ints  # when the event entered the profile's windows (its end), µs
    start: Ints  # when it began, µs
    category: Ints
    cents: Ints
    latitude: Floats  # where it places the entity (NaN: it says nothing about the place)
    longitude: Floats
    tx_index: Ints

    def __init__(self, source: dict[str, np.ndarray | tuple[np.ndarray, ...]], by: Ints) -> None:
        # a column given in parts is read as their concatenation, without making it
        self._source = source
        self._by = by
        self._logins: bool | None = None
        # rows picked from another EntityRows (positions in its order): a column it read
        # already is taken from there, in order, rather than gathered again at random
        self._picked_from: tuple[EntityRows, Ints] | None = None

    def __getattr__(self, name: str) -> np.ndarray:
        if name not in EntityRows.COLUMNS:
            raise AttributeError(name)
        source = self._source[name]
        parent = self._picked_from
        if parent is not None and name in vars(parent[0]):
            values = vars(parent[0])[name][parent[1]]
        elif isinstance(source, tuple):
            parts = pl.concat([pl.Series(part) for part in source], rechunk=False)
            values = parts.gather(pl.Series(self._by)).to_numpy()
        else:
            values = source[self._by]
        setattr(self, name, values)
        return values

    def __len__(self) -> int:
        return len(self._by)

    @classmethod
    def sorted(cls, **source: np.ndarray) -> EntityRows:
        """The rows (given in replay order) of present entities, sorted by entity code."""
        kept = np.flatnonzero(source["code"] >= 0)
        return cls(source, kept[stable_order(source["code"][kept])])

    @property
    def has_logins(self) -> bool:
        if self._logins is None:
            self._logins = bool(len(self)) and bool(self.tx_index.min() < 0)
        return self._logins

    def transactions(self) -> EntityRows:
        """The same rows without logins (for the windows, which count transactions only)."""
        if not self.has_logins:
            return self
        positions = np.flatnonzero(self.tx_index >= 0)
        rows = EntityRows(self._source, self._by[positions])
        rows._logins = False
        rows._picked_from = (self, positions)
        return rows

    def group_start(self) -> Ints:
        """Per row: the index of its entity's first row."""
        n, code = len(self), self.code
        first = np.r_[True, code[1:] != code[:-1]] if n else np.zeros(0, dtype=bool)
        return np.maximum.accumulate(np.where(first, np.arange(n), 0))


@dataclass
class History:
    """Completed transactions (``tx`` and aligned arrays) and, per entity kind, its rows."""

    tx: pl.DataFrame  # event_id, transaction_id, timestamp, card_id, user_id, terminal_id, amount
    start: Ints  # µs since epoch
    end: Ints
    category: Ints
    cents: Ints
    latitude: Floats  # the place as enriched (NaN: unknown)
    longitude: Floats
    standin: Bools
    codes: dict[str, Ints]  # entity → code per transaction (-1: none)
    names: dict[str, pl.Series]  # entity → its ids, indexed by code
    rows: dict[str, EntityRows]
    created_at: Floats  # per user code: account creation, µs (NaN: unknown)
    start_events: pl.DataFrame  # event_id, transaction_id of start events (feedback targets)

    @classmethod
    def build(cls, events: pl.DataFrame, reference: ReferenceData | None = None) -> History:
        with ordinary_pages():
            return cls._build(events, reference)

    @classmethod
    def _build(cls, events: pl.DataFrame, reference: ReferenceData | None) -> History:
        frame = normalise_events(events)
        is_tx = pl.col("kind") == "transaction"
        part = frame.select(
            start=is_tx & (pl.col("phase") == "start"),
            end=is_tx & (pl.col("phase") != "start"),
            login=pl.col("kind") == "login",
        )
        # each part with only the columns it needs: filtering copies every column kept
        starts = frame.select("order", "event_id", "transaction_id", "timestamp").filter(
            part["start"]
        )
        tx = frame.drop("kind", "success").filter(part["end"])
        logins = frame.select(
            "order", "user_id", "timestamp", "success", "latitude", "longitude"
        ).filter(part["login"])
        # Each entity's ids, in order of first appearance, and every row's code among them;
        # the three entities at once (Polars runs the queries side by side).
        ids = {
            entity: (
                pl.concat([tx[column], logins[column]]) if entity == "user" else tx[column]
            ).to_frame("id")
            for entity, column in ENTITY_COLUMNS.items()
        }
        found = pl.collect_all(
            [
                f.lazy().select(pl.col("id").drop_nulls().unique(maintain_order=True))
                for f in ids.values()
            ]
        )
        names = {
            entity: f["id"].rename(ENTITY_COLUMNS[entity])
            for entity, f in zip(ids, found, strict=True)
        }
        coded = pl.collect_all(
            [
                f.lazy().select(
                    pl.col("id")
                    .cast(pl.Enum(names[entity]))
                    .to_physical()
                    .cast(pl.Int64)
                    .fill_null(-1)
                )
                for entity, f in ids.items()
            ]
        )
        codes: dict[str, Ints] = {
            entity: f["id"].to_numpy() for entity, f in zip(ids, coded, strict=True)
        }
        login_users = codes["user"][tx.height :]
        codes["user"] = codes["user"][: tx.height]

        end = _us(tx["timestamp"])
        start = _us(_starts(tx, starts))
        category = _categories(tx)
        cents = (tx["amount"].fill_null(0.0) * 100).round(0).cast(pl.Int64).to_numpy()
        lat, lon = _places(tx, names["terminal"], codes["terminal"], reference)
        index = np.arange(tx.height, dtype=np.int64)
        # Only a card-present event (ATM, POS) says where the card is, as the profiles learn.
        present = (tx["channel"].is_in(["atm", "pos"]) & tx["card_id"].is_not_null()).to_numpy()
        rows = {
            "card": EntityRows.sorted(
                code=codes["card"],
                time=end,
                start=start,
                category=category,
                cents=cents,
                latitude=np.where(present, lat, np.nan),
                longitude=np.where(present, lon, np.nan),
                tx_index=index,
            ),
            "terminal": EntityRows.sorted(
                code=codes["terminal"],
                time=end,
                start=start,
                category=category,
                cents=cents,
                latitude=lat,
                longitude=lon,
                tx_index=index,
            ),
        }
        login_time = _us(logins["timestamp"])
        # A failed login never moves the user's last known place.
        ok = logins["success"].to_numpy().astype(bool)
        login_lat = np.where(ok, logins["latitude"].to_numpy().astype(np.float64), np.nan)
        login_lon = np.where(ok, logins["longitude"].to_numpy().astype(np.float64), np.nan)
        # transactions then logins; merged into replay order before sorting by user
        merged = np.argsort(
            np.concatenate([tx["order"].to_numpy(), logins["order"].to_numpy()]), kind="stable"
        )
        users = np.concatenate([codes["user"], login_users])
        kept = merged[users[merged] >= 0]
        rows["user"] = EntityRows(
            {
                "code": (codes["user"], login_users),
                "time": (end, login_time),
                "start": (start, login_time),
                "category": (category, np.full(logins.height, CATEGORY_INDEX["login"])),
                "cents": (cents, np.zeros(logins.height, np.int64)),
                "latitude": (lat, login_lat),
                "longitude": (lon, login_lon),
                "tx_index": (index, np.full(logins.height, -1, np.int64)),
            },
            kept[stable_order(users[kept])],
        )
        return cls(
            tx=tx.select(
                "event_id",
                "transaction_id",
                "timestamp",
                "card_id",
                "user_id",
                "terminal_id",
                "amount",
            ),
            start=start,
            end=end,
            category=category,
            cents=cents,
            latitude=lat,
            longitude=lon,
            standin=tx["standin"].to_numpy().astype(bool),
            codes=codes,
            names=names,
            rows=rows,
            created_at=_created_at(names["user"], reference),
            start_events=starts.select("event_id", "transaction_id"),
        )

    def tx_index(self, event_ids: pl.Series) -> Ints:
        """The completed transaction each event id names (its own, or its start's); -1: none."""
        index = self.tx.select("event_id", "transaction_id").with_row_index("i")
        by_start = self.start_events.join(index.drop("event_id"), on="transaction_id")
        lookup = pl.concat([index.select("event_id", "i"), by_start.select("event_id", "i")])
        return (
            pl.DataFrame({"event_id": event_ids.cast(pl.String)})
            .join(lookup.unique("event_id"), on="event_id", how="left", maintain_order="left")["i"]
            .cast(pl.Int64)
            .fill_null(-1)
            .to_numpy()
        )

    def tx_flags(self, labelled: pl.DataFrame | None) -> Bools:
        """Per transaction: whether ``labelled`` names it (by event_id or transaction_id)."""
        if labelled is None:
            return np.zeros(self.tx.height, dtype=bool)
        if "event_id" not in labelled.columns:
            raise ValueError("event_id: required column missing from the labels")
        ids = labelled["event_id"].cast(pl.String).drop_nulls()
        hit = self.tx["event_id"].is_in(ids.implode())
        if "transaction_id" in labelled.columns:
            tids = labelled["transaction_id"].cast(pl.String).drop_nulls()
            hit = hit | self.tx["transaction_id"].is_in(tids.implode())
        return hit.to_numpy().astype(bool)

    def tx_known_at(self, labelled: pl.DataFrame) -> Ints:
        """Per transaction: when its first label in ``labelled`` became known (µs), from the
        optional ``known_at`` column, matched as :meth:`tx_flags` matches. A label without a
        time, or no ``known_at`` column, reads as known from the start (``KNOWN_ALWAYS``);
        ``KNOWN_NEVER`` where no label names the transaction.

        >>> from datetime import datetime, UTC
        >>> h = History.build(pl.DataFrame({"event_id": ["a", "b"], "card_id": ["c", "c"],
        ...     "type": ["payment"] * 2, "amount": [1.0, 2.0],
        ...     "timestamp": [datetime(2022, 1, d, tzinfo=UTC) for d in (1, 2)]}))
        >>> known = h.tx_known_at(pl.DataFrame({"event_id": ["b", "b"],
        ...     "known_at": ["2022-01-09T00:00:00Z", "2022-01-05T00:00:00Z"]}))
        >>> bool(known[0] == KNOWN_NEVER), datetime.fromtimestamp(known[1] / US, UTC).day
        (True, 5)
        """
        out = np.full(self.tx.height, KNOWN_NEVER, dtype=np.int64)
        if "event_id" not in labelled.columns:
            raise ValueError("event_id: required column missing from the labels")
        known = (
            time_column(labelled, "known_at").dt.epoch("us").fill_null(KNOWN_ALWAYS)
            if "known_at" in labelled.columns
            else pl.lit(KNOWN_ALWAYS, pl.Int64)
        )
        index = self.tx.select("event_id", "transaction_id").with_row_index("i")
        for key in ("event_id", "transaction_id"):
            if key not in labelled.columns:
                continue
            times = labelled.select(pl.col(key).cast(pl.String), known=known).drop_nulls(key)
            hit = index.select("i", key).join(times, on=key)
            np.minimum.at(
                out,
                hit["i"].cast(pl.Int64).to_numpy(),
                hit["known"].cast(pl.Int64).to_numpy(),
            )
        return out


def _starts(tx: pl.DataFrame, starts: pl.DataFrame) -> pl.Series:
    """When each completed transaction began: ``started_at``, else its start event's time."""
    given = tx["started_at"]
    unpaired = (tx["phase"] == "end") & given.is_null()
    if not unpaired.any():
        return given.fill_null(tx["timestamp"])
    # The engine pairs an end with its start through the card's open transactions, so only
    # a start decided earlier, on a transaction with a card, lends its time.
    opened = starts.select(
        "transaction_id", opened_order="order", opened=pl.col("timestamp")
    ).unique("transaction_id", keep="first")
    paired = tx.select("transaction_id", "order", "card_id", "phase", "started_at", "timestamp")
    paired = paired.join(opened, on="transaction_id", how="left", maintain_order="left")
    lends = (
        (pl.col("phase") == "end")
        & (pl.col("opened_order") < pl.col("order"))
        & pl.col("card_id").is_not_null()
    )
    return paired.select(
        pl.coalesce("started_at", pl.when(lends).then("opened"), "timestamp")
    ).to_series()


def _categories(tx: pl.DataFrame) -> Ints:
    """The window category of each transaction, as the enricher assigns it: a credited
    transfer is an incoming one."""
    types = tx["type"].cast(pl.Enum([t.value for t in TransactionType])).to_physical()
    index = np.array([CATEGORY_INDEX[t.value] for t in TransactionType])
    category = index[types.to_numpy()]
    incoming = (tx["type"] == "transfer") & (tx["direction"] == "credit")
    category[incoming.fill_null(False).to_numpy()] = CATEGORY_INDEX["transfer_in"]
    return category


def stable_order(keys: Ints) -> Ints:
    """Indexes that sort ``keys`` stably (equal keys keep their order)."""
    if not keys.size:
        return np.zeros(0, np.int64)
    low, high = int(keys.min()), int(keys.max())
    if low >= 0 and high < 2**32:
        # NumPy sorts 16-bit keys stably by radix; two passes, low half then high half,
        # sort 32-bit ones (a least-significant-digit radix sort)
        order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
        if high >= 2**16:
            order = order[np.argsort((keys[order] >> 16).astype(np.uint16), kind="stable")]
        return order.astype(np.int64, copy=False)
    frame = pl.DataFrame({"key": keys}).with_row_index("i")
    return frame.sort("key", maintain_order=True)["i"].to_numpy().astype(np.int64)


def _us(series: pl.Series) -> Ints:
    return series.dt.epoch("us").to_numpy().astype(np.int64)


def _places(
    tx: pl.DataFrame, terminals: pl.Series, codes: Ints, reference: ReferenceData | None
) -> tuple[Floats, Floats]:
    """Where each transaction happened: its terminal's location, else the event's own."""
    known = reference.terminals if reference is not None else {}
    spots = [known.get(t) for t in terminals.to_list()]
    # code -1 (no terminal) reads the NaN appended at the end
    t_lat = np.array([np.nan if t is None else t.latitude for t in spots] + [np.nan])[codes]
    t_lon = np.array([np.nan if t is None else t.longitude for t in spots] + [np.nan])[codes]
    lat = tx["latitude"].fill_null(np.nan).to_numpy().astype(np.float64)
    lon = tx["longitude"].fill_null(np.nan).to_numpy().astype(np.float64)
    at_terminal = ~np.isnan(t_lat)
    return np.where(at_terminal, t_lat, lat), np.where(at_terminal, t_lon, lon)


def _created_at(users: pl.Series, reference: ReferenceData | None) -> Floats:
    known = reference.users if reference is not None else {}
    out = np.full(len(users), np.nan)
    for i, user_id in enumerate(users.to_list()):
        user = known.get(user_id)
        if user is not None and user.created_at is not None:
            out[i] = round(user.created_at.timestamp() * US)
    return out
