"""Benchmark: where a server's CPU per decision goes, without the network.

``bench/http.py`` measures the whole server from outside; this one splits its event loop's
work. It builds the same bank, history and workload (each card at one of its three nearest
ATMs about once an hour), starts the app in this process and decides the same stream of
single events two ways, in alternating rounds:

- ``engine``: :meth:`vigil.engine.Engine.process` on events validated beforehand;
- ``app``: the whole ASGI app, front door to answer (key, body, parsing, the engine, the JSON
  answer, metrics), called directly with no socket and no HTTP server.

It prints the process CPU per decision of each (every thread of the process: the hand-off to
the writer process counts) and their difference, what the app adds to the engine. What
``bench/http.py`` measures for the event loop beyond ``app`` is the HTTP server (uvicorn,
httptools) and the kernel's socket work. The last line is JSON.

    python bench/asgi.py                 # 5,000 cards, 3 rounds of 10,000 events each way
    python bench/asgi.py --events 20000 --rounds 5
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path, and bench/http.py would shadow
# the standard library's http package.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import asyncio
import importlib.util
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil.api.app import create_app
from vigil.config import Settings
from vigil.domain import Transaction


def _bench_http() -> Any:
    """bench/http.py, which builds the bank (its name shadows the standard http package, so it
    is loaded from its file)."""
    path = Path(__file__).with_name("http.py")
    spec = importlib.util.spec_from_file_location("vigil_bench_http", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def bodies(bench_http: Any, workload: Any, n: int, spacing: float, seed: int = 7) -> list[bytes]:
    """``n`` single transactions as bench/http.py's load script makes them, in time order."""
    rnd = random.Random(seed)
    low, high = bench_http.AMOUNT_HUNDREDS
    base = workload.start.timestamp()
    out = []
    for i in range(n):
        c = rnd.randrange(len(workload.cards))
        kind = rnd.choice(bench_http.TYPES)
        event = {
            "event_id": f"asgi-{i}",
            "transaction_id": f"asgi-{i}",
            "timestamp": datetime.fromtimestamp(base + i * spacing, UTC).isoformat(),
            "type": kind,
            "card_id": workload.cards[c],
            "user_id": workload.users[c],
            "terminal_id": rnd.choice(workload.terminals[c]),
        }
        if kind != "balance_inquiry":
            event["amount"] = f"{rnd.randint(low, high) * 100}.00"
        out.append(json.dumps(event).encode())
    return out


async def drive(app: Any, key: str, stream: list[bytes], rounds: int) -> dict[str, list[float]]:
    scope_base = {
        "type": "http",
        "method": "POST",
        "path": "/v1/transactions",
        "raw_path": b"/v1/transactions",
        "query_string": b"",
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "root_path": "",
    }
    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def call(body: bytes) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"x-api-key", key.encode()),
            (b"content-length", str(len(body)).encode()),
        ]

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        await app({**scope_base, "headers": headers}, receive, send)

    engine = app.state.service.engine
    warm, rest = stream[: len(stream) // 10], stream[len(stream) // 10 :]
    for body in warm:
        await call(body)
    chunk = len(rest) // (2 * rounds)
    cpu: dict[str, list[float]] = {"engine": [], "app": []}
    for r in range(2 * rounds):
        part = rest[r * chunk : (r + 1) * chunk]
        if r % 2:
            events = [Transaction.model_validate_json(b) for b in part]
            started = time.process_time()
            for event in events:
                engine.process(event)
            cpu["engine"].append((time.process_time() - started) / len(part) * 1e6)
        else:
            started = time.process_time()
            for body in part:
                await call(body)
            cpu["app"].append((time.process_time() - started) / len(part) * 1e6)
    if any(status != 200 for status in statuses):
        sys.exit(f"the app answered {sorted(set(statuses))}, not only 200")
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=5000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--start", default="2024-01-01")
    parser.add_argument("--events", type=int, default=10_000, help="events per round and way")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    args.database = args.profiles = None

    work = Path(tempfile.mkdtemp(prefix="vigil-asgi-bench-"))
    bench_http = _bench_http()
    url, key, workload = bench_http.prepare(args, work)
    n = args.events * 2 * args.rounds
    stream = bodies(bench_http, workload, n + n // 9, 3600 / args.cards)
    os.environ["VIGIL_DATABASE_URL"] = url
    app = create_app(Settings(), tune_gc=True)

    async def run() -> dict[str, list[float]]:
        async with app.router.lifespan_context(app):
            return await drive(app, key, stream, args.rounds)

    cpu = asyncio.run(run())
    engine, whole = statistics.median(cpu["engine"]), statistics.median(cpu["app"])
    print(
        f"CPU per decision (median of {args.rounds} rounds of {args.events:,} events): "
        f"engine {engine:.0f} µs, app {whole:.0f} µs, the app's layers {whole - engine:.0f} µs",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "engine_us": round(engine, 1),
                "app_us": round(whole, 1),
                "app_layers_us": round(whole - engine, 1),
                "rounds": {k: [round(v, 1) for v in vs] for k, vs in cpu.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
