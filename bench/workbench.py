"""Benchmark: how fast the analyst workbench answers its pages on the demo store.

Makes the demo (``vigil demo``: 2,000 cards over 30 days, some hundreds of risk events) unless
``--demo`` names one already made, creates an analyst key, starts ``vigil serve`` on it (the
embedded default: SQLite, profiles in process), signs in as a browser does and times each view
over one kept-alive HTTP connection, as the server answers it end to end: the queue (default,
by score, a later page, filtered), a case and the overview. It prints the median and the 95th
percentile per view; the last line is JSON. The target is a queue page under 200 ms.

    python bench/workbench.py                       # makes a demo in a temporary folder
    python bench/workbench.py --demo vigil-demo --requests 50
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path, and bench/http.py would shadow
# the standard library's http package.
if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import argparse
import http.client
import json
import re
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

from vigil.api.keys import KeyRing
from vigil.storage import Store

VIGIL = [sys.executable, "-c", "from vigil.cli import app; app()"]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and server.poll() is None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("vigil serve did not start")


def _sign_in(conn: http.client.HTTPConnection, key: str) -> str:
    """The session cookie, got as a browser gets it (form token cookie, then the form)."""
    conn.request("GET", "/sign-in")
    answer = conn.getresponse()
    page = answer.read().decode()
    token_cookie = answer.getheader("set-cookie", "").split(";")[0]
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"api_key": key, "csrf": token, "next": "/queue"})
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": token_cookie}
    conn.request("POST", "/sign-in", body=body, headers=headers)
    answer = conn.getresponse()
    answer.read()
    cookies = [v.split(";")[0] for k, v in answer.getheaders() if k.lower() == "set-cookie"]
    session = next(c for c in cookies if c.startswith("vigil_session="))
    return session


def _time(conn: http.client.HTTPConnection, cookie: str, path: str, n: int) -> list[float]:
    times = []
    for i in range(n + 3):
        started = time.perf_counter()
        conn.request("GET", path, headers={"Cookie": cookie})
        answer = conn.getresponse()
        answer.read()
        elapsed = (time.perf_counter() - started) * 1000
        if answer.status != 200:
            raise SystemExit(f"{path}: HTTP {answer.status}")
        if i >= 3:  # the first few warm the caches
            times.append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", type=Path, help="A folder vigil demo made (default: make one)")
    parser.add_argument("--requests", type=int, default=30, help="Timed requests per view")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.demo
        if folder is None:
            folder = Path(scratch) / "demo"
            print("making the demo store (vigil demo) ...", flush=True)
            subprocess.run([*VIGIL, "demo", "--out", str(folder)], check=True, capture_output=True)
        database = f"sqlite:///{folder.resolve() / 'vigil.db'}"
        with Store(database) as store:
            key = KeyRing(store).create("bench", ["analyst"])[0]
            risk_events = store.counts()["risk_events"]
            case = store.list_risk_events(limit=1)[0]["risk_event_id"]
        port = _port()
        server = subprocess.Popen(
            [*VIGIL, "serve", "--database", database, "--port", str(port)],
            env={**os.environ, "VIGIL_DEV": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait(port, server)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            cookie = _sign_in(conn, key)
            views = {
                "queue": "/queue",
                "queue by score": "/queue?sort=score",
                "queue page 3": "/queue?status=all&offset=100",
                "queue by reason": "/queue?status=all&reason=new_device",
                "case": f"/cases/{case}",
                "overview": "/overview",
            }
            results = {}
            print(f"{risk_events} risk events; {args.requests} requests per view")
            for name, path in views.items():
                times = _time(conn, cookie, path, args.requests)
                median = statistics.median(times)
                p95 = statistics.quantiles(times, n=20)[-1]
                results[name] = {"median_ms": round(median, 1), "p95_ms": round(p95, 1)}
                print(f"{name:18} median {median:7.1f} ms   p95 {p95:7.1f} ms")
        finally:
            server.terminate()
            server.wait(timeout=60)
    print(json.dumps({"risk_events": risk_events, "views": results}))


if __name__ == "__main__":
    main()
