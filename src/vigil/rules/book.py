"""A rule book: the enabled rules of one file, evaluated on an event after the detectors.

Each rule that holds becomes a :class:`~vigil.domain.Reason` (code ``rule:<name>``, the rule's
score, its reason text) that the :class:`~vigil.detect.Policy` combines with the detectors'
by noisy-OR. Action rules set the least action the decision may take (``allow`` rules let
only another rule's action raise it). Shadow rules are evaluated the same way, but their hits
go to :attr:`Verdict.shadow` and change nothing.

>>> from datetime import datetime, UTC
>>> from vigil.detect.context import Context
>>> from vigil.domain import Transaction
>>> from vigil.rules.loader import load_rules
>>> book = RuleBook(load_rules('''
... rules:
...   - {name: large, condition: amount >= 1000, score: 0.4, reason: "{amount:,.0f} is large"}
...   - {name: atm_night, condition: channel == "atm" and hour < 5, action: review}
...   - {name: trial, condition: amount > 500, score: 0.9, shadow: true}
... '''))
>>> tx = Transaction(event_id="e", transaction_id="t", card_id="c", type="withdrawal",
...                  amount="2500.00", timestamp=datetime(2022, 1, 1, 3, tzinfo=UTC))
>>> v = book.judge(Context(tx, 10800.0, 10800.0, 0, 250000), [])
>>> [(r.code, r.score, r.detail) for r in v.reasons], v.action.value, [r.code for r in v.shadow]
([('rule:large', 0.4, '2,500 is large'), ('rule:atm_night', 0.0, 'rule atm_night')], 'review', ['rule:trial'])
"""  # noqa: E501

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

from vigil.domain import Action, Reason
from vigil.rules.loader import Rule

log = logging.getLogger("vigil.rules")

_SEVERITY = {action: i for i, action in enumerate(Action)}
_NO_CODES: frozenset[str] = frozenset()
_NONE: list[Reason] = []


class Verdict(NamedTuple):
    """What the rules add to one decision.

    ``reasons``: the detectors' reasons followed by the hits of the rules in force (the same
    list object when nothing hit); ``action``: the action the rules set, if any; ``shadow``:
    hits of shadow rules (never changed after it is returned; may be shared).
    """

    reasons: list[Reason]
    action: Action | None = None
    shadow: list[Reason] = _NONE


class RuleBook:
    """The enabled rules of one rule file, in file order, with where it came from."""

    def __init__(
        self,
        rules: Sequence[Rule] = (),
        *,
        sha256: str | None = None,
        source: str | None = None,
        version: int | None = None,
    ) -> None:
        self.rules = tuple(rules)
        enabled = [r for r in self.rules if r.enabled]
        self.live = tuple(r for r in enabled if not r.shadow)
        self.shadow = tuple(r for r in enabled if r.shadow)
        self.sha256 = sha256
        self.source = source
        self.version = version
        self._any = bool(enabled)
        self._codes = any(r.reasons for r in enabled)
        self._failed: set[str] = set()

    def __len__(self) -> int:
        return len(self.rules)

    def judge(self, ctx: Any, reasons: list[Reason]) -> Verdict:
        """Evaluate every enabled rule on the event's context and the detectors' reasons."""
        if not self._any:
            return Verdict(reasons)
        codes = frozenset(r.code for r in reasons) if self._codes else _NO_CODES
        hits: list[Reason] | None = None
        floor: Action | None = None
        allow = False
        for rule in self.live:
            if self._holds(rule, ctx, codes):
                if hits is None:
                    hits = list(reasons)
                hits.append(self._reason(rule, ctx, codes))
                action = rule.action
                if action is Action.ALLOW:
                    allow = True
                elif action is not None and (floor is None or _SEVERITY[action] > _SEVERITY[floor]):
                    floor = action
        shadow = _NONE
        for rule in self.shadow:
            if self._holds(rule, ctx, codes):
                if shadow is _NONE:
                    shadow = []
                hit = self._reason(rule, ctx, codes)
                shadow.append(hit)
                log.info(
                    "shadow rule %s hit event %s: %s", rule.name, ctx.event.event_id, hit.detail
                )
        ruled = floor if floor is not None else (Action.ALLOW if allow else None)
        return Verdict(reasons if hits is None else hits, ruled, shadow)

    def _holds(self, rule: Rule, ctx: Any, codes: frozenset[str]) -> bool:
        try:
            return bool(rule.test(ctx, codes))
        except Exception:
            # Type-checked at load, so this is a defect, not bad input: one event must not
            # stall the stream. The rule counts as not holding and is reported once.
            if rule.name not in self._failed:
                self._failed.add(rule.name)
                log.exception("rule %s failed on event %s", rule.name, ctx.event.event_id)
            return False

    @staticmethod
    def _reason(rule: Rule, ctx: Any, codes: frozenset[str]) -> Reason:
        # Scores and codes were validated when the file loaded; skip validating them again.
        return Reason.model_construct(
            code=rule.code,
            score=rule.score or 0.0,
            detail=rule.reason.render(ctx, codes),
            entity=None,
            evidence=(),
        )
