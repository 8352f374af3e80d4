"""Figures of the hand-built scenario (see scenario.py), each worked out by hand."""

from __future__ import annotations

import polars as pl
import pytest

from tests.evaluate.scenario import LABELS, T, decisions_frame, labels_frame, minutes
from vigil.evaluate import evaluate


@pytest.fixture
def result(decisions: pl.DataFrame, labels: pl.DataFrame):
    return evaluate(decisions, labels)


def test_overall_counts_precision_recall_and_false_alarms(result) -> None:
    h = result.overall
    assert (h.units, h.fraud_units, h.legitimate_units) == (16, 8, 8)
    # Alerted fraud: t1 t4 t5 t8 l1 t7; false alarms: t10 t11.
    assert (h.alerts, h.true_positives, h.false_positives) == (8, 6, 2)
    assert h.precision == pytest.approx(6 / 8)
    assert h.recall == pytest.approx(6 / 8)
    assert h.false_positives_per_1000_legitimate == pytest.approx(2 / 8 * 1000)
    assert h.labelled_units_without_decision == 1
    assert h.period_start == T.isoformat()
    assert h.period_end == minutes(3 * 1440).isoformat()


def test_ranking_of_unit_scores(result) -> None:
    # Unit scores are the max per unit; 54 of the 64 fraud/legit pairs are ordered right.
    assert result.overall.roc_auc == pytest.approx(54 / 64)
    # Thresholds 0.95, 0.92, 0.9 (two fraud), 0.8, 0.7, 0.2 (two fraud) add recall.
    expected_ap = 1 / 8 + 1 / 8 + 2 / 8 + (5 / 6) / 8 + (6 / 7) / 8 + (8 / 12) * 2 / 8
    assert result.overall.average_precision == pytest.approx(expected_ap)
    assert expected_ap == pytest.approx(295 / 336)


def test_unit_of_start_and_end_events_alerted_only_at_its_end(result) -> None:
    t1 = result.units.filter(pl.col("unit_id") == "t1").row(0, named=True)
    assert t1["n_decisions"] == 2
    assert t1["alerted"] and t1["fraud"] and t1["pattern"] == "card_cloning"
    assert t1["score"] == 0.95 and t1["action"] == "block"
    assert t1["start_time"] == T and t1["alert_time"] == minutes(5)
    # The allowed start's reason is in the unit's reasons but earns no credit for the alert.
    assert t1["reasons"] == ["impossible_travel", "new_terminal"]
    assert t1["alert_reasons"] == ["impossible_travel"]


def test_login_is_a_unit_of_its_own(result) -> None:
    login = result.units.filter(pl.col("unit_id") == "l1").row(0, named=True)
    assert login["event_kind"] == "login" and login["n_decisions"] == 1
    assert login["pattern"] == "account_takeover" and login["action"] == "step_up"
    assert login["entity"] == "u-4"


def test_per_pattern_recall_and_episodes(result) -> None:
    cloning = result.patterns["card_cloning"]
    assert (cloning.units, cloning.alerts, cloning.recall) == (2, 1, 0.5)
    assert (cloning.episodes, cloning.episodes_caught, cloning.episode_recall) == (
        2,
        1,
        0.5,
    )
    # Caught at the end event, 5 minutes after the transaction started.
    assert cloning.delay_median_seconds == 300.0 and cloning.delay_p90_seconds == 300.0
    assert cloning.units_before_first_alert_median == 0.0

    lost = result.patterns["lost_card"]
    assert (lost.units, lost.alerts, lost.recall) == (4, 3, 0.75)
    # t3 t4 t5 on day one are one episode; t8 three days later is another.
    assert (lost.episodes, lost.episodes_caught) == (2, 2)
    # Delays 64 min (t3 missed, t4 alerted at its end) and 0 s (t8 blocked at once).
    assert lost.delay_median_seconds == pytest.approx(3840 / 2)
    assert lost.delay_p90_seconds == pytest.approx(0.9 * 3840)
    assert lost.units_before_first_alert_median == 0.5
    assert lost.units_before_first_alert_mean == 0.5
    assert lost.units_without_decision == 1

    takeover = result.patterns["account_takeover"]
    # The login (user only) and the transfer (card and user) are one customer's episode.
    assert (takeover.units, takeover.alerts, takeover.episodes) == (2, 2, 1)
    assert takeover.delay_median_seconds == 0.0
    assert set(result.patterns) == {"account_takeover", "card_cloning", "lost_card"}


def test_per_reason_alerts_and_precision(result) -> None:
    reasons = {code: r.as_dict() for code, r in result.reasons.items()}
    assert reasons["velocity_burst"] == {
        "code": "velocity_burst",
        "alerts": 3,
        "true_positives": 2,
        "false_positives": 1,
        "precision": pytest.approx(2 / 3),
        "patterns": {"lost_card": 2},
    }
    assert reasons["extract_limit"]["patterns"] == {"lost_card": 2}
    assert reasons["impossible_travel"]["precision"] == 1.0
    assert reasons["amount_spike"]["precision"] == 0.0
    assert reasons["amount_spike"]["patterns"] == {}
    assert "new_terminal" not in reasons  # only seen on an allowed decision
    assert set(reasons) == {
        "amount_spike",
        "extract_limit",
        "impossible_travel",
        "new_counterparty",
        "new_country",
        "new_device",
        "velocity_burst",
    }


