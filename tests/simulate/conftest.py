"""One generated bank shared by the simulate tests, read back from its files like a user would."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from vigil.simulate import BankConfig, GenerationSummary, generate

# Big enough for ~10 episodes of every pattern, small enough to generate in under a second.
CONFIG = BankConfig(seed=11, cards=1500, days=30, fraud_rate=0.05, standin_rate=0.1)


@dataclass
class Generated:
    summary: GenerationSummary
    folder: Path
    events: pl.DataFrame
    labels: pl.DataFrame
    atms: pl.DataFrame
    cards: pl.DataFrame
    users: pl.DataFrame
    feedback: pl.DataFrame

    def labelled(self, pattern: str) -> pl.DataFrame:
        """The pattern's labelled events (end/single rows for transactions, and logins)."""
        ids = self.labels.filter(pl.col("pattern") == pattern)["event_id"]
        return self.events.filter(
            pl.col("event_id").is_in(ids.implode()) & (pl.col("phase") != "start").fill_null(True)
        )

    def atm_transactions(self) -> pl.DataFrame:
        """One row per ATM transaction (its end event) with start, end and ATM coordinates."""
        return (
            self.events.filter((pl.col("channel") == "atm") & (pl.col("phase") == "end"))
            .join(
                self.atms.select("ATM_id", "loc_latitude", "loc_longitude"),
                left_on="terminal_id",
                right_on="ATM_id",
                how="left",
            )
            .rename({"started_at": "start", "timestamp": "end"})
        )


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Generated:
    folder = tmp_path_factory.mktemp("bank")
    summary = generate(CONFIG, folder)
    return Generated(
        summary=summary,
        folder=folder,
        events=pl.read_parquet(folder / "events.parquet"),
        labels=pl.read_csv(folder / "labels.csv", schema_overrides={"transaction_id": pl.String}),
        atms=pl.read_csv(folder / "atm.csv"),
        cards=pl.read_csv(folder / "card.csv", schema_overrides={"CVC": pl.String}),
        users=pl.read_csv(folder / "users.csv"),
        feedback=pl.read_csv(folder / "feedback.csv"),
    )
