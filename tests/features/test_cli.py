"""`vigil features build|snapshots` on the small bank: files written, figures printed."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from tests.features.conftest import LABEL_DELAY, Bank
from vigil.cli import app
from vigil.features import FEATURE_NAMES, transaction_features

runner = CliRunner()
DELAY = f"{LABEL_DELAY.days}d"


def test_build_writes_the_training_set(bank: Bank, tmp_path: Path):
    out = tmp_path / "sets" / "tx.parquet"
    result = runner.invoke(
        app,
        [
            "features",
            "build",
            "--events",
            str(bank.folder / "events.parquet"),
            "--labels",
            str(bank.folder / "labels.csv"),
            "--bank",
            str(bank.folder),
            "--label-delay",
            DELAY,
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    written = pl.read_parquet(out)
    assert figures["transactions"] == written.height and figures["features"] == len(FEATURE_NAMES)
    expected = transaction_features(
        bank.events, labels=bank.labels, label_delay=LABEL_DELAY, reference=bank.reference
    )
    assert_frame_equal(written, expected)
    assert not list(out.parent.glob(".*partial"))


def test_snapshots_writes_four_tables(bank: Bank, tmp_path: Path):
    result = runner.invoke(
        app,
        [
            "features",
            "snapshots",
            "--events",
            str(bank.folder / "events.parquet"),
            "--feedback",
            str(bank.folder / "feedback.csv"),
            "--out-dir",
            str(tmp_path),
            "--save",
            "--database",
            f"sqlite:///{tmp_path / 'v.db'}",
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for name in (
        "user_aggregated_features",
        "card_aggregated_features",
        "user_model_training_data",
        "card_model_training_data",
    ):
        assert pl.read_parquet(tmp_path / f"{name}.parquet").height == figures[name] > 0
    assert figures["saved"] == {
        "user": figures["user_aggregated_features"],
        "card": figures["card_aggregated_features"],
    }


def test_a_missing_file_is_a_clear_error_and_writes_nothing(tmp_path: Path):
    out = tmp_path / "tx.parquet"
    result = runner.invoke(
        app,
        [
            "features",
            "build",
            "--events",
            str(tmp_path / "none.parquet"),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2
    assert "none.parquet: no such file" in result.output
    assert not out.exists()
