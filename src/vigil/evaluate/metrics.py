"""``evaluate``: join vigil's decisions with the fraud labels and compute the figures.

>>> import polars as pl
>>> from datetime import datetime, UTC
>>> t = datetime(2022, 1, 1, tzinfo=UTC)
>>> decisions = pl.DataFrame({"event_id": ["e1", "e2", "e3"], "event_time": [t] * 3,
...     "score": [0.9, 0.8, 0.1], "action": ["block", "review", "allow"],
...     "reason_codes": [["amount_spike"], ["amount_spike"], []]})
>>> labels = pl.DataFrame({"event_id": ["e1"], "pattern": ["amount_spike"]})
>>> e = evaluate(decisions, labels)
>>> e.overall.precision, e.overall.false_positives_per_1000_legitimate
(0.5, 500.0)
"""

from __future__ import annotations

import numpy as np
import polars as pl

from vigil.evaluate import ranking
from vigil.evaluate.episodes import episodes
from vigil.evaluate.inputs import (
    ACTIONS,
    normalise_decisions,
    normalise_events,
    normalise_labels,
)
from vigil.evaluate.results import (
    Evaluation,
    OperatingPoint,
    Overall,
    PatternResult,
    ReasonResult,
)
from vigil.evaluate.travel import impossible_travel_legs
from vigil.evaluate.units import build_units


def _ratio(numerator: float, denominator: float) -> float | None:
    return float(numerator) / float(denominator) if denominator else None


def _percentile(values: pl.Series, q: float) -> float | None:
    values = values.drop_nulls()
    if values.is_empty():
        return None
    return float(np.percentile(values.to_numpy().astype(np.float64), q))


def _overall(units: pl.DataFrame, missing: pl.DataFrame) -> Overall:
    fraud = units.get_column("fraud").to_numpy()
    alerted = units.get_column("alerted").to_numpy()
    score = units.get_column("score").to_numpy()
    true_pos = int((fraud & alerted).sum())
    false_pos = int((~fraud & alerted).sum())
    legitimate = int((~fraud).sum())
    linked = units.get_column("linked").to_numpy()
    start, end = units.get_column("start_time").min(), units.get_column("start_time").max()
    return Overall(
        units=units.height,
        fraud_units=int(fraud.sum()),
        legitimate_units=legitimate,
        alerts=int(alerted.sum()),
        true_positives=true_pos,
        false_positives=false_pos,
        precision=_ratio(true_pos, true_pos + false_pos),
        recall=_ratio(true_pos, int(fraud.sum())),
        roc_auc=ranking.roc_auc(fraud, score),
        average_precision=ranking.average_precision(fraud, score),
        false_positives_per_1000_legitimate=(
            1000.0 * false_pos / legitimate if legitimate else None
        ),
        labelled_units_without_decision=missing.height,
        period_start=start.isoformat() if start is not None else None,
        period_end=end.isoformat() if end is not None else None,
        metrics_backend=ranking.backend(),
        linked_fraud=int((fraud & linked).sum()),
        linked_legitimate=int((~fraud & linked).sum()),
        case_recall=_ratio(true_pos + int((fraud & linked).sum()), int(fraud.sum())),
    )


