"""The vigil command answers bad input with one line on stderr and an exit code, never a
traceback: 2 for usage and input errors (a missing file, a wrong format, bad SQL), 1 for
failures; ``--debug`` shows the traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

import vigil
from vigil.cli import app

runner = CliRunner()

# A CSV whose header has none of the columns an event file needs.
WRONG_COLUMNS = "a,b\n1,2\n"
LOGINS = "kind,event_id,timestamp,user_id,ip,device_id,country,success\n"
GOOD_LOGIN = "login,l-{n},2022-01-01T0{n}:51:07Z,u-1,41.58.0.84,d-1,NG,true\n"


def _db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'v.db'}"


def _one_error_line(result: Result, code: int) -> str:
    """The single ``error:`` line the command wrote on stderr, checked: no traceback, exit code
    ``code``, the command exited (it did not crash)."""
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, (result.stderr, result.exception)
    assert lines[0].startswith("error: "), lines[0]
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    return lines[0]


@pytest.fixture
def garbage(tmp_path: Path) -> Path:
    """Bytes that are no text under a .csv name."""
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 4)
    return path


@pytest.fixture
def garbage_parquet(tmp_path: Path) -> Path:
    """A CSV under a .parquet name."""
    path = tmp_path / "events.parquet"
    path.write_text("timestamp,type\n2022-01-01T00:00:00Z,atm_withdrawal\n")
    return path


@pytest.fixture
def wrong_columns(tmp_path: Path) -> Path:
    path = tmp_path / "cols.csv"
    path.write_text(WRONG_COLUMNS)
    return path


# import


def test_import_events_with_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    result = runner.invoke(app, ["import", "events", str(missing), "-d", _db(tmp_path)])
    line = _one_error_line(result, 2)
    assert "nope.csv" in line and "no such file" in line


def test_import_bank_with_a_missing_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", "bank", str(tmp_path / "nobank"), "-d", _db(tmp_path)])
    line = _one_error_line(result, 2)
    assert "nobank" in line and "missing files" in line


def test_import_events_missing_required_columns(tmp_path: Path, wrong_columns: Path) -> None:
    result = runner.invoke(app, ["import", "events", str(wrong_columns), "-d", _db(tmp_path)])
    line = _one_error_line(result, 2)
    assert "cols.csv" in line and "missing required columns: timestamp, type" in line


def test_import_events_of_a_garbage_file(tmp_path: Path, garbage: Path) -> None:
    result = runner.invoke(app, ["import", "events", str(garbage), "-d", _db(tmp_path)])
    line = _one_error_line(result, 2)
    assert "garbage.csv" in line and "not UTF-8" in line


def test_import_events_of_a_file_that_is_not_parquet(tmp_path: Path, garbage_parquet: Path) -> None:
    result = runner.invoke(app, ["import", "events", str(garbage_parquet), "-d", _db(tmp_path)])
    line = _one_error_line(result, 2)
    assert "events.parquet" in line and "not a readable Parquet file" in line


def test_import_events_with_bad_rows_names_each_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    bad = GOOD_LOGIN.format(n=2).replace("true", "maybe")
    path.write_text(LOGINS + GOOD_LOGIN.format(n=1) + bad + bad.replace("l-2", "l-3"))
    result = runner.invoke(app, ["import", "events", str(path), "-d", _db(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    head, *rows = result.stderr.splitlines()
    assert head == f"error: {path}: rejected, 2 bad rows (2 errors); nothing was imported"
    assert [row.split(": ")[:2] for row in rows] == [
        ["  e.csv:3", "success"],
        ["  e.csv:4", "success"],
    ]


# replay


def test_replay_with_a_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["replay", str(tmp_path / "nope.parquet"), "-d", _db(tmp_path)])
    line = _one_error_line(result, 2)
    assert "nope.parquet" in line


def test_replay_of_a_file_missing_required_columns(tmp_path: Path, wrong_columns: Path) -> None:
    result = runner.invoke(app, ["replay", str(wrong_columns), "-d", _db(tmp_path)])
    line = _one_error_line(result, 2)
    assert "cols.csv" in line and "missing required columns" in line


def test_replay_of_a_file_that_is_not_parquet(tmp_path: Path, garbage_parquet: Path) -> None:
    result = runner.invoke(app, ["replay", str(garbage_parquet), "-d", _db(tmp_path)])
    line = _one_error_line(result, 2)
    assert "events.parquet" in line and "not a readable Parquet file" in line


def test_replay_of_a_file_with_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(LOGINS + GOOD_LOGIN.format(n=1) + GOOD_LOGIN.format(n=2).replace("NG", "N"))
    result = runner.invoke(app, ["replay", str(path), "-d", _db(tmp_path)])
    line = _one_error_line(result, 2)
    assert line.startswith("error: e.csv:3: country: ")


def test_replay_of_a_garbage_file(tmp_path: Path, garbage: Path) -> None:
    result = runner.invoke(app, ["replay", str(garbage), "-d", _db(tmp_path)])
    line = _one_error_line(result, 2)
    assert "garbage.csv" in line


# evaluate


def test_evaluate_with_a_missing_labels_file(tmp_path: Path) -> None:
    args = ["--labels", str(tmp_path / "nope.csv"), "-o", str(tmp_path / "r")]
    result = runner.invoke(app, ["evaluate", *args, "-d", _db(tmp_path)])
    line = _one_error_line(result, 2)
    assert "nope.csv" in line and "no such file" in line


@pytest.fixture
def decided_db(tmp_path: Path) -> str:
    """A database holding the decisions on two logins, so evaluate gets as far as the labels."""
    events = tmp_path / "events.csv"
    events.write_text(LOGINS + GOOD_LOGIN.format(n=1) + GOOD_LOGIN.format(n=2))
    url = _db(tmp_path)
    result = runner.invoke(app, ["replay", str(events), "-d", url])
    assert result.exit_code == 0, result.output
    return url


def test_evaluate_with_no_decisions_stored(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("event_id,transaction_id,pattern,episode_id\n")
    args = ["--labels", str(labels), "-o", str(tmp_path / "r")]
    result = runner.invoke(app, ["evaluate", *args, "-d", _db(tmp_path)])
    line = _one_error_line(result, 2)
    assert "decisions" in line


def test_evaluate_with_labels_missing_their_columns(
    tmp_path: Path, decided_db: str, wrong_columns: Path
) -> None:
    args = ["--labels", str(wrong_columns), "-o", str(tmp_path / "r")]
    result = runner.invoke(app, ["evaluate", *args, "-d", decided_db])
    line = _one_error_line(result, 2)
    assert "event_id" in line and "column missing" in line


def test_evaluate_with_an_events_file_that_is_not_parquet(
    tmp_path: Path, decided_db: str, garbage_parquet: Path
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("event_id,transaction_id,pattern,episode_id\n")
    args = ["--labels", str(labels), "--events", str(garbage_parquet), "-o", str(tmp_path / "r")]
    result = runner.invoke(app, ["evaluate", *args, "-d", decided_db])
    line = _one_error_line(result, 2)
    assert "events.parquet" in line and "not a readable Parquet file" in line


# query


@pytest.fixture
def profiles_db(tmp_path: Path) -> str:
    """A database with one stored card profile, so SQL gets as far as running."""
    from vigil.profiles import Profile
    from vigil.storage import Store

    url = _db(tmp_path)
    store = Store(url)
    store.init_schema()
    store.save_profiles([("card", "c-1", Profile().to_bytes())])
    store.close()
    return url


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("selec nonsense", "syntax error"),
        ("select no_such_column from profiles", "no_such_column"),
        ("select * from no_such_table", "no_such_table"),
    ],
)
def test_query_with_bad_sql(profiles_db: str, sql: str, named: str) -> None:
    result = runner.invoke(app, ["query", "--sql", sql, "-d", profiles_db])
    line = _one_error_line(result, 2)
    assert named in line


def test_query_with_no_stored_profiles(tmp_path: Path) -> None:
    result = runner.invoke(app, ["query", "--sql", "select 1", "-d", _db(tmp_path)])
    line = _one_error_line(result, 1)
    assert "no stored profiles" in line and result.stdout == ""


# features


@pytest.mark.parametrize("name", ["none.parquet", "cols.csv", "events.parquet"])
def test_features_build_with_a_missing_or_wrong_file(
    tmp_path: Path, wrong_columns: Path, garbage_parquet: Path, name: str
) -> None:
    events = tmp_path / name
    result = runner.invoke(
        app, ["features", "build", "--events", str(events), "--out", str(tmp_path / "f.parquet")]
    )
    _one_error_line(result, 2)


ENGINE_TX = "kind,event_id,timestamp,type,channel,amount,card_id,terminal_id\n"
GOOD_TX = "transaction,t-{n},2022-01-01T0{n}:00:00Z,withdrawal,atm,20.00,c-1,a-1\n"


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [("labels.csv", 'event_id\n"unclosed\n', "CSV"), ("labels.parquet", "event_id\n", "Parquet")],
    ids=["csv", "parquet"],
)
def test_features_build_with_labels_that_cannot_be_read(
    tmp_path: Path, name: str, text: str, kind: str
) -> None:
    """Polars' own message named neither the file nor what it should have been."""
    events = tmp_path / "e.csv"
    events.write_text(ENGINE_TX + GOOD_TX.format(n=1))
    labels = tmp_path / name
    labels.write_text(text)
    args = ["--events", str(events), "--labels", str(labels), "--out", str(tmp_path / "f.parquet")]
    result = runner.invoke(app, ["features", "build", *args])
    line = _one_error_line(result, 2)
    assert line.startswith(f"error: {labels}: not a readable {kind} file ("), line


