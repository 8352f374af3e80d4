"""Turn detector reasons into one score and an action.

Reasons are combined as independent evidence (noisy-OR: ``1 - Π(1 - s)``), so two weak signals
together outweigh either alone; that evidence then crosses the configured thresholds for
step-up, review and block. Every contributing reason is kept, strongest first.

With a stacked combiner (:mod:`vigil.models.combiner`), the decision's score is instead the
combiner's calibrated fraud probability from the reasons and the model's probability, which
ranks every event; the action still comes from the reasons' evidence alone.

>>> from vigil.domain import Reason
>>> policy = Policy()
>>> policy.decide([Reason(code="new_country", score=0.45), Reason(code="new_device", score=0.35)])
(0.6425, <Action.STEP_UP: 'step_up'>, [...])
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vigil.config import PolicyConfig
from vigil.domain import Action, Reason

if TYPE_CHECKING:
    from vigil.models.combiner import Combiner

_RANK = {action: rank for rank, action in enumerate(Action)}


class Policy:
    def __init__(
        self, config: PolicyConfig | None = None, *, combiner: Combiner | None = None
    ) -> None:
        self.config = config or PolicyConfig()
        self.combiner = combiner

    def decide(
        self,
        reasons: list[Reason],
        ruled: Action | None = None,
        probability: float | None = None,
    ) -> tuple[float, Action, list[Reason]]:
        """Score, action and reasons strongest first.

        ``ruled`` is an action set by a rule (vigil.rules): step-up, review and block are the
        least action taken; allow replaces the evidence's action. ``probability`` is the
        transaction model's (None: it did not score the event), which the combiner, if any,
        weighs with the reasons into the score.

        >>> Policy().decide([Reason(code="new_device", score=0.35)], Action.REVIEW)[:2]
        (0.35, <Action.REVIEW: 'review'>)
        """
        if not reasons and self.combiner is None:
            return 0.0, ruled or Action.ALLOW, reasons
        keep = 1.0
        for reason in reasons:
            keep *= 1.0 - reason.score
        evidence = round(1.0 - keep, 6)
        action = self.action(evidence)
        if ruled is not None and (ruled is Action.ALLOW or _RANK[ruled] > _RANK[action]):
            action = ruled
        score = evidence
        if self.combiner is not None:
            score = self.combiner.score(((r.code, r.score) for r in reasons), probability)
        if len(reasons) > 1:
            reasons = sorted(reasons, key=lambda r: -r.score)
        return score, action, reasons

    def action(self, score: float) -> Action:
        c = self.config
        if score >= c.block_at:
            return Action.BLOCK
        if score >= c.review_at:
            return Action.REVIEW
        if score >= c.step_up_at:
            return Action.STEP_UP
        return Action.ALLOW
