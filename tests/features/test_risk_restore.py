"""Terminal risk is recovered with the profiles: a restarted engine (the newest checkpoint, the
events after it, and every fraud label counted again from the store) reads the same counts as
the engine that decided the transactions and learnt the labels live."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from vigil.config import Settings
from vigil.detect import Context, default_detectors
from vigil.domain import Feedback, Reason
from vigil.engine import Engine
from vigil.features import TerminalRisk
from vigil.profiles import MemoryProfileStore
from vigil.profiles.recovery import Checkpoint, recover
from vigil.recorder import Recorder
from vigil.storage import Store
from vigil.storage.reference import ReferenceData

T0 = datetime(2022, 3, 1, tzinfo=UTC)
DELAY = 2 * 86400.0
WINDOWS = (86400.0, 7 * 86400.0, 30 * 86400.0)


class _Reads:
    """A detector that reads terminal risk (as the transaction model does) and flags nothing."""

    codes: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.risk = TerminalRisk(label_delay=DELAY)

    def detect(self, ctx: Context) -> list[Reason]:
        return []


def _engine(store: Store) -> Engine:
    detectors = [*default_detectors(Settings().detectors), _Reads()]
    return Engine(ReferenceData(), MemoryProfileStore(), Recorder(store), detectors=detectors)


def _counts(engine: Engine, at: float) -> dict:
    risk = engine.terminal_risk
    return {
        (t, w): risk.counts(engine.profiles.get("terminal", t), at, w)
        for t in ("ATM-1", "ATM-2", "ATM-3")
        for w in WINDOWS
    }


def test_a_restarted_engine_counts_what_the_live_one_counted(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'v.db'}")
    store.init_schema()
    live = _engine(store)
    rng = random.Random(5)
    labels: list[Feedback] = []
    at = T0
    for i in range(600):  # 75 days: the first ones are beyond every window's reach
        at += timedelta(hours=3)
        start = i % 7 == 0  # a start event counts for nothing
        live.process(
            {
                "kind": "transaction",
                "event_id": f"e{i}",
                "transaction_id": f"t{i}",
                "type": "withdrawal",
                "card_id": f"c{i % 40}",
                "terminal_id": f"ATM-{i % 3 + 1}",
                "timestamp": at.isoformat(),
                **({"phase": "start"} if start else {"amount": "20.00"}),
            }
        )
        while labels and labels[0].timestamp <= at:
            assert store.insert_feedback([labels[0]]) == 1
            live.learn(labels.pop(0))
        if i == 300:  # a checkpoint: what recovery starts from
            live.recorder.flush(Checkpoint(live.profiles.changed()))
        if rng.random() < 0.2:
            known = at + timedelta(hours=rng.uniform(1, 24 * 6))
            label = rng.choice(["fraud", "fraud", "legitimate"])
            labels.append(
                Feedback(event_id=f"f{i}", target_event_id=f"e{i}", label=label, timestamp=known)
            )
            labels.sort(key=lambda f: f.timestamp)
    live.recorder.flush()
    now = at.timestamp()
    expected = {when: _counts(live, when) for when in (now, now + DELAY, now + 9 * 86400.0)}
    assert sum(known for n, known in expected[now].values()) > 10  # labels do count

    restarted = _engine(store)
    recovery = recover(restarted, store)
    assert recovery.checkpoint > 0 and recovery.reapplied < 600
    assert {when: _counts(restarted, when) for when in expected} == expected
