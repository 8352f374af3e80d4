"""Units named as evidence by an alert count toward case recall, never toward alerts."""

from datetime import UTC, datetime, timedelta

import polars as pl

from vigil.evaluate import evaluate

T = datetime(2022, 1, 1, tzinfo=UTC)


def test_evidence_links_earlier_units_of_a_burst() -> None:
    # A burst of four operations on one card: the last is alerted and names the first two
    # (the third is missed and unnamed); one legitimate operation is named too.
    decisions = pl.DataFrame(
        {
            "event_id": ["b1", "b2", "b3", "b4", "ok"],
            "event_time": [T + timedelta(minutes=m) for m in (0, 2, 4, 6, 8)],
            "score": [0.0, 0.0, 0.0, 0.8, 0.0],
            "action": ["allow", "allow", "allow", "review", "allow"],
            "evidence": [[], [], [], ["b1", "b2", "ok", "b4"], []],
        }
    )
    labels = pl.DataFrame({"event_id": ["b1", "b2", "b3", "b4"], "pattern": ["burst"] * 4})
    e = evaluate(decisions, labels)
    burst = e.patterns["burst"]
    assert (burst.alerts, burst.linked, burst.recall, burst.case_recall) == (1, 2, 0.25, 0.75)
    assert e.overall.linked_fraud == 2
    assert e.overall.linked_legitimate == 1
    assert e.overall.precision == 1.0  # a linked unit is not an alert
    units = e.units.sort("unit_id")
    linked_at = dict(zip(units["unit_id"], units["linked_time"], strict=True))
    assert linked_at["b1"] == T + timedelta(minutes=6)
    assert linked_at["b3"] is None and linked_at["b4"] is None  # b4 is alerted, not linked
