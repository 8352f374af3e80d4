"""Episode splitting, delays, and impossible-travel legs on small frames."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

import polars as pl
import pytest

from tests.evaluate.scenario import T, minutes
from vigil.evaluate.episodes import episodes
from vigil.evaluate.travel import impossible_travel_legs


def _fraud(rows: list[tuple[str, str, str, float, float | None]]) -> pl.DataFrame:
    """unit_id, pattern, entity, start hour, alert hour (None: missed)."""
    return pl.DataFrame(
        {
            "unit_id": [r[0] for r in rows],
            "pattern": [r[1] for r in rows],
            "entity": [r[2] for r in rows],
            "start_time": [T + timedelta(hours=r[3]) for r in rows],
            "alert_time": [None if r[4] is None else T + timedelta(hours=r[4]) for r in rows],
            "alerted": [r[4] is not None for r in rows],
        }
    ).with_columns(pl.col("alert_time").cast(pl.Datetime("us", "UTC")))


def test_quiet_gap_over_a_day_opens_a_new_episode() -> None:
    runs = episodes(
        _fraud(
            [
                ("a", "lost_card", "u-1", 0, None),
                ("b", "lost_card", "u-1", 23, None),  # 23 h later: same episode
                ("c", "lost_card", "u-1", 46, 46.5),  # 23 h after b: still the same
                ("d", "lost_card", "u-1", 80, None),  # 34 h quiet: a new, missed episode
                ("e", "amount_spike", "u-1", 1, 1),  # another pattern: its own episode
            ]
        )
    ).sort("pattern", "first_fraud_time")
    assert runs.select(
        "pattern", "units", "caught", "delay_s", "units_before_first_alert"
    ).rows() == [
        ("amount_spike", 1, True, 0.0, 0),
        ("lost_card", 3, True, 46.5 * 3600, 2),
        ("lost_card", 1, False, None, None),
    ]


def test_customers_are_separate_episodes() -> None:
    runs = episodes(
        _fraud([("a", "card_cloning", "u-1", 0, 0.1), ("b", "card_cloning", "u-2", 0, None)])
    )
    assert sorted(runs.select("entity", "caught").rows()) == [("u-1", True), ("u-2", False)]


def _units(rows: list[tuple[str, str, str, float, list[str], bool]]) -> pl.DataFrame:
    """unit_id, card, terminal, minute, reasons, alerted."""
    return pl.DataFrame(
        {
            "unit_id": [r[0] for r in rows],
            "card_id": [r[1] for r in rows],
            "terminal_id": [r[2] for r in rows],
            "start_time": [minutes(r[3]) for r in rows],
            "reasons": [r[4] for r in rows],
            "alerted": [r[5] for r in rows],
            "pattern": pl.Series([None] * len(rows), dtype=pl.String),
        }
    )


def test_legs_follow_each_cards_own_history() -> None:
    units = _units(
        [
            ("t1", "c-1", "B-1", 0, [], False),
            ("t2", "c-2", "B-9", 5, [], False),
            ("t3", "c-1", "EXT-4", 10, ["impossible_travel"], True),
            ("t4", "c-1", "EXT-4", 20, ["impossible_travel"], True),  # same ATM again
            ("t5", "c-2", "EXT-4", 30, ["impossible_travel", "amount_spike"], False),
            ("t6", "c-3", "B-1", 40, ["impossible_travel"], True),  # no earlier terminal
        ]
    )
    legs = impossible_travel_legs(units)
    assert legs.select("unit_id", "from_terminal", "to_terminal", "alerted").rows() == [
        ("t3", "B-1", "EXT-4", True),
        ("t5", "B-9", "EXT-4", False),
    ]


def test_numpy_fallback_runs_without_scikit_learn() -> None:
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "from vigil.evaluate import ranking\n"
        "print(ranking.backend().split()[0], ranking.roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]),"
        " round(ranking.average_precision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]), 6))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["numpy", "0.75", str(round(0.5 + 1 / 3, 6))]


@pytest.mark.parametrize("hours", [24.0, 24.01])
def test_gap_boundary(hours: float) -> None:
    runs = episodes(_fraud([("a", "p", "u-1", 0, None), ("b", "p", "u-1", hours, hours)]))
    assert runs.height == (1 if hours <= 24 else 2)
