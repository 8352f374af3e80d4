"""How fast a point-in-time transaction training set is built from a raw event history.

Generate the input once (not in the repository), then time the build:

    vigil generate --out /tmp/vigil-features-bench --cards 64000 --days 40   # ~1.9 M tx
    python bench/features.py /tmp/vigil-features-bench

The timed build reads events.parquet and labels.csv and computes every declared feature for
every completed transaction, each the value just before its event. The last line printed is
one JSON object of figures: ``seconds`` is the wall time, ``cpu_seconds`` the process's CPU
time (user and system, every thread) over the same span, which says how much of the wall time
was spent waiting for a core another process held (``load`` is the 1-minute load average).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

from vigil.features import FEATURES, transaction_features
from vigil.features.history import EVENT_COLUMNS
from vigil.features.io import read_event_frame, read_labels, read_reference
from vigil.ingest.inputs import DEFAULT_LABEL_DELAY, parse_duration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bank", type=Path, help="folder written by `vigil generate`")
    parser.add_argument("--label-delay", type=parse_duration, default=DEFAULT_LABEL_DELAY)
    args = parser.parse_args()
    reference = read_reference(args.bank)  # reference data is not part of the timed build
    began, cpu_began = time.perf_counter(), _cpu()
    events = read_event_frame(args.bank / "events.parquet", EVENT_COLUMNS)
    labels = read_labels(args.bank / "labels.csv")
    read = time.perf_counter() - began
    table = transaction_features(
        events,
        labels=labels,
        label_delay=args.label_delay,
        reference=reference,
    )
    seconds, cpu = time.perf_counter() - began, _cpu() - cpu_began
    windowed = sum(f.windowed for f in FEATURES)
    print(
        f"events {events.height:,}  transactions {table.height:,}  features {len(FEATURES)} "
        f"({windowed} windowed)  cpus {os.cpu_count()}"
    )
    print(
        f"read {read:.2f} s  build {seconds - read:.2f} s  total {seconds:.2f} s  "
        f"(cpu {cpu:.2f} s, load {os.getloadavg()[0]:.2f})"
    )
    figures = {
        "bench": "features",
        "events": events.height,
        "transactions": table.height,
        "features": len(FEATURES),
        "windowed_features": windowed,
        "read_seconds": round(read, 3),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "load": round(os.getloadavg()[0], 2),
        "transactions_per_second": round(table.height / seconds),
        "meets_target": table.height >= 1_750_000 and windowed >= 15 and seconds <= 10,
    }
    print(json.dumps(figures))


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
