"""A small synthetic bank replayed through the real engine, its online features captured."""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from vigil.config import Settings
from vigil.detect import Context, default_detectors
from vigil.domain import Action, Phase, Reason, Transaction
from vigil.engine import Engine
from vigil.features import TerminalRisk, online_features
from vigil.features.declared import load_features, with_declared
from vigil.features.io import read_event_frame, read_feedback_frame, read_labels, read_reference
from vigil.ingest import iter_event_file
from vigil.models.labels import feedback_items, fraud_feedback, run
from vigil.replay import in_time_order
from vigil.simulate import BankConfig, generate
from vigil.storage.reference import ReferenceData

LABEL_DELAY = timedelta(days=3)
# A feature file's windowed aggregations, replayed and built beside the built-in features.
DECLARED = load_features(
    """
features:
  - {name: terminal_txn_count_1d, over: terminal, aggregate: count, window: 1d}
  - {name: terminal_withdrawn_1h, over: terminal, aggregate: sum, window: 1h,
     types: [withdrawal]}
  - {name: card_withdrawn_7d, over: card, aggregate: sum, window: 7d, types: [withdrawal]}
  - {name: user_mean_sent_30d, over: user, aggregate: mean, window: 30d,
     types: [payment, transfer]}
  - {name: card_deposits_90d, over: card, aggregate: count, window: 90d, types: [deposit]}
""",
    source="tests/features/conftest.py",
)
ALL_FEATURES = with_declared(DECLARED)


@dataclass
class Bank:
    folder: Path
    events: pl.DataFrame
    labels: pl.DataFrame
    feedback: pl.DataFrame
    reference: ReferenceData


@dataclass
class Replayed:
    online: dict[str, dict[str, float]]  # event_id → features read at decision time
    learnt: int  # fraud labels the engine counted
    # action → the completed transactions whose card's previous one was decided so: what
    # they read of the card's profile is what that action left there
    after: dict[Action, list[str]] = field(default_factory=dict)


class _Capture:
    """A detector that reads the features (the built-in and the declared ones) where
    detectors read profiles, and flags nothing."""

    codes: tuple[str, ...] = ()

    def __init__(self, risk: TerminalRisk) -> None:
        self.risk = risk
        self.seen: dict[str, dict[str, float]] = {}

    def detect(self, ctx: Context) -> list[Reason]:
        event = ctx.event
        if isinstance(event, Transaction) and event.phase is not Phase.START:
            self.seen[event.event_id] = online_features(ctx, risk=self.risk, features=ALL_FEATURES)
        return []


class _Forced:
    """A detector that spreads the actions over the completed transactions, by their event id,
    so the features after each action are compared (the policy's thresholds: 0.5, 0.7, 0.9)."""

    codes = ("forced",)
    _SCORES = (None, 0.55, 0.75, 0.95)  # allow (unless a real detector says more) … block

    def detect(self, ctx: Context) -> list[Reason]:
        event = ctx.event
        if not isinstance(event, Transaction) or event.phase is Phase.START:
            return []
        score = self._SCORES[zlib.crc32(event.event_id.encode()) % 4]
        return [] if score is None else [Reason(code="forced", score=score)]


@pytest.fixture(scope="session")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Bank:
    folder = tmp_path_factory.mktemp("bank")
    # Many frauds and StandIn withdrawals so terminal risk and StandIn rates are not all zero.
    generate(BankConfig(seed=11, cards=120, days=45, fraud_rate=0.25, standin_rate=0.1), folder)
    return Bank(
        folder,
        read_event_frame(folder / "events.parquet"),
        read_labels(folder / "labels.csv"),
        read_feedback_frame(folder / "feedback.csv"),
        read_reference(folder),
    )


# When each fraud label arrives after its transaction: some before the label delay has passed
# (counted from the delay on), some long after it (counted only from their arrival).
ARRIVALS = (
    timedelta(hours=1),
    LABEL_DELAY - timedelta(hours=2),
    LABEL_DELAY + timedelta(days=2),
    LABEL_DELAY + timedelta(days=12),
)


def replay_with_feedback(bank: Bank, feedback: pl.DataFrame) -> Replayed:
    """Replay the events and the fraud feedback in one event-time stream through the engine
    (feedback through ``Engine.learn``, after the events of its instant), with every default
    detector and the default policy, the transactions' actions spread over all four: the
    offline builder knows nothing of them, so what each leaves in the profiles must not
    depend on it."""
    risk = TerminalRisk(LABEL_DELAY.total_seconds())
    capture = _Capture(risk)
    settings = Settings()
    engine = Engine.in_memory(
        bank.reference,
        settings=settings,
        detectors=[*default_detectors(settings.detectors), _Forced(), capture],
    )
    assert engine.terminal_risk is risk  # the engine owns and feeds what the capture reads
    events = iter_event_file(bank.folder / "events.parquet")
    decisions, learnt = run(engine, in_time_order(events, feedback_items(feedback)))
    replayed = Replayed(capture.seen, learnt)
    previous: dict[str, Action] = {}
    for d in decisions:
        if d.card_id is None or d.event_id not in capture.seen:
            continue  # start events: their update holds no amount
        if d.card_id in previous:
            replayed.after.setdefault(previous[d.card_id], []).append(d.event_id)
        previous[d.card_id] = d.action
    return replayed


@pytest.fixture(scope="session")
def feedback(bank: Bank) -> pl.DataFrame:
    """A fraud label per labelled completed transaction, arriving at one of ``ARRIVALS``
    after it, by turns: as the engine learns them and as the offline builder reads them."""
    return fraud_feedback(bank.events, bank.labels, ARRIVALS)


@pytest.fixture(scope="session")
def replayed(bank: Bank, feedback: pl.DataFrame) -> Replayed:
    return replay_with_feedback(bank, feedback)
