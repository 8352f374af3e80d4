"""StandIn: thresholds that meet the target, scores in the store, every inference logged."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from vigil.models.standin import APPROVE, DECLINE, REVIEW, StandinDecider, StandinPolicy


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
