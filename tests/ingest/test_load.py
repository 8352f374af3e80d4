import csv
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from vigil.ingest import (
    EventInput,
    ImportRejected,
    SourceFileError,
    load_bank_folder,
    load_events,
    load_feedback,
)
from vigil.storage import Store

from .files import CVCS, atm_file, card_row, make_bank_folder, write_csv

T0 = "2022-01-03 10:00:00"
T1 = "2022-01-03 10:01:30"
GOOD = [
    ("t1", "c-B1-1", "B1-1", 0, T0, "", ""),
    ("t1", "c-B1-1", "B1-1", 0, T0, T1, "2500"),
    ("t2", "c-B1-2", "EXT-1", 1, T0, T1, "300"),
]
BAD = ("t3", "c-B1-2", "EXT-1", 0, T0, T1, "-7")


def event_counts(store: Store) -> tuple[int, int, int]:
    counts = store.counts()
    return counts["transactions"], counts["logins"], counts["feedback"]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_events_load_then_reload_counts_duplicates(sqlite_store: Store, tmp_path: Path) -> None:
    path = atm_file(tmp_path / "stream.csv", GOOD)
    first = load_events(sqlite_store, path)
    assert (first.rows_read, first.rows_imported, first.rows_rejected, first.duplicates) == (
        3,
        3,
        0,
        0,
    )
    assert first.written == {"transactions": 3, "logins": 0, "feedback": 0}
    assert first.reject_file is None and first.accounted
    again = load_events(sqlite_store, path)
    assert (again.rows_imported, again.duplicates) == (0, 3)
    assert event_counts(sqlite_store) == (3, 0, 0)
    assert set(first.as_dict()) == {
        "file",
        "rows_read",
        "rows_imported",
        "rows_rejected",
        "duplicates",
        "reject_file",
        "seconds",
        "written",
    }


def test_reject_policy_writes_nothing(sqlite_store: Store, tmp_path: Path) -> None:
    path = atm_file(tmp_path / "stream.csv", [*GOOD, BAD])
    with pytest.raises(ImportRejected) as info:
        load_events(sqlite_store, path)
    assert [(e.file, e.line, e.field) for e in info.value.errors] == [
        ("stream.csv", 5, "transaction_amount (amount)")
    ]
    assert "stream.csv:5: transaction_amount (amount)" in str(info.value)
    assert event_counts(sqlite_store) == (0, 0, 0)
    assert not list(tmp_path.glob("*.rejects.csv*"))


def test_skip_policy_imports_good_rows_and_writes_rejects(
    sqlite_store: Store, tmp_path: Path
) -> None:
    path = atm_file(tmp_path / "stream.csv", [*GOOD, BAD, ("t4", "c1", "A1", 9, T0, T1, "1")])
    summary = load_events(sqlite_store, path, on_error="skip", reject_dir=tmp_path / "rejects")
    assert (summary.rows_read, summary.rows_imported, summary.rows_rejected) == (5, 3, 2)
    assert summary.accounted
    reject_file = tmp_path / "rejects" / "stream.rejects.csv"
    assert summary.reject_file == str(reject_file)
    rows = read_rows(reject_file)
    assert [(r["transaction_id"], r["transaction_amount"], r["error_line"]) for r in rows] == [
        ("t3", "-7", "5"),
        ("t4", "1", "6"),
    ]
    assert rows[0]["error_field"] == "transaction_amount (amount)"
    assert "negative" in rows[0]["error_message"]
    assert rows[1]["error_field"] == "transaction_type (type)"
    assert event_counts(sqlite_store) == (3, 0, 0)
    # Next to the source by default.
    load_events(sqlite_store, path, on_error="skip")
    assert (tmp_path / "stream.rejects.csv").is_file()


def test_fixed_rejects_file_imports(sqlite_store: Store, tmp_path: Path) -> None:
    path = atm_file(tmp_path / "stream.csv", [*GOOD, BAD])
    summary = load_events(sqlite_store, path, on_error="skip")
    assert summary.reject_file is not None
    rejects = Path(summary.reject_file)
    rejects.write_text(rejects.read_text().replace(",-7,", ",7,"))
    again = load_events(sqlite_store, rejects)
    assert again.rows_imported == 1
    assert event_counts(sqlite_store) == (4, 0, 0)


def test_generic_file_with_labels_writes_feedback(sqlite_store: Store, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "g.csv",
        ("when", "card", "amt", "kind_of", "fraud"),
        [
            ("2022-01-03 10:00:00", "C1", "5", "payment", "1"),
            ("2022-01-03 11:00:00", "C2", "6", "payment", ""),
        ],
    )
    mapping = {"timestamp": "when", "card_id": "card", "amount": "amt", "type": "kind_of"}
    inputs = EventInput(
        mapping=mapping, default_channel="pos", label_column="fraud", label_delay=timedelta(days=3)
    )
    summary = load_events(sqlite_store, path, inputs=inputs)
    assert summary.written == {"transactions": 2, "logins": 0, "feedback": 1}
    (fb,) = sqlite_store.load_feedback()
    assert (fb.event_id, fb.target_event_id, fb.label.value) == ("fb-g-2", "g-2", "fraud")
    # The label is known when the delay says, not at the payment's own time.
    assert fb.timestamp == datetime(2022, 1, 6, 10, tzinfo=UTC)


