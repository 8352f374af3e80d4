"""``kill -9`` of a real ``vigil serve`` under concurrent load loses nothing.

2,000 withdrawals over 40 cards are sent by 8 clients at once (each client owns 5 cards, so a
card's events arrive in order); the server is killed with SIGKILL once about 600 have been
answered, restarted on the same store, and every event is sent again. Then:

* every decision answered before the kill is in the store, and answered again unchanged;
* the store holds exactly one decision per event;
* each event was applied to the profiles exactly once: the cards' profiles count 2,000 (on
  SQLite, recovered from a checkpoint taken mid-load plus the log after it);
* the killed server's helper processes (its writer) did not outlive it.

On the embedded default (SQLite, profiles in process) and on PostgreSQL with profiles in Redis.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import pytest

from tests.bank40 import CARDS, seed, withdrawal
from tests.processes import descendants, survivors
from vigil.api.keys import KeyRing
from vigil.profiles import MemoryProfileStore
from vigil.profiles.redis_store import RedisProfileStore
from vigil.storage import Store

VIGIL = [sys.executable, "-c", "from vigil.cli import app; app()"]
EVENTS = 2_000
CLIENTS = 8
KILL_AFTER = 600
# How long a committed claim lasts in the run that resends after the claims lapse.
CLAIM_SECONDS = 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [*VIGIL, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    pytest.fail(f"vigil serve did not start: {server.communicate()[0].decode()}")


class Load:
    """Clients sending every event once, each client the events of its own cards, in order;
    stops (without sending more) when told."""

    def __init__(self, port: int, key: str) -> None:
        self.url = f"http://127.0.0.1:{port}/v1/transactions"
        self.key = key
        self.answers: dict[str, dict[str, Any]] = {}
        self.refused: dict[str, int] = {}
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        threads = [threading.Thread(target=self._client, args=(c,)) for c in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)

    def _client(self, client: int) -> None:
        mine = [i for i in range(EVENTS) if (i % CARDS) % CLIENTS == client]
        headers = {"X-API-Key": self.key}
        with httpx.Client(timeout=30, headers=headers) as http:
            for i in mine:
                if self.stop.is_set():
                    return
                event = withdrawal(i)
                try:
                    answer = self._send(http, event)
                except httpx.TransportError:  # the server was killed under this request
                    return
                with self._lock:
                    if answer.status_code == 200:
                        self.answers[event["event_id"]] = answer.json()
                    else:
                        self.refused[event["event_id"]] = answer.status_code

    def _send(self, http: httpx.Client, event: dict[str, Any]) -> httpx.Response:
        """As a well-behaved client does: an answer with Retry-After (a 503, or a 409 while
        the killed server's claim on the event lapses) is retried after that pause."""
        for _ in range(30):
            answer = http.post(self.url, json=event)
            retry = answer.headers.get("retry-after")
            if retry is None or self.stop.is_set():
                return answer
            time.sleep(float(retry))
        return answer


def _card_events(store: Store, profiles_url: str | None) -> int:
    if profiles_url is None:
        profiles = MemoryProfileStore()
        profiles.restore(store)
    else:
        profiles = RedisProfileStore.from_url(profiles_url)
    return sum(profiles.get("card", f"c-{i}").n for i in range(CARDS))


@pytest.mark.parametrize(
    ("store", "late"),
    [
        ("sqlite", False),
        pytest.param("postgresql", False, marks=pytest.mark.postgres),
        # Everything sent again once every committed claim in Redis has lapsed: what the
        # killed server wrote to the profiles and never committed must still count once.
        pytest.param(
            "postgresql", True, marks=pytest.mark.postgres, id="postgresql-after-claims-lapse"
        ),
    ],
    indirect=["store"],
)
def test_kill_9_under_load_loses_nothing_and_applies_each_event_once(
    store: Store, late: bool, request: pytest.FixtureRequest
) -> None:
    profiles_url = None
    if store.dialect != "sqlite":
        profiles_url = request.getfixturevalue("redis_database")(13)
    seed(store)
    key = KeyRing(store).create("crash", ["ingest"])[0]
    port = _free_port()
    env = {**os.environ, "VIGIL_DATABASE_URL": store.url}
    env.pop("VIGIL_PROFILES_URL", None)
    if profiles_url is not None:
        env["VIGIL_PROFILES_URL"] = profiles_url
        if late:
            env["VIGIL_PROFILES__CLAIM_TTL_SECONDS"] = str(CLAIM_SECONDS)
    else:
        # Checkpoints during the load (cut at a batch, taken a few profiles at a time while
        # decisions go on), so that recovery starts from one and re-applies only what follows.
        env["VIGIL_PROFILES__CHECKPOINT_SECONDS"] = "0.2"

    server = _start(env, port)
    load = Load(port, key)
    sender = threading.Thread(target=load.run)
    sender.start()
    deadline = time.monotonic() + 120
    while len(load.answers) < KILL_AFTER and time.monotonic() < deadline and sender.is_alive():
        time.sleep(0.002)
    helpers = descendants(server.pid)
    os.kill(server.pid, signal.SIGKILL)
    server.wait(timeout=30)
    load.stop.set()
    sender.join(timeout=60)
    first = dict(load.answers)
    assert KILL_AFTER <= len(first) < EVENTS, "the kill came mid-load"
    assert helpers, "the server had started its writer"
    assert not survivors(helpers), "helpers outlived the killed server"

    if profiles_url is None:  # the killed server had checkpointed mid-load
        assert (store.load_profile_state() or {}).get("position", 0) > 0

    # Acknowledged means committed: every answer given is in the store.
    stored = store.get_decisions(list(first))
    assert set(stored) == set(first)
    assert all(stored[i].decision_id == d["decision_id"] for i, d in first.items())

    if late:
        time.sleep(CLAIM_SECONDS * 2)
    server = _start(env, port)
    try:
        again = Load(port, key)
        again.run()
    finally:
        server.send_signal(signal.SIGTERM)  # a clean stop checkpoints the profiles
        output = server.communicate(timeout=60)[0].decode()
    assert not again.refused, (again.refused, output[-2000:])
    assert len(again.answers) == EVENTS
    changed = [i for i, d in first.items() if again.answers[i] != d]
    assert not changed, f"{len(changed)} answered differently after the restart"
    assert store.counts()["decisions"] == EVENTS
    assert _card_events(store, profiles_url) == EVENTS