@pytest.mark.parametrize("command", ["features", "train"])
@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [("amount", "20.00", "abc"), ("timestamp", "2022-01-01T02:00:00Z", "yesterday")],
)
def test_a_bad_value_in_an_engine_layout_file_names_its_line_and_field(
    tmp_path: Path, command: str, field: str, good: str, bad: str
) -> None:
    """As vigil replay names it, where the builders read the file straight into Polars."""
    events = tmp_path / "e.csv"
    rows = [GOOD_TX.format(n=1), GOOD_TX.format(n=2).replace(good, bad), GOOD_TX.format(n=3)]
    events.write_text(ENGINE_TX + "".join(rows))
    labels = tmp_path / "labels.csv"
    labels.write_text("event_id\nt-1\n")
    args = ["--events", str(events), "--labels", str(labels)]
    if command == "features":
        args = ["features", "build", *args, "--out", str(tmp_path / "f.parquet")]
    else:
        args = ["train", *args, "--registry", str(tmp_path / "models")]
    result = runner.invoke(app, args)
    line = _one_error_line(result, 2)
    assert line.startswith(f"error: e.csv:3: {field}: "), line
    assert repr(bad) in line, line


@pytest.mark.parametrize("command", ["list", "build"])
@pytest.mark.parametrize(
    ("text", "named"),
    [(None, ": cannot be read"), ("features: [\n", ":2: not YAML: expected the node content")],
    ids=["missing", "not-yaml"],
)
def test_features_with_a_feature_file_missing_or_not_yaml(
    tmp_path: Path, command: str, text: str | None, named: str
) -> None:
    """One line and exit 2, as every command (it printed the whole list, with no error:)."""
    features = tmp_path / "features.yaml"
    if text is not None:
        features.write_text(text)
    args = ["features", command, "--feature-file", str(features)]
    if command == "build":  # the feature file is checked before the events are read
        args += ["--events", str(tmp_path / "e.csv"), "--out", str(tmp_path / "f.parquet")]
    result = runner.invoke(app, args)
    line = _one_error_line(result, 2)
    assert line.startswith(f"error: {features}{named}"), line


