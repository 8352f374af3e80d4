"""``vigil train``, ``vigil score`` and ``vigil models`` end to end on a small synthetic bank."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.models.pipeline import transaction_feature_names
from vigil.models.standin import ProfileScores, StandinPolicy
from vigil.simulate import BankConfig, generate
from vigil.storage import Store

runner = CliRunner()


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli-bank")
    # StandIn is rare (2 % of withdrawals): a higher rate gives the user and card models
    # enough settled outcomes to learn from in a small bank.
    generate(BankConfig(cards=400, days=30, fraud_rate=0.05, standin_rate=0.3, seed=3), out)
    return out


def _run(*args: str) -> dict:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_train_list_show_promote(bank: Path, tmp_path: Path) -> None:
    registry = str(tmp_path / "models")
    common = [
        "--events",
        str(bank / "events.parquet"),
        "--labels",
        str(bank / "labels.csv"),
        "--bank",
        str(bank),
        "--registry",
        registry,
        "--label-delay",
        "1d",  # 30 days split 60/20/20: a week's gap would leave no validation days
    ]
    first = _run("train", *common, "--model", "logreg")
    second = _run("train", *common, "--promote")
    assert (first["version"], second["version"]) == ("v0001", "v0002")
    assert second["metrics"]["test"]["roc_auc"] > 0.8
    assert second["rows"] > 1000 and second["features"] == len(transaction_feature_names())
    listed = _run("models", "list", "--registry", registry)["models"]
    assert [(m["version"], m["kind"], m["status"]) for m in listed] == [
        ("v0001", "logreg", "candidate"),
        ("v0002", "lightgbm", "promoted"),
    ]
    shown = _run("models", "show", "transaction", "--registry", registry)
    assert shown["version"] == "v0002" and "amount" in shown["features"]
    assert (
        _run("models", "promote", "transaction", "v0001", "--registry", registry)["status"]
        == "promoted"
    )
    assert _run("models", "show", "transaction", "--registry", registry)["version"] == "v0001"
    missing = runner.invoke(
        app, ["models", "promote", "transaction", "v0042", "--registry", registry]
    )
    assert missing.exit_code == 2 and "v0042" in missing.output


def test_user_and_card_models_score_and_decide_standin(bank: Path, tmp_path: Path) -> None:
    registry = str(tmp_path / "models")
    database = f"sqlite:///{tmp_path / 'vigil.db'}"
    events, feedback = str(bank / "events.parquet"), str(bank / "feedback.csv")
    for target in ("user", "card"):
        trained = _run(
            "train",
            "--target",
            target,
            "--events",
            events,
            "--feedback",
            feedback,
            "--bank",
            str(bank),
            "--registry",
            registry,
            "--label-delay",
            "1d",
            "--promote",
        )
        assert trained["positives"] > 5 and trained["name"] == target
    figures = _run(
        "score",
        "profiles",
        "--events",
        events,
        "--feedback",
        feedback,
        "--bank",
        str(bank),
        "--registry",
        registry,
        "--database",
        database,
        "--label-delay",
        "1d",
    )
    assert figures["user_scores"]["written"] == 400
    assert figures["card_scores"]["written"] == 400
    standin = figures["standin"]
    assert standin["approved_loss_rate"] <= 0.02 < standin["loss_rate_if_all_approved"]
    # The riskiest user and card asking for a large amount, the safest for a small one.
    scores = ProfileScores(Store(database))
    policy = StandinPolicy.load(Path(registry) / "standin" / "policy.json")
    cases = {
        "decline": (
            max(scores.users, key=scores.users.get),
            max(scores.cards, key=scores.cards.get),
            20000.0,
        ),
        "approve": (
            min(scores.users, key=scores.users.get),
            min(scores.cards, key=scores.cards.get),
            1.0,
        ),
    }
    for expected, (user_id, card_id, amount) in cases.items():
        decided = _run(
            "models",
            "standin",
            "--amount",
            str(amount),
            "--user-id",
            user_id,
            "--card-id",
            card_id,
            "--event-id",
            f"e-{expected}",
            "--registry",
            registry,
            "--database",
            database,
        )
        assert decided["decision"] == expected
        user, card = scores.users[user_id][0], scores.cards[card_id][0]
        assert (decided["user_score"], decided["card_score"]) == (user, card)
        assert decided["risk"] == pytest.approx(policy.risk(user, card, amount))
    logged = Store(database).standin_log()
    assert [(r["event_id"], r["decision"]) for r in logged] == [
        ("e-approve", "approve"),
        ("e-decline", "decline"),
    ]


def test_missing_feedback_is_named(bank: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "train",
            "--target",
            "card",
            "--events",
            str(bank / "events.parquet"),
            "--registry",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 2 and "feedback" in result.output


def test_a_bad_row_in_a_mapped_file_is_named_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "tx.csv"
    path.write_text("WHEN,CARD,AMT,FRAUD\n2022-01-01 10:00:00,C1,ten,0\n")
    args = ["train", "--events", str(path), "--label-column", "FRAUD", "--default-type", "payment"]
    args += ["--default-channel", "pos"]
    args += ["--map", "timestamp=WHEN", "--map", "card_id=CARD", "--map", "amount=AMT"]
    result = runner.invoke(app, [*args, "--registry", str(tmp_path / "models")])
    assert result.exit_code == 2 and "AMT (amount)" in result.output, result.output


def test_promotion_is_refused_to_a_model_worse_than_the_promoted_one(
    bank: Path, tmp_path: Path
) -> None:
    """Issue 18: --promote promoted a model with test average precision 0.005."""
    registry = str(tmp_path / "models")
    common = ["--events", str(bank / "events.parquet"), "--labels", str(bank / "labels.csv"),
              "--bank", str(bank), "--registry", registry, "--label-delay", "1d"]  # fmt: skip
    good = _run("train", *common, "--promote")
    assert good["promoted"] is True and good["promotion_refused"] is None
    # The same model blind to all but the card's age: far worse at ranking fraud.
    blind = [f"--drop={name}" for name in transaction_feature_names() if name != "card_age_days"]
    worse = runner.invoke(app, ["train", *common, "--promote", *blind])
    assert worse.exit_code == 2, worse.output
    figures = json.loads(worse.stdout.strip().splitlines()[-1])
    ours = figures["metrics"]["test"]["average_precision"]
    theirs = good["metrics"]["test"]["average_precision"]
    assert ours < theirs and figures["promoted"] is False
    assert f"below the promoted v0001's {theirs:.3f}" in worse.stderr
    assert "vigil models promote transaction v0002" in worse.stderr
    assert _run("models", "show", "transaction", "--registry", registry)["version"] == "v0001"
    # Promoting it anyway is an explicit act.
    promoted = _run("models", "promote", "transaction", "v0002", "--registry", registry)
    assert promoted["status"] == "promoted"
