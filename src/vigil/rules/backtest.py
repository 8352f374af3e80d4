"""Backtest: replay history with candidate rules beside the rules in force, and compare.

One in-memory engine (no store, in-memory profiles: nothing live is read for writing or
changed) replays the events in event-time order. The rules in force drive the engine, so the
profiles evolve as they did live; on every event, on the same context and the same detector
reasons, the candidate rule book is judged too (:class:`Beside`), and both decisions are
kept. Decisions are then grouped into units (a transaction's start and end, or a login) and
joined with the labels by :mod:`vigil.evaluate`, as ``vigil evaluate`` does.

Per rule of either book: ``hits`` (units it fired on, shadow rules included), ``precision``
(labelled fraud among its hits), ``recall`` (share of all fraud units it hit), ``adds`` (units
the candidate set alerts and the current set does not, among the rule's candidate hits) and
``removes`` (units the current set alerts and the candidate does not, among its current hits).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from vigil.config import Settings
from vigil.detect import Policy
from vigil.domain import Login, Reason, Transaction
from vigil.evaluate.inputs import normalise_decisions, normalise_labels
from vigil.evaluate.units import build_units
from vigil.rules.book import RuleBook, Verdict
from vigil.storage.reference import ReferenceData


class Beside:
    """Rules for an engine: the current book decides, the candidate is judged beside it.

    >>> from datetime import datetime, UTC
    >>> from vigil.detect.context import Context
    >>> from vigil.domain import Transaction
    >>> from vigil.rules.loader import load_rules
    >>> big = "rules: [{name: big, condition: amount > 100, score: 0.95}]"
    >>> candidate = RuleBook(load_rules(big))
    >>> beside = Beside(RuleBook(), candidate, Policy())
    >>> tx = Transaction(event_id="e", transaction_id="t", card_id="c", type="withdrawal",
    ...                  amount="500", timestamp=datetime(2022, 1, 1, tzinfo=UTC))
    >>> beside.judge(Context(tx, 0.0, 0.0, 0, 50000), []).reasons
    []
    >>> [(r.action_current, r.action_candidate, r.codes_candidate) for r in beside.rows]
    [('allow', 'block', ['rule:big'])]
    """

    def __init__(self, current: RuleBook, candidate: RuleBook, policy: Policy) -> None:
        self.book = current
        self.candidate = candidate
        self.policy = policy
        self.rows: list[_Row] = []

    def judge(self, ctx: Any, reasons: list[Reason]) -> Verdict:
        verdict = self.book.judge(ctx, reasons)
        other = self.candidate.judge(ctx, reasons)
        score, action, _ = self.policy.decide(verdict.reasons, verdict.action)
        other_score, other_action, _ = self.policy.decide(other.reasons, other.action)
        event = ctx.event
        self.rows.append(
            _Row(
                event.event_id,
                getattr(event, "transaction_id", None),
                event.kind,
                event.timestamp,
                score,
                action.value,
                _codes(verdict),
                other_score,
                other_action.value,
                _codes(other),
            )
        )
        return verdict


@dataclass(slots=True)
class _Row:
    event_id: str
    transaction_id: str | None
    event_kind: str
    event_time: datetime
    score_current: float
    action_current: str
    codes_current: list[str]
    score_candidate: float
    action_candidate: str
    codes_candidate: list[str]


def _codes(verdict: Verdict) -> list[str]:
    return [r.code for r in verdict.reasons] + [r.code for r in verdict.shadow]


@dataclass
class RuleFigures:
    """One rule's backtest figures (see the module docstring)."""

    rule: str
    book: str  # "current", "candidate" or "both"
    shadow: bool
    hits: int
    true_positives: int
    precision: float | None
    recall: float | None
    adds: int
    removes: int


@dataclass
class BacktestResult:
    events: int
    fraud_units: int
    units: int
    current: dict[str, Any]
    candidate: dict[str, Any]
    added: int
    removed: int
    rules: list[RuleFigures] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "units": self.units,
            "fraud_units": self.fraud_units,
            "current": self.current,
            "candidate": self.candidate,
            "alerts_added": self.added,
            "alerts_removed": self.removed,
            "rules": {
                r.rule: {k: v for k, v in vars(r).items() if k != "rule"} for r in self.rules
            },
        }


