"""Benchmark: the transaction model, from training to scoring one event in the engine.

Generates a synthetic bank, builds the point-in-time training table, trains LightGBM (and the
logistic-regression baseline), then replays the bank's events through an in-memory engine with
the model among the detectors, timing each part of one event's scoring:

- ``model``: the compiled trees on a feature row (``Model.probability``);
- ``features+model``: ``ModelScorer.detect`` — the online features read from the profiles,
  the row built, scored, and a reason made when the probability is high;
- LightGBM's own ``Booster.predict`` on one row, for comparison.

Prints p50/p99 µs per event and the training figures; the last line is JSON.

    python bench/models.py --cards 2000 --days 30
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from vigil.config import Settings
from vigil.detect import default_detectors
from vigil.engine import Engine
from vigil.features import transaction_features
from vigil.features.io import read_reference
from vigil.ingest import iter_event_file
from vigil.models.labels import feedback_items, fraud_feedback, run
from vigil.models.pipeline import save_result, transaction_feature_names
from vigil.models.registry import Registry
from vigil.models.scorer import ModelScorer, model_detectors
from vigil.models.train import TrainOptions, feature_matrix, train
from vigil.replay import in_time_order
from vigil.simulate import BankConfig, generate


class _Timed:
    """The scorer, timed: nanoseconds per scored event (events the model does not score
    — logins, start events — are timed apart: they cost only the check)."""

    codes = ModelScorer.codes

    def __init__(self, scorer: ModelScorer) -> None:
        self.scorer = scorer
        self.scored: list[int] = []
        self.skipped: list[int] = []

    def detect(self, ctx: Any) -> list:
        started = time.perf_counter_ns()
        reasons = self.scorer.detect(ctx)
        spent = time.perf_counter_ns() - started
        phase = getattr(ctx.event, "phase", None)
        scored = phase is not None and phase != "start" and ctx.amount_cents is not None
        (self.scored if scored else self.skipped).append(spent)
        return reasons


def _percentiles(ns: list[int] | np.ndarray) -> dict[str, float]:
    us = np.asarray(ns, dtype=np.float64) / 1000
    return {
        "p50_us": round(float(np.percentile(us, 50)), 2),
        "p99_us": round(float(np.percentile(us, 99)), 2),
        "n": int(us.size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=2000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--fraud-rate", type=float, default=0.03)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vigil-bench-models-"))
    generate(
        BankConfig(cards=args.cards, days=args.days, fraud_rate=args.fraud_rate), work / "bank"
    )
    bank = work / "bank"
    reference = read_reference(bank)
    events = pl.read_parquet(bank / "events.parquet")
    labels = pl.read_csv(bank / "labels.csv")

    started = time.perf_counter()
    table = transaction_features(
        events, labels=labels, label_delay=timedelta(days=1), reference=reference
    )
    table_seconds = time.perf_counter() - started
    names = transaction_feature_names()
    results = {
        kind: train(table, names, TrainOptions(kind=kind)) for kind in ("lightgbm", "logreg")
    }
    registry = Registry(work / "models")
    registry.promote("transaction", save_result(registry, results["lightgbm"]))
    settings = Settings(models={"registry_dir": work / "models"})

    # the model alone, on the table's rows
    model = registry.load("transaction")
    rows = feature_matrix(table, model.features).tolist()
    model_ns = []
    for row in rows:
        t0 = time.perf_counter_ns()
        model.probability(row)
        model_ns.append(time.perf_counter_ns() - t0)
    booster = registry.booster("transaction", str(model.version))
    sample = np.asarray(rows[:500])
    lgb_ns = []
    for i in range(len(sample)):
        t0 = time.perf_counter_ns()
        booster.predict(sample[i : i + 1])
        lgb_ns.append(time.perf_counter_ns() - t0)

    # online features + model inside the engine, and the engine with and without the model
    [scorer] = model_detectors(settings)
    timed = _Timed(scorer)
    with_model = Engine.in_memory(
        reference, settings=settings, detectors=[*default_detectors(settings.detectors), timed]
    )
    without = Engine.in_memory(
        reference, settings=settings, detectors=default_detectors(settings.detectors)
    )
    # the fraud labels reach the engine as feedback one label delay on, as in training, so
    # the model's terminal risk is learnt online (Engine.learn)
    feedback = feedback_items(fraud_feedback(events, labels, [timedelta(days=1)]))
    stream = list(in_time_order(iter_event_file(bank / "events.parquet"), feedback))
    latency = {}
    for name, engine in (("engine_without_model", without), ("engine_with_model", with_model)):
        decisions, _ = run(engine, stream)
        latency[name] = _percentiles([d.latency_us * 1000 for d in decisions])

    figures = {
        "events": len(decisions),
        "transactions_scored": len(timed.scored),
        "table_rows": table.height,
        "table_seconds": round(table_seconds, 3),
        "trees": results["lightgbm"].extra["trees"],
        "train_seconds": {k: round(r.seconds, 2) for k, r in results.items()},
        "test": {
            k: {
                m: r.metrics["test"].get(m)
                for m in ("roc_auc", "average_precision", "card_precision_at_10")
            }
            for k, r in results.items()
        },
        "model": _percentiles(model_ns),
        "features_and_model": _percentiles(timed.scored),
        "not_scored_event": _percentiles(timed.skipped),
        "lightgbm_predict_one_row": _percentiles(lgb_ns),
        **latency,
    }
    for key in (
        "model",
        "features_and_model",
        "lightgbm_predict_one_row",
        "engine_without_model",
        "engine_with_model",
    ):
        f = figures[key]
        print(f"{key:26s} p50 {f['p50_us']:8.2f} µs   p99 {f['p99_us']:8.2f} µs   n={f['n']:,}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
