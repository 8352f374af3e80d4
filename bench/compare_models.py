"""Comparison: the detectors alone, the model alone, and the two together, on held-out days.

On a synthetic bank (generated, or ``--bank FOLDER`` from ``vigil generate``) the point-in-time
training table is built (timed: the training-set build time), the transaction model is trained
on the transactions before the cut (``--train-share`` of them by time) and promoted in a
temporary registry. The whole history is replayed through the engine, each fraud label sent
to it as feedback one label delay after its transaction (so terminal risk is learnt online):
with the model switched off (``models.transaction_model = false``: the detectors alone), and
with the promoted model beside the detectors. A stacked combiner
(:mod:`vigil.models.combiner`) is then fitted on the second replay's decisions before the
cut, each completed transaction with the probability of a model not trained on it
(cross-fitted: four blocks of time, each scored by a model trained on the others), and the
labels; promoted stacked on the model, it serves in a third replay. On the completed transactions
after the cut plus the label-delay gap, for each of

- ``detectors``: the engine's score with the model disabled (the reasons' noisy-OR);
- ``model``: the model's calibrated probability alone (its offline score, equal to the served
  one: tests/models/test_scorer.py);
- ``gated``: the engine's score with the model but no combiner, the model's probability
  joining the reasons' noisy-OR from ``models.reason_at`` up (``--reason-at``);
- ``stacked``: the engine's score with the model and the combiner (the decision score);

it prints ROC AUC and average precision (:mod:`vigil.evaluate.ranking`), and recall and
precision of the alerts: the engine's actions other than allow (the model alone: a
probability at or above ``policy.step_up_at``). The last line is JSON.

    python bench/compare_models.py                 # vigil generate --cards 4000 --days 60 --seed 7
    python bench/compare_models.py --bank bank/
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
from vigil.domain import Decision
from vigil.engine import Engine
from vigil.evaluate.ranking import average_precision, roc_auc
from vigil.features import read_event_frame, read_labels, read_reference, transaction_features
from vigil.ingest import iter_event_file
from vigil.models.combiner import NAME, save_combiner, stack
from vigil.models.labels import feedback_items, fraud_feedback, run
from vigil.models.pipeline import save_result, transaction_feature_names
from vigil.models.registry import Registry
from vigil.models.train import TrainOptions, feature_matrix, train
from vigil.replay import in_time_order
from vigil.simulate import BankConfig, generate

DELAY = timedelta(days=1)


def _figures(label: np.ndarray, score: np.ndarray, alerted: np.ndarray) -> dict[str, Any]:
    hits = int((alerted & label).sum())
    return {
        "roc_auc": _round(roc_auc(label, score)),
        "average_precision": _round(average_precision(label, score)),
        "recall_at_alert": _round(hits / max(int(label.sum()), 1)),
        "precision_at_alert": _round(hits / int(alerted.sum()) if alerted.any() else None),
        "alerts": int(alerted.sum()),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _replay(engine: Engine, bank: Path, feedback: pl.DataFrame) -> list[Decision]:
    """Every event and label through the engine: its decisions, in order."""
    events = iter_event_file(bank / "events.parquet")
    decisions, _ = run(engine, in_time_order(events, feedback_items(feedback)))
    return decisions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", type=Path, help="A `vigil generate` folder (else generated)")
    parser.add_argument("--cards", type=int, default=4000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train-share", type=float, default=0.6)
    parser.add_argument(
        "--reason-at",
        type=float,
        help="models.reason_at: the model probability from which it adds a reason "
        "(default: the configured one; 0 makes every probability noisy-OR evidence)",
    )
    args = parser.parse_args()
    began = time.perf_counter()

    work = Path(tempfile.mkdtemp(prefix="vigil-compare-"))
    bank = args.bank
    if bank is None:
        bank = work / "bank"
        generate(BankConfig(cards=args.cards, days=args.days, seed=args.seed), bank)
    reference = read_reference(bank)
    events = read_event_frame(bank / "events.parquet")
    labels = read_labels(bank / "labels.csv")

    started = time.perf_counter()
    table = transaction_features(events, labels=labels, label_delay=DELAY, reference=reference)
    table_seconds = time.perf_counter() - started

    times = table.get_column("timestamp").sort()
    cut = times[int(args.train_share * (len(times) - 1))]
    before = table.filter(pl.col("timestamp") < cut)
    held_out = table.filter(pl.col("timestamp") >= cut + DELAY)
    result = train(before, transaction_feature_names(), TrainOptions(gap=DELAY))
    registry = Registry(work / "models")
    version = save_result(registry, result)
    registry.promote("transaction", version)
    model = registry.load("transaction", version)

    feedback = fraud_feedback(events, labels, [DELAY])
    models: dict[str, Any] = {"registry_dir": work / "models"}
    if args.reason_at is not None:
        models["reason_at"] = args.reason_at
    settings = Settings(models=models)
    alone = settings.model_copy(
        update={"models": settings.models.model_copy(update={"transaction_model": False})}
    )
    replay_started = time.perf_counter()
    engines = {
        "detectors": Engine.in_memory(reference, settings=alone),
        "gated": Engine.in_memory(reference, settings=settings),
    }
    assert engines["gated"].model_versions == {"transaction": version}
    assert engines["detectors"].model_versions == {}
    decided = {name: _replay(engine, bank, feedback) for name, engine in engines.items()}

    # Stacking: the combiner learns from the events before the cut, each transaction with
    # the probability of a model not trained on it (cross-fitted in blocks of time).
    probability = dict(
        zip(
            table.get_column("event_id").to_list(),
            model.probability_batch(feature_matrix(table, model.features)).tolist(),
            strict=True,
        )
    )
    stacking = [d for d in decided["gated"] if d.event_time < cut]
    frauds = set(labels.get_column("event_id").to_list())
    fitted = stack(stacking, before, frauds, transaction_feature_names(), TrainOptions(gap=DELAY))
    registry.promote(
        NAME,
        save_combiner(registry, fitted, version, {"training_data": {"until": str(cut)}}),
    )
    engines["stacked"] = Engine.in_memory(reference, settings=settings)
    assert engines["stacked"].model_versions == {"transaction": version, NAME: "v0001"}
    decided["stacked"] = _replay(engines["stacked"], bank, feedback)
    replay_seconds = time.perf_counter() - replay_started

    ids = held_out.get_column("event_id").to_list()
    label = held_out.get_column("label").to_numpy().astype(bool)
    alert_at = settings.policy.step_up_at
    by_id = {name: {d.event_id: d for d in found} for name, found in decided.items()}
    compared: dict[str, dict[str, Any]] = {}
    for name in ("detectors", "model", "gated", "stacked"):
        if name == "model":
            score = np.array([probability[i] for i in ids])
            alerted = score >= alert_at
        else:
            chosen = [by_id[name][i] for i in ids]
            score = np.array([d.score for d in chosen])
            alerted = np.array([d.action.value != "allow" for d in chosen])
        compared[name] = _figures(label, score, alerted)
    stacked_on = {
        "rows": len(stacking),
        "frauds": sum(d.event_id in frauds for d in stacking),
        "until": cut.isoformat(),
        "codes": list(fitted.weighed),
    }
    figures = {
        "bank": str(bank),
        "events": events.height,
        "transactions": table.height,
        "training_set_seconds": round(table_seconds, 3),
        "features": len(model.features),
        "trained_on": {"rows": before.height, "until": cut.isoformat()},
        "held_out": {
            "rows": held_out.height,
            "frauds": int(label.sum()),
            "from": (cut + DELAY).isoformat(),
        },
        "model_test_metrics": {
            m: _round(result.metrics["test"].get(m)) for m in ("roc_auc", "average_precision")
        },
        "combiner_fitted_on": stacked_on,
        "alert_at": alert_at,
        "reason_at": settings.models.reason_at,
        "compared": compared,
        "replay_seconds": round(replay_seconds, 1),
        "seconds": round(time.perf_counter() - began, 1),
    }
    print(
        f"training set: {table.height:,} transactions, {len(model.features)} features, "
        f"{table_seconds:.2f} s; held out: {held_out.height:,} rows, {int(label.sum())} frauds"
    )
    print(
        f"combiner: {stacked_on['rows']:,} events before the cut (cross-fitted), "
        f"{stacked_on['frauds']} frauds, {len(fitted.weighed)} reason codes"
    )
    print(f"{'':10s} {'ROC AUC':>8s} {'avg prec':>9s} {'recall':>7s} {'precision':>9s} alerts")
    for name, f in compared.items():
        print(
            f"{name:10s} {f['roc_auc'] or 0:8.4f} {f['average_precision'] or 0:9.4f} "
            f"{f['recall_at_alert'] or 0:7.4f} {f['precision_at_alert'] or 0:9.4f} {f['alerts']}"
        )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
