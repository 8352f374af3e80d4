"""Benchmark: decisions from NATS JetStream by ``vigil consume`` workers, end to end.

1. builds the same bank, history and event mix as ``bench/http.py`` (its ``prepare``);
2. starts ``--workers`` ``vigil consume`` processes (more than one needs PostgreSQL and Redis:
   ``--database`` and ``--profiles``), sharing ``--partitions`` partitions;
3. publishes ``--events`` transactions to ``vigil.events.transactions[.<partition>]``, as fast
   as JetStream acknowledges them or at ``--rate`` a second, and listens on
   ``vigil.decisions.transactions`` for each decision;
4. stops the workers (SIGTERM: they drain) and checks every event has one stored decision.

Prints decisions/s (first publication to last decision), the end-to-end latency (publication
to the decision's publication) p50/p99/max, and where the machine's CPU went per decision (the
workers' event loops, their database writers, Redis, PostgreSQL, NATS, the publisher, the
rest) with the idle share, as ``bench/http.py`` does. The last line is JSON.

    python bench/stream.py                                   # one worker on SQLite
    python bench/stream.py --workers 2 --partitions 4 \\
        --database postgresql://postgres@127.0.0.1:5432/test --profiles redis://127.0.0.1:6379/7
    python bench/stream.py --rate 500                        # latency at a set load

The streams and the lease bucket are deleted first, and the database and Redis database wiped.
"""

from __future__ import annotations

import os
import sys

# bench/http.py would shadow the standard library's http package: this folder goes last.
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0]) == _HERE:
    sys.path.append(sys.path.pop(0))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import nats  # noqa: E402
from nats.js.errors import NotFoundError  # noqa: E402
from rich.console import Console  # noqa: E402

from asgi import _bench_http, bodies  # noqa: E402
from vigil.stream.leases import BUCKET  # noqa: E402
from vigil.stream.subjects import (  # noqa: E402
    DECISIONS_STREAM,
    EVENTS_STREAM,
    key_of,
    partition_of,
    subject,
)
from vigil.stream.worker import ensure_streams  # noqa: E402

console = Console(stderr=True)


async def reset(url: str) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    for stream in (EVENTS_STREAM, DECISIONS_STREAM, f"KV_{BUCKET}"):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)
    await ensure_streams(js)
    await nc.close()


