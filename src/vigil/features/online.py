"""Online features: the declared features of one event, read from the engine's profiles.

Call :func:`online_features` where the detectors run (the profiles advanced to the event's time,
not yet updated with it); a detector that returns no reasons is the simplest hook (see
tests/features/conftest.py). Undefined values (no history, no location, no amount) are NaN.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Transaction
>>> from vigil.features.spec import FEATURE_NAMES
>>> from vigil.profiles import Profile
>>> at = [datetime(2022, 1, 1, hour, tzinfo=UTC).timestamp() for hour in (9, 10, 11)]
>>> card = Profile()
>>> for when, cents in zip(at, (10000, 30000)):
...     card.record_transaction(when, when, 0, cents, place=None, latitude=None, longitude=None)
>>> tx = Transaction(event_id="e", transaction_id="t", card_id="c-1", type="withdrawal",
...                  amount="200.00", timestamp=datetime(2022, 1, 1, 11, tzinfo=UTC))
>>> card.advance(at[2])
>>> ctx = Context(tx, at[2], at[2], 0, 20000, profiles={"card": card})
>>> f = online_features(ctx)
>>> [f[name] for name in ("card_txn_count_1d", "card_avg_amount_1d", "card_amount_to_mean",
...                       "card_seconds_since_last")]
[2.0, 200.0, 1.0, 3600.0]
>>> len(f) == len(FEATURE_NAMES), math.isnan(f["user_txn_count_1d"])  # no user profile
(True, True)

A model reads its features as a row in its own order: :func:`online_row` gives a reader for
those names (a name that is not a declared feature reads NaN), with no dictionary in between:

>>> online_row(["card_seconds_since_last", "amount", "card_txn_count_1d"]).read(ctx, None)
[3600.0, nan, 2.0]

The reader is one generated Python function per list of names (the engine scores every
transaction with it, so it has no loop, no per-feature dispatch and every slot index a
literal); the source is built only from the declarations in :mod:`vigil.features.spec`, never
from the names it was given, and is kept on the reader (``source``) to read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from vigil.detect.context import Context
from vigil.features.risk import TerminalRisk
from vigil.features.spec import FEATURE_NAMES, FEATURES, P95, WINDOWED, Feature
from vigil.geo import haversine_km
from vigil.profiles.windows import N_CATEGORIES

_NAN = math.nan
_DAY = 86400.0

Read = Callable[[Context, TerminalRisk | None], list[float]]


def online_features(
    ctx: Context,
    *,
    risk: TerminalRisk | None = None,
    features: tuple[Feature, ...] = FEATURES,
) -> dict[str, float]:
    """Every feature of ``features`` (the built-in ones by default; a feature file's are
    added to them) for the event in ``ctx``, by name, in declaration order."""
    if features is FEATURES:
        return dict(zip(FEATURE_NAMES, _every_feature().read(ctx, risk), strict=True))
    names = tuple(f.name for f in features)
    return dict(zip(names, _row_reader(names, features).read(ctx, risk), strict=True))


def online_row(names: Sequence[str], features: tuple[Feature, ...] = FEATURES) -> RowReader:
    """The reader of the features ``names`` among ``features``, in that order (one per list
    of names)."""
    return _row_reader(tuple(names), features)


class RowReader:
    """``read(ctx, risk)``: a new list of the features ``names`` for the event in ``ctx``.

    Each value is what :func:`online_features` gives under that name (NaN for a name that is
    not a declared feature); ``risk`` is the engine's :class:`TerminalRisk` (None: the terminal
    fraud rates are NaN).
    """

    def __init__(self, names: Sequence[str], features: tuple[Feature, ...] = FEATURES) -> None:
        self.names = tuple(names)
        targets: dict[int, list[int]] = {}  # declared feature index → output positions
        declared = {f.name: at for at, f in enumerate(features)}
        for position, name in enumerate(self.names):
            if name in declared:
                targets.setdefault(declared[name], []).append(position)
        self.source, constants = _generate(len(self.names), targets, features)
        namespace: dict[str, Any] = {
            "_NAN": _NAN,
            "_P95": P95,
            "_haversine_km": haversine_km,
        }
        namespace.update(constants)
        exec(compile(self.source, "<vigil.features.online>", "exec"), namespace)
        #: The generated function itself, no wrapper.
        self.read: Read = namespace["read"]


@cache
def _row_reader(names: tuple[str, ...], features: tuple[Feature, ...]) -> RowReader:
    return RowReader(names, features)


@cache
def _every_feature() -> RowReader:
    return RowReader(FEATURE_NAMES)


class _Code:
    """Lines of the generated function, and the values it reads as named constants."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.constants: dict[str, Any] = {}

    def line(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def constant(self, value: Any) -> str:
        name = f"_C{len(self.constants)}"
        self.constants[name] = value
        return name


def _store(positions: list[int]) -> str:
    """``v[i] = v[j] = `` for every output position of one feature."""
    return "".join(f"v[{int(i)}] = " for i in positions)


def _slots(base: int, categories: tuple[int, ...]) -> list[int]:
    return [int(base + c) for c in categories]


def _total(array: str, slots: list[int]) -> str:
    """The sum of the slots, added in order as ``sum`` would (integers: exact anyway)."""
    return " + ".join(f"{array}[{s}]" for s in slots) or "0"


def _generate(
    width: int, targets: dict[int, list[int]], features: tuple[Feature, ...]
) -> tuple[str, dict[str, Any]]:
    code = _Code()
    code.line(0, "def read(ctx, risk):")
    code.line(1, f"v = [_NAN] * {int(width)}")
    entities: dict[str, list[tuple[Feature, list[int]]]] = {}
    user_age: list[int] | None = None
    rates: list[tuple[float, list[int]]] = []
    for at, f in enumerate(features):
        positions = targets.get(at)
        if positions is None:
            continue
        if f.aggregation == "fraud_rate":
            rates.append((f.window_seconds, positions))  # type: ignore[arg-type]
        elif f.aggregation == "age_days" and f.entity == "user":
            # The account's age comes from the bank's own record, not from what vigil has seen.
            user_age = positions
        else:
            entities.setdefault(f.entity, []).append((f, positions))
    kinds = {f.aggregation for features in entities.values() for f, _ in features}
    if kinds & {"since_last", "age_days"} or user_age is not None:
        code.line(1, "start = ctx.start")
    if kinds & {"zscore", "to_mean", "to_p95"}:
        code.line(1, "amount_cents = ctx.amount_cents")
        code.line(1, "category = ctx.category")
    if "km_from_last" in kinds:
        code.line(1, "latitude = ctx.latitude")
    if entities:
        code.line(1, "profiles = ctx.profiles")
    for entity, features in entities.items():
        code.line(1, f"p = profiles.get({code.constant(entity)})")
        code.line(1, "if p is not None:")
        _entity(code, entity, features)
    if user_age is not None:
        code.line(1, "user = ctx.user")
        code.line(1, "if user is not None and user.created_at is not None:")
        code.line(2, f"{_store(user_age)}(start - user.created_at.timestamp()) / {_DAY!r}")
    if rates:
        # read from the terminal's profile (its fraud tiles), as every process sharing it does
        code.line(1, "if risk is not None:")
        code.line(2, f"terminal = ctx.profiles.get({code.constant('terminal')})")
        code.line(2, "if terminal is not None:")
        code.line(3, "end = ctx.end")
        code.line(3, "rate = risk.rate")
        for window, positions in rates:
            code.line(3, f"{_store(positions)}rate(terminal, end, {float(window)!r})")
    code.line(1, "return v")
    return "\n".join(code.lines) + "\n", code.constants


def _entity(code: _Code, entity: str, features: list[tuple[Feature, list[int]]]) -> None:
    """The body reading one entity's profile ``p`` (present)."""
    # per (window, types): the output positions of its count, its total and its mean
    # amount; one read of the counts serves all three
    windows: dict[tuple[int, tuple[int, ...]], tuple[list[int], list[int], list[int]]] = {}
    single: dict[str, list[int]] = {}
    for f, positions in features:
        kind = f.aggregation
        if kind in WINDOWED:
            base = f.window_index * N_CATEGORIES  # type: ignore[operator]
            counts, sums, means = windows.setdefault((base, f.category_indexes), ([], [], []))
            {"count": counts, "sum_amount": sums, "mean_amount": means}[kind].extend(positions)
        elif kind in ("zscore", "to_mean", "to_p95", "since_last", "km_from_last", "age_days"):
            single.setdefault(kind, []).extend(positions)
        else:  # pragma: no cover - a declared aggregation without an online reader
            raise ValueError(f"aggregation: {kind!r} has no online reader for {entity}")
    if windows:
        code.line(2, "w = p.windows")
        code.line(2, "c = w.counts")
        if any(sums or means for _, sums, means in windows.values()):
            code.line(2, "t = w.sums")
    for (base, categories), (counts, sums, means) in windows.items():
        slots = _slots(base, categories)
        code.line(2, f"n = {_total('c', slots)}")
        if counts:
            code.line(2, f"{_store(counts)}float(n)")
        if sums:
            code.line(2, f"{_store(sums)}({_total('t', slots)}) / 100")
        if means:
            code.line(2, "if n:")
            code.line(3, f"{_store(means)}({_total('t', slots)}) / 100 / n")
    amounts = [kind for kind in ("zscore", "to_mean", "to_p95") if kind in single]
    if amounts:
        # z-score, ratio to mean and to p95 of the entity's earlier amounts of this type
        code.line(2, "if amount_cents is not None:")
        code.line(3, "stats = p.stats.get(category)")
        code.line(3, "if stats is not None and stats.n != 0:")
        code.line(4, "amount = amount_cents / 100")
        if "zscore" in single:
            code.line(4, "if stats.n > 1:")
            code.line(5, "std = stats.std")
            code.line(5, "if std > 0:")
            code.line(6, f"{_store(single['zscore'])}(amount - stats.mean) / std")
        if "to_mean" in single:
            code.line(4, "if stats.mean > 0:")
            code.line(5, f"{_store(single['to_mean'])}amount / stats.mean")
        if "to_p95" in single:
            code.line(4, "sketch = p.quantiles.get(category)")
            code.line(4, "if sketch is not None:")
            code.line(5, "p95 = sketch.quantile(_P95)")
            code.line(5, "if p95 > 0:")
            code.line(6, f"{_store(single['to_p95'])}amount / p95")
    if "since_last" in single:
        code.line(2, "last = p.last_time")
        code.line(2, "if last is not None:")
        code.line(3, f"{_store(single['since_last'])}start - last")
    if "km_from_last" in single:
        code.line(2, "if latitude is not None:")
        code.line(3, "last = p.last_latitude")
        code.line(3, "if last is not None:")
        code.line(
            4,
            f"{_store(single['km_from_last'])}_haversine_km(float(last), "
            "float(p.last_longitude), float(latitude), float(ctx.longitude))",
        )
    if "age_days" in single:
        code.line(2, "first = p.first_time")
        code.line(2, "if first is not None:")
        code.line(3, f"{_store(single['age_days'])}(start - first) / {_DAY!r}")
