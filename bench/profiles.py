"""Benchmark: what a shared profile costs as its entity gets busier.

A profile in Redis is read and written whole on every event, so its size and the time to
decode and encode it are paid per event. This feeds one terminal 90 days of withdrawals and
payments at several rates and prints, per rate, the saved size, the time of one
``from_bytes`` + ``to_bytes`` round trip and the time to record one more event on it (medians
of many).

    python bench/profiles.py --rates 10 1000 10000
"""

from __future__ import annotations

import argparse
import statistics
import time

from rich.console import Console
from rich.table import Table

from vigil.profiles import Profile


def terminal(per_day: int, days: int) -> Profile:
    p = Profile()
    step = 86400.0 / per_day
    for n in range(per_day * days):
        t = n * step
        p.advance(t)
        p.record_transaction(
            t,
            t + 30,
            n % 2,
            10_000 + n % 997,
            place="ATM-1",
            latitude=6.4,
            longitude=3.3,
            attributes=(("card", f"c-{n % 5000}"),),
        )
        # as the profile update counts a terminal's completed transactions (terminal risk),
        # with one in a hundred labelled fraud
        p.fraud_tiles().add(t + 30)
        if n % 100 == 0:
            p.fraud.label(t + 30)  # type: ignore[union-attr]
    return p


def round_trip_us(data: bytes, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        Profile.from_bytes(data).to_bytes()
        times.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(times)


def update_us(data: bytes, repeat: int) -> float:
    """Recording the next event (a second later) on a copy of the profile."""
    times = []
    last = Profile.from_bytes(data).last_end or 0.0
    for _ in range(repeat):
        p = Profile.from_bytes(data)
        start = time.perf_counter_ns()
        p.advance(last + 1)
        p.record_transaction(
            last + 1,
            last + 31,
            0,
            12_345,
            place="ATM-1",
            latitude=6.4,
            longitude=3.3,
            attributes=(("card", "c-1"),),
        )
        p.fraud_tiles().add(last + 31)
        times.append((time.perf_counter_ns() - start) / 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--rates", type=int, nargs="+", default=[10, 100, 1000, 5000])
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    table = Table(title=f"A terminal's profile after {args.days} days")
    for column in (
        "events a day",
        "events counted",
        "bytes",
        "decode + encode (µs)",
        "record (µs)",
    ):
        table.add_column(column, justify="right")
    console = Console()
    with console.status("feeding terminals"):
        for rate in args.rates:
            data = terminal(rate, args.days).to_bytes()
            p = Profile.from_bytes(data)
            table.add_row(
                f"{rate:,}",
                f"{p.windows.count(4, 0) + p.windows.count(4, 1):,}",
                f"{len(data):,}",
                f"{round_trip_us(data, args.repeat):,.0f}",
                f"{update_us(data, args.repeat):,.1f}",
            )
    console.print(table)


if __name__ == "__main__":
    main()
