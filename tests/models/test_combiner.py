"""The stacked combiner: a calibrated probability from the model's and the detectors' evidence,
fitted on labels, served by the engine as the decision score while actions stay the reasons'."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.base import clone

from tests.models.conftest import DELAY, decide_all
from vigil.config import Settings
from vigil.domain import Decision
from vigil.engine import Engine
from vigil.evaluate.ranking import roc_auc
from vigil.features.io import read_reference
from vigil.models.combiner import (
    NAME,
    Combiner,
    evidence_matrix,
    fit_combiner,
    save_combiner,
    served_combiner,
    stack,
)
from vigil.models.pipeline import transaction_feature_names
from vigil.models.registry import Registry
from vigil.models.scorer import CODE
from vigil.models.train import TrainOptions


def _two_sources(n: int, seed: int) -> tuple[list[list[tuple[str, float]]], np.ndarray, np.ndarray]:
    """Fraud that a model sees part of (a noisy probability) and a detector another part (a
    reason on a third of the frauds and on 1 % of the rest)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.05).astype(int)
    signal = y * 1.5 + rng.normal(size=n)
    p = 1 / (1 + np.exp(-(signal - 4)))
    flagged = np.where(y == 1, rng.random(n) < 0.33, rng.random(n) < 0.01)
    reasons = [[("velocity", 0.8)] if f else [] for f in flagged]
    return reasons, p, y


def test_the_combiner_follows_scikit_learns_conventions() -> None:
    reasons, p, y = _two_sources(3000, seed=1)
    combiner = Combiner(["velocity"], c=0.5)
    assert combiner.get_params() == {"codes": ["velocity"], "c": 0.5}
    twin = clone(combiner)
    assert twin is not combiner and twin.get_params() == combiner.get_params()
    X = evidence_matrix(combiner, reasons, p.tolist())
    assert combiner.fit(X, y) is combiner
    proba = combiner.predict_proba(X)
    assert proba.shape == (3000, 2) and np.allclose(proba.sum(axis=1), 1.0)
    assert set(combiner.predict(X)) <= {0, 1}
    with pytest.raises(RuntimeError, match="not fitted"):
        twin.predict_proba(X)
    with pytest.raises(ValueError, match="both classes"):
        Combiner(["velocity"]).fit(X, np.zeros(3000))
    with pytest.raises(ValueError, match="6 columns"):
        Combiner(["velocity"]).fit(X[:, :5], y)


def test_stacked_it_ranks_better_than_either_source_and_is_calibrated() -> None:
    reasons, p, y = _two_sources(20000, seed=2)
    fitted = fit_combiner(
        {f"e{i}": r for i, r in enumerate(reasons[:10000])},
        {f"e{i}": float(q) for i, q in enumerate(p[:10000])},
        [f"e{i}" for i in np.flatnonzero(y[:10000])],
    )
    assert fitted.weighed == ("velocity",)
    held_reasons, held_p, held_y = reasons[10000:], p[10000:], y[10000:]
    combined = fitted.predict_proba(evidence_matrix(fitted, held_reasons, held_p.tolist()))[:, 1]
    detector = np.array([max((s for _, s in r), default=0.0) for r in held_reasons])
    sources = {"combined": combined, "model": held_p, "detector": detector}
    auc = {name: roc_auc(held_y, score) for name, score in sources.items()}
    assert auc["combined"] > max(auc["model"], auc["detector"]) + 0.01, auc
    # calibrated: as many frauds expected as there are, overall and among the flagged
    assert abs(combined.mean() - held_y.mean()) < 0.01
    flagged = detector > 0
    assert abs(combined[flagged].mean() - held_y[flagged].mean()) < 0.08


def test_a_code_seen_too_rarely_is_not_weighed() -> None:
    reasons = {f"e{i}": [("velocity", 0.8)] if i % 10 == 0 else [] for i in range(400)}
    reasons["e1"] = [("impossible_travel", 0.9), (CODE, 0.7)]
    fitted = fit_combiner(reasons, {}, [f"e{i}" for i in range(0, 400, 20)])
    assert fitted.weighed == ("velocity",)  # once is too rare; the model's reason is an input


@pytest.fixture(scope="module")
def stacked(
    bank: Path, trained: tuple[Settings, pl.DataFrame], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, list[Decision], dict[str, float]]:
    """The engine with the model and no combiner replayed; a combiner stacked on its
    decisions (the model's probabilities cross-fitted) and promoted on a copy of the
    registry, beside the served model."""
    settings, table = trained
    root = tmp_path_factory.mktemp("stacked") / "models"
    shutil.copytree(settings.models.registry_dir, root)
    settings = settings.model_copy(
        update={"models": settings.models.model_copy(update={"registry_dir": root})}
    )
    registry = Registry(root)
    model = registry.load("transaction")
    plain = decide_all(Engine.in_memory(read_reference(bank), settings=settings), bank)
    probability = dict(
        zip(
            table["event_id"].to_list(),
            model.probability_batch(table.select(model.features).to_numpy()).tolist(),
            strict=True,
        )
    )
    labels = pl.read_csv(bank / "labels.csv")
    fitted = stack(
        plain,
        table,
        labels["event_id"].to_list(),
        transaction_feature_names(),
        TrainOptions(gap=DELAY),
    )
    assert "model_logit" in fitted.feature_names and fitted.weighed
    version = save_combiner(registry, fitted, str(model.version), {"metrics": {}})
    registry.promote(NAME, version)
    return settings, plain, probability


def test_the_engine_serves_the_combiners_score_and_keeps_the_actions(
    bank: Path, stacked: tuple[Settings, list[Decision], dict[str, float]]
) -> None:
    settings, plain, probability = stacked
    engine = Engine.in_memory(read_reference(bank), settings=settings)
    combiner = served_combiner(settings, engine.model_versions["transaction"])
    assert combiner is not None and engine.model_versions[NAME] == "v0001"
    decisions = decide_all(engine, bank)
    assert [d.event_id for d in decisions] == [d.event_id for d in plain]
    # actions and reasons come from the evidence as before; the score is the combiner's
    for d, before in zip(decisions, plain, strict=True):
        assert (d.action, d.reasons) == (before.action, before.reasons)
        expected = combiner.score(
            [(r.code, r.score) for r in d.reasons], probability.get(d.event_id)
        )
        assert d.score == expected
    # every event is ranked: the noisy-OR left most scores at exactly 0
    assert sum(d.score == 0 for d in plain) > 0.9 * len(plain)
    assert sum(d.score == 0 for d in decisions) < 0.01 * len(decisions)  # below 5e-7
    assert len({d.score for d in decisions}) > 0.1 * len(decisions)


def test_a_combiner_stacked_on_another_model_is_not_served(
    stacked: tuple[Settings, list[Decision], dict[str, float]], caplog: pytest.LogCaptureFixture
) -> None:
    settings, _, _ = stacked
    with caplog.at_level(logging.WARNING):
        assert served_combiner(settings, "v0002") is None
    assert "stacked on transaction model v0001, not the served v0002" in caplog.text
    assert served_combiner(settings, None) is None
    off = settings.model_copy(
        update={"models": settings.models.model_copy(update={"transaction_model": False})}
    )
    assert NAME not in Engine.in_memory(settings=off).model_versions
