"""The vigil command end to end on the embedded default: generate, replay, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli import app

runner = CliRunner()


def _run(*args: str) -> dict:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def small_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bank")
    figures = _run(
        "generate",
        "--out",
        str(out),
        "--cards",
        "150",
        "--days",
        "10",
        "--atms-internal",
        "10",
        "--atms-external",
        "5",
        "--fraud-rate",
        "0.1",
    )
    assert figures["transactions"] > 1000
    return out


def test_replay_decides_every_event_once_and_resumes_idempotently(
    small_bank: Path, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'v.db'}"
    events = small_bank / "events.parquet"
    first = _run("replay", str(events), "--bank", str(small_bank), "--database", db)
    import polars as pl

    n = pl.read_parquet(events).height
    assert first["events"] == n and first["duplicates"] == 0
    assert sum(first["actions"].values()) == n
    assert first["events_per_second"] > 0 and first["latency_p99_us"] >= first["latency_p50_us"]
    assert first["profiles"] > 150
    again = _run("replay", str(events), "--database", db)
    assert again["events"] == 0 and again["duplicates"] == n

    report = tmp_path / "report"
    evaluated = _run(
        "evaluate",
        "--labels",
        str(small_bank / "labels.csv"),
        "--events",
        str(events),
        "--out",
        str(report),
        "--database",
        db,
    )
    assert evaluated["overall"]["alerts"] >= 1
    assert (report / "report.html").exists() and (report / "evaluation.json").exists()


def test_db_init_is_idempotent(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    for _ in range(2):
        result = runner.invoke(app, ["db", "init", "--database", db])
        assert result.exit_code == 0, result.output


def test_bad_map_option_names_the_problem(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("a,b\n1,2\n")
    result = runner.invoke(
        app,
        [
            "import",
            "events",
            str(tmp_path / "e.csv"),
            "--map",
            "amount",
            "--database",
            f"sqlite:///{tmp_path / 'x.db'}",
        ],
    )
    assert result.exit_code != 0
    assert "FIELD=COLUMN" in result.output


def test_generate_takes_the_bank_and_the_pattern_mix(tmp_path: Path) -> None:
    figures = _run(
        *("generate", "--out", str(tmp_path), "--cards", "300", "--days", "5"),
        *("--fraud-rate", "0.05", "--pattern", "money_mule=0", "--pattern", "card_cloning=4"),
        *("--bank-code", "ABC", "--bank-name", "Abuja Co-op", "--hq", "9.07", "7.39"),
    )
    assert figures["frauds"]["money_mule"] == 0
    assert figures["frauds"]["card_cloning"] > max(
        n for name, n in figures["frauds"].items() if name != "card_cloning"
    )
    assert (tmp_path / "bank.csv").read_text().splitlines()[1] == "Abuja Co-op,ABC,9.07,7.39"
    assert (tmp_path / "atm.csv").read_text().splitlines()[1].startswith("ABC-1,")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--format", "xml"], "format"),
        (["--cards", "0"], "cards"),
        (["--start", "2022-13-01"], "start"),
        (["--pattern", "skimming=2"], "pattern_weights"),
        (["--pattern", "money_mule"], "--pattern"),
        (["--bank-code", "EXT"], "bank_code"),
    ],
)
def test_generate_refuses_bad_parameters_naming_them(
    tmp_path: Path, args: list[str], named: str
) -> None:
    result = runner.invoke(app, ["generate", "--out", str(tmp_path / "b"), *args])
    assert result.exit_code == 2
    assert named in result.output
    assert not (tmp_path / "b").exists()


def test_replay_learns_and_stores_the_feedback_file(small_bank: Path, tmp_path: Path) -> None:
    import polars as pl

    db = f"sqlite:///{tmp_path / 'v.db'}"
    events, feedback = small_bank / "events.parquet", small_bank / "feedback.csv"
    n_feedback = pl.read_csv(feedback).height
    assert n_feedback > 0
    figures = _run(
        "replay", str(events), "--bank", str(small_bank), "-d", db, "--feedback", str(feedback)
    )
    assert figures["feedback"] == n_feedback
    assert figures["events"] == pl.read_parquet(events).height
    from vigil.storage import Store

    store = Store(db)
    first = pl.read_csv(feedback).row(0, named=True)
    stored = store.load_feedback(first["target_event_id"])
    store.close()
    assert [(f.event_id, f.label.value) for f in stored] == [(first["event_id"], first["label"])]
    # Replayed again, nothing is stored twice.
    again = _run("replay", str(events), "-d", db, "--feedback", str(feedback))
    assert again["events"] == 0 and again["feedback"] == 0


def test_replay_refuses_a_bad_feedback_file_before_deciding_anything(
    small_bank: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "feedback.csv"
    bad.write_text(
        "event_id,target_event_id,label,timestamp,source\n"
        "f-1,t-1,maybe,2022-01-02T00:57:16Z,settlement\n"
    )
    db = tmp_path / "v.db"
    result = runner.invoke(
        app,
        [
            "replay",
            str(small_bank / "events.parquet"),
            "-d",
            f"sqlite:///{db}",
            "--feedback",
            str(bad),
        ],
    )
    assert result.exit_code == 2
    assert "label" in result.output and ":2:" in result.output
    assert not db.exists()
