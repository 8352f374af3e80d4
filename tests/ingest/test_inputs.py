"""One input vocabulary: every command that reads events or labels takes the same options,
with the same defaults, and reads a file the same way (issue 19, item 1)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import click
import polars as pl
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from vigil.cli import app
from vigil.ingest import EventInput, ImportRejected, SourceFileError
from vigil.ingest.atm_stream import HEADER

from .files import write_csv

runner = CliRunner()

# Every command that reads an event file, by its words on the command line.
READERS = (
    ("import", "events"),
    ("replay",),
    ("features", "build"),
    ("features", "snapshots"),
    ("train",),
    ("score", "profiles"),
    ("score", "transactions"),
    ("backtest",),
    ("evaluate",),
)
VOCABULARY = {
    "--format": "auto",
    "--map": None,
    "--default-type": None,
    "--default-channel": None,
    "--label-column": None,
    "--label-delay": "7d",
    "--amounts": "strict",
}
# A card-payment file: no type, no channel, amounts with more decimals than cents.
CARDS = ("TX_DATETIME", "CUSTOMER_ID", "TERMINAL_ID", "TX_AMOUNT", "TX_FRAUD")
MAP = [
    "timestamp=TX_DATETIME",
    "card_id=CUSTOMER_ID",
    "terminal_id=TERMINAL_ID",
    "amount=TX_AMOUNT",
]


def _command(words: tuple[str, ...]) -> click.Command:
    command = get_command(app)
    for word in words:
        command = command.commands[word]  # type: ignore[attr-defined]
    return command


def _options(command: click.Command) -> dict[str, object]:
    out = {}
    for param in command.params:
        for name in param.opts:
            default = param.default
            out[name] = None if default in ([], ()) else default
    return out


@pytest.mark.parametrize("words", READERS, ids=" ".join)
def test_every_reader_takes_the_same_options_with_the_same_defaults(
    words: tuple[str, ...],
) -> None:
    options = _options(_command(words))
    assert {name: options.get(name, "absent") for name in VOCABULARY} == VOCABULARY
    # One spelling: the older ones are gone.
    assert "--label-delay-days" not in options


def _cards(tmp_path: Path, *rows: tuple[str, ...]) -> Path:
    return write_csv(tmp_path / "cards.csv", CARDS, list(rows))


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_a_card_payment_file_is_never_taken_for_atm_withdrawals(tmp_path: Path) -> None:
    path = _cards(tmp_path, ("2018-04-01 00:00:31", "C596", "T3156", "57.16", "0"))
    db = f"sqlite:///{tmp_path / 'v.db'}"
    code, output = _invoke(
        "import", "events", str(path), "-d", db, *_maps(), "--default-type", "payment"
    )
    assert code == 2
    assert "no channel column" in output and "--default-channel" in output
    code, output = _invoke(
        "import", "events", str(path), "-d", db, *_maps(), "--default-type", "payment",
        "--default-channel", "pos",
    )  # fmt: skip
    assert code == 0, output
    assert json.loads(output.splitlines()[-1])["written"]["transactions"] == 1
    from vigil.storage import Store

    (tx,) = Store(db).iter_events()
    assert (tx.channel.value, tx.type.value) == ("pos", "payment")


def _maps() -> list[str]:
    return [word for pair in MAP for word in ("--map", pair)]


def test_amounts_strict_names_line_and_field_and_round_rounds(tmp_path: Path) -> None:
    path = _cards(
        tmp_path,
        ("2018-04-01 00:00:31", "C596", "T3156", "57.16", "0"),
        ("2018-04-01 00:02:10", "C4961", "T3412", "10503.66015625", "1"),
    )
    strict = EventInput(
        mapping=dict(p.split("=") for p in MAP), default_type="payment", default_channel="pos"
    )
    (error,) = strict.read(path).errors
    assert (error.line, error.field) == (3, "TX_AMOUNT (amount)")
    assert "--amounts round" in error.message
    rounded = EventInput(**{**strict.__dict__, "amounts": "round"})
    assert [e.amount for e in rounded.read(path).events] == [Decimal("57.16"), Decimal("10503.66")]
    code, output = _invoke(
        "features", "build", "--events", str(path), "--out", str(tmp_path / "f.parquet"),
        *_maps(), "--default-type", "payment", "--default-channel", "pos",
        "--label-column", "TX_FRAUD",
    )  # fmt: skip
    assert code == 2 and "cards.csv:3: TX_AMOUNT (amount): more than 2 decimal places" in output


def test_features_build_reads_a_mapped_file_with_its_label_column(tmp_path: Path) -> None:
    path = _cards(
        tmp_path,
        ("2018-04-01 00:00:31", "C596", "T3156", "57.16", "0"),
        ("2018-04-01 00:02:10", "C596", "T3412", "10503.66015625", "1"),
        ("2018-04-03 00:02:10", "C596", "T3412", "20.00", "0"),
    )
    out = tmp_path / "f.parquet"
    code, output = _invoke(
        "features", "build", "--events", str(path), "--out", str(out), *_maps(),
        "--default-type", "payment", "--default-channel", "pos", "--label-column", "TX_FRAUD",
        "--amounts", "round", "--label-delay", "1d",
    )  # fmt: skip
    assert code == 0, output
    assert json.loads(output.splitlines()[-1])["labelled"] == 1
    table = pl.read_parquet(out)
    assert table.get_column("label").to_list() == [False, True, False]
    assert table.get_column("amount").to_list() == [57.16, 10503.66, 20.0]


def test_replay_reads_the_atm_stream_layout(tmp_path: Path) -> None:
    path = tmp_path / "atm.csv"
    path.write_text(
        HEADER + "\n"
        "t1,c-1,A1,0,2022-01-03 10:00:00,,\n"
        "t1,c-1,A1,0,2022-01-03 10:00:00,2022-01-03 10:01:30,2500.004\n"
        "t2,c-2,A1,2,2022-01-03 09:00:00,2022-01-03 09:00:10,0\n"
    )
    db = f"sqlite:///{tmp_path / 'v.db'}"
    code, output = _invoke("replay", str(path), "-d", db)
    assert code == 2 and "atm.csv:3: transaction_amount (amount)" in output
    code, output = _invoke("replay", str(path), "-d", db, "--amounts", "round")
    assert code == 0, output
    assert json.loads(output.splitlines()[-1])["events"] == 3


def test_replay_learns_the_label_column_a_delay_after_each_event(tmp_path: Path) -> None:
    path = _cards(
        tmp_path,
        ("2018-04-01 00:00:31", "C596", "T3156", "57.16", "1"),
        ("2018-04-09 00:02:10", "C596", "T3412", "20.00", "0"),
    )
    inputs = EventInput(
        mapping=dict(p.split("=") for p in MAP),
        default_type="payment",
        default_channel="pos",
        label_column="TX_FRAUD",
        label_delay=timedelta(days=7),
    )
    stream = [(type(e).__name__, e.event_id) for e in inputs.events(path)]
    assert stream == [
        ("Transaction", "cards-2"),
        ("Feedback", "fb-cards-2"),  # known 2018-04-08, before the next payment
        ("Transaction", "cards-3"),
        ("Feedback", "fb-cards-3"),
    ]


def test_engine_layout_labels_from_a_column_name_a_bad_value(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "kind": ["transaction"] * 2,
            "event_id": ["e1", "e2"],
            "transaction_id": ["t1", "t2"],
            "timestamp": ["2022-01-01T00:00:00Z", "2022-01-02T00:00:00Z"],
            "is_fraud": ["1", "perhaps"],
        }
    )
    path = tmp_path / "events.csv"
    frame.write_csv(path)
    with pytest.raises(ImportRejected, match=r"events.csv:3: is_fraud \(label\): unknown label"):
        EventInput(format="engine", label_column="is_fraud").frame(path)
    frame.with_columns(is_fraud=pl.lit("true")).write_csv(path)
    events, fraud = EventInput(format="engine", label_column="is_fraud").frame(path)
    assert events.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert fraud is not None and fraud.get_column("event_id").to_list() == ["e1", "e2"]


def test_bad_options_are_refused_naming_the_option(tmp_path: Path) -> None:
    path = _cards(tmp_path, ("2018-04-01 00:00:31", "C596", "T3156", "57.16", "0"))
    code, output = _invoke("import", "events", str(path), "--default-channel", "shop")
    assert code == 2 and "default_channel: expected one of atm, pos, online, mobile" in output
    code, output = _invoke("import", "events", str(path), "--label-delay", "soon")
    assert code == 2 and "expected a duration" in output
    code, output = _invoke("import", "events", str(path), "--map", "amount")
    assert code == 2 and "expected FIELD=COLUMN" in output
    with pytest.raises(SourceFileError, match="missing required columns: timestamp, type"):
        EventInput(default_channel="pos").read(path)


def test_replay_evaluate_and_backtest_read_one_mapped_file_alike(tmp_path: Path) -> None:
    """A card-payment file with its label column, named the same way to every command."""
    rows = [
        (f"2018-04-0{1 + i // 20} {i % 20:02d}:00:00", f"C{i % 7}", f"T{i % 3}", f"{10 + i}.5", "0")
        for i in range(60)
    ]
    rows[41] = (*rows[41][:3], "9000.00", "1")  # one fraud, far above the card's usual
    path = _cards(tmp_path, *rows)
    reading = [*_maps(), "--default-type", "payment", "--default-channel", "pos"]
    reading += ["--label-column", "TX_FRAUD", "--label-delay", "1d"]
    db = f"sqlite:///{tmp_path / 'v.db'}"
    code, output = _invoke("replay", str(path), "-d", db, *reading)
    assert code == 0, output
    replayed = json.loads(output.splitlines()[-1])
    assert (replayed["events"], replayed["feedback"]) == (60, 60)  # every label, learnt
    code, output = _invoke(
        "evaluate", "--events", str(path), "-d", db, "-o", str(tmp_path / "r"), *reading
    )
    assert code == 0, output
    overall = json.loads(output.splitlines()[-1])["overall"]
    assert overall["units"] == 60 and overall["fraud_units"] == 1
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {name: big, condition: amount >= 5000, score: 0.9}\n")
    code, output = _invoke("backtest", str(rules), "--events", str(path), "-d", db, *reading)
    assert code == 0, output
    backtest = json.loads(output.splitlines()[-1])
    assert (backtest["events"], backtest["fraud_units"]) == (60, 1)
    assert backtest["candidate"]["true_positives"] == 1