def run_backtest(
    events: Iterable[Transaction | Login],
    labels: pl.DataFrame,
    current: RuleBook,
    candidate: RuleBook,
    *,
    reference: ReferenceData | None = None,
    settings: Settings | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> BacktestResult:
    """Replay ``events`` (in event-time order) and compare the two rule books on ``labels``."""
    from vigil.engine import Engine
    from vigil.profiles import MemoryProfileStore
    from vigil.recorder import Recorder
    from vigil.replay import replay

    settings = settings or Settings()
    policy = Policy(settings.policy)
    beside = Beside(current, candidate, policy)
    engine = Engine(
        reference or ReferenceData(),
        MemoryProfileStore(settings.profiles),
        Recorder(None),
        settings=settings,
        rules=beside,
    )
    summary = replay(engine, events, on_progress=on_progress)
    return compare(beside.rows, labels, current, candidate, events=summary.events)


def _frame(rows: list[_Row], which: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "event_id": [r.event_id for r in rows],
            "transaction_id": [r.transaction_id for r in rows],
            "event_kind": [r.event_kind for r in rows],
            "event_time": [r.event_time for r in rows],
            "score": [getattr(r, f"score_{which}") for r in rows],
            "action": [getattr(r, f"action_{which}") for r in rows],
            "reason_codes": [getattr(r, f"codes_{which}") for r in rows],
        },
        schema={
            "event_id": pl.String,
            "transaction_id": pl.String,
            "event_kind": pl.String,
            "event_time": pl.Datetime("us", "UTC"),
            "score": pl.Float64,
            "action": pl.String,
            "reason_codes": pl.List(pl.String),
        },
    )


def _units(rows: list[_Row], labels: pl.DataFrame, which: str) -> pl.DataFrame:
    units, _ = build_units(normalise_decisions(_frame(rows, which)), labels)
    return units.select("unit_id", "fraud", "alerted", "reasons")


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def compare(
    rows: list[_Row],
    labels: pl.DataFrame,
    current: RuleBook,
    candidate: RuleBook,
    *,
    events: int | None = None,
) -> BacktestResult:
    """The figures of a backtest from its per-event rows (see :class:`Beside`)."""
    if not rows:
        raise ValueError("events: nothing to backtest (the event file holds no events)")
    labelled = normalise_labels(labels)
    now = _units(rows, labelled, "current")
    new = _units(rows, labelled, "candidate")
    both = now.join(new, on="unit_id", suffix="_candidate")
    fraud = both.get_column("fraud").to_list()
    alerted_now = both.get_column("alerted").to_list()
    alerted_new = both.get_column("alerted_candidate").to_list()
    codes_now = [set(c) for c in both.get_column("reasons").to_list()]
    codes_new = [set(c) for c in both.get_column("reasons_candidate").to_list()]
    fraud_units = sum(fraud)
    added = [n and not c for c, n in zip(alerted_now, alerted_new, strict=True)]
    removed = [c and not n for c, n in zip(alerted_now, alerted_new, strict=True)]

    def overall(alerted: list[bool]) -> dict[str, Any]:
        tp = sum(a and f for a, f in zip(alerted, fraud, strict=True))
        n = sum(alerted)
        return {
            "alerts": n,
            "true_positives": tp,
            "precision": _ratio(tp, n),
            "recall": _ratio(tp, fraud_units),
        }

    figures = []
    in_current = {r.name: r for r in current.rules if r.enabled}
    in_candidate = {r.name: r for r in candidate.rules if r.enabled}
    for name in [*in_candidate, *(n for n in in_current if n not in in_candidate)]:
        code = f"rule:{name}"
        rule = in_candidate.get(name) or in_current[name]
        codes = codes_new if name in in_candidate else codes_now
        hit = [code in c for c in codes]
        tp = sum(h and f for h, f in zip(hit, fraud, strict=True))
        book = (
            "both"
            if name in in_candidate and name in in_current
            else ("candidate" if name in in_candidate else "current")
        )
        figures.append(
            RuleFigures(
                rule=name,
                book=book,
                shadow=rule.shadow,
                hits=sum(hit),
                true_positives=tp,
                precision=_ratio(tp, sum(hit)),
                recall=_ratio(tp, fraud_units),
                adds=sum(a and code in c for a, c in zip(added, codes_new, strict=True)),
                # Its current hits, or an allow rule of the candidate's: either takes alerts away.
                removes=sum(
                    r and (code in c or code in n)
                    for r, c, n in zip(removed, codes_now, codes_new, strict=True)
                ),
            )
        )
    return BacktestResult(
        events=events if events is not None else len(rows),
        fraud_units=fraud_units,
        units=both.height,
        current=overall(alerted_now),
        candidate=overall(alerted_new),
        added=sum(added),
        removed=sum(removed),
        rules=figures,
    )


def reference_from_folder(folder: Any) -> ReferenceData:
    """Reference data read from a bank folder, in memory (nothing is written anywhere)."""
    from vigil.ingest import ImportRejected, read_bank_folder

    data = read_bank_folder(folder)
    if not data.ok:
        raise ImportRejected(str(folder), data.errors)
    return ReferenceData(
        banks={b.code: b for b in data.banks},
        terminals={t.terminal_id: t for t in data.terminals},
        cards={c.card_id: c for c in data.cards},
        users={u.user_id: u for u in data.users},
    )


__all__ = ["BacktestResult", "Beside", "RuleFigures", "compare", "run_backtest"]