def start_workers(args: argparse.Namespace, url: str, work: Path) -> list[subprocess.Popen[bytes]]:
    bench_http = _bench_http()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env |= {
        "VIGIL_DEV": "1",  # synthetic data: the development privacy keys will do
        "VIGIL_DATABASE_URL": url,
        "VIGIL_STREAM__NATS_URL": args.nats,
        "VIGIL_STREAM__PARTITIONS": str(args.partitions),
        "VIGIL_STREAM__BATCH": str(args.batch),
    }
    if args.profiles:
        env["VIGIL_PROFILES_URL"] = args.profiles
    return [
        subprocess.Popen(
            [*bench_http.VIGIL, "consume", "--metrics-port", "0", "--log-level", "warning"],
            env=env,
            stdout=(work / f"worker-{n}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for n in range(args.workers)
    ]


async def drive(
    args: argparse.Namespace, events: list[bytes], warm: int
) -> tuple[dict[str, float], dict[str, float], float, float]:
    """Publish the events, the first ``warm`` of them before the clock starts; returns when
    each measured event was published and its decision seen, and the measured span."""
    nc = await nats.connect(args.nats)
    js = nc.jetstream()
    published: dict[str, float] = {}
    decided: dict[str, float] = {}
    everything = asyncio.Event()

    async def seen(message: Any) -> None:
        event_id = json.loads(message.data)["event_id"]
        decided.setdefault(event_id, time.perf_counter())
        if len(decided) == len(events):
            everything.set()

    await nc.subscribe("vigil.decisions.transactions", cb=seen)

    async def publish(body: bytes) -> None:
        event = json.loads(body)
        partition = partition_of(key_of("transactions", event), args.partitions)
        published[event["event_id"]] = time.perf_counter()
        await js.publish(subject("transactions", partition, args.partitions), body)

    with console.status("warming up: workers taking their partitions"):
        await asyncio.gather(*(publish(b) for b in events[:warm]))
        while len(decided) < warm:
            await asyncio.sleep(0.05)
    start = time.perf_counter()
    # Publications in flight at once; at a set rate, small groups every 20 ms, so that the
    # latency is the workers' and not a burst's queue.
    window = max(1, round(args.rate / 50)) if args.rate else 256
    pause = window / args.rate if args.rate else 0.0
    with console.status(f"publishing {len(events) - warm:,} events"):
        for i in range(warm, len(events), window):
            tick = time.perf_counter()
            await asyncio.gather(*(publish(b) for b in events[i : i + window]))
            if pause:
                await asyncio.sleep(max(0.0, pause - (time.perf_counter() - tick)))
    with console.status("waiting for the last decisions"), contextlib.suppress(TimeoutError):
        await asyncio.wait_for(everything.wait(), args.timeout)
    end = max(decided.values())
    await nc.close()
    measured = {e: published[e] for e in list(published)[warm:]}
    return measured, decided, start, end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument(
        "--rate", type=float, help="offered events/s (default: as fast as possible)"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--batch", type=int, default=256, help="stream.batch of the workers")
    parser.add_argument("--cards", type=int, default=5000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--start", default="2024-01-01")
    parser.add_argument("--database", help="PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument("--profiles", help="Redis URL for profiles (cleared first)")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--timeout", type=float, default=300, help="for the last decisions")
    args = parser.parse_args()
    if args.partitions > 1 and not args.profiles:
        sys.exit("more than one partition needs --profiles (Redis)")

    bench_http = _bench_http()
    work = Path(tempfile.mkdtemp(prefix="vigil-stream-bench-"))
    with console.status("building the bank and replaying its history"):
        url, _, workload = bench_http.prepare(args, work)
    warm = 200
    events = bodies(bench_http, workload, args.events + warm, 3600 / args.cards)
    asyncio.run(reset(args.nats))
    before = bench_http._decisions(url)[0]  # the history's
    workers = start_workers(args, url, work)
    try:
        cpu_before = bench_http._cpu_by_role(*(w.pid for w in workers))
        idle_before = bench_http._idle_seconds()
        load_before = resource.getrusage(resource.RUSAGE_SELF)
        published, decided, start, end = asyncio.run(drive(args, events, warm))
        cpu_after = bench_http._cpu_by_role(*(w.pid for w in workers))
        idle = bench_http._idle_seconds() - idle_before
        load_after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=120)
    # The warm-up is inside the CPU readings: counted, it is 1 % of the default run.
    cpu_after["load"] += sum(
        getattr(load_after, f) - getattr(load_before, f) for f in ("ru_utime", "ru_stime")
    )
    latencies = sorted((decided[e] - t) * 1000 for e, t in published.items() if e in decided)
    n = len(latencies)
    stored = bench_http._decisions(url)[0] - before
    seconds = end - start
    per_decision = {
        role: round((cpu_after[role] - cpu_before[role]) / max(n, 1) * 1e6, 1)
        for role in bench_http.ROLES
    }
    result = {
        "workers": args.workers,
        "partitions": args.partitions,
        "database": url.split(":", 1)[0] + ("+redis" if args.profiles else ""),
        "events": len(published),
        "decided": n,
        "stored": stored,
        "lost": len(events) - stored,
        "seconds": round(seconds, 1),
        "decisions_per_second": round(n / seconds),
        "latency_p50_ms": round(statistics.median(latencies), 1),
        "latency_p99_ms": round(latencies[int(n * 0.99) - 1], 1),
        "latency_max_ms": round(latencies[-1], 1),
        "cpu_us_per_decision": per_decision,
        "idle_share": round(idle / (seconds * (os.cpu_count() or 1)), 3),
    }
    console.print(
        f"{args.workers} worker(s), {args.partitions} partition(s), {result['database']}: "
        f"{result['decisions_per_second']:,} decisions/s, end to end p50 "
        f"{result['latency_p50_ms']} ms, p99 {result['latency_p99_ms']} ms, max "
        f"{result['latency_max_ms']} ms; {n:,} of {len(published):,} decided, "
        f"{result['lost']} not stored"
    )
    console.print(
        "CPU per decision: "
        + ", ".join(f"{role} {us:,.0f} µs" for role, us in per_decision.items())
        + f"; total {sum(per_decision.values()):,.0f} µs, machine idle {result['idle_share']:.0%}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
