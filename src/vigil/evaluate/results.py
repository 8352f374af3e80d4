"""The figures an evaluation produces, as frozen dataclasses with a JSON-ready ``as_dict``.

Undefined ratios (precision with no alert, recall with no fraud, AUC with one class) are
``None``, never NaN, so ``evaluation.json`` is strict JSON.

>>> p = PatternResult(pattern="card_cloning", units=4, alerts=3, recall=0.75, episodes=2,
...     episodes_caught=2, episode_recall=1.0, delay_median_seconds=30.0, delay_p90_seconds=54.0,
...     units_before_first_alert_median=0.5, units_before_first_alert_mean=0.5,
...     units_without_decision=0)
>>> p.as_dict()["recall"]
0.75
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import polars as pl


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return value.as_dict()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class _AsDict:
    def as_dict(self) -> dict[str, Any]:
        """The figures as plain JSON types."""
        return {
            f.name: _plain(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.metadata.get("figure", True)
        }


@dataclass(frozen=True)
class Overall(_AsDict):
    """Overall figures over all units.

    >>> Overall(units=10, fraud_units=2, legitimate_units=8, alerts=3, true_positives=2,
    ...     false_positives=1, precision=2/3, recall=1.0, roc_auc=1.0, average_precision=1.0,
    ...     false_positives_per_1000_legitimate=125.0, labelled_units_without_decision=0,
    ...     period_start=None, period_end=None, metrics_backend="numpy").false_positives
    1
    """

    units: int
    fraud_units: int
    legitimate_units: int
    alerts: int
    true_positives: int
    false_positives: int
    precision: float | None
    recall: float | None
    roc_auc: float | None
    average_precision: float | None
    false_positives_per_1000_legitimate: float | None
    labelled_units_without_decision: int
    period_start: str | None
    period_end: str | None
    metrics_backend: str
    # Units not alerted themselves but named as evidence by an alert (see evaluate.units);
    # case recall counts them as caught, with the alert that names them.
    linked_fraud: int = 0
    linked_legitimate: int = 0
    case_recall: float | None = None


@dataclass(frozen=True)
class PatternResult(_AsDict):
    """Detection of one injected pattern: recall over units, and timing over episodes.

    ``alerts`` are the pattern's alerted units (its true positives); delays are in seconds
    over caught episodes; ``units_without_decision`` are labelled units vigil never decided
    on (left out of every other figure).
    """

    pattern: str
    units: int
    alerts: int
    recall: float | None
    episodes: int
    episodes_caught: int
    episode_recall: float | None
    delay_median_seconds: float | None
    delay_p90_seconds: float | None
    units_before_first_alert_median: float | None
    units_before_first_alert_mean: float | None
    units_without_decision: int
    # Units named as evidence by an alert on another unit; ``case_recall`` counts them caught.
    linked: int = 0
    case_recall: float | None = None


@dataclass(frozen=True)
class ReasonResult(_AsDict):
    """What one reason code contributes to alerts, and which patterns it catches.

    >>> ReasonResult(code="amount_spike", alerts=4, true_positives=3, false_positives=1,
    ...     precision=0.75, patterns={"amount_spike": 3}).precision
    0.75
    """

    code: str
    alerts: int
    true_positives: int
    false_positives: int
    precision: float | None
    patterns: dict[str, int]


@dataclass(frozen=True)
class OperatingPoint(_AsDict):
    """Precision and recall if units at ``action`` or more severe were the alerts.

    >>> OperatingPoint(action="block", alerts=2, true_positives=2, precision=1.0,
    ...     recall=0.5).recall
    0.5
    """

    action: str
    alerts: int
    true_positives: int
    precision: float | None
    recall: float | None


#: Frames that feed the report: not figures, not compared, not printed.
_FRAME = {"figure": False}


@dataclass(frozen=True)
class Evaluation(_AsDict):
    """Everything :func:`vigil.evaluate.evaluate` found; ``as_dict()`` is evaluation.json.

    ``units`` (one row per unit), ``legs`` (impossible-travel legs) and
    ``terminal_locations`` (terminal coordinates seen in the event stream) feed the report
    and are not part of the dict.

    >>> import polars as pl
    >>> from datetime import datetime, UTC
    >>> from vigil.evaluate import evaluate
    >>> t = datetime(2022, 1, 1, tzinfo=UTC)
    >>> decisions = pl.DataFrame({"event_id": ["e1", "e2"], "event_time": [t, t],
    ...     "score": [0.9, 0.1], "action": ["block", "allow"]})
    >>> labels = pl.DataFrame({"event_id": ["e1"], "pattern": ["amount_spike"]})
    >>> e = evaluate(decisions, labels)
    >>> e.overall.precision, e.overall.recall, e.as_dict()["patterns"]["amount_spike"]["units"]
    (1.0, 1.0, 1)
    """

    overall: Overall
    patterns: dict[str, PatternResult]
    reasons: dict[str, ReasonResult]
    operating_points: dict[str, OperatingPoint]
    units: pl.DataFrame = field(repr=False, compare=False, metadata=_FRAME)
    legs: pl.DataFrame = field(repr=False, compare=False, metadata=_FRAME)
    terminal_locations: pl.DataFrame | None = field(repr=False, compare=False, metadata=_FRAME)
