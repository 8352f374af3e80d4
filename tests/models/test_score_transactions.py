"""``vigil score transactions FILE -o scores.parquet``: batch scores of every transaction with
the promoted or a named transaction model (issue 19, item 3)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.simulate import BankConfig, generate

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    out = tmp_path_factory.mktemp("score-bank")
    generate(BankConfig(cards=300, days=24, fraud_rate=0.08, seed=4), out / "bank")
    registry = out / "models"
    figures = _run(
        "train", "--events", str(out / "bank" / "events.parquet"),
        "--labels", str(out / "bank" / "labels.csv"), "--bank", str(out / "bank"),
        "--registry", str(registry), "--train", "2022-01-05..2022-01-12",
        "--test", "2022-01-17..2022-01-24", "--label-delay", "4d",
    )  # fmt: skip
    return out / "bank", registry, figures


def _run(*args: str) -> dict:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_named_version_scores_the_test_period_as_training_did(
    trained: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    bank, registry, model = trained
    out = tmp_path / "scores.parquet"
    figures = _run(
        "score", "transactions", str(bank / "events.parquet"), "-o", str(out),
        "--version", model["version"], "--registry", str(registry),
        "--labels", str(bank / "labels.csv"), "--bank", str(bank), "--label-delay", "4d",
    )  # fmt: skip
    scores = pl.read_parquet(out)
    assert scores.columns == [
        "event_id", "transaction_id", "timestamp", "card_id", "user_id", "score", "label",
    ]  # fmt: skip
    events = pl.read_parquet(bank / "events.parquet")
    completed = events.filter((pl.col("kind") == "transaction") & (pl.col("phase") != "start"))
    assert figures["transactions"] == scores.height == completed.height
    assert figures["version"] == model["version"]
    # The same model on the same point-in-time features: the registry's test scores, exactly.
    kept = pl.read_parquet(registry / "transaction" / model["version"] / "test_scores.parquet")
    both = kept.join(scores, on="event_id", suffix="_batch")
    assert both.height == kept.height > 1000
    assert (both["score"] - both["score_batch"]).abs().max() < 1e-12
    assert figures["metrics"]["positives"] == int(scores["label"].sum()) > 0


def test_the_promoted_model_by_default_and_none_is_a_clear_error(
    trained: tuple[Path, Path, dict], tmp_path: Path
) -> None:
    bank, registry, model = trained
    out = tmp_path / "s.parquet"
    args = ["score", "transactions", str(bank / "events.parquet"), "-o", str(out)]
    result = runner.invoke(app, [*args, "--registry", str(registry)])
    assert result.exit_code == 2 and "no promoted version" in result.output
    assert not out.exists()
    _run("models", "promote", "transaction", model["version"], "--registry", str(registry))
    figures = _run(*args, "--registry", str(registry), "--label-delay", "4d")
    assert figures["version"] == model["version"] and "metrics" not in figures
    assert pl.read_parquet(out).get_column("score").is_between(0, 1).all()
