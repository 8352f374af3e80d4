"""Real-time StandIn decisions: the user's and the card's batch scores, and the amount.

While the bank's host is down, a StandIn withdrawal is approved or not on what is known
beforehand: the user model's and the card model's scores (batch, ``user_profile_scores`` and
``card_profile_scores``) and the amount asked for. The risk is a weighted formula,

    risk = w_user * user_score + w_card * card_score + w_amount * amount / (amount + s)

(``s`` the median StandIn amount, so the amount term is 0.5 for a typical request), with the
weights from ``[models.standin]``. The thresholds are chosen on labelled StandIn outcomes
(``standin_loss`` / ``standin_recovered``) to meet the configured target:

- ``loss_rate``: approve the least risky requests while the share of approved amount that was
  lost stays at or under the target;
- ``approval_rate``: approve that share of requests, least risky first.

The next ``review_share`` of requests go to review; the rest are declined. An entity without
a score (new since the last batch) takes the median score of its kind. Every decision is
logged to ``standin_inferences`` with the scores it saw.

Two ways in, one formula (:func:`infer`): :class:`StandinDecider` answers one request from the
store (``vigil models standin``); :class:`StandinScorer` is the engine's StandIn step, a
detector that reads the score tables from memory (:class:`ProfileScores`, loaded when the
engine starts, :meth:`ProfileScores.refresh` after a new batch) and logs through the recorder.

>>> import numpy as np
>>> policy = StandinPolicy.fit(np.array([0.1, 0.2, 0.9, 0.3]), np.array([0.1, 0.3, 0.8, 0.2]),
...     np.array([100.0, 100.0, 100.0, 100.0]), np.array([0, 0, 1, 0]),
...     target="loss_rate", target_value=0.02, review_share=0.0)
>>> policy.decide(0.1, 0.1, 100.0), policy.decide(0.9, 0.8, 100.0)
('approve', 'decline')
>>> policy.figures["approved_share"], policy.figures["approved_loss_rate"]
(0.75, 0.0)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from vigil.config import Settings, StandinConfig
from vigil.domain import Reason

APPROVE, REVIEW, DECLINE = "approve", "review", "decline"


@dataclass
class StandinPolicy:
    """Weights, amount scale and the two thresholds; ``decide`` is the real-time formula.

    >>> StandinPolicy(0.5, 0.5, 0.0, 100.0, 0.3, 0.6).decide(0.4, 0.4, 50.0)
    'review'
    """

    user_weight: float
    card_weight: float
    amount_weight: float
    amount_scale: float
    approve_below: float
    decline_from: float
    default_user_score: float = 0.0
    default_card_score: float = 0.0
    target: str = "loss_rate"
    target_value: float = 0.02
    model_versions: dict[str, str] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)

    def risk(self, user_score: float | None, card_score: float | None, amount: float) -> float:
        u = self.default_user_score if user_score is None else user_score
        c = self.default_card_score if card_score is None else card_score
        a = max(amount, 0.0)
        return (
            self.user_weight * u
            + self.card_weight * c
            + self.amount_weight * a / (a + self.amount_scale)
        )

    def decide(self, user_score: float | None, card_score: float | None, amount: float) -> str:
        return self._by_risk(self.risk(user_score, card_score, amount))

    @classmethod
    def fit(
        cls,
        user_score: np.ndarray,
        card_score: np.ndarray,
        amount: np.ndarray,
        lost: np.ndarray,
        *,
        target: str,
        target_value: float,
        review_share: float,
        weights: tuple[float, float, float] = (0.4, 0.4, 0.2),
        model_versions: dict[str, str] | None = None,
    ) -> StandinPolicy:
        """Choose the thresholds on labelled StandIn requests to meet the target."""
        amount = np.asarray(amount, dtype=np.float64)
        lost = np.asarray(lost, dtype=bool)
        if amount.size == 0:
            raise ValueError("lost: no labelled StandIn requests to choose thresholds on")
        if target not in ("loss_rate", "approval_rate"):
            raise ValueError(f"target: {target!r} is not loss_rate or approval_rate")
        user = np.asarray(user_score, dtype=np.float64)
        card = np.asarray(card_score, dtype=np.float64)
        policy = cls(
            *weights,
            amount_scale=float(max(np.median(amount), 1e-9)),
            approve_below=1.0,
            decline_from=1.0,
            default_user_score=float(np.nanmedian(user)) if np.isfinite(user).any() else 0.0,
            default_card_score=float(np.nanmedian(card)) if np.isfinite(card).any() else 0.0,
            target=target,
            target_value=target_value,
            model_versions=dict(model_versions or {}),
        )
        risk = np.array(
            [
                policy.risk(None if np.isnan(u) else u, None if np.isnan(c) else c, a)
                for u, c, a in zip(user.tolist(), card.tolist(), amount.tolist(), strict=True)
            ]
        )
        order = np.argsort(risk, kind="mergesort")
        n = risk.size
        if target == "approval_rate":
            approved = int(np.floor(target_value * n))
        else:
            lost_amount = np.cumsum((amount * lost)[order])
            total_amount = np.cumsum(amount[order])
            rate = lost_amount / np.maximum(total_amount, 1e-12)
            ok = np.flatnonzero(rate <= target_value)
            # The longest prefix (least risky first) that meets the target.
            approved = int(ok[-1]) + 1 if ok.size else 0
        reviewed = min(n - approved, int(np.ceil(review_share * n)))
        ranked = risk[order]
        policy.approve_below = _cut(ranked, approved)
        policy.decline_from = max(policy.approve_below, _cut(ranked, approved + reviewed))
        decisions = np.array([policy._by_risk(r) for r in risk.tolist()])
        is_approved = decisions == APPROVE
        policy.figures = {
            "requests": n,
            "losses": int(lost.sum()),
            "approved_share": float(is_approved.mean()),
            "review_share": float((decisions == REVIEW).mean()),
            "decline_share": float((decisions == DECLINE).mean()),
            "approved_loss_rate": float(
                (amount * lost)[is_approved].sum() / max(amount[is_approved].sum(), 1e-12)
            ),
            "loss_rate_if_all_approved": float((amount * lost).sum() / max(amount.sum(), 1e-12)),
            "losses_stopped": int((lost & ~is_approved).sum()),
        }
        return policy

    def _by_risk(self, risk: float) -> str:
        if risk < self.approve_below:
            return APPROVE
        return REVIEW if risk < self.decline_from else DECLINE

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> StandinPolicy:
        if not path.is_file():
            raise LookupError(f"{path}: no StandIn policy; run `vigil score profiles` first")
        return cls(**json.loads(path.read_text()))

    @classmethod
    def from_config(cls, config: StandinConfig, **kwargs: Any) -> dict[str, Any]:
        """The fit keywords that come from ``[models.standin]``."""
        return {
            "target": config.target,
            "target_value": config.target_value,
            "review_share": config.review_share,
            "weights": (config.user_weight, config.card_weight, config.amount_weight),
            **kwargs,
        }


def _cut(ranked: np.ndarray, count: int) -> float:
    """A threshold putting exactly the first ``count`` of the ascending ``ranked`` below it."""
    if count <= 0:
        return float(ranked[0]) if ranked.size else 0.0
    if count >= ranked.size:
        return float(np.nextafter(ranked[-1], np.inf))
    low, high = float(ranked[count - 1]), float(ranked[count])
    return high if low == high else (low + high) / 2


@dataclass(frozen=True)
class StandinDecision:
    """One real-time answer, as logged."""

    decision: str
    risk: float
    user_score: float | None
    card_score: float | None


Scores = Mapping[str, tuple[float, str]]  # id → (score, model version)


def infer(
    policy: StandinPolicy,
    event_id: str | None,
    *,
    user_id: str | None,
    card_id: str | None,
    amount: float,
    users: Scores,
    cards: Scores,
    event_time: datetime | None = None,
) -> tuple[StandinDecision, dict[str, Any]]:
    """One StandIn answer from the scores found, and its ``standin_inferences`` row."""
    user = users[user_id][0] if user_id in users else None
    card = cards[card_id][0] if card_id in cards else None
    risk = policy.risk(user, card, amount)
    decision = StandinDecision(policy._by_risk(risk), risk, user, card)
    versions = dict(policy.model_versions)
    for kind, found, key in (("user", users, user_id), ("card", cards, card_id)):
        if key in found:
            versions[kind] = found[key][1]
    row = {
        "event_id": event_id,
        "event_time": event_time,
        "user_id": user_id,
        "card_id": card_id,
        "amount": float(amount),
        "user_score": user,
        "card_score": card,
        "risk": risk,
        "decision": decision.decision,
        "model_versions": versions,
        "decided_at": datetime.now(UTC),
    }
    return decision, row


class StandinDecider:
    """Decide StandIn requests in real time from the stored scores, logging every inference.

    ``store`` is a :class:`vigil.storage.Store`; the scores are read per request (two indexed
    primary-key lookups: StandIn requests are rare, and a fresh batch shows at once).

    >>> import tempfile
    >>> from vigil.storage import Store
    >>> store = Store(f"sqlite:///{tempfile.mkdtemp()}/v.db"); store.init_schema()
    >>> decider = StandinDecider(store, StandinPolicy(0.5, 0.5, 0.0, 100.0, 0.3, 0.6))
    >>> decider.decide("e1", user_id="u1", card_id="c1", amount=80.0).decision
    'approve'
    >>> store.standin_log()[0]["decision"]
    'approve'
    """

    def __init__(self, store: Any, policy: StandinPolicy) -> None:
        self.store = store
        self.policy = policy

    def decide(
        self,
        event_id: str | None,
        *,
        user_id: str | None,
        card_id: str | None,
        amount: float,
        event_time: datetime | None = None,
    ) -> StandinDecision:
        users = self.store.profile_scores("user", [user_id]) if user_id else {}
        cards = self.store.profile_scores("card", [card_id]) if card_id else {}
        decision, row = infer(
            self.policy,
            event_id,
            user_id=user_id,
            card_id=card_id,
            amount=amount,
            users=users,
            cards=cards,
            event_time=event_time,
        )
        self.store.log_standin([row])
        return decision


def standin_policy_path(registry_root: Path) -> Path:
    """Where ``vigil score profiles`` keeps the StandIn thresholds it chose, under the registry."""
    return registry_root / "standin" / "policy.json"


class ProfileScores:
    """Every user's and card's batch score (``user_profile_scores`` / ``card_profile_scores``),
    held in memory so a StandIn decision in the engine reads no database; :meth:`refresh`
    after a new ``vigil score profiles``.

    >>> import tempfile
    >>> from datetime import datetime, UTC
    >>> from vigil.storage import Store
    >>> store = Store(f"sqlite:///{tempfile.mkdtemp()}/v.db"); store.init_schema()
    >>> scores = ProfileScores(store)
    >>> len(scores)
    0
    >>> _ = store.upsert_profile_scores("card", [{"card_id": "c1", "score": 0.8,
    ...     "model_version": "v0001", "score_timestamp": datetime(2022, 1, 1, tzinfo=UTC)}])
    >>> scores.refresh(), scores.cards["c1"]
    (1, (0.8, 'v0001'))
    """

    def __init__(self, store: Any) -> None:
        self.store = store
        self.users: dict[str, tuple[float, str]] = {}
        self.cards: dict[str, tuple[float, str]] = {}
        self.refresh()

    def refresh(self) -> int:
        """Read both tables again (whole: one query each); returns the scores held."""
        from sqlalchemy import select

        loaded = {}
        for kind in ("user", "card"):
            table = self.store._scores_table(kind)
            query = select(table.c[f"{kind}_id"], table.c.score, table.c.model_version)
            with self.store.engine.connect() as conn:
                loaded[kind] = {
                    key: (score, version) for key, score, version in conn.execute(query)
                }
        # swapped in whole, so a decision never sees half of a refresh
        self.users, self.cards = loaded["user"], loaded["card"]
        return len(self)

    def __len__(self) -> int:
        return len(self.users) + len(self.cards)


class StandinScorer:
    """The real-time StandIn decision in the engine, with the detector shape.

    For a StandIn transaction with an amount (single or end event) it decides from the scores
    in memory (:class:`ProfileScores`) and the amount, logs the inference once through
    ``log`` (the engine's recorder, written with its decisions), and returns the outcome as a
    reason: ``standin_decline`` with the policy's block score, ``standin_review`` with its
    review score (so the engine's action follows), ``standin_approve`` with score 0 (the
    outcome is on the decision; the action is the other detectors'). Other events: nothing.

    >>> from datetime import datetime, UTC
    >>> from types import SimpleNamespace
    >>> from vigil.domain import Transaction
    >>> scores = SimpleNamespace(users={"u1": (0.9, "v1")}, cards={"c1": (0.9, "v1")})
    >>> rows = []
    >>> scorer = StandinScorer(StandinPolicy(0.5, 0.5, 0.0, 100.0, 0.3, 0.6), scores,
    ...                        log=rows.append, review_score=0.7, decline_score=0.9)
    >>> tx = Transaction(event_id="e1", transaction_id="t1", type="withdrawal", amount="80",
    ...     card_id="c1", user_id="u1", standin=True, timestamp=datetime(2022, 1, 1, tzinfo=UTC))
    >>> [(r.code, r.score) for r in scorer.detect(SimpleNamespace(event=tx, amount_cents=8000))]
    [('standin_decline', 0.9)]
    >>> rows[0]["decision"], rows[0]["card_score"]
    ('decline', 0.9)
    """

    codes: tuple[str, ...] = tuple(f"standin_{d}" for d in (APPROVE, REVIEW, DECLINE))

    def __init__(
        self,
        policy: StandinPolicy,
        scores: Any,
        *,
        log: Callable[[dict[str, Any]], None],
        review_score: float,
        decline_score: float,
    ) -> None:
        self.policy = policy
        self.scores = scores
        self.log = log
        self._score = {APPROVE: 0.0, REVIEW: review_score, DECLINE: decline_score}

    def detect(self, ctx: Any) -> list[Reason]:
        event = ctx.event
        if (
            not getattr(event, "standin", False)
            or getattr(event, "phase", "start") == "start"
            or ctx.amount_cents is None
        ):
            return []
        amount = ctx.amount_cents / 100
        decision, row = infer(
            self.policy,
            event.event_id,
            user_id=event.user_id,
            card_id=event.card_id,
            amount=amount,
            users=self.scores.users,
            cards=self.scores.cards,
            event_time=event.timestamp,
        )
        self.log(row)
        detail = (
            f"StandIn {decision.decision}: risk {decision.risk:.3f} from user score "
            f"{_score(decision.user_score)}, card score {_score(decision.card_score)} "
            f"and amount {amount:,.2f}"
        )
        code = f"standin_{decision.decision}"
        return [Reason(code=code, score=self._score[decision.decision], detail=detail)]


def _score(value: float | None) -> str:
    return "none (the median)" if value is None else f"{value:.3f}"


def standin_detectors(settings: Settings, recorder: Any) -> list[StandinScorer]:
    """The StandIn decision for the engine once ``vigil score profiles`` has run (a policy file and
    scores in the recorder's store), logging through ``recorder.add_standin``; else none."""
    from vigil.models.scorer import registry_dir

    store = getattr(recorder, "store", None)
    path = standin_policy_path(registry_dir(settings))
    if not settings.models.standin.in_engine or store is None or not path.is_file():
        return []
    scores = ProfileScores(store)
    if not len(scores):
        return []
    return [
        StandinScorer(
            StandinPolicy.load(path),
            scores,
            log=recorder.add_standin,
            review_score=settings.policy.review_at,
            decline_score=settings.policy.block_at,
        )
    ]
