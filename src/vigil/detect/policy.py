"""Turn detector reasons into one score and an action.

Reasons are combined as independent evidence (noisy-OR: ``1 - Π(1 - s)``), so two weak signals
together outweigh either alone; the score then crosses the configured thresholds for
step-up, review and block. Every contributing reason is kept, strongest first.

>>> from vigil.domain import Reason
>>> policy = Policy()
>>> policy.decide([Reason(code="new_country", score=0.45), Reason(code="new_device", score=0.35)])
(0.6425, <Action.STEP_UP: 'step_up'>, [...])
"""

from __future__ import annotations

from vigil.config import PolicyConfig
from vigil.domain import Action, Reason

_RANK = {action: rank for rank, action in enumerate(Action)}


class Policy:
    def __init__(self, config: PolicyConfig | None = None) -> None:
        self.config = config or PolicyConfig()

    def decide(
        self, reasons: list[Reason], ruled: Action | None = None
    ) -> tuple[float, Action, list[Reason]]:
        """Score, action and reasons strongest first.

        ``ruled`` is an action set by a rule (vigil.rules): step-up, review and block are the
        least action taken; allow replaces the score's action.

        >>> Policy().decide([Reason(code="new_device", score=0.35)], Action.REVIEW)[:2]
        (0.35, <Action.REVIEW: 'review'>)
        """
        if not reasons:
            return 0.0, ruled or Action.ALLOW, reasons
        keep = 1.0
        for reason in reasons:
            keep *= 1.0 - reason.score
        score = round(1.0 - keep, 6)
        action = self.action(score)
        if ruled is not None and (ruled is Action.ALLOW or _RANK[ruled] > _RANK[action]):
            action = ruled
        return score, action, sorted(reasons, key=lambda r: -r.score)

    def action(self, score: float) -> Action:
        c = self.config
        if score >= c.block_at:
            return Action.BLOCK
        if score >= c.review_at:
            return Action.REVIEW
        if score >= c.step_up_at:
            return Action.STEP_UP
        return Action.ALLOW
