"""The declared features: each named once with its entity, aggregation, window and filter.

Both computations (online from a profile, offline over the event history) are driven by these
declarations, so adding a feature here adds it to both.

>>> f = feature("card_txn_count_1d")
>>> f.entity, f.aggregation, f.window, f.window_seconds
('card', 'count', '1d', 86400.0)
>>> [f.name for f in FEATURES if f.entity == "terminal"]
['terminal_fraud_rate_1d', 'terminal_fraud_rate_7d', 'terminal_fraud_rate_30d']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vigil.profiles.windows import CATEGORIES, CATEGORY_INDEX, WINDOW_INDEX, WINDOWS

Entity = Literal["card", "user", "terminal"]
#: The windowed aggregations (what a feature file may declare).
WINDOWED: tuple[str, ...] = ("count", "sum_amount", "mean_amount")
Aggregation = Literal[
    "count",  # completed transactions in the window
    "sum_amount",  # their total amount (0 when none)
    "mean_amount",  # their mean amount (NaN when none)
    "zscore",  # (amount - mean) / std of the entity's earlier amounts of the same type
    "to_mean",  # amount / that mean
    "to_p95",  # amount / that p95 (the profile's DDSketch, relative error alpha)
    "since_last",  # seconds since the entity's last event began
    "km_from_last",  # great-circle distance from the entity's last known location
    "age_days",  # days since the entity was first seen (user: since its account was created)
    "fraud_rate",  # share of known-fraud transactions in the label-delayed window
]
# Every window category that is a transaction (not a login): incoming transfers included.
TRANSACTION_TYPES: tuple[str, ...] = tuple(c for c in CATEGORIES if not c.startswith("login"))
_WINDOW_SECONDS = dict(WINDOWS)


@dataclass(frozen=True, slots=True)
class Feature:
    """One declared feature.

    ``categories`` is the filter: the transaction types that count (windowed aggregations).

    >>> Feature("x", "card", "count", "7d").window_index
    2
    """

    name: str
    entity: Entity
    aggregation: Aggregation
    window: str | None = None
    categories: tuple[str, ...] = TRANSACTION_TYPES
    doc: str = ""

    @property
    def window_seconds(self) -> float | None:
        return None if self.window is None else _WINDOW_SECONDS[self.window]

    @property
    def window_index(self) -> int | None:
        return None if self.window is None else WINDOW_INDEX[self.window]

    @property
    def category_indexes(self) -> tuple[int, ...]:
        return tuple(CATEGORY_INDEX[c] for c in self.categories)

    @property
    def windowed(self) -> bool:
        return self.window is not None


def _declare() -> tuple[Feature, ...]:
    out: list[Feature] = []
    for entity in ("card", "user"):
        for window in ("1h", "1d", "7d", "30d"):
            out.append(
                Feature(
                    f"{entity}_txn_count_{window}",
                    entity,
                    "count",
                    window,
                    doc=f"{entity} transactions in the last {window}",
                )
            )
        for window in ("1d", "7d", "30d"):
            out.append(
                Feature(
                    f"{entity}_avg_amount_{window}",
                    entity,
                    "mean_amount",
                    window,
                    doc=f"mean amount of the {entity}'s transactions in the last {window}",
                )
            )
    out.append(
        Feature(
            "card_withdrawal_count_1d",
            "card",
            "count",
            "1d",
            ("withdrawal",),
            doc="card withdrawals in the last day",
        )
    )
    for entity in ("card", "user"):
        out += [
            Feature(
                f"{entity}_amount_zscore",
                entity,
                "zscore",
                doc="amount in standard deviations from the entity's mean (same type)",
            ),
            Feature(
                f"{entity}_amount_to_mean",
                entity,
                "to_mean",
                doc="amount over the entity's mean amount (same type)",
            ),
            Feature(
                f"{entity}_amount_to_p95",
                entity,
                "to_p95",
                doc="amount over the entity's 95th percentile amount (same type)",
            ),
            Feature(
                f"{entity}_seconds_since_last",
                entity,
                "since_last",
                doc="seconds since the entity's previous event began",
            ),
            Feature(
                f"{entity}_km_from_last",
                entity,
                "km_from_last",
                doc="km from the entity's last known location",
            ),
        ]
    out += [
        Feature("card_age_days", "card", "age_days", doc="days since the card was first seen"),
        Feature(
            "user_account_age_days",
            "user",
            "age_days",
            doc="days since the user's account was created",
        ),
    ]
    for window in ("1d", "7d", "30d"):
        out.append(
            Feature(
                f"terminal_fraud_rate_{window}",
                "terminal",
                "fraud_rate",
                window,
                doc=f"share of the terminal's transactions known to be fraud, over {window} "
                "ending one label delay ago",
            )
        )
    return tuple(out)


FEATURES: tuple[Feature, ...] = _declare()
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
_BY_NAME = {f.name: f for f in FEATURES}
# The quantile the ``to_p95`` features divide by.
P95 = 0.95


def feature(name: str) -> Feature:
    """The declared feature called ``name``; ``KeyError`` naming it when there is none."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"feature: no feature named {name!r}") from None
