"""``generate()``: build the synthetic bank, its events and injected frauds, write the folder."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl

from vigil.simulate.bank import build_bank
from vigil.simulate.config import PATTERNS, BankConfig
from vigil.simulate.frauds import inject_frauds
from vigil.simulate.geo import distance_matrix
from vigil.simulate.logins import incoming_transfers, online_transfers, user_logins
from vigil.simulate.records import LoginBatch, TxBatch
from vigil.simulate.standin import standin_outcomes
from vigil.simulate.transactions import atm_transactions
from vigil.simulate.writer import (
    atm_stream_frame,
    events_for_csv,
    events_frame,
    feedback_frame,
    labels_frame,
    reference_frames,
    write_all,
)

Format = Literal["parquet", "csv", "atm-csv"]
FORMATS: tuple[str, ...] = ("parquet", "csv", "atm-csv")
EVENT_FILES = frozenset({"events.parquet", "events.csv", "atm_transactions.csv"})


@dataclass
class GenerationSummary:
    """What ``generate()`` made and where it put it.

    >>> GenerationSummary(cards=1, users=1, atms=2).as_dict()["atms"]
    2
    """

    cards: int = 0
    users: int = 0
    atms: int = 0
    transactions: int = 0
    logins: int = 0
    events: int = 0
    standin: int = 0
    frauds: dict[str, int] = field(default_factory=dict)  # episodes per pattern
    labelled_events: int = 0
    seconds: float = 0.0
    paths: dict[str, Path] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cards": self.cards,
            "users": self.users,
            "atms": self.atms,
            "transactions": self.transactions,
            "logins": self.logins,
            "events": self.events,
            "standin": self.standin,
            "frauds": dict(self.frauds),
            "labelled_events": self.labelled_events,
            "seconds": round(self.seconds, 3),
            "paths": {k: str(v) for k, v in self.paths.items()},
        }


def generate(
    config: BankConfig,
    out_dir: Path,
    *,
    fmt: Format = "parquet",
    progress: Callable[[str, float], None] | None = None,
) -> GenerationSummary:
    """Generate the synthetic bank described by ``config`` into ``out_dir``.

    Writes the reference data (ATM bank CSV layout plus ``users.csv``), the event stream
    (``events.parquet``, or ``events.csv`` for ``fmt="csv"``; ``fmt="atm-csv"`` writes
    ``events.csv`` and also ``atm_transactions.csv``), ``labels.csv`` and ``feedback.csv``.
    The same config (seed included) always gives byte-identical files.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     s = generate(BankConfig(cards=300, days=7, fraud_rate=0.05), Path(tmp))
    ...     sorted(s.paths)[:3], sum(s.frauds.values())
    (['atm-bank-external.csv', 'atm-bank-internal.csv', 'atm.csv'], 15)
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt: must be one of {list(FORMATS)} (got {fmt!r})")
    config.validate()
    began = time.perf_counter()

    def step(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, fraction)

    step("bank", 0.0)
    bank = build_bank(config)
    km = distance_matrix(bank.atms.lat(), bank.atms.lon(), bank.atms.lat(), bank.atms.lon())
    step("transactions", 0.1)
    atm_tx = atm_transactions(bank, km)
    step("logins", 0.35)
    logins = user_logins(bank)
    online = online_transfers(bank, logins)
    incoming = incoming_transfers(bank)
    step("frauds", 0.5)
    fraud_tx, fraud_logins, made = inject_frauds(bank, atm_tx, logins)
    tx = TxBatch.concat([atm_tx, online, incoming, fraud_tx])
    all_logins = LoginBatch.concat([logins, fraud_logins])
    outcomes = standin_outcomes(bank, tx, bank.rng["transactions"])
    step("events", 0.6)
    events, pattern = events_frame(bank, tx, all_logins)
    labels = labels_frame(events, pattern)
    frames: dict[str, pl.DataFrame] = reference_frames(bank)
    if fmt == "parquet":
        frames["events.parquet"] = events
    else:
        frames["events.csv"] = events_for_csv(events)
    if fmt == "atm-csv":
        frames["atm_transactions.csv"] = atm_stream_frame(events)
    frames["labels.csv"] = labels
    frames["feedback.csv"] = feedback_frame(bank, tx, outcomes)
    step("writing", 0.8)
    paths = write_all(Path(out_dir), frames)
    # An event file of another format left by an earlier run would contradict this one.
    for stale in EVENT_FILES - set(frames):
        (Path(out_dir) / stale).unlink(missing_ok=True)
    step("done", 1.0)
    return GenerationSummary(
        cards=bank.n,
        users=bank.n,
        atms=len(bank.atms),
        transactions=len(tx),
        logins=len(all_logins),
        events=events.height,
        standin=int(tx.standin.sum()),
        frauds={p: made.get(p, 0) for p in PATTERNS},
        labelled_events=labels.height,
        seconds=time.perf_counter() - began,
        paths=paths,
    )
