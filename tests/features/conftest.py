"""A small synthetic bank replayed through the real engine, its online features captured."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from vigil.config import PolicyConfig, Settings
from vigil.detect import Context, default_detectors
from vigil.domain import Phase, Reason, Transaction
from vigil.engine import Engine
from vigil.features import TerminalRisk, online_features
from vigil.features.io import read_event_frame, read_feedback_frame, read_labels, read_reference
from vigil.ingest import iter_event_file
from vigil.models.labels import feedback_items, fraud_feedback, run
from vigil.replay import in_time_order
from vigil.simulate import BankConfig, generate
from vigil.storage.reference import ReferenceData

LABEL_DELAY = timedelta(days=3)


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
    blocked: int
    learnt: int  # fraud labels the engine counted


class _Capture:
    """A detector that reads the features where detectors read profiles, and flags nothing."""

    codes: tuple[str, ...] = ()

    def __init__(self, risk: TerminalRisk) -> None:
        self.risk = risk
        self.seen: dict[str, dict[str, float]] = {}

    def detect(self, ctx: Context) -> list[Reason]:
        event = ctx.event
        if isinstance(event, Transaction) and event.phase is not Phase.START:
            self.seen[event.event_id] = online_features(ctx, risk=self.risk)
        return []


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
    detector but a policy that never blocks: a blocked transaction moves no money, which the
    offline history (all allowed) does not model."""
    risk = TerminalRisk(LABEL_DELAY.total_seconds())
    capture = _Capture(risk)
    settings = Settings(policy=PolicyConfig(block_at=1.01))
    engine = Engine.in_memory(
        bank.reference,
        settings=settings,
        detectors=[*default_detectors(settings.detectors), capture],
    )
    assert engine.terminal_risk is risk  # the engine owns and feeds what the capture reads
    events = iter_event_file(bank.folder / "events.parquet")
    decisions, learnt = run(engine, in_time_order(events, feedback_items(feedback)))
    blocked = sum(d.action.value == "block" for d in decisions)
    return Replayed(capture.seen, blocked, learnt)


@pytest.fixture(scope="session")
def feedback(bank: Bank) -> pl.DataFrame:
    """A fraud label per labelled completed transaction, arriving at one of ``ARRIVALS``
    after it, by turns: as the engine learns them and as the offline builder reads them."""
    return fraud_feedback(bank.events, bank.labels, ARRIVALS)


@pytest.fixture(scope="session")
def replayed(bank: Bank, feedback: pl.DataFrame) -> Replayed:
    return replay_with_feedback(bank, feedback)
