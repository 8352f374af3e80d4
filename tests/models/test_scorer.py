"""The transaction model in the engine: served scores equal offline scores, reasons join."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.models.conftest import decide_all
from vigil.config import PolicyConfig, RulesConfig, Settings
from vigil.detect import default_detectors
from vigil.engine import Engine
from vigil.features.io import read_reference
from vigil.models.feature_card import ModelFeaturesError
from vigil.models.linear import LinearModel
from vigil.models.model import Model
from vigil.models.registry import Registry
from vigil.models.scorer import CODE, ModelScorer, model_detectors, transaction_features_of


class _Spy:
    """Wraps the scorer and keeps the probability it served for each event."""

    codes = (CODE,)

    def __init__(self, scorer: ModelScorer) -> None:
        self.scorer = scorer
        self.model = scorer.model  # what the engine reads the model version from
        self.risk = scorer.risk  # the terminal risk the model reads
        self.served: dict[str, float] = {}

    def detect(self, ctx):
        scored = self.scorer.score(ctx)
        if scored is not None:
            self.served[ctx.event.event_id] = scored[0]
        return self.scorer.detect(ctx)


def test_served_scores_equal_the_offline_scores(
    bank: Path, trained: tuple[Settings, pl.DataFrame]
) -> None:
    settings, table = trained
    [scorer] = model_detectors(settings)
    spy = _Spy(scorer)
    # A policy that never blocks and no rules: the model's own reasons alone (the test below
    # has the detectors blocking). The analysts' rules name detector codes this engine does
    # not run: they are off.
    never_block = settings.model_copy(
        update={"policy": PolicyConfig(block_at=1.0), "rules": RulesConfig(enabled=False)}
    )
    engine = Engine.in_memory(read_reference(bank), settings=never_block, detectors=[spy])
    assert engine.terminal_risk is scorer.risk is not None  # the model reads terminal risk
    decisions = decide_all(engine, bank)
    model = scorer.model
    offline = dict(
        zip(
            table.get_column("event_id").to_list(),
            model.probability_batch(table.select(model.features).to_numpy()).tolist(),
            strict=True,
        )
    )
    # Every completed transaction was scored online, nothing else was.
    assert set(spy.served) == set(offline)
    ids = sorted(offline)
    served = np.array([spy.served[i] for i in ids])
    expected = np.array([offline[i] for i in ids])
    assert np.allclose(served, expected, rtol=0, atol=1e-9)
    flagged = [d for d in decisions if any(r.code == CODE for r in d.reasons)]
    assert flagged, "the model should add reasons on a bank with 8 % compromised cards"
    for d in flagged:
        reason = next(r for r in d.reasons if r.code == CODE)
        assert reason.score >= 0.5 and "p=" in reason.detail
        assert d.model_versions == {"transaction": "v0001"}


def test_with_the_detectors_blocking_the_scores_still_agree(
    bank: Path, trained: tuple[Settings, pl.DataFrame]
) -> None:
    """The profiles count a blocked transaction as the offline table does (its amount was
    attempted), so every served score is the offline one, after a block as before."""
    settings, table = trained
    [scorer] = model_detectors(settings)
    spy = _Spy(scorer)
    engine = Engine.in_memory(
        read_reference(bank),
        settings=settings,
        detectors=[*default_detectors(settings.detectors), spy],
    )
    decisions = decide_all(engine, bank)
    model = scorer.model
    offline = model.probability_batch(table.select(model.features).to_numpy())
    served = np.array([spy.served[i] for i in table.get_column("event_id").to_list()])
    blocked_cards = {d.card_id for d in decisions if d.action.value == "block" and d.card_id}
    assert len(blocked_cards) > 5
    assert np.allclose(served, offline, rtol=0, atol=1e-9)


def test_the_promoted_model_joins_the_default_detectors(
    trained: tuple[Settings, pl.DataFrame], tmp_path: Path
) -> None:
    settings, _ = trained
    engine = Engine.in_memory(settings=settings)
    assert isinstance(engine.detectors[-1], ModelScorer)
    assert engine.model_versions == {"transaction": "v0001"}
    off = Settings(
        models={"registry_dir": settings.models.registry_dir, "transaction_model": False}
    )
    assert not any(isinstance(d, ModelScorer) for d in Engine.in_memory(settings=off).detectors)
    empty = Settings(models={"registry_dir": tmp_path})
    assert Engine.in_memory(settings=empty).model_versions == {}


def test_logins_and_start_events_are_not_scored() -> None:
    from types import SimpleNamespace

    from vigil.domain import Login, Transaction

    login = Login(event_id="l1", user_id="u1", timestamp="2022-01-01T00:00:00Z")
    start = Transaction(
        event_id="s1",
        transaction_id="t1",
        type="withdrawal",
        phase="start",
        timestamp="2022-01-01T00:00:00Z",
        card_id="c1",
    )
    for event in (login, start):
        assert transaction_features_of(SimpleNamespace(event=event, amount_cents=None)) is None


def test_feedback_posted_to_the_api_feeds_the_served_models_terminal_risk(
    trained: tuple[Settings, pl.DataFrame], store
) -> None:
    from fastapi.testclient import TestClient

    from tests.api.conftest import CHEAP_HASHER, seed, settings_for, tx
    from vigil.api.app import create_app

    settings, _ = trained
    seed(store)
    served = settings_for(store).model_copy(update={"models": settings.models})
    app = create_app(served, store=store, hasher=CHEAP_HASHER)
    key = app.state.keys.create("desk", ["ingest", "analyst"])[0]
    with TestClient(app) as client:
        risk = app.state.service.engine.terminal_risk
        assert risk is not None
        decided = client.post("/v1/transactions", json=tx("r-1"), headers={"X-API-Key": key})
        assert decided.status_code == 200
        later = datetime(2024, 5, 3, tzinfo=UTC).timestamp()  # past the label delay
        profiles = app.state.service.profiles
        assert risk.counts(profiles.get("terminal", "ATM-1"), later, 86400 * 7) == (1, 0)
        label = {"target_event_id": "r-1", "label": "fraud", "timestamp": "2024-05-01T12:00:00Z"}
        posted = client.post("/v1/feedback", json=label, headers={"X-API-Key": key})
        assert posted.status_code == 201
        assert risk.counts(profiles.get("terminal", "ATM-1"), later, 86400 * 7) == (1, 1)


def test_a_model_on_features_the_engine_does_not_compute_is_refused(tmp_path: Path) -> None:
    """Read as missing on every event, they would make the served model worse than its
    report: the engine refuses to start with it, naming them."""
    names = ["amount", "terminal_txn_count_1d"]  # the second from a feature file
    linear = LinearModel(names, fill=[0, 0], mean=[0, 0], scale=[1, 1], coef=[1, 1], intercept=0)
    registry = Registry(tmp_path)
    version = registry.save(Model("transaction", "logreg", linear, calibration=(1, 0)), {})
    registry.promote("transaction", version)
    with pytest.raises(ModelFeaturesError) as raised:
        model_detectors(Settings(models={"registry_dir": tmp_path}))
    assert str(raised.value) == (
        "model transaction v0001 reads feature terminal_txn_count_1d, which is neither built in "
        "nor declared in its card: train it with vigil train --feature-file"
    )
