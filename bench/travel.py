"""Impossible travel on an ATM stream in the seed layout: how many alerts blame a card's return.

A bank is generated in the seed layout (``vigil generate --format atm-csv``: the bank folder
and ``atm_transactions.csv``) or read from ``--bank FOLDER``; its stream is decided by the
engine (in-memory, the default detectors and policy), in time order. Each transaction whose
decisions carry ``impossible_travel`` is a travel alert; it is a *return leg* when it is not
fraud itself and the card's previous transaction was a labelled clone (``card_cloning``):
the genuine card, back home, compared with the clone's place. Printed: transactions, clones,
travel alerts, return legs among them, clones alerted, and the return legs that name the clone
as evidence instead. The last line is JSON.

The generator leaves a card owner's next operation reachable from the clone's place (at
500 km/h): a real clone does not wait for that. ``--return-within MINUTES`` moves the owner's
next transaction after each clone (both its rows, its duration kept) to a time drawn
uniformly in the minutes after the clone ended, when that is earlier than it was: the genuine
returns the issue measured on another generator's stream.

    python bench/travel.py        # generate --format atm-csv --cards 900 --days 30, clones only
    python bench/travel.py --return-within 60
    python bench/travel.py --bank atm-bank/
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

from vigil.engine import Engine
from vigil.features import read_reference
from vigil.ingest.atm_stream import read_atm_transactions
from vigil.simulate.frauds import PATTERNS

TRAVEL = "impossible_travel"


def generate(folder: Path, cards: int, days: int, fraud_rate: float, seed: int) -> None:
    subprocess.run(
        [
            str(Path(sys.executable).with_name("vigil")),
            "generate",
            "--format",
            "atm-csv",
            "--out",
            str(folder),
            "--cards",
            str(cards),
            "--days",
            str(days),
            "--seed",
            str(seed),
            "--fraud-rate",
            str(fraud_rate),
            # clones only: every other fraud pattern off
            *(f"--pattern={p}={int(p == 'card_cloning')}" for p in PATTERNS),
        ],
        check=True,
        capture_output=True,
    )


def hasten_returns(folder: Path, minutes: float, seed: int) -> int:
    """Move each clone's card's next transaction to within ``minutes`` of the clone's end (when
    earlier than it was); returns how many moved. Rewrites ``atm_transactions.csv``."""
    path = folder / "atm_transactions.csv"
    rows = pl.read_csv(path, infer_schema=False)
    when = rows.with_columns(
        pl.col("transaction_start").str.to_datetime(time_zone="UTC").alias("start"),
        pl.col("transaction_end").str.to_datetime(time_zone="UTC").alias("end"),
    )
    spans = (
        when.group_by("transaction_id", maintain_order=True)
        .agg(pl.col("number_id").first(), pl.col("start").min(), pl.col("end").max())
        .sort("number_id", "start", "transaction_id")
        .with_columns(
            pl.col("transaction_id").shift(-1).over("number_id").alias("next_id"),
            pl.col("start").shift(-1).over("number_id").alias("next_start"),
        )
    )
    labels = pl.read_csv(folder / "labels.csv")
    clones = set(labels.filter(pl.col("pattern") == "card_cloning")["transaction_id"])
    rng = random.Random(seed)
    shift: dict[str, timedelta] = {}
    for tx, end, following, start in spans.select(
        "transaction_id", "end", "next_id", "next_start"
    ).iter_rows():
        if tx not in clones or following is None or following in clones:
            continue
        moved = end + timedelta(minutes=rng.uniform(1, minutes))
        if moved < start:
            shift[following] = start - moved
    earlier = pl.col("transaction_id").replace_strict(
        {tx: -delta.total_seconds() for tx, delta in shift.items()}, default=0.0
    )
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    rows = when.with_columns(
        (pl.col(c) + pl.duration(seconds=earlier)).dt.strftime(stamp).alias(f"transaction_{c}")
        for c in ("start", "end")
    ).drop("start", "end")
    rows.write_csv(path)
    return len(shift)


def measure(folder: Path) -> dict[str, object]:
    events = read_atm_transactions(folder / "atm_transactions.csv").events
    labels = pl.read_csv(folder / "labels.csv")
    pattern = dict(zip(labels["transaction_id"], labels["pattern"], strict=True))
    engine = Engine.in_memory(read_reference(folder))
    started = time.perf_counter()
    # per transaction: its card, its reasons' codes, the evidence named, in the order decided
    order: list[str] = []
    card_of: dict[str, str] = {}
    codes: dict[str, set[str]] = {}
    evidence: dict[str, set[str]] = {}
    # event-time order, ties in file order: as vigil replay decides a file
    for event in sorted(events, key=lambda e: e.timestamp):
        decision = engine.process(event)
        tx = event.transaction_id
        if tx not in card_of:
            order.append(tx)
            card_of[tx] = event.card_id
        for reason in decision.reasons:
            codes.setdefault(tx, set()).add(reason.code)
            evidence.setdefault(tx, set()).update(reason.evidence)
    seconds = time.perf_counter() - started
    previous: dict[str, str] = {}
    alerts = returns = named = 0
    for tx in order:
        card = card_of[tx]
        before = previous.get(card)
        previous[card] = tx
        genuine_after_clone = (
            tx not in pattern and before is not None and pattern.get(before) == "card_cloning"
        )
        if TRAVEL in codes.get(tx, ()):
            alerts += 1
            returns += genuine_after_clone
        elif genuine_after_clone and before in evidence.get(tx, ()):
            named += 1
    clones = [tx for tx, p in pattern.items() if p == "card_cloning"]
    return {
        "transactions": len(order),
        "clones": len(clones),
        "travel_alerts": alerts,
        "return_legs_alerted": returns,
        "clones_alerted_for_travel": sum(TRAVEL in codes.get(tx, ()) for tx in clones),
        "returns_naming_the_clone": named,
        "decide_seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bank", type=Path, help="an atm-csv bank folder (else generated)")
    parser.add_argument("--cards", type=int, default=900)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--fraud-rate", type=float, default=0.26)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--return-within",
        type=float,
        metavar="MINUTES",
        help="move each clone's card's next transaction to within MINUTES of the clone",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.bank
        if folder is None:
            folder = Path(tmp) / "bank"
            generate(folder, args.cards, args.days, args.fraud_rate, args.seed)
        moved = None
        if args.return_within is not None:
            copy = Path(tmp) / "moved"
            shutil.copytree(folder, copy)
            folder = copy
            moved = hasten_returns(folder, args.return_within, args.seed)
        figures = {"returns_moved": moved} | measure(folder)
    for name, value in figures.items():
        print(f"{name:>28}: {value if value is None else format(value, ',')}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