def test_feedback_file(sqlite_store: Store, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "feedback.csv",
        ("event_id", "target_event_id", "label", "timestamp", "source"),
        [
            ("f1", "t1-e", "standin_recovered", "2022-01-04T00:00:00Z", "settlement"),
            ("f2", "t2", "chargeback", "2022-01-04T00:00:00Z", "customer"),
        ],
    )
    with pytest.raises(ImportRejected) as info:
        load_feedback(sqlite_store, path)
    assert [(e.line, e.field) for e in info.value.errors] == [(3, "label")]
    summary = load_feedback(sqlite_store, path, on_error="skip")
    assert (summary.rows_imported, summary.rows_rejected) == (1, 1)
    assert load_feedback(sqlite_store, path, on_error="skip").duplicates == 1


def test_policy_and_format_arguments_are_checked(sqlite_store: Store, tmp_path: Path) -> None:
    path = atm_file(tmp_path / "stream.csv", GOOD)
    with pytest.raises(ValueError, match="on_error"):
        load_events(sqlite_store, path, on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ATM layout takes no --map"):
        load_events(sqlite_store, path, inputs=EventInput(format="atm", mapping={"amount": "x"}))
    with pytest.raises(SourceFileError, match="no such file"):
        load_events(sqlite_store, tmp_path / "missing.csv")


def test_bank_folder_load_and_cvc_never_stored(tmp_path: Path) -> None:
    db = tmp_path / "db" / "vigil.db"
    db.parent.mkdir()
    store = Store(f"sqlite:///{db}")
    store.init_schema()
    folder = make_bank_folder(
        tmp_path / "bank",
        cards=[
            card_row("c-B1-1", "u-B1-1", CVCS[0]),
            card_row("c-B1-2", "u-B1-2", CVCS[1], loc_latitude="north"),
            card_row("c-B2-1", "u-B2-1", CVCS[2]),
        ],
        card_bank=[("B1", "c-B1-1"), ("B2", "c-B2-1")],
    )
    summary = load_bank_folder(store, folder, on_error="skip", reject_dir=tmp_path / "rejects")
    assert summary.written == {"banks": 2, "users": 2, "terminals": 3, "cards": 2}
    assert summary.rows_rejected == 1 and summary.accounted
    ref = store.load_reference()
    assert sorted(ref.cards) == ["c-B1-1", "c-B2-1"]
    assert ref.cards["c-B2-1"].bank_code == "B2"
    assert ref.terminals["EXT-1"].internal is False
    store.close()
    (reject,) = read_rows(tmp_path / "rejects" / "card.rejects.csv")
    assert reject["number_id"] == "c-B1-2" and "CVC" not in reject
    assert reject["error_field"] == "loc_latitude (latitude)"
    # What the database holds (its SQL dump, the write-ahead log included) and the rejects: a
    # search of the files' raw bytes found a CVC's digits by chance in page bytes and in the
    # digits of a load's timestamp, so a value is looked for as a value, not inside others.
    with sqlite3.connect(db) as conn:
        written = "\n".join(conn.iterdump())
    written += "".join(p.read_text() for p in tmp_path.glob("rejects/*"))
    assert _holds_value(written, "c-B1-1")  # the search does see the stored data
    for cvc in CVCS:
        assert not _holds_value(written, cvc)


def _holds_value(text: str, value: str) -> bool:
    """Whether ``value`` stands alone in ``text`` (not within a word, number or timestamp)."""
    return re.search(rf"(?<![\w.:-]){re.escape(value)}(?![\w.:-])", text) is not None


def test_bank_folder_reject_writes_nothing(sqlite_store: Store, tmp_path: Path) -> None:
    folder = make_bank_folder(tmp_path / "bank", internal=[("B1", "B1-1"), ("B9", "B2-1")])
    with pytest.raises(ImportRejected) as info:
        load_bank_folder(sqlite_store, folder)
    assert [(e.file, e.line, e.field) for e in info.value.errors] == [
        ("atm-bank-internal.csv", 3, "code")
    ]
    counts = sqlite_store.counts()
    assert [counts[t] for t in ("banks", "terminals", "cards", "users")] == [0, 0, 0, 0]


def test_failed_write_leaves_no_rows_and_no_reject_file(store: Store, tmp_path: Path) -> None:
    # A real failure half-way through the transaction: the feedback table is gone, so the
    # transactions written just before it must roll back, on every backend.
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE feedback"))
    path = write_csv(
        tmp_path / "g.csv",
        ("timestamp", "card_id", "amount", "type", "fraud"),
        [
            ("2022-01-03 10:00:00", "C1", "5", "payment", "1"),
            ("2022-01-03 10:00:00", "C1", "-5", "payment", "1"),
        ],
    )
    with pytest.raises(Exception, match="feedback"):
        inputs = EventInput(label_column="fraud", default_channel="pos")
        load_events(store, path, inputs=inputs, on_error="skip")
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM transactions")).scalar_one() == 0
    assert list(tmp_path.glob("g.rejects.csv*")) == []
