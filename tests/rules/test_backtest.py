"""Backtest on a small generated bank: figures checked against an independent computation."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.ingest import iter_event_file, read_bank_folder
from vigil.simulate import BankConfig, generate

runner = CliRunner()

SPIKE = """rules:
  - name: spike
    condition: >-
      (type == "transfer" and amount > 5 * card.behaviour.amount_avg_transfer)
      or (type == "deposit" and amount > 5 * card.behaviour.amount_avg_deposit)
    score: 0.95
    action: block
  - name: tiny
    condition: type == "withdrawal" and amount < 5
    score: 0.3
    shadow: true
"""


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bank")
    generate(BankConfig(seed=5, cards=150, days=10, fraud_rate=0.15), folder)
    return folder


def expected(bank: Path, predicate) -> tuple[set[str], set[str]]:
    """Units (transaction ids) where the predicate holds, and the labelled fraud units."""
    cards = {c.card_id: c for c in read_bank_folder(bank).cards}
    hits = set()
    for event in iter_event_file(bank / "events.parquet"):
        if event.kind == "transaction" and event.amount is not None and predicate(event, cards):
            hits.add(event.transaction_id)
    labels = pl.read_csv(bank / "labels.csv", schema_overrides={"transaction_id": pl.Utf8})
    fraud = set(labels.select(pl.coalesce("transaction_id", "event_id")).to_series().to_list())
    return hits, fraud


def spike(event, cards) -> bool:
    behaviour = cards[event.card_id].behaviour if event.card_id in cards else None
    if behaviour is None or event.phase == "start":
        return False
    amount = float(event.amount)
    if event.type == "transfer":
        return amount > 5 * behaviour.amount_avg_transfer
    return event.type == "deposit" and amount > 5 * behaviour.amount_avg_deposit


def tiny(event, cards) -> bool:
    return event.type == "withdrawal" and event.phase != "start" and float(event.amount) < 5


def test_backtest_figures_match_an_independent_count(bank: Path, tmp_path: Path) -> None:
    rules = tmp_path / "candidate.yaml"
    rules.write_text(SPIKE)
    db = tmp_path / "live.db"
    result = runner.invoke(
        app,
        [
            "backtest", str(rules), "--events", str(bank / "events.parquet"),
            "--labels", str(bank / "labels.csv"), "--bank", str(bank),
            "--database", f"sqlite:///{db}",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert not db.exists()  # nothing live written, not even an empty database

    spike_hits, fraud = expected(bank, spike)
    labels = pl.read_csv(bank / "labels.csv")
    assert (labels["pattern"] == "amount_spike").sum() > 0
    assert figures["fraud_units"] == len(fraud)
    row = figures["rules"]["spike"]
    assert row["book"] == "candidate" and row["shadow"] is False
    assert row["hits"] == len(spike_hits) > 0
    assert row["true_positives"] == len(spike_hits & fraud) > 0
    assert row["precision"] == pytest.approx(len(spike_hits & fraud) / len(spike_hits))
    assert row["recall"] == pytest.approx(len(spike_hits & fraud) / len(fraud))
    # An action rule with block: every hit is alerted by the candidate set; what it adds are
    # exactly its hits the current set did not alert.
    assert row["adds"] == figures["alerts_added"]
    assert (
        figures["candidate"]["alerts"]
        == figures["current"]["alerts"] + figures["alerts_added"] - figures["alerts_removed"]
    )
    assert figures["alerts_removed"] == 0

    tiny_hits, _ = expected(bank, tiny)
    shadow_row = figures["rules"]["tiny"]
    assert shadow_row["hits"] == len(tiny_hits)
    assert shadow_row["adds"] == 0 and shadow_row["removes"] == 0
    # The rules in force (the packaged default, all shadow) are listed too.
    assert figures["rules"]["withdrawal_far_above_p95"]["book"] == "current"


def test_backtest_with_a_broken_file_exits_with_its_errors(bank: Path, tmp_path: Path) -> None:
    rules = tmp_path / "broken.yaml"
    rules.write_text("rules:\n  - {name: x, condition: amount > country, score: 1}\n")
    result = runner.invoke(
        app,
        ["backtest", str(rules), "--events", str(bank / "events.parquet"),
         "--labels", str(bank / "labels.csv")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "rule 'x': condition: '>' compares numbers, got a string (country)" in result.output