def test_operating_points_of_the_actions(result) -> None:
    points = {
        a: (p.alerts, p.true_positives, p.precision, p.recall)
        for a, p in result.operating_points.items()
    }
    assert points["step_up"] == (8, 6, 0.75, 0.75)
    assert points["review"] == (6, 5, pytest.approx(5 / 6), 0.625)
    assert points["block"] == (4, 4, 1.0, 0.5)


def test_no_fraud_gives_undefined_ratios_not_nan(decisions: pl.DataFrame) -> None:
    empty = pl.DataFrame(
        schema={"event_id": pl.String, "transaction_id": pl.String, "pattern": pl.String}
    )
    h = evaluate(decisions, empty).overall
    assert (h.fraud_units, h.recall, h.roc_auc, h.average_precision) == (0, None, None, None)
    assert h.precision == 0.0 and h.false_positives_per_1000_legitimate == 8 / 16 * 1000


def test_row_order_does_not_change_the_figures(decisions, labels) -> None:
    shuffled = evaluate(
        decisions.sample(fraction=1.0, shuffle=True, seed=7),
        labels.sample(fraction=1.0, shuffle=True, seed=3),
    )
    assert shuffled.as_dict() == evaluate(decisions, labels).as_dict()


def test_labels_read_from_csv_with_empty_transaction_ids(tmp_path, decisions) -> None:
    path = tmp_path / "labels.csv"
    lines = ["event_id,transaction_id,pattern"] + [",".join(row) for row in LABELS]
    path.write_text("\n".join(lines) + "\n")
    assert "l1,,account_takeover" in path.read_text()
    from_csv = pl.read_csv(path)
    assert evaluate(decisions, from_csv).as_dict() == evaluate(decisions, labels_frame()).as_dict()


def test_events_give_the_start_of_a_transaction_decided_only_at_its_end() -> None:
    rows = [
        ("e1", "t1", "transaction", 5, 0.9, "block", ["amount_spike"], "u-1", "c-1", "B-1"),
        ("l9", None, "login", 0, 0.1, "allow", [], "u-2", None, None),
    ]
    decisions = decisions_frame(rows)
    labels = labels_frame([("s1", "t1", "amount_spike"), ("e1", "t1", "amount_spike")])
    alone = evaluate(decisions, labels)
    assert alone.patterns["amount_spike"].delay_median_seconds == 0.0
    events = pl.DataFrame(
        {
            "kind": ["transaction", "transaction", "login"],
            "event_id": ["s1", "e1", "l9"],
            "transaction_id": ["t1", "t1", None],
            "timestamp": [minutes(1), minutes(5), minutes(0)],
            "started_at": [None, minutes(1), None],
            "amount": [None, 250_000.0, None],
            "type": ["withdrawal", "withdrawal", None],
            "card_id": ["c-1", "c-1", None],
            "user_id": ["u-1", "u-1", "u-2"],
            "terminal_id": ["B-1", "B-1", None],
            "latitude": [6.45, 6.45, None],
            "longitude": [3.39, 3.39, None],
        }
    ).with_columns(pl.col("started_at").cast(pl.Datetime("us", "UTC")))
    with_events = evaluate(decisions, labels, events=events)
    assert with_events.patterns["amount_spike"].delay_median_seconds == 240.0
    t1 = with_events.units.filter(pl.col("unit_id") == "t1").row(0, named=True)
    assert (t1["type"], t1["amount"]) == ("withdrawal", 250_000.0)
    assert with_events.terminal_locations.rows() == [("B-1", 6.45, 3.39)]


def test_impossible_travel_leg_from_the_cards_previous_terminal(decisions, labels) -> None:
    # t1 is card c-1's first decided transaction: no earlier terminal, no leg.
    assert evaluate(decisions, labels).legs.is_empty()
    earlier = pl.DataFrame(
        {
            "event_id": ["s0", "e0", "s1", "e1"],
            "transaction_id": ["t0", "t0", "t1", "t1"],
            "timestamp": [minutes(-60), minutes(-56), minutes(0), minutes(5)],
            "card_id": ["c-1"] * 4,
            "terminal_id": ["B-1", "B-1", "EXT-1", "EXT-1"],
        }
    )
    legs = evaluate(decisions, labels, events=earlier).legs
    assert legs.select("unit_id", "card_id", "from_terminal", "to_terminal", "pattern").rows() == [
        ("t1", "c-1", "B-1", "EXT-1", "card_cloning")
    ]
    assert legs.get_column("from_time").to_list() == [minutes(-60)]


def test_evaluation_dict_is_the_figures_only(result) -> None:
    figures = result.as_dict()
    assert set(figures) == {"overall", "patterns", "reasons", "operating_points"}
    assert figures["patterns"]["lost_card"]["delay_p90_seconds"] == pytest.approx(3456.0)
    assert figures["overall"]["metrics_backend"].split()[0] in {"scikit-learn", "numpy"}