def _patterns(units: pl.DataFrame, missing: pl.DataFrame) -> dict[str, PatternResult]:
    fraud = units.filter(pl.col("fraud"))
    per_episode = episodes(fraud)
    missing_counts = dict(missing.group_by("pattern").len().iter_rows())
    names = sorted(set(fraud.get_column("pattern").to_list()) | set(missing_counts))
    results: dict[str, PatternResult] = {}
    for name in names:
        mine = fraud.filter(pl.col("pattern") == name)
        runs = per_episode.filter(pl.col("pattern") == name)
        caught = runs.filter(pl.col("caught"))
        alerts = int(mine.get_column("alerted").sum())
        linked = int(mine.get_column("linked").sum())
        before = caught.get_column("units_before_first_alert").cast(pl.Float64)
        results[name] = PatternResult(
            pattern=name,
            units=mine.height,
            alerts=alerts,
            recall=_ratio(alerts, mine.height),
            episodes=runs.height,
            episodes_caught=caught.height,
            episode_recall=_ratio(caught.height, runs.height),
            delay_median_seconds=_percentile(caught.get_column("delay_s"), 50),
            delay_p90_seconds=_percentile(caught.get_column("delay_s"), 90),
            units_before_first_alert_median=_percentile(before, 50),
            units_before_first_alert_mean=float(before.mean()) if caught.height else None,
            units_without_decision=int(missing_counts.get(name, 0)),
            linked=linked,
            case_recall=_ratio(alerts + linked, mine.height),
        )
    return results


def _reasons(units: pl.DataFrame) -> dict[str, ReasonResult]:
    exploded = (
        units.filter(pl.col("alerted"))
        .select("unit_id", "fraud", "pattern", "alert_reasons")
        .explode("alert_reasons")
        .drop_nulls("alert_reasons")
    )
    results: dict[str, ReasonResult] = {}
    for (code,), rows in exploded.sort("alert_reasons").group_by(
        "alert_reasons", maintain_order=True
    ):
        true_pos = int(rows.get_column("fraud").sum())
        caught = rows.filter(pl.col("fraud")).group_by("pattern").len().sort("pattern")
        results[str(code)] = ReasonResult(
            code=str(code),
            alerts=rows.height,
            true_positives=true_pos,
            false_positives=rows.height - true_pos,
            precision=_ratio(true_pos, rows.height),
            patterns={str(p): int(n) for p, n in caught.iter_rows()},
        )
    return results


def _operating_points(units: pl.DataFrame) -> dict[str, OperatingPoint]:
    fraud_units = int(units.get_column("fraud").sum())
    points: dict[str, OperatingPoint] = {}
    for level, action in enumerate(ACTIONS[1:], start=1):
        flagged = units.filter(pl.col("severity") >= level)
        true_pos = int(flagged.get_column("fraud").sum())
        points[action] = OperatingPoint(
            action=action,
            alerts=flagged.height,
            true_positives=true_pos,
            precision=_ratio(true_pos, flagged.height),
            recall=_ratio(true_pos, fraud_units),
        )
    return points


def _terminal_locations(events: pl.DataFrame) -> pl.DataFrame:
    return (
        events.filter(
            pl.col("terminal_id").is_not_null()
            & pl.col("latitude").is_not_null()
            & pl.col("longitude").is_not_null()
        )
        .group_by("terminal_id")
        .agg(pl.col("latitude").median(), pl.col("longitude").median())
        .sort("terminal_id")
    )


def evaluate(
    decisions: pl.DataFrame, labels: pl.DataFrame, *, events: pl.DataFrame | None = None
) -> Evaluation:
    """Score vigil's decisions against the labels, per unit, pattern, reason and action.

    ``decisions``: one row per decided event (``event_id, transaction_id, unit_id,
    event_kind, event_time, score, action, reason_codes, user_id, card_id, terminal_id``).
    ``labels``: ``event_id, transaction_id, pattern``. ``events``: the event stream, for
    transaction start times, impossible-travel legs over the full card history, and terminal
    coordinates. Raises ``ValueError`` naming the frame and column on bad input.
    """
    decided = normalise_decisions(decisions)
    labelled = normalise_labels(labels)
    stream = normalise_events(events) if events is not None else None
    units, missing = build_units(decided, labelled, stream)
    return Evaluation(
        overall=_overall(units, missing),
        patterns=_patterns(units, missing),
        reasons=_reasons(units),
        operating_points=_operating_points(units),
        units=units,
        legs=impossible_travel_legs(units, stream),
        terminal_locations=_terminal_locations(stream) if stream is not None else None,
    )
