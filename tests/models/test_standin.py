"""StandIn: thresholds that meet the target, scores in the store, every inference logged."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from vigil.api.recording import BackgroundRecorder
from vigil.config import Settings, StandinConfig
from vigil.domain import Action, Transaction
from vigil.engine import Engine
from vigil.models.standin import (
    APPROVE,
    DECLINE,
    REVIEW,
    StandinDecider,
    StandinPolicy,
    StandinScorer,
    standin_policy_path,
)
from vigil.profiles import MemoryProfileStore
from vigil.recorder import Recorder
from vigil.storage.reference import ReferenceData


def _requests(n: int = 2000, seed: int = 4) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    user = rng.beta(1, 8, n)
    card = np.clip(user + rng.normal(0, 0.05, n), 0, 1)
    amount = rng.lognormal(9, 0.6, n)
    lost = rng.random(n) < 0.002 + 1.5 * user**2
    return user, card, amount, lost


@pytest.mark.parametrize("target_value", [0.01, 0.02])
def test_loss_rate_target_is_met_on_the_requests_it_was_chosen_on(target_value: float) -> None:
    user, card, amount, lost = _requests()
    policy = StandinPolicy.fit(
        user, card, amount, lost, target="loss_rate", target_value=target_value, review_share=0.05
    )
    decisions = np.array(
        [policy.decide(u, c, a) for u, c, a in zip(user, card, amount, strict=True)]
    )
    approved = decisions == APPROVE
    loss_rate = (amount * lost)[approved].sum() / amount[approved].sum()
    assert loss_rate <= target_value
    assert policy.figures["approved_loss_rate"] == pytest.approx(loss_rate)
    # Approving everything would lose more than the target; the policy approves most.
    assert policy.figures["loss_rate_if_all_approved"] > target_value
    assert 0.5 < approved.mean() < 1.0
    assert (decisions == REVIEW).mean() == pytest.approx(0.05, abs=0.002)
    assert (decisions == DECLINE).any()
    # The risky requests are the declined ones.
    assert user[decisions == DECLINE].mean() > user[approved].mean()


def test_approval_rate_target_approves_that_share() -> None:
    user, card, amount, lost = _requests()
    policy = StandinPolicy.fit(
        user, card, amount, lost, target="approval_rate", target_value=0.9, review_share=0.0
    )
    assert policy.figures["approved_share"] == pytest.approx(0.9, abs=0.001)
    assert policy.figures["review_share"] == 0.0


def test_a_higher_amount_is_riskier() -> None:
    policy = StandinPolicy(
        0.4, 0.4, 0.2, amount_scale=10_000.0, approve_below=0.2, decline_from=0.3
    )
    assert policy.risk(0.1, 0.1, 100_000.0) > policy.risk(0.1, 0.1, 1_000.0)
    assert policy.decide(0.1, 0.1, 1_000.0) == APPROVE
    assert policy.decide(0.1, 0.1, 1_000_000.0) == REVIEW


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="target: 'profit'"):
        StandinPolicy.fit(*_requests(10), target="profit", target_value=0.1, review_share=0)
    with pytest.raises(ValueError, match="no labelled StandIn requests"):
        empty = np.array([])
        StandinPolicy.fit(
            empty, empty, empty, empty, target="loss_rate", target_value=0.1, review_share=0
        )


def test_policy_round_trips_through_its_file(tmp_path) -> None:
    policy = StandinPolicy.fit(
        *_requests(),
        target="loss_rate",
        target_value=0.03,
        review_share=0.05,
        model_versions={"user": "v0002"},
    )
    policy.save(tmp_path / "standin" / "policy.json")
    assert StandinPolicy.load(tmp_path / "standin" / "policy.json") == policy
    with pytest.raises(LookupError, match="vigil score"):
        StandinPolicy.load(tmp_path / "missing.json")


def test_scores_are_stored_and_every_decision_logged(store) -> None:
    when = datetime(2022, 2, 1, tzinfo=UTC)
    rows = [
        {"user_id": "u1", "score": 0.8, "model_version": "v0001", "score_timestamp": when},
        {"user_id": "u2", "score": 0.05, "model_version": "v0001", "score_timestamp": when},
    ]
    assert store.upsert_profile_scores("user", rows) == 2
    card = {"card_id": "c1", "score": 0.9, "model_version": "v0003", "score_timestamp": when}
    assert store.upsert_profile_scores("card", [card]) == 1
    # A new batch replaces the old score.
    newer = {**rows[1], "score": 0.1, "model_version": "v0002"}
    store.upsert_profile_scores("user", [newer])
    assert store.profile_scores("user", ["u1", "u2", "u9"]) == {
        "u1": (0.8, "v0001"),
        "u2": (0.1, "v0002"),
    }
    with pytest.raises(ValueError, match="kind: 'account'"):
        store.profile_scores("account", ["a"])

    policy = StandinPolicy(
        0.5,
        0.5,
        0.0,
        amount_scale=1.0,
        approve_below=0.3,
        decline_from=0.6,
        default_user_score=0.2,
        default_card_score=0.2,
    )
    decider = StandinDecider(store, policy)
    risky = decider.decide("e1", user_id="u1", card_id="c1", amount=500.0, event_time=when)
    calm = decider.decide("e2", user_id="u2", card_id="c-new", amount=50.0, event_time=when)
    assert (risky.decision, risky.risk) == (DECLINE, pytest.approx(0.85))
    # An unscored card takes the policy's default score.
    assert (calm.decision, calm.card_score, calm.risk) == (APPROVE, None, pytest.approx(0.15))
    log = store.standin_log()
    assert [r["event_id"] for r in log] == ["e2", "e1"]
    assert log[1]["model_versions"] == {"user": "v0001", "card": "v0003"}
    assert log[1]["user_score"] == 0.8 and log[1]["decision"] == DECLINE
    assert log[0]["card_score"] is None and log[0]["amount"] == 50.0


def _scored_bank(store, root) -> Settings:
    """Scores for a high-risk and a clean user and card, and the policy ``vigil score`` keeps."""
    when = datetime(2022, 2, 1, tzinfo=UTC)
    for kind, scores in (
        ("user", {"u-risky": 0.9, "u-clean": 0.02}),
        ("card", {"c-risky": 0.95, "c-clean": 0.01}),
    ):
        store.upsert_profile_scores(
            kind,
            [
                {f"{kind}_id": key, "score": s, "model_version": "v0001", "score_timestamp": when}
                for key, s in scores.items()
            ],
        )
    policy = StandinPolicy(0.4, 0.4, 0.2, 200.0, approve_below=0.3, decline_from=0.6)
    policy.save(standin_policy_path(root))
    return Settings(models={"registry_dir": root})


def _standin(event_id: str, user: str, card: str, *, standin: bool = True) -> Transaction:
    return Transaction(
        event_id=event_id,
        transaction_id=f"t-{event_id}",
        type="withdrawal",
        amount="200.00",
        user_id=user,
        card_id=card,
        standin=standin,
        timestamp=datetime(2022, 2, 2, 10, tzinfo=UTC),
    )


def test_the_engine_decides_standin_transactions_and_logs_each_once(store, tmp_path) -> None:
    settings = _scored_bank(store, tmp_path / "models")
    recorder = Recorder(store)
    engine = Engine(ReferenceData(), MemoryProfileStore(), recorder, settings=settings)
    [scorer] = [d for d in engine.detectors if isinstance(d, StandinScorer)]
    assert len(scorer.scores) == 4  # the tables, held in memory

    risky = engine.process(_standin("e-risky", "u-risky", "c-risky"))
    clean = engine.process(_standin("e-clean", "u-clean", "c-clean"))
    plain = engine.process(_standin("e-plain", "u-risky", "c-risky", standin=False))
    # risk = 0.4 * 0.9 + 0.4 * 0.95 + 0.2 * 200 / (200 + 200) = 0.84 ≥ 0.6: declined, blocked
    assert risky.action is Action.BLOCK
    reason = next(r for r in risky.reasons if r.code.startswith("standin_"))
    assert (reason.code, reason.score) == ("standin_decline", settings.policy.block_at)
    assert reason.detail == (
        "StandIn decline: risk 0.840 from user score 0.900, card score 0.950 and amount 200.00"
    )
    # risk = 0.4 * 0.02 + 0.4 * 0.01 + 0.1 = 0.112 < 0.3: approved, nothing else flags it
    assert clean.action is Action.ALLOW
    assert [(r.code, r.score) for r in clean.reasons] == [("standin_approve", 0.0)]
    assert "user score 0.020, card score 0.010" in clean.reasons[0].detail
    assert not any(r.code.startswith("standin_") for r in plain.reasons)

    # A repeated event gets its first decision and is not inferred again.
    assert engine.process(_standin("e-risky", "u-risky", "c-risky")) is risky
    assert store.standin_log() == []  # written with the decisions, not per event
    recorder.flush()
    log = store.standin_log()
    assert sorted((r["event_id"], r["decision"]) for r in log) == [
        ("e-clean", APPROVE),
        ("e-risky", DECLINE),
    ]
    row = next(r for r in log if r["event_id"] == "e-risky")
    assert (row["user_score"], row["card_score"], row["amount"]) == (0.9, 0.95, 200.0)
    assert row["risk"] == pytest.approx(0.84)
    assert row["model_versions"] == {"user": "v0001", "card": "v0001"}


def test_the_servers_background_recorder_writes_the_inferences_with_their_batch(
    store, tmp_path
) -> None:
    settings = _scored_bank(store, tmp_path / "models")
    recorder = BackgroundRecorder(store)
    engine = Engine(ReferenceData(), MemoryProfileStore(), recorder, settings=settings)
    engine.process(_standin("e-risky", "u-risky", "c-risky"))
    engine.process(_standin("e-clean", "u-clean", "c-clean"))
    recorder.close()  # what `serve` does on shutdown: nothing buffered may be left behind
    assert sorted((r["event_id"], r["decision"]) for r in store.standin_log()) == [
        ("e-clean", APPROVE),
        ("e-risky", DECLINE),
    ]


def test_refreshed_scores_change_the_next_decision(store, tmp_path) -> None:
    settings = _scored_bank(store, tmp_path / "models")
    engine = Engine(ReferenceData(), MemoryProfileStore(), Recorder(store), settings=settings)
    [scorer] = [d for d in engine.detectors if isinstance(d, StandinScorer)]
    assert engine.process(_standin("e-1", "u-clean", "c-clean")).action is Action.ALLOW
    when = datetime(2022, 2, 3, tzinfo=UTC)
    store.upsert_profile_scores(
        "card",
        [{"card_id": "c-clean", "score": 0.99, "model_version": "v0002", "score_timestamp": when}],
    )
    # No database read per event: the new batch shows only once refreshed.
    assert engine.process(_standin("e-2", "u-clean", "c-clean")).action is Action.ALLOW
    assert scorer.scores.refresh() == 4
    later = engine.process(_standin("e-3", "u-clean", "c-clean"))
    # risk = 0.008 + 0.396 + 0.1 = 0.504: between the thresholds, reviewed
    assert later.action is Action.REVIEW
    assert [r.code for r in later.reasons] == ["standin_review"]


def test_without_scores_or_switched_off_the_engine_has_no_standin_step(store, tmp_path) -> None:
    empty = Settings(models={"registry_dir": tmp_path / "none"})
    engine = Engine(ReferenceData(), MemoryProfileStore(), Recorder(store), settings=empty)
    assert not any(isinstance(d, StandinScorer) for d in engine.detectors)
    settings = _scored_bank(store, tmp_path / "models")
    off = settings.model_copy(
        update={
            "models": settings.models.model_copy(update={"standin": StandinConfig(in_engine=False)})
        }
    )
    engine = Engine(ReferenceData(), MemoryProfileStore(), Recorder(store), settings=off)
    assert not any(isinstance(d, StandinScorer) for d in engine.detectors)
