"""``vigil train --train FROM..UNTIL --test FROM..UNTIL``: fit one period, measure a later one,
history from the start of the file, labels only once arrived (issue 19, item 2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.models.registry import Registry
from vigil.models.split import Period, Periods, period_split
from vigil.simulate import BankConfig, generate

from .conftest import feature_table

runner = CliRunner()
TRAIN, TEST = "2022-01-12..2022-01-18", "2022-01-26..2022-02-01"


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("period-bank")
    generate(BankConfig(cards=400, days=32, fraud_rate=0.08, seed=11), out)
    return out


def _run(*args: str) -> dict:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_train_on_one_week_and_test_on_a_later_one(bank: Path, tmp_path: Path) -> None:
    registry = tmp_path / "models"
    figures = _run(
        "train", "--events", str(bank / "events.parquet"), "--labels", str(bank / "labels.csv"),
        "--bank", str(bank), "--registry", str(registry), "--train", TRAIN, "--test", TEST,
        "--label-delay", "7d",
    )  # fmt: skip
    split = Registry(registry).manifest("transaction", figures["version"])["training_data"]["split"]
    # The split is on the model's card, as asked.
    assert split["train_period"] == ["2022-01-12T00:00:00+00:00", "2022-01-19T00:00:00+00:00"]
    assert split["test_period"] == ["2022-01-26T00:00:00+00:00", "2022-02-02T00:00:00+00:00"]
    assert split["labels_known_at"] == "2022-01-26T00:00:00+00:00"
    assert split["label_delay_seconds"] == 7 * 86400
    # Every fraud of the train week is known a week later, by the test start: none held back.
    assert split["labels_not_yet_known"] == 0
    ranges = split["ranges"]
    assert ranges["train"][0] >= "2022-01-12" and ranges["validation"][1] < "2022-01-19"
    assert ranges["test"][0] >= "2022-01-26" and ranges["test"][1] < "2022-02-02"
    # Per day of the test period: ROC AUC, average precision, card precision@k.
    days = figures["test_by_day"]
    assert [d["day"] for d in days] == [f"2022-01-{d}" for d in range(26, 32)] + ["2022-02-01"]
    assert {"roc_auc", "average_precision", "card_precision_at_10"} <= set(days[0])
    assert sum(d["rows"] for d in days) == figures["metrics"]["test"]["rows"]
    assert figures["metrics"]["test"]["roc_auc"] > 0.85  # 0.93 when written


def test_labels_count_only_once_arrived(bank: Path, tmp_path: Path) -> None:
    # Tested right after the train week: its last week's frauds are not known yet.
    figures = _run(
        "train", "--events", str(bank / "events.parquet"), "--labels", str(bank / "labels.csv"),
        "--registry", str(tmp_path), "--train", TRAIN, "--test", "2022-01-19..2022-01-25",
        "--label-delay", "3d", "--model", "logreg",
    )  # fmt: skip
    table = pl.read_parquet(bank / "events.parquet").filter(pl.col("phase") != "start")
    fraud = set(pl.read_csv(bank / "labels.csv").get_column("event_id"))
    week = table.filter(
        (pl.col("kind") == "transaction")
        & pl.col("event_id").is_in(list(fraud))
        & (pl.col("timestamp") >= datetime(2022, 1, 12, tzinfo=UTC))
        & (pl.col("timestamp") < datetime(2022, 1, 19, tzinfo=UTC))
    )
    late = week.filter(pl.col("timestamp") > datetime(2022, 1, 16, tzinfo=UTC)).height
    assert late > 0 and figures["split"]["labels_not_yet_known"] == late


def test_a_feature_table_trains_as_the_events_do(bank: Path, tmp_path: Path) -> None:
    out = tmp_path / "tx.parquet"
    _run(
        "features", "build", "--events", str(bank / "events.parquet"),
        "--labels", str(bank / "labels.csv"), "--bank", str(bank), "--out", str(out),
    )  # fmt: skip
    common = ["--train", TRAIN, "--test", TEST, "--model", "logreg", "--registry", str(tmp_path)]
    from_table = _run("train", "--features", str(out), *common)
    from_events = _run(
        "train", "--events", str(bank / "events.parquet"), "--labels", str(bank / "labels.csv"),
        "--bank", str(bank), *common,
    )  # fmt: skip
    assert from_table["metrics"] == from_events["metrics"]
    assert from_table["split"] == from_events["split"]


def test_periods_are_checked() -> None:
    with pytest.raises(ValueError, match=r"expected FROM\.\.UNTIL"):
        Period.parse("2022-01-01")
    with pytest.raises(ValueError, match="must start after the train period ends"):
        Periods(Period.parse(TEST), Period.parse(TRAIN), label_delay=timedelta(days=7))
    result = runner.invoke(app, ["train", "--events", "x.csv", "--train", TRAIN])
    assert result.exit_code == 2 and "--train and --test together" in result.output


def test_rows_outside_both_periods_are_history_only() -> None:
    table = feature_table(days=30)
    periods = Periods(
        Period.parse("2022-01-08..2022-01-14"),
        Period.parse("2022-01-22..2022-01-28"),
        label_delay=timedelta(days=7),
    )
    split = period_split(table, periods)
    inside = split.train.height + split.validation.height + split.test.height
    assert split.dropped == table.height - inside > 0
    assert split.train.get_column("timestamp").min() >= datetime(2022, 1, 8, tzinfo=UTC)
    assert split.test.get_column("timestamp").max() < datetime(2022, 1, 29, tzinfo=UTC)
