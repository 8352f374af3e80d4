"""Declared features as model inputs: ``vigil train --feature-file`` trains on them, the card
keeps them, the served model reads the same values online, and a model whose declared features
the engine's feature file does not declare (as trained) is refused at load, naming them."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tests.models.conftest import DELAY, decide_all
from vigil.cli import app
from vigil.config import Settings
from vigil.detect import default_detectors
from vigil.engine import Engine
from vigil.features import load_feature_file, transaction_features, with_declared
from vigil.features.declared import FeatureFileError, declaration
from vigil.features.io import read_reference
from vigil.ingest.inputs import EventInput
from vigil.models.feature_card import ModelFeaturesError, feature_card
from vigil.models.linear import LinearModel
from vigil.models.model import Model
from vigil.models.pipeline import train_target, transaction_feature_names
from vigil.models.registry import Registry
from vigil.models.scorer import CODE, ModelScorer, model_detectors

runner = CliRunner()

# Two features that carry signal on the synthetic bank, and two that the bank (no card
# payments) cannot feed: a count that is 0 on every row, a mean that is never defined.
FILE = """
features:
  - {name: terminal_txn_count_1d, over: terminal, aggregate: count, window: 1d}
  - {name: card_withdrawn_7d, over: card, aggregate: sum, window: 7d, types: [withdrawal]}
  - {name: user_payments_7d, over: user, aggregate: count, window: 7d, types: [payment]}
  - {name: card_mean_paid_30d, over: card, aggregate: mean, window: 30d, types: [payment]}
