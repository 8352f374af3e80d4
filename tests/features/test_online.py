"""The generated row readers give exactly what online_features gives, in any order."""

from __future__ import annotations

import math
import random

import pytest

from tests.features.conftest import LABEL_DELAY, Bank
from vigil.config import PolicyConfig, Settings
from vigil.detect import Context, default_detectors
from vigil.domain import Reason
from vigil.engine import Engine
from vigil.features import FEATURE_NAMES, TerminalRisk, online_features
from vigil.features.online import online_row
from vigil.ingest import iter_event_file
from vigil.models.labels import feedback_items, run
from vigil.models.scorer import transaction_features_of, transaction_row_of
from vigil.replay import in_time_order


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


class _Compare:
    """Reads each event's features every way and keeps the events where they differ."""

    codes: tuple[str, ...] = ()

    def __init__(self, risk: TerminalRisk, names: list[str]) -> None:
        self.risk = risk
        self.names = names
        self.read = online_row(names).read
        self.row_of = transaction_row_of([*names, "amount"], risk=risk)
        self.compared = 0
        self.differ: list[str] = []

    def detect(self, ctx: Context) -> list[Reason]:
        by_name = online_features(ctx, risk=self.risk)
        row = self.read(ctx, self.risk)
        same = all(map(_same, row, [by_name.get(name, math.nan) for name in self.names]))
        # the model's row: the same features and the event's amount, for completed transactions
        values = transaction_features_of(ctx, risk=self.risk)
        scored = self.row_of(ctx)
        if values is None or scored is None:
            same = same and values is None and scored is None
        else:
            expected = [values.get(name, math.nan) for name in [*self.names, "amount"]]
            same = same and all(map(_same, scored, expected))
        if not same:
            self.differ.append(ctx.event.event_id)
        self.compared += 1
        return []


def test_row_readers_equal_online_features(bank: Bank, feedback) -> None:
    names = [*FEATURE_NAMES, "not_a_feature", FEATURE_NAMES[3]]
    names.remove(FEATURE_NAMES[3])
    random.Random(5).shuffle(names)
    risk = TerminalRisk(LABEL_DELAY.total_seconds())
    compare = _Compare(risk, names)
    settings = Settings(policy=PolicyConfig(block_at=1.01))
    engine = Engine.in_memory(
        bank.reference, settings=settings, detectors=[*default_detectors(), compare]
    )
    events = iter_event_file(bank.folder / "events.parquet")
    run(engine, in_time_order(events, feedback_items(feedback)))
    assert compare.compared > 1000
    assert compare.differ == []


def test_a_reader_is_made_once_per_list_of_names() -> None:
    assert online_row(["card_age_days"]) is online_row(("card_age_days",))
    reader = online_row(["amount", "nothing"])
    ctx = Context(None, 0.0, 0.0, 0, 100)  # type: ignore[arg-type]
    assert all(math.isnan(v) for v in reader.read(ctx, None))
    assert "nothing" not in reader.source and "amount" not in reader.source


@pytest.mark.parametrize("name", ["card_txn_count_1d", "user_amount_to_p95"])
def test_a_duplicated_name_reads_the_same_value_twice(name: str) -> None:
    reader = online_row([name, name])
    assert reader.source.count(" = v[") == 1
