"""``vigil consume`` against the real NATS JetStream, PostgreSQL and Redis.

2,000 withdrawals over 40 cards are published; workers decide them; one worker is killed with
SIGKILL halfway. Then every event has exactly one stored decision and one published decision,
each card's profile counts each of its events once, and each card's events were decided in
the order they were published. A message that fails validation goes to
``vigil.events.rejected`` naming the field, and never blocks its partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import nats
import pytest
import redis
from nats.js.errors import NotFoundError

from tests.conftest import REDIS_URL
from tests.processes import descendants, survivors
from vigil.domain import Card, Terminal, User
from vigil.profiles import MemoryProfileStore
from vigil.profiles.redis_store import RedisProfileStore
from vigil.storage import Store
from vigil.stream.leases import BUCKET
from vigil.stream.subjects import (
    DECISIONS_STREAM,
    EVENTS_STREAM,
    REJECTED,
    key_of,
    partition_of,
    subject,
)

NATS_URL = os.environ.get("VIGIL_TEST_NATS_URL", "nats://127.0.0.1:4222")
VIGIL = [sys.executable, "-c", "from vigil.cli import app; app()"]
CARDS = 40
EVENTS = 2_000


def _event(i: int) -> dict[str, Any]:
    card = i % CARDS
    seconds = i * 97
    return {
        "event_id": f"s-{i}",
        "transaction_id": f"st-{i}",
        "timestamp": f"2024-05-{1 + seconds // 86400:02d}T{seconds // 3600 % 24:02d}:"
        f"{seconds // 60 % 60:02d}:{seconds % 60:02d}Z",
        "type": "withdrawal",
        "amount": f"{1000 + (i * 37) % 5000}.{i % 100:02d}",
        "card_id": f"c-{card}",
        "user_id": f"u-{card}",
        "terminal_id": f"ATM-{card % 5}",
    }


def _seed(store: Store) -> None:
    store.upsert_terminals(
        [Terminal(terminal_id=f"ATM-{i}", latitude=6.4 + i / 100, longitude=3.4) for i in range(5)]
    )
    store.upsert_users([User(user_id=f"u-{i}", country="NG") for i in range(CARDS)])
    store.upsert_cards(
        [Card(card_id=f"c-{i}", user_id=f"u-{i}", extract_limit=200_000) for i in range(CARDS)]
    )


async def _reset() -> None:
    nc = await nats.connect(NATS_URL, connect_timeout=3)
    js = nc.jetstream()
    for stream in (EVENTS_STREAM, DECISIONS_STREAM, f"KV_{BUCKET}"):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)
    await nc.close()


async def _publish(partitions: int, bodies: list[bytes | dict[str, Any]]) -> None:
    from vigil.stream.worker import ensure_streams

    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    await ensure_streams(js)
    for body in bodies:
        if isinstance(body, dict):
            key = key_of("transactions", body)
            data = json.dumps(body).encode()
        else:
            key, data = "", body
        await js.publish(subject("transactions", partition_of(key, partitions), partitions), data)
    await nc.close()


async def _published(stream_subject: str) -> list[dict[str, Any]]:
    """Every message stored under a subject, in order (an ephemeral ordered read)."""
    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    sub = await js.pull_subscribe(stream_subject, durable=None)
    out: list[dict[str, Any]] = []
    while True:
        try:
            messages = await sub.fetch(500, timeout=1)
        except nats.errors.TimeoutError:
            break
        out += [json.loads(m.data) for m in messages]
        await asyncio.gather(*(m.ack() for m in messages))
    await nc.close()
    return out


async def _owner_of(partition: int) -> str:
    nc = await nats.connect(NATS_URL)
    kv = await nc.jetstream().key_value(BUCKET)
    entry = await kv.get(f"partition.{partition}")
    await nc.close()
    return entry.value.decode()


@pytest.fixture
def nats_server() -> Iterator[str]:
    try:
        asyncio.run(_reset())
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"NATS at {NATS_URL} is unreachable: {exc}")
        pytest.skip(f"NATS at {NATS_URL} is unreachable: {exc}")
    yield NATS_URL
    asyncio.run(_reset())


@pytest.fixture
def profiles_url(redis_client: redis.Redis) -> Iterator[str]:
    url = REDIS_URL.rsplit("/", 1)[0] + "/10"
    RedisProfileStore.from_url(url).client.flushdb()
    yield url
    RedisProfileStore.from_url(url).client.flushdb()


def _worker(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*VIGIL, "consume", "--metrics-port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.parametrize(
    ("store", "workers", "partitions"),
    [("sqlite", 2, 1), pytest.param("postgresql", 2, 4, marks=pytest.mark.postgres)],
    indirect=["store"],
)
def test_workers_killed_mid_stream_decide_every_event_once_in_order(
    store: Store, workers: int, partitions: int, nats_server: str, request: pytest.FixtureRequest
) -> None:
    profiles_url = request.getfixturevalue("profiles_url") if store.dialect != "sqlite" else None
    _seed(store)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env |= {
        "VIGIL_DATABASE_URL": store.url,
        "VIGIL_STREAM__NATS_URL": nats_server,
        "VIGIL_STREAM__PARTITIONS": str(partitions),
        "VIGIL_STREAM__LEASE_SECONDS": "2",
        "VIGIL_STREAM__BATCH": "50",
    }
    if profiles_url is not None:
        env["VIGIL_PROFILES_URL"] = profiles_url
    bad = b'{"event_id": "bad-1", "type": "withdrawal", "amount": "12.345"}'
    events = [_event(i) for i in range(EVENTS)]
    asyncio.run(_publish(partitions, [*events[:100], bad, *events[100:]]))

    running = [_worker(env, 19470 + n) for n in range(workers)]
    try:
        _wait(lambda: store.counts()["decisions"] >= EVENTS // 2, 120, "half the events")
        owner = asyncio.run(_owner_of(0))
        victim = next(w for w in running if owner.endswith(f":{w.pid}"))
        helpers = descendants(victim.pid)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        assert not survivors(helpers), "the killed worker's helpers outlived it"
        _wait(lambda: store.counts()["decisions"] >= EVENTS, 180, "every event decided")
        time.sleep(1)  # the last acknowledgements and publications
    finally:
        alive = [w for w in running if w.poll() is None]
        for worker in alive:
            worker.send_signal(signal.SIGTERM)  # drains: checkpoints in-process profiles
        outputs = [w.communicate(timeout=60)[0].decode() for w in alive]
    assert all(w.returncode == 0 for w in alive), outputs

    decisions = store.get_decisions([e["event_id"] for e in events])
    assert store.counts()["decisions"] == len(decisions) == EVENTS
    published = asyncio.run(_published("vigil.decisions.transactions"))
    assert sorted(d["event_id"] for d in published) == sorted(decisions)  # once each
    stored = {event_id: d.decision_id for event_id, d in decisions.items()}
    assert {d["event_id"]: d["decision_id"] for d in published} == stored

    rejected = asyncio.run(_published(REJECTED))
    assert len(rejected) == 1 and json.loads(rejected[0]["data"])["event_id"] == "bad-1"
    assert {"transaction_id", "amount"} <= {e["field"] for e in rejected[0]["errors"]}

    if profiles_url is None:
        profiles = MemoryProfileStore()
        profiles.restore(store)
    else:
        profiles = RedisProfileStore.from_url(profiles_url)
    assert sum(profiles.get("card", f"c-{i}").n for i in range(CARDS)) == EVENTS

    # In order: each card's decisions were committed in the order its events were published.
    d = store.tables.decisions
    with store.engine.connect() as conn:
        rows = conn.execute(d.select().with_only_columns(d.c.event_id, d.c.card_id, d.c.seq))
        by_card: dict[str, list[tuple[int, int]]] = {}
        for event_id, card, seq in rows:
            by_card.setdefault(card, []).append((seq, int(event_id.split("-")[1])))
    for card, decided in by_card.items():
        published_order = [i for _, i in sorted(decided)]
        assert published_order == sorted(published_order), card
