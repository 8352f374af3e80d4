"""Declared features: a feature file checked at load, computed online and offline alike."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from tests.features.conftest import ALL_FEATURES, DECLARED, LABEL_DELAY, Bank, Replayed
from vigil.cli import app
from vigil.features import FEATURE_NAMES, transaction_features
from vigil.features.declared import (
    FeatureFileError,
    load_feature_file,
    load_features,
    with_declared,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def offline(bank: Bank) -> pl.DataFrame:
    return transaction_features(
        bank.events, label_delay=LABEL_DELAY, reference=bank.reference, features=ALL_FEATURES
    )


def test_declared_features_agree_online_and_offline(offline: pl.DataFrame, replayed: Replayed):
    assert offline.columns[-len(DECLARED) :] == [f.name for f in DECLARED]
    assert offline.select(FEATURE_NAMES).columns == list(FEATURE_NAMES)
    mismatches = []
    for row in offline.select("event_id", *(f.name for f in DECLARED)).iter_rows(named=True):
        online = replayed.online[row["event_id"]]
        for f in DECLARED:
            a, b = online[f.name], row[f.name]
            same = (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9 * max(1.0, abs(a))
            if not same:
                mismatches.append((row["event_id"], f.name, a, b))
    assert mismatches == []


def test_each_declared_feature_is_defined_and_varies(offline: pl.DataFrame) -> None:
    for f in DECLARED:
        values = offline[f.name].to_numpy()
        defined = values[~np.isnan(values)]
        assert len(defined) > 50 and defined.min() < defined.max(), f.name
    # a sum over a window with nothing in it is 0, a mean undefined
    assert (offline["card_withdrawn_7d"] == 0).any()


def test_every_mistake_is_named_with_its_feature_and_field(tmp_path: Path) -> None:
    path = tmp_path / "features.yaml"
    path.write_text(
        """
features:
  - {name: Terminal-Count, over: terminal, aggregate: count, window: 1d}
  - {name: card_sum, over: card, aggregate: sum, window: 2d, types: [withdrawl]}
  - {name: card_sum, over: card, aggregate: mean, window: 1d, colour: red}
  - {name: user_txn_count_1h, over: user, aggregate: count, window: 1h}
  - just a name
"""
    )
    with pytest.raises(FeatureFileError) as raised:
        load_feature_file(path)
    error = raised.value
    assert error.source == str(path)
    assert error.mistakes == [
        "features[0] Terminal-Count: name: lower-case letters, digits and _, beginning with a "
        "letter",
        "features[1] card_sum: window: '2d' is not one of 1h, 1d, 7d, 30d, 90d",
        "features[1] card_sum: types: 'withdrawl' not among withdrawal, deposit, transfer, "
        "payment, balance_inquiry, transfer_in",
        "features[2] card_sum: colour: not a field (fields: name, over, aggregate, window, types, "
        "doc)",
        "features[2] card_sum: name: declared twice",
        "features[3] user_txn_count_1h: name: a built-in feature has this name",
        "features[4]: a mapping (name, over, aggregate, window) is expected",
    ]
    assert str(error).startswith(f"{path}: 7 mistakes\n")


def test_a_file_that_is_not_a_feature_list_says_so(tmp_path: Path) -> None:
    with pytest.raises(FeatureFileError, match="features: a list of features is expected"):
        load_features("rules: []")
    with pytest.raises(FeatureFileError, match="not YAML"):
        load_features("features: [")
    with pytest.raises(FeatureFileError, match="cannot be read"):
        load_feature_file(tmp_path / "missing.yaml")


FILE = """
features:
  - {name: terminal_txn_count_1d, over: terminal, aggregate: count, window: 1d,
     doc: transactions at the terminal in the last day}
  - {name: card_withdrawn_7d, over: card, aggregate: sum, window: 7d, types: [withdrawal]}
"""


def test_features_list_shows_the_built_in_and_the_declared(tmp_path: Path) -> None:
    path = tmp_path / "features.yaml"
    path.write_text(FILE)
    result = runner.invoke(app, ["features", "list", "--feature-file", str(path)])
    assert result.exit_code == 0, result.output
    *lines, last = result.stdout.strip().splitlines()
    assert json.loads(last) == {"features": len(FEATURE_NAMES) + 2, "declared": 2}
    names = [line.split()[0] for line in lines]
    assert names == [*FEATURE_NAMES, "terminal_txn_count_1d", "card_withdrawn_7d"]
    assert lines[-1].split()[1:6] == ["declared", "card", "sum_amount", "7d", "withdrawal"]
    assert lines[-2].endswith("transactions at the terminal in the last day")


def test_a_bad_feature_file_stops_build_before_reading_naming_its_first_mistake(
    tmp_path: Path,
) -> None:
    path = tmp_path / "features.yaml"
    path.write_text("features:\n  - {name: x, over: shop, aggregate: count, window: 1d}\n")
    result = runner.invoke(
        app,
        [
            "features",
            "build",
            "--events",
            str(tmp_path / "absent.parquet"),
            "--out",
            str(tmp_path / "tx.parquet"),
            "--feature-file",
            str(path),
        ],
    )
    # vigil's error boundary: the first mistake on one line (the rest counted), as every
    # command answers a bad input file
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {path}: features[0] x: over: 'shop' is not one of card, user, terminal"
    )
    assert not (tmp_path / "tx.parquet").exists()


def test_build_adds_the_declared_features(bank: Bank, tmp_path: Path) -> None:
    path, out = tmp_path / "features.yaml", tmp_path / "tx.parquet"
    path.write_text(FILE)
    result = runner.invoke(
        app,
        [
            "features",
            "build",
            "--events",
            str(bank.folder / "events.parquet"),
            "--bank",
            str(bank.folder),
            "--label-delay",
            f"{LABEL_DELAY.days}d",
            "--out",
            str(out),
            "--feature-file",
            str(path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["features"] == len(FEATURE_NAMES) + 2
    written = pl.read_parquet(out)
    expected = transaction_features(
        bank.events,
        label_delay=LABEL_DELAY,
        reference=bank.reference,
        features=with_declared(load_features(FILE)),
    )
    assert_frame_equal(written, expected)