# wrong database URL


def test_a_database_url_that_is_not_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", "events", str(tmp_path / "e.csv"), "-d", "nonsense"])
    line = _one_error_line(result, 2)
    assert "nonsense" in line


# failures, --debug, --version


def test_an_unexpected_failure_exits_1_with_a_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vigil.cli

    def broken(*_: object) -> None:
        raise RuntimeError("the disk fell off")

    monkeypatch.setattr(vigil.cli, "_store", broken)
    result = runner.invoke(app, ["import", "events", str(tmp_path / "e.csv")])
    line = _one_error_line(result, 1)
    assert "the disk fell off" in line and "--debug" in line


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    result = runner.invoke(app, ["--debug", "import", "events", str(missing), "-d", _db(tmp_path)])
    assert result.exit_code == 2
    assert "Traceback (most recent call last)" in result.stderr
    assert "SourceFileError" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"vigil {vigil.__version__}"


# train --feature-file


@pytest.mark.parametrize(
    ("text", "named"),
    [(None, ": cannot be read"), ("features: [\n", ":2: not YAML: expected the node content")],
    ids=["missing", "not-yaml"],
)
def test_train_with_a_feature_file_missing_or_not_yaml(
    tmp_path: Path, text: str | None, named: str
) -> None:
    """The feature file's error lists every mistake, one a line; the command shows the first."""
    events = tmp_path / "e.csv"
    events.write_text(LOGINS + GOOD_LOGIN.format(n=1))
    labels = tmp_path / "labels.csv"
    labels.write_text("event_id\nl-1\n")
    features = tmp_path / "features.yaml"
    if text is not None:
        features.write_text(text)
    args = ["--events", str(events), "--labels", str(labels), "--feature-file", str(features)]
    result = runner.invoke(app, ["train", *args, "--registry", str(tmp_path / "models")])
    line = _one_error_line(result, 2)
    assert line.startswith(f"error: {features}{named}"), line


# rules


@pytest.mark.parametrize("command", ["check", "reload"])
@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_rules_with_no_rule_file_at_the_path(tmp_path: Path, command: str, kind: str) -> None:
    """A mistake in the command (2), not a rule file with errors (1, each error listed)."""
    path = tmp_path / "rules.yaml"
    if kind == "folder":
        path.mkdir()
    database = ["-d", _db(tmp_path)] if command == "reload" else []  # check reads no database
    result = runner.invoke(app, ["rules", command, str(path), *database])
    line = _one_error_line(result, 2)
    assert line == f"error: {path}: {'no such file' if kind == 'missing' else 'not a file'}"
