"""Any labelled event file the generic importer reads trains the same model as the bank's own."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from vigil.features import transaction_features
from vigil.ingest import EventInput, ImportRejected
from vigil.models.pipeline import train_target, transaction_feature_names
from vigil.models.registry import Registry
from vigil.models.train import TrainOptions, train
from vigil.simulate import BankConfig, generate

DAY = timedelta(days=1)  # 16 days of events: a week's delay would leave no validation days
RENAMED = {
    "kind": "RECORD_KIND",
    "event_id": "EVT",
    "transaction_id": "TXN",
    "timestamp": "WHEN_UTC",
    "type": "OPERATION",
    "phase": "STEP",
    "channel": "CHANNEL",
    "card_id": "PAN_TOKEN",
    "user_id": "CUSTOMER_NO",
    "terminal_id": "ATM",
    "amount": "VALUE",
    "success": "OK",
    "standin": "STANDIN_FLAG",
}


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The bank's events, and the same events as a foreign CSV with a fraud column."""
    out = tmp_path_factory.mktemp("generic")
    generate(BankConfig(cards=250, days=16, fraud_rate=0.08, seed=5), out / "bank")
    events = pl.read_parquet(out / "bank" / "events.parquet").select(list(RENAMED))
    fraud = set(pl.read_csv(out / "bank" / "labels.csv").get_column("event_id"))
    foreign = events.with_columns(
        pl.col("event_id").is_in(list(fraud)).cast(pl.Int8).alias("IS_FRAUD"),
        pl.col("timestamp").dt.strftime("%Y-%m-%d %H:%M:%S"),
    ).rename(RENAMED)
    foreign.write_csv(out / "foreign.csv")
    events.write_parquet(out / "own.parquet")
    return out / "own.parquet", out / "foreign.csv"


def test_a_renamed_file_gives_the_same_training_table(files: tuple[Path, Path]) -> None:
    own, foreign = files
    mapping = {field: column for field, column in RENAMED.items()}
    events, labels = EventInput(mapping=mapping, label_column="IS_FRAUD").frame(foreign)
    assert set(events.columns) >= {"card_id", "terminal_id", "amount", "timestamp"}
    mine = transaction_features(events, labels=labels, label_delay=timedelta(days=1))
    bank = pl.read_parquet(own)
    fraud = bank.filter(pl.col("event_id").is_in(labels.get_column("event_id").to_list()))
    theirs = transaction_features(
        bank, labels=fraud.select("event_id"), label_delay=timedelta(days=1)
    )
    names = transaction_feature_names()
    assert mine.height == theirs.height and mine.get_column("label").sum() > 10
    assert mine.select("event_id", *names, "label").equals(
        theirs.select("event_id", *names, "label")
    )
    a = train(mine, names, TrainOptions(kind="logreg", gap=timedelta(hours=12)))
    b = train(theirs, names, TrainOptions(kind="logreg", gap=timedelta(hours=12)))
    assert a.metrics["test"] == b.metrics["test"]


def test_vigil_train_takes_a_column_map(files: tuple[Path, Path], tmp_path: Path) -> None:
    _, foreign = files
    figures = train_target(
        Registry(tmp_path),
        target="transaction",
        events=foreign,
        inputs=EventInput(
            mapping=dict(RENAMED), label_column="IS_FRAUD", label_delay=timedelta(hours=12)
        ),
        kind="lightgbm",
        promote=True,
    )
    assert figures["version"] == "v0001" and figures["promoted"]
    assert figures["metrics"]["test"]["roc_auc"] > 0.8
    manifest = Registry(tmp_path).manifest("transaction", "v0001")
    assert manifest["training_data"]["sources"]["input"]["mapping"]["card_id"] == "PAN_TOKEN"
    assert Path(figures["report"]).stat().st_size > 1_000_000


def test_features_a_file_cannot_feed_are_named_at_training(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    """Without the customer column nothing computes the user features: training says so (in
    its figures and in the model card) instead of fitting on columns of nulls."""
    _, foreign = files
    cards = tmp_path / "cards.csv"  # the card payments alone, without the customer column
    payments = pl.read_csv(foreign).filter(
        (pl.col("RECORD_KIND") != "login") & pl.col("PAN_TOKEN").is_not_null()
    )
    payments.drop("CUSTOMER_NO").write_csv(cards)
    mapping = {k: v for k, v in RENAMED.items() if k != "user_id"}
    figures = train_target(
        Registry(tmp_path),
        target="transaction",
        events=cards,
        inputs=EventInput(mapping=mapping, label_column="IS_FRAUD", label_delay=DAY / 2),
        kind="logreg",
    )
    empty = figures["uninformative_features"]
    user = [n for n in transaction_feature_names() if n.startswith("user_")]
    assert user and all(empty.get(name) == "all null" for name in user)
    # The card's counts are computed; its distance from the last place is not (no terminal
    # coordinates without the bank's reference data), and is named too.
    assert "card_txn_count_1d" not in empty and empty["card_km_from_last"] == "all null"
    manifest = Registry(tmp_path).manifest("transaction", figures["version"])
    assert manifest["training_data"]["uninformative_features"] == empty


@pytest.mark.parametrize("target", ["user", "card"])
def test_the_standin_models_train_on_a_mapped_file_as_on_the_banks_own(
    files: tuple[Path, Path], tmp_path: Path, target: str
) -> None:
    own, foreign = files
    bank = own.parent / "bank"
    common = {"target": target, "feedback": bank / "feedback.csv", "kind": "logreg"}
    theirs = train_target(
        Registry(tmp_path / "theirs"),
        events=foreign,
        inputs=EventInput(mapping=dict(RENAMED), label_column="IS_FRAUD", label_delay=DAY),
        **common,
    )
    mine = train_target(
        Registry(tmp_path / "mine"),
        events=own,
        labels=bank / "labels.csv",
        inputs=EventInput(label_delay=DAY),
        **common,
    )
    assert theirs["rows"] == mine["rows"] > 0 and theirs["positives"] == mine["positives"] > 0
    assert theirs["metrics"] == mine["metrics"]


def test_a_bad_row_is_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("WHEN,CARD,AMT,FRAUD\n2022-01-01 10:00:00,C1,ten,0\n")
    with pytest.raises(ImportRejected, match=r"AMT \(amount\)"):
        EventInput(
            mapping={"timestamp": "WHEN", "card_id": "CARD", "amount": "AMT"},
            label_column="FRAUD",
            default_type="payment",
            default_channel="pos",
        ).frame(path)
    with pytest.raises(ValueError, match="labels: give a labels file or the label column"):
        train_target(Registry(tmp_path), target="transaction", events=path)
