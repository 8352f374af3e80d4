"""The README's Python examples run as written, on the bank its first steps generate (a smaller
one here, over the same 30 days: `vigil generate --days 30 -o bank`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from vigil.simulate import BankConfig, generate

README = Path(__file__).resolve().parents[2] / "README.md"
PYTHON = re.compile(r"```python\n(.*?)```", re.DOTALL)


def test_the_readme_shows_python() -> None:
    assert PYTHON.findall(README.read_text())


def test_the_readmes_python_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate(BankConfig(cards=400, days=30, fraud_rate=0.08, seed=7), tmp_path / "bank")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {}
    for block in PYTHON.findall(README.read_text()):
        exec(compile(block, "README.md", "exec"), scope)
    model, scores = scope["model"], scope["scores"]
    days = model.by_day.get_column("day").cast(pl.String).to_list()
    assert days == [f"2022-01-{d}" for d in range(22, 31)]
    assert model.split["labels_known_at"] == "2022-01-22T00:00:00+00:00"
    assert (tmp_path / "models" / "transaction" / model.version).is_dir()
    assert isinstance(scores, pl.DataFrame) and scores.height == scope["table"].height
    assert scores.get_column("score").is_between(0, 1).all()
