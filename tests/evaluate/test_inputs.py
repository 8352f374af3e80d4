"""Bad decisions, labels, events or terminals are refused with the field named."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from vigil.evaluate import evaluate, write_report


def _bad(decisions: pl.DataFrame, labels: pl.DataFrame, match: str, **kwargs) -> None:
    with pytest.raises(ValueError, match=match):
        evaluate(decisions, labels, **kwargs)


def test_missing_decision_column(decisions, labels) -> None:
    _bad(decisions.drop("score"), labels, r"decisions\.score: column missing")


def test_naive_event_time(decisions, labels) -> None:
    naive = decisions.with_columns(pl.col("event_time").dt.replace_time_zone(None))
    _bad(naive, labels, r"decisions\.event_time: .*timezone")


def test_text_event_time(decisions, labels) -> None:
    text = decisions.with_columns(pl.col("event_time").dt.to_string())
    _bad(text, labels, r"decisions\.event_time: expected a timezone-aware datetime")


def test_other_timezone_is_converted_to_utc(decisions, labels) -> None:
    lagos = decisions.with_columns(pl.col("event_time").dt.convert_time_zone("Africa/Lagos"))
    assert evaluate(lagos, labels).as_dict() == evaluate(decisions, labels).as_dict()


def test_score_outside_unit_interval(decisions, labels) -> None:
    _bad(decisions.with_columns(pl.col("score") * 2), labels, r"decisions\.score: .*outside")


def test_null_score(decisions, labels) -> None:
    nulled = decisions.with_columns(
        pl.when(pl.col("event_id") == "e1").then(None).otherwise(pl.col("score")).alias("score")
    )
    _bad(nulled, labels, r"decisions\.score: 1 empty")


def test_unknown_action(decisions, labels) -> None:
    odd = decisions.with_columns(pl.lit("deny").alias("action"))
    _bad(odd, labels, r"decisions\.action: unknown action\(s\) \['deny'\]")


def test_duplicate_decision_for_one_event(decisions, labels) -> None:
    _bad(pl.concat([decisions, decisions.head(1)]), labels, r"decisions\.event_id: 2 rows")


def test_no_decisions(decisions, labels) -> None:
    _bad(decisions.clear(), labels, r"decisions: no rows")


def test_reason_codes_must_be_lists(decisions, labels) -> None:
    joined = decisions.with_columns(pl.col("reason_codes").list.join("|"))
    _bad(joined, labels, r"decisions\.reason_codes: expected a list")


def test_label_without_pattern(decisions, labels) -> None:
    _bad(decisions, labels.drop("pattern"), r"labels\.pattern: column missing")
    blank = labels.with_columns(pl.lit("").alias("pattern"))
    _bad(decisions, blank, r"labels\.pattern: \d+ empty")


def test_event_labelled_with_two_patterns(decisions, labels) -> None:
    clash = pl.concat(
        [
            labels,
            pl.DataFrame(
                {"event_id": ["e1"], "transaction_id": ["t1"], "pattern": ["amount_spike"]}
            ),
        ]
    )
    _bad(decisions, clash, r"labels\.pattern: event 'e1' is labelled with several patterns")


def test_events_without_timestamp(decisions, labels) -> None:
    events = pl.DataFrame({"event_id": ["e1"], "time": [datetime(2022, 1, 1)]})
    _bad(decisions, labels, r"events\.timestamp: column missing", events=events)


def test_terminals_off_the_globe_write_nothing(tmp_path, decisions, labels, terminals) -> None:
    result = evaluate(decisions, labels)
    wrong = terminals.with_columns(pl.col("latitude") * 100)
    with pytest.raises(ValueError, match=r"terminals\.latitude/longitude: terminal 'B-1'"):
        write_report(result, tmp_path / "out", terminals=wrong)
    assert list((tmp_path / "out").iterdir()) == []
