"""``vigil train --target combiner``: the decision score's combiner, from an event file.

The combiner (:mod:`vigil.models.combiner`) weighs the reasons the detectors and rules gave
each event with the transaction model's probability, so it learns from the engine's own
decisions. :func:`train_combiner` therefore

1. replays the file through an in-memory engine with the settings' detectors, rules and
   policy and the transaction model it is stacked on (the promoted one, or a named version),
   each fraud label sent as feedback one label delay after its transaction, as a live engine
   learns it (terminal risk);
2. splits the point-in-time feature table as ``vigil train`` does (``--train`` / ``--test``
   periods, labels counted once arrived by the test start; else 60/20/20 in time with a
   label-delay gap, the first two parts stacked on);
3. stacks: every completed transaction of the stacked part gets the probability of a model
   trained as the served one was but not on it (cross-fitted in blocks of time), and the
   combiner is fitted on every event of that part (:func:`~vigil.models.combiner.stack`);
4. measures, on the test part's completed transactions, the stacked score against the
   detectors alone (the reasons other than the model's, combined as the engine combines them
   without a model: their noisy-OR) and the model alone (its probability, as served): ROC
   AUC, average precision and card precision@k, and the stacked score per day;
5. stores it as the next ``combiner`` version with the model version it was stacked on, and
   promotes it when asked and no worse than the promoted combiner, the detectors alone and
   the model alone (:func:`~vigil.models.gate.promotion_refusal`).

The engine serves a promoted combiner beside the model version it was stacked on only.

>>> from vigil.models.registry import Registry
>>> from vigil.config import Settings
>>> train_combiner(Registry("/nonexistent"), Settings(), events=Path("events.parquet"))
Traceback (most recent call last):
...
LookupError: combiner: no transaction model to stack on in /nonexistent: promote one \
(vigil train --promote) or name one (--stack-on VERSION)
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from vigil.config import Settings
from vigil.domain import Feedback
from vigil.ingest.inputs import EventInput
from vigil.models.combiner import MODEL, MODEL_CODE, NAME, save_combiner, stack
from vigil.models.feature_card import offline_features
from vigil.models.gate import promotion_refusal
from vigil.models.metrics import daily_metrics, score_metrics
from vigil.models.registry import Registry
from vigil.models.report import write_model_report
from vigil.models.split import Period, Periods, Split, period_split, time_split
from vigil.models.train import TrainOptions, feature_matrix

#: The scores compared on the test part, in the order they are printed.
COMPARED = ("detectors", "model", "stacked")
# Cross-fitting blocks and the fewest events a reason code is weighed from (combiner.stack).
_FOLDS, _MIN_EVENTS = 4, 20


def train_combiner(
    registry: Registry,
    settings: Settings,
    *,
    events: Path,
    labels: Path | None = None,
    inputs: EventInput | None = None,
    periods: tuple[Period, Period] | None = None,
    k: int = 10,
    promote: bool = False,
    bank: Path | None = None,
    stack_on: str | None = None,
    feature_file: Path | None = None,
    sources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Replay, stack, measure, store (see the module doc); returns the figures the CLI
    prints. ``settings`` give the detectors, rules and policy replayed; ``feature_file``
    replaces their ``models.feature_file`` (the engine's, for a model reading declared
    features)."""
    from vigil.detect import Policy
    from vigil.engine import Engine
    from vigil.features import read_reference, transaction_features
    from vigil.models.labels import feedback_items, fraud_feedback, run
    from vigil.replay import in_time_order

    started = time.perf_counter()
    inputs = inputs or EventInput()
    delay = inputs.label_delay
    version = stack_on or settings.models.transaction_version or registry.promoted(MODEL)
    if version is None:
        raise LookupError(
            f"combiner: no transaction model to stack on in {registry.root}: promote one "
            "(vigil train --promote) or name one (--stack-on VERSION)"
        )
    manifest = registry.manifest(MODEL, version)
    update: dict[str, Any] = {
        "registry_dir": registry.root,
        "transaction_model": True,
        "transaction_version": version,
    }
    if feature_file is not None:
        update["feature_file"] = feature_file
    settings = settings.model_copy(update={"models": settings.models.model_copy(update=update)})
    reference = read_reference(bank) if bank is not None else None
    # Built before the file is read: a model the engine cannot serve is refused at once.
    engine = Engine.in_memory(reference, settings=settings)
    if labels is None and inputs.label_column is None:
        raise ValueError("labels: give a labels file or the label column of the event file")
    frame, fraud = inputs.frame(events, labels=labels)
    assert fraud is not None  # labels or a label column were given
    table = transaction_features(
        frame,
        labels=fraud,
        label_delay=delay,
        reference=reference,
        features=offline_features(manifest),
    )
    options = replace(TrainOptions.from_params(manifest["parameters"]), k=k)
    split = (
        period_split(table, Periods(*periods, label_delay=delay))
        if periods is not None
        else time_split(table, fractions=options.fractions, gap=delay)
    )
    if split.test.is_empty():
        raise ValueError("the split leaves no test rows: give more days or --train/--test")
    stacked_rows, since, until = _stacked_part(table, split, periods)
    known_by = None if periods is None else periods[1].start

    # 1. the engine's decisions on every event, with the labels it would have learnt
    # (a label column's own feedback is left out: the labels are sent once, as fraud_feedback)
    only_events = (e for e in inputs.events(events) if not isinstance(e, Feedback))
    learning = feedback_items(fraud_feedback(frame, fraud, [delay]))
    decisions, learnt = run(engine, in_time_order(only_events, learning))

    # 3. stacking: the decisions of the stacked part, each fraud as known by the test start
    stacked = [
        d for d in decisions if (since is None or d.event_time >= since) and d.event_time < until
    ]
    fraud_ids = set(fraud.get_column("event_id").to_list())
    frauds = [
        d.event_id
        for d in stacked
        if d.event_id in fraud_ids and (known_by is None or d.event_time + delay <= known_by)
    ]
    model = registry.load(MODEL, version)
    combiner = stack(
        stacked,
        stacked_rows,
        frauds,
        model.features,
        replace(options, periods=None),
        folds=_FOLDS,
        min_events=_MIN_EVENTS,
    )

    # 4. the test part: the stacked score against each source alone
    test = split.test
    by_id = {d.event_id: d for d in decisions}
    chosen = [by_id[i] for i in test.get_column("event_id").to_list()]
    probability = model.probability_batch(feature_matrix(test, model.features))
    without_model = Policy(settings.policy)  # the reasons' noisy-OR, no combiner
    scores = {
        "detectors": np.array(
            [
                without_model.decide([r for r in d.reasons if r.code != MODEL_CODE])[0]
                for d in chosen
            ]
        ),
        "model": probability,
        "stacked": np.array(
            [
                combiner.score([(r.code, r.score) for r in d.reasons], p)
                for d, p in zip(chosen, probability.tolist(), strict=True)
            ]
        ),
    }
    compared = {name: score_metrics(test, scores[name], k=k) for name in COMPARED}
    keep = [c for c in ("event_id", "timestamp", "card_id", "user_id") if c in test.columns]
    test_scores = test.select(*keep, "label").with_columns(score=pl.Series(scores["stacked"]))
    by_day = [
        {**row, "day": row["day"].isoformat()}
        for row in daily_metrics(test_scores, k=k).iter_rows(named=True)
    ]

    # 5. the registry
    fitted = combiner._fitted().scorer
    record = {
        "training_data": {
            "ranges": split.ranges(),
            "split": split.card(),
            "rows": {
                "stacked_events": len(stacked),
                "stacked_frauds": len(frauds),
                "stacked_transactions": stacked_rows.height,
                "test": test.height,
            },
            "labels_learnt": learnt,
            "sources": sources or {},
        },
        "parameters": {
            "k": k,
            "c": combiner.c,
            "folds": _FOLDS,
            "min_events": _MIN_EVENTS,
            "reason_at": settings.models.reason_at,
            "label_delay_seconds": delay.total_seconds(),
        },
        "metrics": {
            "test": compared["stacked"],
            "test_detectors": compared["detectors"],
            "test_model": compared["model"],
            "test_by_day": by_day,
        },
        "importance": {
            name: abs(float(c)) for name, c in zip(fitted.features, fitted.coef, strict=True)
        },
    }
    saved = save_combiner(registry, combiner, version, record, test_scores=test_scores)
    refused = None
    if promote:
        current = registry.promoted(NAME)
        theirs = None if current is None else registry.manifest(NAME, current)["metrics"]["test"]
        alone = {"the detectors alone": compared["detectors"], "the model alone": compared["model"]}
        refused = promotion_refusal(compared["stacked"], theirs, current, alone=alone)
        if refused is None:
            registry.promote(NAME, saved)
    report = write_model_report(
        registry.manifest(NAME, saved), test_scores, registry.root / NAME / saved / "report.html"
    )
    return {
        "name": NAME,
        "version": saved,
        "kind": "logreg",
        "stacked_on": version,
        "served_model": registry.promoted(MODEL),
        "promoted": promote and refused is None,
        "promotion_refused": refused,
        "events": len(decisions),
        "stacked_events": len(stacked),
        "stacked_frauds": len(frauds),
        "labels_learnt": learnt,
        "codes": list(combiner.weighed),
        "metrics": {"test": compared["stacked"]},
        "compared": compared,
        "test_by_day": by_day,
        "split": split.card(),
        "report": str(report),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _stacked_part(
    table: pl.DataFrame, split: Split, periods: tuple[Period, Period] | None
) -> tuple[pl.DataFrame, datetime | None, datetime]:
    """The completed transactions the combiner is stacked on (their labels as the split knows
    them), and from when until when its events are: the train period; without periods,
    everything before the test part's cut (validation included: the combiner has no early
    stopping to keep it for)."""
    if periods is not None:
        return pl.concat([split.train, split.validation]), periods[0].start, periods[0].end
    until = split.test_from
    assert until is not None  # a split by shares always cuts
    return table.filter(pl.col("timestamp") < until), None, until
