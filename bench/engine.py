"""Benchmark: the whole path of one event on the embedded default.

Generates a synthetic bank, then feeds its events (as raw dicts, so validation is timed) one
by one through Engine.process — validate, enrich, read profiles, detect, decide, record
(batched SQLite writes), update — and prints events/s, per-event p50/p99/p99.9 latency in µs,
peak memory and bytes per profile. ``--profile`` adds where the time goes (cProfile).

    python bench/engine.py --cards 3000 --days 30
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

from vigil.config import Settings
from vigil.engine import Engine
from vigil.ingest import load_bank_folder
from vigil.profiles import MemoryProfileStore
from vigil.recorder import Recorder
from vigil.simulate import BankConfig, generate
from vigil.storage import Store


def _rows(path: Path) -> list[dict]:
    frame = pl.read_parquet(path)
    rows = []
    for row in frame.iter_rows(named=True):
        rows.append({k: v for k, v in row.items() if v is not None})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=3500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--min-events", type=int, default=200_000)
    parser.add_argument("--profile", action="store_true", help="print where the time goes")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    generate(BankConfig(cards=args.cards, days=args.days), work / "bank")
    rows = _rows(work / "bank" / "events.parquet")
    if len(rows) < args.min_events:
        sys.exit(f"only {len(rows):,} events; raise --cards or --days")

    store = Store(f"sqlite:///{work / 'bench.db'}")
    store.init_schema()
    load_bank_folder(store, work / "bank")
    settings = Settings(database_url=store.url)
    profiles = MemoryProfileStore(settings.profiles)
    engine = Engine(store.load_reference(), profiles, Recorder(store), settings=settings)

    latencies = np.empty(len(rows), dtype=np.int64)
    profiler = cProfile.Profile() if args.profile else None
    clock = time.perf_counter_ns
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    process = engine.process
    for i, row in enumerate(rows):
        t0 = clock()
        process(row)
        latencies[i] = clock() - t0
    engine.recorder.flush()
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started

    sizes = [len(p.to_bytes()) for _, _, p in profiles.items()]
    lat_us = latencies / 1000
    figures = {
        "events": len(rows),
        "seconds": round(seconds, 2),
        "events_per_second": round(len(rows) / seconds),
        "latency_p50_us": round(float(np.percentile(lat_us, 50)), 1),
        "latency_p99_us": round(float(np.percentile(lat_us, 99)), 1),
        "latency_p999_us": round(float(np.percentile(lat_us, 99.9)), 1),
        "peak_memory_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "profiles": len(sizes),
        "bytes_per_profile_mean": round(float(np.mean(sizes))),
        "bytes_per_profile_p99": round(float(np.percentile(sizes, 99))),
    }
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        print(out.getvalue())
    for key, value in figures.items():
        print(f"{key:>24}: {value:,}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
