"""How fast `vigil generate` builds a bank of over a million transactions.

Run: python bench/generate.py [--cards N] [--days D] [--fmt parquet|csv|atm-csv]
The last line printed is one JSON object of figures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from vigil.simulate import FORMATS, BankConfig, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # ~0.66 ATM operations per card and day (Wisabi) plus online transfers: about 1.1 M.
    parser.add_argument("--cards", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--fmt", choices=FORMATS, default="parquet")
    args = parser.parse_args()
    config = BankConfig(seed=args.seed, cards=args.cards, days=args.days)
    stages: dict[str, float] = {}
    began = time.perf_counter()

    def progress(stage: str, _fraction: float) -> None:
        stages[stage] = round(time.perf_counter() - began, 3)

    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        summary = generate(config, Path(tmp), fmt=args.fmt, progress=progress)
        size = sum(p.stat().st_size for p in summary.paths.values())
    seconds = summary.seconds
    rate = summary.transactions / seconds
    print(f"cards {summary.cards:,}  days {args.days}  cpus {os.cpu_count()}  format {args.fmt}")
    print(
        f"transactions {summary.transactions:,}  logins {summary.logins:,}  "
        f"events {summary.events:,}  labelled {summary.labelled_events:,}"
    )
    print(f"seconds {seconds:.2f}  transactions/s {rate:,.0f}  output {size / 1e6:.1f} MB")
    print("stage starts (s): " + ", ".join(f"{k} {v}" for k, v in stages.items()))
    figures = {
        "bench": "generate",
        "cards": summary.cards,
        "days": args.days,
        "format": args.fmt,
        "transactions": summary.transactions,
        "logins": summary.logins,
        "events": summary.events,
        "labelled_events": summary.labelled_events,
        "seconds": round(seconds, 3),
        "transactions_per_second": round(rate),
        "output_mb": round(size / 1e6, 1),
        "meets_target": summary.transactions >= 1_000_000 and seconds <= 60,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