"""
USEFUL = ["terminal_txn_count_1d", "card_withdrawn_7d"]
EMPTY = {"user_payments_7d": "constant", "card_mean_paid_30d": "all null"}


def _run(*args: str) -> dict:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def feature_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("declared") / "features.yaml"
    path.write_text(FILE)
    return path


def _bank_args(bank: Path) -> list[str]:
    return [
        "--events", str(bank / "events.parquet"), "--labels", str(bank / "labels.csv"),
        "--bank", str(bank), "--label-delay", "1d",
    ]  # fmt: skip


def test_train_takes_declared_features_as_inputs_and_the_card_keeps_them(
    bank: Path, feature_file: Path, tmp_path: Path
) -> None:
    registry = tmp_path / "models"
    result = runner.invoke(
        app,
        ["train", *_bank_args(bank), "--feature-file", str(feature_file),
         "--registry", str(registry)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    declared = load_feature_file(feature_file)
    names = [f.name for f in declared]
    assert figures["features"] == len(transaction_feature_names()) + len(names)
    assert figures["declared_features"] == names
    # a declared feature the data cannot feed is named like a built-in one
    assert {k: v for k, v in figures["uninformative_features"].items() if k in names} == EMPTY
    assert "card_mean_paid_30d (all null)" in result.stdout
    manifest = Registry(registry).manifest("transaction", figures["version"])
    assert manifest["features"][-len(names) :] == names
    assert manifest["feature_file"] == {
        "path": str(feature_file),
        "sha256": hashlib.sha256(feature_file.read_bytes()).hexdigest(),
        "declared": [declaration(f) for f in declared],
    }
    assert manifest["training_data"]["uninformative_features"]["user_payments_7d"] == "constant"
    # the model learnt from them: what it gains from the useful ones is not nothing
    assert sum(manifest["importance"][n] for n in USEFUL) > 0

    # batch scores read the declared features the card keeps: the test period's scores again
    out = tmp_path / "scores.parquet"
    _run(
        "score", "transactions", str(bank / "events.parquet"), "-o", str(out),
        "--registry", str(registry), "--version", figures["version"],
        "--labels", str(bank / "labels.csv"), "--bank", str(bank), "--label-delay", "1d",
    )  # fmt: skip
    kept = Registry(registry).test_scores("transaction", figures["version"])
    assert kept is not None
    both = kept.join(pl.read_parquet(out), on="event_id", suffix="_batch")
    assert both.height == kept.height > 500
    assert np.allclose(both["score"].to_numpy(), both["score_batch"].to_numpy(), atol=1e-12)


def test_a_dropped_declared_feature_is_neither_an_input_nor_on_the_card(
    bank: Path, feature_file: Path, tmp_path: Path
) -> None:
    figures = _run(
        "train", *_bank_args(bank), "--feature-file", str(feature_file), "--model", "logreg",
        "--drop", "user_payments_7d", "--drop", "card_mean_paid_30d",
        "--registry", str(tmp_path / "models"),
    )  # fmt: skip
    assert figures["declared_features"] == USEFUL
    manifest = Registry(tmp_path / "models").manifest("transaction", figures["version"])
    assert [entry["name"] for entry in manifest["feature_file"]["declared"]] == USEFUL
    assert "user_payments_7d" not in manifest["features"]


def test_a_feature_table_needs_the_declared_columns(
    bank: Path, feature_file: Path, tmp_path: Path
) -> None:
    table = tmp_path / "tx.parquet"
    _run("features", "build", *_bank_args(bank), "--out", str(table))  # no --feature-file
    result = runner.invoke(
        app,
        ["train", "--features", str(table), "--feature-file", str(feature_file),
         "--label-delay", "1d", "--registry", str(tmp_path / "models")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "no column for the declared feature(s) terminal_txn_count_1d" in result.stderr


def test_a_bad_feature_file_stops_train_before_reading_naming_every_mistake(
    tmp_path: Path,
) -> None:
    path = tmp_path / "features.yaml"
    path.write_text("features:\n  - {name: x, over: shop, aggregate: count, window: 1d}\n")
    result = runner.invoke(
        app,
        ["train", "--events", str(tmp_path / "absent.parquet"), "--labels",
         str(tmp_path / "absent.csv"), "--feature-file", str(path),
         "--registry", str(tmp_path / "models")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "features[0] x: over: 'shop' is not one of card, user, terminal" in result.stderr
    assert "absent" not in result.stderr


@pytest.fixture(scope="module")
def served(
    bank: Path, feature_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, pl.DataFrame]:
    """A LightGBM model trained with the feature file, promoted; the engine's settings with
    the same feature file; the offline table the model was trained on."""
    root = tmp_path_factory.mktemp("declared-registry")
    registry = Registry(root)
    figures = train_target(
        registry,
        target="transaction",
        events=bank / "events.parquet",
        labels=bank / "labels.csv",
        inputs=EventInput(label_delay=DELAY),
        bank=bank,
        feature_file=feature_file,
    )
    registry.promote("transaction", figures["version"])
    table = transaction_features(
        pl.read_parquet(bank / "events.parquet"),
        labels=pl.read_csv(bank / "labels.csv"),
        label_delay=DELAY,
        reference=read_reference(bank),
        features=with_declared(load_feature_file(feature_file)),
    )
    settings = Settings(
        models={"registry_dir": root, "reason_at": 0.5, "feature_file": feature_file}
    )
    return settings, table


class _Rows:
    """Wraps the served scorer; keeps each event's probability and feature row."""

    codes = (CODE,)

    def __init__(self, scorer: ModelScorer) -> None:
        self.scorer = scorer
        self.model = scorer.model
        self.risk = scorer.risk
        self.served: dict[str, tuple[float, list[float]]] = {}

    def detect(self, ctx):
        scored = self.scorer.score(ctx)
        if scored is not None:
            self.served[ctx.event.event_id] = scored
        return self.scorer.detect(ctx)


