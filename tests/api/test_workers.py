"""``vigil serve --workers N``: several server processes on one port, sharing PostgreSQL and the
real Redis, really started (each worker with its own engine and writer process)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.api.conftest import seed, tx
from tests.processes import descendants, survivors
from vigil.api.keys import KeyRing
from vigil.cli import app
from vigil.profiles.redis_store import RedisProfileStore
from vigil.storage import Store

VIGIL = [sys.executable, "-c", "from vigil.cli import app; app()"]


def test_more_than_one_process_needs_shared_profiles_and_postgresql(monkeypatch) -> None:
    monkeypatch.delenv("VIGIL_PROFILES_URL", raising=False)
    monkeypatch.setenv("VIGIL_DATABASE_URL", "sqlite:///nowhere.db")
    alone = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert alone.exit_code == 2 and "--workers" in alone.output
    assert "profiles_url" in alone.output
    monkeypatch.setenv("VIGIL_PROFILES_URL", "redis://127.0.0.1:6379/0")
    on_sqlite = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert on_sqlite.exit_code == 2 and "PostgreSQL" in on_sqlite.output


@pytest.fixture
def profiles_url(redis_database: Callable[[int], str]) -> str:
    """A Redis database of this test's own (the server uses the default key prefix)."""
    return redis_database(14)


def _post(port: int, key: str, body: Any) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/transactions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "X-API-Key": key},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:  # a new connection each time
        return json.loads(answer.read())


def _started(port: int, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    server.kill()
    pytest.fail(f"vigil serve --workers 2 did not start: {server.communicate()[0].decode()}")


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_two_processes_share_profiles_decisions_and_metrics(
    store: Store, profiles_url: str
) -> None:
    seed(store)
    key = KeyRing(store).create("workers", ["ingest"])[0]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VIGIL_DATABASE_URL": store.url, "VIGIL_PROFILES_URL": profiles_url}
    server = subprocess.Popen(
        [*VIGIL, "serve", "--port", str(port), "--workers", "2", "--log-level", "info"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _started(port, server)
        events = [tx(f"w-{i}", minute=i % 60, amount=f"{1000 + i}.00") for i in range(40)]
        first = [_post(port, key, event) for event in events]
        again = [_post(port, key, event) for event in events]  # repeats, on either process
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            metrics = answer.read().decode()
    finally:
        server.send_signal(signal.SIGINT)  # graceful: each worker commits what it decided
        log = server.communicate(timeout=60)[0].decode()
    assert [d["decision_id"] for d in again] == [d["decision_id"] for d in first]
    assert log.count("Started server process") == 2

    # Either worker answers /metrics with the sum over both: 40 decided, 40 repeats answered.
    def total(name: str) -> float:
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith(name + "{")
        )

    assert total("vigil_decisions_total") == 40 and total("vigil_repeated_events_total") == 40
    stored = store.get_decisions([e["event_id"] for e in events])
    assert {d.decision_id for d in stored.values()} == {d["decision_id"] for d in first}
    card = RedisProfileStore.from_url(profiles_url).get("card", "c-1")
    assert card.n == 40  # each event applied once, whichever process took it


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_workers_and_their_writers_die_with_a_killed_server(
    store: Store, profiles_url: str
) -> None:
    seed(store)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "VIGIL_DATABASE_URL": store.url, "VIGIL_PROFILES_URL": profiles_url}
    server = subprocess.Popen(
        [*VIGIL, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    _started(port, server)
    time.sleep(1)  # both workers up, each with its writer
    helpers = descendants(server.pid)
    assert len(helpers) >= 4
    server.kill()
    server.wait(timeout=30)
    assert not survivors(helpers), "worker or writer processes outlived the killed server"
