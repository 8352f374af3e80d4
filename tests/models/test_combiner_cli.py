"""``vigil train --target combiner``: the decision score's combiner trained, inspected and
promoted from the command line, measured against the detectors alone and the model alone, and
served by the engine as it was measured."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tests.models.conftest import decide_all
from vigil.cli import app
from vigil.config import Settings
from vigil.engine import Engine
from vigil.features.io import read_reference
from vigil.models.combiner import NAME
from vigil.models.registry import Registry

runner = CliRunner()
PERIODS = ["--train", "2022-01-01..2022-01-12", "--test", "2022-01-14..2022-01-20"]


def _args(bank: Path, registry: Path) -> list[str]:
    return [
        "--events", str(bank / "events.parquet"), "--labels", str(bank / "labels.csv"),
        "--bank", str(bank), "--label-delay", "1d", "--registry", str(registry),
    ]  # fmt: skip


def _run(*args: str) -> tuple[dict, str, str]:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stdout, result.stderr


@pytest.fixture(scope="module")
def stacked(bank: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    """A transaction model trained on the first 12 days and promoted, then a combiner stacked
    on it over the same days and tested on the last week, promoted."""
    registry = tmp_path_factory.mktemp("combiner-cli") / "models"
    model, _, _ = _run("train", *_args(bank, registry), *PERIODS, "--promote")
    assert (model["version"], model["promoted"]) == ("v0001", True)
    figures, out, _ = _run(
        "train", "--target", "combiner", *_args(bank, registry), *PERIODS, "--promote"
    )
    return registry, figures, out


def test_the_combiner_is_trained_on_the_train_period_and_beats_each_source_on_the_test(
    stacked: tuple[Path, dict, str],
) -> None:
    _, figures, out = stacked
    assert (figures["name"], figures["version"], figures["stacked_on"]) == (NAME, "v0001", "v0001")
    assert figures["promoted"] and figures["promotion_refused"] is None
    assert figures["split"]["train_period"][0] == "2022-01-01T00:00:00+00:00"
    assert figures["split"]["labels_known_at"] == "2022-01-14T00:00:00+00:00"
    assert figures["stacked_frauds"] > 50 and figures["codes"]
    compared = figures["compared"]
    assert list(compared) == ["detectors", "model", "stacked"]
    rows = {part["rows"] for part in compared.values()}
    assert len(rows) == 1 and rows.pop() > 1000  # the same test transactions for all three
    for metric in ("roc_auc", "average_precision"):
        alone = max(compared["detectors"][metric], compared["model"][metric])
        assert compared["stacked"][metric] > alone, (metric, compared)
    assert figures["metrics"]["test"] == compared["stacked"]
    for name in ("detectors alone", "model alone", "stacked", "test, per day"):
        assert name in out


def test_it_is_inspected_and_listed_as_every_model(stacked: tuple[Path, dict, str]) -> None:
    registry, figures, _ = stacked
    shown, _, _ = _run("models", "show", NAME, "--registry", str(registry))
    assert shown["version"] == figures["version"] and shown["status"] == "promoted"
    assert shown["stacked_on"] == {"transaction": "v0001"}
    assert shown["codes"] == figures["codes"]
    assert shown["metrics"]["test_detectors"] == figures["compared"]["detectors"]
    assert shown["metrics"]["test_model"] == figures["compared"]["model"]
    assert shown["features"][:4] == [
        "model_logit",
        "model_scored",
        "evidence_logit",
        "evidence_any",
    ]
    assert (registry / NAME / figures["version"] / "report.html").is_file()
    listed, _, _ = _run("models", "list", "--registry", str(registry))
    assert {(m["name"], m["version"], m["status"]) for m in listed["models"]} == {
        ("transaction", "v0001", "promoted"),
        (NAME, "v0001", "promoted"),
    }


def test_the_engine_serves_the_promoted_combiners_score_as_it_was_measured(
    bank: Path, stacked: tuple[Path, dict, str]
) -> None:
    registry, figures, _ = stacked
    settings = Settings(models={"registry_dir": registry})
    engine = Engine.in_memory(read_reference(bank), settings=settings)
    assert engine.model_versions == {"transaction": "v0001", NAME: figures["version"]}
    served = {d.event_id: d.score for d in decide_all(engine, bank)}
    measured = Registry(registry).test_scores(NAME, figures["version"])
    assert measured is not None and measured.height == figures["compared"]["stacked"]["rows"]
    ids = measured["event_id"].to_list()
    assert np.allclose([served[i] for i in ids], measured["score"].to_numpy(), rtol=0, atol=1e-6)


def test_without_periods_and_beside_another_model(bank: Path, tmp_path: Path) -> None:
    registry = tmp_path / "models"
    _run("train", *_args(bank, registry), "--model", "logreg", "--promote")
    # split as vigil train splits: stacked on the first 80 % of the time, tested on the rest
    figures, _, _ = _run("train", "--target", "combiner", *_args(bank, registry))
    assert not figures["promoted"] and "train_period" not in figures["split"]
    test_from = figures["split"]["ranges"]["test"][0]
    assert test_from > figures["split"]["ranges"]["validation"][1]
    assert figures["compared"]["stacked"]["rows"] > 500
    # a newer model promoted: the combiner stacked on the older one is said to serve beside it
    _run("train", *_args(bank, registry), "--model", "logreg")
    _run("models", "promote", "transaction", "v0002", "--registry", str(registry))
    _, _, warned = _run("models", "promote", NAME, figures["version"], "--registry", str(registry))
    assert "stacked on transaction v0001, not the promoted v0002" in warned
    # and one is stacked on a named version
    again, _, _ = _run(
        "train", "--target", "combiner", *_args(bank, registry), "--stack-on", "v0002"
    )
    assert again["stacked_on"] == "v0002" and again["version"] == "v0002"


def test_a_combiner_needs_a_model_to_stack_on(bank: Path, tmp_path: Path) -> None:
    empty = runner.invoke(app, ["train", "--target", "combiner", *_args(bank, tmp_path)])
    assert empty.exit_code == 2
    assert "combiner: no transaction model to stack on" in empty.stderr
    unknown = runner.invoke(
        app, ["train", "--target", "combiner", *_args(bank, tmp_path), "--stack-on", "v0042"]
    )
    assert unknown.exit_code == 2 and "'v0042'" in unknown.stderr
    wrong = runner.invoke(app, ["train", *_args(bank, tmp_path), "--stack-on", "v0001"])
    assert wrong.exit_code == 2 and "--stack-on: only a combiner" in wrong.stderr
    table = runner.invoke(
        app, ["train", "--target", "combiner", "--features", "tx.parquet", "--labels", "l.csv"]
    )
    assert table.exit_code == 2 and "give --events" in table.stderr


def test_the_combiners_evidence_is_read_from_the_file_given(
    stacked: tuple[Path, dict, str],
) -> None:
    """The stacked part's figures come from the events of the train period only."""
    registry, figures, _ = stacked
    manifest = Registry(registry).manifest(NAME, figures["version"])
    rows = manifest["training_data"]["rows"]
    assert rows["stacked_events"] == figures["stacked_events"] < figures["events"]
    scores = pl.read_parquet(registry / NAME / figures["version"] / "test_scores.parquet")
    assert scores["timestamp"].min().isoformat() >= "2022-01-14"  # type: ignore[union-attr]
