"""Benchmark: decisions over HTTP on loopback, from a load generator in another process.

1. generates a small bank (``vigil generate``), imports its reference data and replays its
   history into a fresh database, so profiles and detectors have something to work with;
2. starts ``vigil serve`` in its own process on 127.0.0.1 with an ``ingest`` key;
3. drives it with ``wrk`` (a C load generator: a Python client would be the bottleneck) and a
   generated Lua script that sends withdrawals, deposits and balance inquiries of the bank's
   cards, each at one of the three ATMs nearest its holder's home, with a unique event id and
   a later timestamp (``--spacing`` event-time seconds apart: by default each card is used
   about once an hour, a busy but lawful customer; a tiny spacing over few cards measures
   the worst case instead, every card a velocity burst); single events, then batches;
4. stops the server (SIGINT: it commits every decision and checkpoints the profiles) and counts
   the decisions in the database: every decision answered must be there (``lost`` is those
   that are not).

Prints, per mode, decisions/s, p50/p99/p99.9 request latency, errors, lost decisions and the
server's CPU time per decision, then where the whole machine's CPU went per decision (the
server's event loops, its database writers, Redis, PostgreSQL, NATS, the load (wrk), the
rest) and how much of it sat idle: the sum against the cores says what the machine could do
at best, and a busy event loop beside idle cores says the loop is what holds the rate. The
last line is JSON. By default ``wrk`` is closed-loop (each connection sends its next request
when the last is answered), so the throughput is what the server sustains at that concurrency
and the latency is what a client sees at that load. With ``--rate`` the load is open: requests
arrive at random at that rate whatever the answers take (as payments do), which is what a
latency target at a given rate means.

    python bench/http.py --seconds 60                    # single events, then batches of 50
    python bench/http.py --modes batch --seconds 20 --batch 100
    python bench/http.py --modes single --rate 2000 --connections 128  # latency at a set load
    python bench/http.py --database postgresql://postgres@127.0.0.1:5432/test \
        --profiles redis://127.0.0.1:6379/7      # production backends (both are wiped first)

``wrk`` is a Debian package: ``apt-get install -y wrk``.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path and its name (http) would shadow
# the standard library's http package, which urllib, httpx and starlette import.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import json
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Table, func, select

from vigil.api.keys import KeyRing
from vigil.domain import Card
from vigil.geo import haversine_km
from vigil.storage import Store
from vigil.storage.reference import ReferenceData

LUA = r"""
local cards = {%(cards)s}
local users = {%(users)s}
local terminals = {%(terminals)s}
local spacing = %(spacing).6f
local batch = %(batch)d
local base = %(base)d
local run = "%(run)s"
local key = "%(key)s"
local types = {%(types)s}
local interval = %(interval).6f
local counter = 0
local threads = {}
tid = 0

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local function event()
  counter = counter + 1
  local c = math.random(#cards)
  local t = base + counter * spacing + tid * 0.001
  local kind = types[math.random(#types)]
  local amount = ""
  if kind ~= "balance_inquiry" then
    amount = string.format(',"amount":"%%d.00"', math.random(%(low)d, %(high)d) * 100)
  end
  return string.format(
    '{"event_id":"%%s-%%d-%%d","transaction_id":"%%s-%%d-%%d","timestamp":"%%s.%%03dZ",' ..
    '"type":"%%s"%%s,"card_id":"%%s","user_id":"%%s","terminal_id":"%%s"}',
    run, tid, counter, run, tid, counter,
    os.date("!%%Y-%%m-%%dT%%H:%%M:%%S", math.floor(t)), math.floor((t %% 1) * 1000),
    kind, amount, cards[c], users[c], terminals[c][math.random(#terminals[c])])
end

function request()
  local body
  if batch == 1 then
    body = event()
  else
    local items = {}
    for i = 1, batch do items[i] = event() end
    body = "[" .. table.concat(items, ",") .. "]"
  end
  return wrk.format("POST", "/v1/transactions",
    {["Content-Type"] = "application/json", ["X-API-Key"] = key}, body)
end

-- An open load: requests arrive as a Poisson process of mean gap ``interval`` ms, whatever the
-- answers take, and each goes on the next free connection at its arrival time. One that finds
-- every connection busy goes when one frees, late; how late is counted, since the latency wrk
-- measures starts when a request is sent (a closed loop, or a pause after each answer, would
-- offer less the slower the server, and hide that).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } vigil_timespec;
int clock_gettime(int clock, vigil_timespec *now);
]]
local clock = ffi.new("vigil_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end
local arrival = nil
late = 0       -- requests sent over 1 ms after their arrival
late_ms = 0    -- the most late one, ms

function delay()
  if interval == 0 then return 0 end
  local now = now_ms()
  arrival = (arrival or now) - math.log(1 - math.random()) * interval
  local wait = arrival - now
  if wait < -1 then
    late = late + 1
    if -wait > late_ms then late_ms = -wait end
  end
  if wait <= 0 then return 0 end
  return math.floor(wait + 0.5)
end

function done(summary, latency, requests)
  local e = summary.errors
  local n_late, most_late = 0, 0
  for _, t in ipairs(threads) do
    n_late = n_late + t:get("late")
    most_late = math.max(most_late, t:get("late_ms"))
  end
  io.write(string.format(
    'RESULT {"requests":%%d,"duration_us":%%d,"connect_errors":%%d,"read_errors":%%d,' ..
    '"write_errors":%%d,"status_errors":%%d,"timeouts":%%d,"p50_us":%%d,"p90_us":%%d,' ..
    '"p99_us":%%d,"p999_us":%%d,"max_us":%%d,"mean_us":%%.1f,"late":%%d,"late_max_ms":%%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean, n_late, most_late))
end
"""


# The event mix the load sends (bench/asgi.py sends the same): the types drawn from, and
# amounts of LOW to HIGH hundreds.
TYPES = ["withdrawal"] * 6 + ["deposit", "balance_inquiry"]
AMOUNT_HUNDREDS = (10, 400)

# The `vigil` command of this interpreter (not `-m vigil.cli`: that would load cli.py twice).
VIGIL = [sys.executable, "-c", "from vigil.cli import app; app()"]


def _env(profiles: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["VIGIL_DEV"] = "1"  # a synthetic bank: the development privacy keys will do
    if profiles:
        env["VIGIL_PROFILES_URL"] = profiles
    return env


def _run(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, check=True, capture_output=True, text=True, env=env)
    return done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_by_role(*servers: int) -> dict[str, float]:
    """CPU seconds used so far by each part of the machine's work: the servers' event loops
    (each server process, or its workers), their database writers, Redis, PostgreSQL, NATS and
    everything else, read from /proc (a process that has ended since the last reading drops
    out of its role, so readings are taken while all of them run). The load generator is
    counted by the caller."""
    tick = os.sysconf("SC_CLK_TCK")
    served = set().union(*(_descendants(server) for server in servers))
    roles: dict[str, float] = dict.fromkeys(ROLES, 0.0)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, rest = stat.read_text().rpartition(")")
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:  # the process ended meanwhile
            continue
        fields = rest.split()
        pid, comm = int(stat.parent.name), head.partition("(")[2]
        roles[_role(pid, comm, cmdline, served)] += (int(fields[11]) + int(fields[12])) / tick
    return roles


ROLES = ("event loop", "writer", "redis", "postgresql", "nats", "load", "other")


def _role(pid: int, comm: str, cmdline: bytes, served: set[int]) -> str:
    if pid in served:
        if b"multiprocessing.forkserver" in cmdline:  # the fork server and the writers
            return "writer"
        return "other" if b"resource_tracker" in cmdline else "event loop"
    if comm.startswith("redis-server"):
        return "redis"
    if comm.startswith("postgres"):
        return "postgresql"
    if comm.startswith("nats-server"):
        return "nats"
    return "other"  # the load generator is counted apart


def _descendants(pid: int) -> set[int]:
    found = {pid}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        for child in _children(task):
            found |= _descendants(child)
    return found


def _connections_by_process(server: int, port: int) -> list[int]:
    """How many established connections to ``port`` each of the server's event loops holds."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    counts = []
    for pid in sorted(_descendants(server)):
        try:
            held = sum(os.readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir())
        except OSError:  # ended meanwhile, or not ours to read
            continue
        if held:
            counts.append(held)
    return counts


def _idle_seconds() -> float:
    """Idle CPU time of the whole machine (all cores) since boot."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / os.sysconf("SC_CLK_TCK")  # idle + iowait


def _children(task: Path) -> list[int]:
    try:
        return [int(c) for c in (task / "children").read_text().split()]
    except FileNotFoundError:  # the thread ended meanwhile
        return []


def _decisions(url: str) -> tuple[int, int]:
    """Decisions stored, and the commits that stored them (each seals one batch)."""
    store = Store(url)
    try:
        with store.engine.connect() as conn:

            def count(table: Table) -> int:
                return conn.execute(select(func.count()).select_from(table)).scalar_one()

            return count(store.tables.decisions), count(store.tables.decision_links)
    finally:
        store.close()


def _lua_list(values: list[str]) -> str:
    return ",".join(json.dumps(v) for v in values)


def _near(card: Card, reference: ReferenceData, k: int = 3) -> list[str]:
    """The card's k nearest ATMs to home: where its holder would really withdraw."""
    terminals = sorted(reference.terminals.values(), key=lambda t: t.terminal_id)
    if card.latitude is None or card.longitude is None:
        return [t.terminal_id for t in terminals[:k]]
    return [
        t.terminal_id
        for t in sorted(
            terminals,
            key=lambda t: haversine_km(card.latitude, card.longitude, t.latitude, t.longitude),
        )[:k]
    ]


@dataclass(frozen=True)
class Workload:
    """What the load sends: each card with its holder and its three nearest ATMs, from ``start``."""

    cards: list[str]
    users: list[str]
    terminals: list[list[str]]
    start: datetime


def prepare(args: argparse.Namespace, work: Path) -> tuple[str, str, Workload]:
    """A fresh database with the bank's reference data and history; an ingest key."""
    url = args.database or f"sqlite:///{work / 'vigil.db'}"
    if args.database:
        Store(url).drop_all()  # fresh: every run starts from the same state
    if args.profiles:
        from vigil.profiles.redis_store import RedisProfileStore

        RedisProfileStore.from_url(args.profiles).clear()
    bank = work / "bank"
    vigil = VIGIL
    _run(
        *vigil,
        "generate",
        "--out",
        str(bank),
        "--cards",
        str(args.cards),
        "--days",
        str(args.days),
        "--start",
        args.start,
    )
    replay = (*vigil, "replay", str(bank / "events.parquet"), "--bank", str(bank), "-d", url)
    _run(*replay, env=_env(args.profiles))
    store = Store(url)
    store.init_schema()
    key = KeyRing(store).create("bench", ["ingest"])[0]
    reference = store.load_reference()
    store.close()
    cards = [c for c in reference.cards.values() if c.user_id is not None]
    workload = Workload(
        [c.card_id for c in cards],
        [c.user_id or "" for c in cards],
        [_near(card, reference) for card in cards],
        datetime.fromisoformat(args.start) + timedelta(days=args.days + 1),
    )
    return url, key, workload


def serve(
    url: str, port: int, work: Path, profiles: str | None, workers: int
) -> subprocess.Popen[bytes]:
    env = {**_env(profiles), "VIGIL_DATABASE_URL": url}
    log = (work / "serve.log").open("wb")
    server = subprocess.Popen(
        [*VIGIL, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
        if server.poll() is not None:
            break
    server.kill()
    sys.exit(f"vigil serve did not start; see {work / 'serve.log'}")


def warm_up(port: int, key: str, workers: int) -> None:
    """A few requests on new connections, so that each worker checks the key's argon2 hash
    (a quarter of a second, once per process) before the measurement."""
    for i in range(8 * workers):
        body = json.dumps(
            {
                "event_id": f"warm-up-{port}-{i}",
                "transaction_id": f"warm-up-{port}-{i}",
                "timestamp": "2000-01-01T00:00:00Z",
                "type": "balance_inquiry",
                "card_id": "warm-up",
            }
        ).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/transactions",
            data=body,
            headers={"Content-Type": "application/json", "X-API-Key": key},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200


def stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGINT)  # graceful: commit decisions, checkpoint profiles
    try:
        server.wait(timeout=120)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def run_mode(
    args: argparse.Namespace, work: Path, mode: str, batch: int, run_id: str, epoch: int
) -> dict:
    url, key, workload = prepare(args, work / mode)
    script = work / f"{mode}.lua"
    script.write_text(
        LUA
        % {
            "cards": _lua_list(workload.cards),
            "users": _lua_list(workload.users),
            "terminals": ",".join("{" + _lua_list(near) + "}" for near in workload.terminals),
            "types": _lua_list(TYPES),
            "low": AMOUNT_HUNDREDS[0],
            "high": AMOUNT_HUNDREDS[1],
            "batch": batch,
            # The mean gap between two arrivals on one wrk thread, ms: ``rate`` decisions/s.
            "interval": 1000 * args.threads * batch / args.rate if args.rate else 0,
            "spacing": args.spacing if args.spacing is not None else 3600 / args.cards,
            "base": int(workload.start.timestamp()) + epoch,
            "run": run_id,
            "key": key,
        }
    )
    before = _decisions(url)
    port = _free_port()
    server = serve(url, port, work / mode, args.profiles, args.workers)
    warm_up(port, key, args.workers)  # argon2 checks happen here, not in the measurement
    cpu_before = _cpu_by_role(server.pid)
    idle_before = _idle_seconds()
    # wrk's CPU is counted once it has ended: the children's usage this process collects.
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        load = subprocess.Popen(
            [
                "wrk",
                f"-t{args.threads}",
                f"-c{args.connections}",
                f"-d{args.seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(min(5.0, args.seconds / 2))  # every connection open by now
        split = _connections_by_process(server.pid, port)
        out = load.communicate()[0]
        if load.returncode:
            sys.exit(f"wrk failed ({load.returncode})")
        cpu_after = _cpu_by_role(server.pid)
        idle = _idle_seconds() - idle_before
        wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu_after["load"] += sum(
            getattr(wrk_after, f) - getattr(wrk_before, f) for f in ("ru_utime", "ru_stime")
        )
    finally:
        stop(server)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    wrk = json.loads(line.removeprefix("RESULT "))
    errors = sum(
        wrk[k]
        for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    answered = (wrk["requests"] - wrk["status_errors"]) * batch
    after = _decisions(url)
    stored = after[0] - before[0] - 1  # the warm-up decision
    commits = after[1] - before[1] - 1
    seconds = wrk["duration_us"] / 1e6
    per_decision = {
        role: round((cpu_after[role] - cpu_before[role]) / max(answered, 1) * 1e6, 1)
        for role in ROLES
    }
    return {
        "mode": mode,
        "workers": args.workers,
        "database": url.split(":", 1)[0] + ("+redis" if args.profiles else ""),
        "batch": batch,
        "connections": args.connections,
        "seconds": round(seconds, 1),
        "requests": wrk["requests"],
        "decisions_answered": answered,
        "decisions_per_second": round(answered / seconds),
        "requests_per_second": round(wrk["requests"] / seconds),
        "latency_p50_ms": wrk["p50_us"] / 1000,
        "latency_p99_ms": wrk["p99_us"] / 1000,
        "latency_p999_ms": wrk["p999_us"] / 1000,
        "latency_max_ms": wrk["max_us"] / 1000,
        # With --rate: the share of requests sent over 1 ms after their arrival (every
        # connection was busy), and the latest; their wait is not in the latencies above.
        "late_share": round(wrk["late"] / max(wrk["requests"], 1), 4),
        "late_max_ms": wrk["late_max_ms"],
        "errors": errors,
        "decisions_stored": stored,
        # Requests in flight when wrk stops are decided but not counted as answered.
        "lost_decisions": max(0, answered - stored),
        # Each commit's fixed cost is shared by this many decisions.
        "decisions_per_commit": round(stored / max(commits, 1), 1),
        "server_cpu_us_per_decision": round(per_decision["event loop"] + per_decision["writer"], 1),
        # Where the machine's CPU went, per decision answered, and how much of it was idle.
        "cpu_us_per_decision": per_decision,
        "idle_share": round(idle / (seconds * (os.cpu_count() or 1)), 3),
        # wrk's connections per server process: the kernel hands each to whichever process
        # accepts first, and one that gets them all leaves the other idle.
        "connections_per_process": split,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--modes", default="single,batch", help="single, batch or both")
    parser.add_argument("--batch", type=int, default=50, help="events per batch request")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--rate",
        type=float,
        help="offered decisions/s, arriving at random (Poisson) whatever the answers take, "
        "each on a free connection (give enough; those sent late are counted) instead of as "
        "fast as the server answers",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="vigil serve processes (more need --profiles)"
    )
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--cards", type=int, default=5000)
    parser.add_argument(
        "--spacing",
        type=float,
        help="event-time seconds between requests (default: 3600 / cards, so each card is "
        "used about once an hour; 0.05 with few cards makes every card a velocity burst)",
    )
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--start", default="2024-01-01")
    parser.add_argument("--database", help="PostgreSQL URL (default: a fresh SQLite file)")
    parser.add_argument(
        "--profiles", help="Redis URL for profiles (cleared first; default: in process)"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk not found: apt-get install -y wrk")

    work = Path(tempfile.mkdtemp(prefix="vigil-http-bench-"))
    results = []
    for i, mode in enumerate(m.strip() for m in args.modes.split(",")):
        batch = 1 if mode == "single" else args.batch
        result = run_mode(args, work, mode, batch, f"{mode}{os.getpid()}", i * 86400)
        results.append(result)
        print(
            f"{mode:>6} (batch {batch}, {args.connections} connections, {args.workers} "
            f"process{'es' if args.workers > 1 else ''}, {result['database']}): "
            f"{result['decisions_per_second']:,} decisions/s "
            f"({result['requests_per_second']:,} requests/s), "
            f"p50 {result['latency_p50_ms']:.2f} ms, p99 {result['latency_p99_ms']:.2f} ms, "
            f"p99.9 {result['latency_p999_ms']:.2f} ms, "
            + (
                f"sent late {result['late_share']:.1%} (at most {result['late_max_ms']:.0f} ms), "
                if args.rate
                else ""
            )
            + f"errors {result['errors']}, "
            f"lost {result['lost_decisions']} of {result['decisions_answered']:,}, "
            f"{result['decisions_per_commit']} decisions a commit, "
            f"server CPU {result['server_cpu_us_per_decision']} µs/decision",
            file=sys.stderr,
        )
        parts = result["cpu_us_per_decision"]
        print(
            "        CPU per decision: "
            + ", ".join(f"{role} {us:,.0f} µs" for role, us in parts.items())
            + f"; total {sum(parts.values()):,.0f} µs, machine idle "
            f"{result['idle_share']:.0%}; connections per server process "
            + "/".join(map(str, result["connections_per_process"])),
            file=sys.stderr,
        )
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps({"runs": results}))


if __name__ == "__main__":
    main()
