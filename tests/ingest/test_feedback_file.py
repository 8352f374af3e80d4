from datetime import UTC, datetime
from pathlib import Path

from vigil.domain import FeedbackLabel
from vigil.ingest import read_feedback

from .files import write_csv

HEADER = ("event_id", "target_event_id", "label", "timestamp", "source", "pattern")


def test_reads_feedback_and_reports_bad_rows(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "feedback.csv",
        HEADER,
        [
            ("f1", "t1-e", "fraud", "2022-01-04 00:00:00", "analyst", "card_cloning"),
            ("f1", "t1-e", "fraud", "2022-01-04 00:00:00", "analyst", "card_cloning"),
            ("f2", "t2", "legitimate", "2022-02-30 00:00:00", "customer", ""),
            ("f3", "", "fraud", "2022-01-04 00:00:00", "", ""),
            ("f1", "t9", "fraud", "2022-01-04 00:00:00", "analyst", ""),
        ],
    )
    result = read_feedback(path)
    (fb,) = result.feedback
    assert (fb.event_id, fb.label, fb.pattern) == ("f1", FeedbackLabel.FRAUD, "card_cloning")
    assert fb.timestamp == datetime(2022, 1, 4, tzinfo=UTC)
    assert result.duplicates == 1
    assert [(e.line, e.field) for e in result.errors] == [
        (4, "timestamp"),
        (5, "target_event_id"),
        (6, "event_id"),
    ]
    assert result.rows_read == 5
