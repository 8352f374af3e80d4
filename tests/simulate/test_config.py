from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from vigil.simulate import BankConfig, generate


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"cards": 0}, "cards"),
        ({"days": -1}, "days"),
        ({"atms_internal": 0}, "atms_internal"),
        ({"fraud_rate": 1.5}, "fraud_rate"),
        ({"standin_rate": float("nan")}, "standin_rate"),
        ({"bank_code": "V-B"}, "bank_code"),
        ({"bank_code": "EXT"}, "bank_code"),
        ({"seed": -3}, "seed"),
        ({"start": "2022-01-01"}, "start"),
        ({"hq_latitude": 91.0}, "hq_latitude"),
        ({"pattern_weights": {"phishing": 1.0}}, "pattern_weights"),
        ({"pattern_weights": {"card_cloning": -1.0}}, "pattern_weights"),
        ({"logins_per_week": (5.0, 1.0)}, "logins_per_week"),
    ],
)
def test_bad_config_names_the_field(change: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        BankConfig(**change).validate()


def test_bad_input_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^cards:"):
        generate(BankConfig(cards=0), tmp_path / "out")
    with pytest.raises(ValueError, match=r"^fmt:"):
        generate(BankConfig(cards=10), tmp_path / "out", fmt="xlsx")  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


def test_config_as_dict_is_plain() -> None:
    d = BankConfig(start=date(2023, 5, 1)).as_dict()
    assert d["start"] == "2023-05-01"
    assert d["cards"] == 2000 and d["fraud_rate"] == 0.01


def test_a_new_format_replaces_the_old_event_file(tmp_path: Path) -> None:
    small = BankConfig(cards=20, days=3)
    generate(small, tmp_path, fmt="atm-csv")
    assert (tmp_path / "events.csv").exists() and (tmp_path / "atm_transactions.csv").exists()
    generate(small, tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "events.parquet" in names
    assert "events.csv" not in names and "atm_transactions.csv" not in names
    assert not [n for n in names if n.startswith(".")]  # no staging folder left behind