def test_the_served_model_reads_the_declared_features_as_training_did(
    bank: Path, served: tuple[Settings, pl.DataFrame]
) -> None:
    settings, table = served
    [scorer] = model_detectors(settings)
    spy = _Rows(scorer)
    # the detectors block and step up as they would: features read alike after every action
    engine = Engine.in_memory(
        read_reference(bank),
        settings=settings,
        detectors=[*default_detectors(settings.detectors), spy],
    )
    decisions = decide_all(engine, bank)
    assert {d.action.value for d in decisions} >= {"allow", "block"}
    model = scorer.model
    assert set(spy.served) == set(table["event_id"])
    offline = model.probability_batch(table.select(model.features).to_numpy())
    ids = table["event_id"].to_list()
    rows = np.array([spy.served[i][1] for i in ids])
    mismatches = []
    for name in [f for f in model.features if f in USEFUL or f in EMPTY]:
        online, built = rows[:, model.features.index(name)], table[name].to_numpy()
        for event_id, a, b in zip(ids, online, built, strict=True):
            same = (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9 * max(1.0, abs(b))
            if not same:
                mismatches.append((event_id, name, a, b))
    assert mismatches == []
    assert (table["terminal_txn_count_1d"] > 0).sum() > 1000  # compared on values, not NaN
    served_p = np.array([spy.served[i][0] for i in ids])
    assert np.allclose(served_p, offline, rtol=0, atol=1e-9)


def _promoted_with_card(root: Path, feature_file: Path) -> Settings:
    """A promoted logistic model reading two declared features of ``feature_file``, its card
    written as vigil train writes it."""
    names = ["amount", *USEFUL]
    linear = LinearModel(
        names, fill=[0] * 3, mean=[0] * 3, scale=[1] * 3, coef=[1] * 3, intercept=0
    )
    registry = Registry(root)
    card = feature_card(feature_file, load_feature_file(feature_file), names)
    version = registry.save(
        Model("transaction", "logreg", linear, calibration=(1, 0)), {"feature_file": card}
    )
    registry.promote("transaction", version)
    return Settings(models={"registry_dir": root})


def test_a_model_is_refused_when_the_engine_has_no_feature_file(
    feature_file: Path, tmp_path: Path
) -> None:
    settings = _promoted_with_card(tmp_path, feature_file)
    with pytest.raises(ModelFeaturesError) as raised:
        Engine.in_memory(settings=settings)
    first = str(raised.value).splitlines()[0]
    assert first.startswith("model transaction v0001 reads declared feature terminal_txn_count_1d")
    assert f"trained with {feature_file}" in first and "models.feature_file" in first


def test_a_model_is_refused_when_the_feature_file_lacks_or_changed_its_features(
    feature_file: Path, tmp_path: Path
) -> None:
    settings = _promoted_with_card(tmp_path / "models", feature_file)
    current = tmp_path / "now.yaml"
    # one feature gone, the other over another window
    current.write_text(
        "features:\n  - {name: card_withdrawn_7d, over: card, aggregate: sum, window: 1d, "
        "types: [withdrawal]}\n"
    )
    models = settings.models.model_copy(update={"feature_file": current})
    with pytest.raises(ModelFeaturesError) as raised:
        model_detectors(settings.model_copy(update={"models": models}))
    assert str(raised.value).splitlines() == [
        f"model transaction v0001 reads declared feature terminal_txn_count_1d, which the "
        f"feature file {current} does not declare (trained with {feature_file}, sha256 "
        f"{hashlib.sha256(feature_file.read_bytes()).hexdigest()[:12]})",
        f"model transaction v0001 reads declared feature card_withdrawn_7d, which the feature "
        f"file {current} declares otherwise: window: 1d (trained: 7d)",
    ]
    # the same features, another file (reordered, documented, one more): served
    current.write_text(
        "features:\n"
        "  - {name: card_withdrawn_7d, over: card, aggregate: sum, window: 7d,"
        " types: [withdrawal], doc: withdrawn this week}\n"
        "  - {name: user_txn_count_90d, over: user, aggregate: count, window: 90d}\n"
        "  - {name: terminal_txn_count_1d, over: terminal, aggregate: count, window: 1d}\n"
    )
    [scorer] = model_detectors(settings.model_copy(update={"models": models}))
    assert scorer.model.features == ["amount", *USEFUL]
    # a feature file with mistakes is refused with them
    current.write_text("features: [{name: x}]\n")
    with pytest.raises(FeatureFileError, match="features\\[0\\] x: over"):
        model_detectors(settings.model_copy(update={"models": models}))
