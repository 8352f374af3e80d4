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
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError

from tests.bank40 import CARDS, seed, withdrawal
from tests.processes import descendants, survivors
from tests.stream.hosts import Host, hosts
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
EVENTS = 2_000


async def _reset() -> None:
    nc = await nats.connect(NATS_URL, connect_timeout=3)
    js = nc.jetstream()
    for stream in (EVENTS_STREAM, DECISIONS_STREAM, f"KV_{BUCKET}"):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(stream)
    await nc.close()


async def _publish(
    partitions: int,
    bodies: list[bytes | dict[str, Any]],
    *,
    pause_every: int = 0,
    url: str = NATS_URL,
) -> None:
    """Publish in order; with ``pause_every``, a pause of most of a second after each that
    many (longer than a fetch waits, so consumers go idle)."""
    from vigil.stream.worker import ensure_streams

    nc = await nats.connect(url)
    js = nc.jetstream()
    await ensure_streams(js)
    for n, body in enumerate(bodies, start=1):
        if pause_every and n % pause_every == 0:
            await asyncio.sleep(0.8)
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


def _worker(env: dict[str, str], port: int, host: Host | None = None) -> subprocess.Popen[bytes]:
    """A worker on this machine, or on a test host reaching the servers at its gateway."""
    command = [*VIGIL, "consume", "--metrics-port", str(port)]
    if host is not None:
        command = host.command(*command)
        env = {k: v.replace("127.0.0.1", host.gateway) for k, v in env.items()}
    return subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _env(
    store: Store, nats_server: str, partitions: int, profiles_url: str | None
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env |= {
        "VIGIL_DEV": "1",  # synthetic data: the development privacy keys will do
        "VIGIL_DATABASE_URL": store.url,
        "VIGIL_STREAM__NATS_URL": nats_server,
        "VIGIL_STREAM__PARTITIONS": str(partitions),
        "VIGIL_STREAM__LEASE_SECONDS": "3",
        "VIGIL_STREAM__BATCH": "50",
    }
    if profiles_url is not None:
        env["VIGIL_PROFILES_URL"] = profiles_url
    return env


def _wait(condition, seconds: float, what) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what() if callable(what) else what}")


@pytest.mark.parametrize(
    ("store", "workers", "partitions", "on_hosts"),
    [
        ("sqlite", 2, 1, False),
        pytest.param("postgresql", 2, 4, False, marks=pytest.mark.postgres),
        pytest.param("postgresql", 3, 4, True, marks=pytest.mark.postgres),
    ],
    indirect=["store"],
)
def test_workers_killed_mid_stream_decide_every_event_once_in_order(
    store: Store,
    workers: int,
    partitions: int,
    on_hosts: bool,
    nats_server: str,
    request: pytest.FixtureRequest,
) -> None:
    """On PostgreSQL + Redis also with each worker on a host of its own (a network namespace),
    reaching NATS, PostgreSQL and Redis across the network."""
    if not on_hosts:
        _run_workers(store, workers, partitions, nats_server, request, [None] * workers)
        return
    if os.geteuid() != 0 or shutil.which("ip") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("worker hosts need root and iproute2 (ip netns)")
        pytest.skip("worker hosts in network namespaces need root and iproute2")
    ports = [4222, 5432, 6379]
    with hosts(workers, ports) as made:
        _run_workers(store, workers, partitions, nats_server, request, list(made))


def _run_workers(
    store: Store,
    workers: int,
    partitions: int,
    nats_server: str,
    request: pytest.FixtureRequest,
    where: list[Host | None],
) -> None:
    profiles_url = None
    if store.dialect != "sqlite":
        profiles_url = request.getfixturevalue("redis_database")(10)
    seed(store)
    env = _env(store, nats_server, partitions, profiles_url)
    bad = b'{"event_id": "bad-1", "type": "withdrawal", "amount": "12.345"}'
    events = [withdrawal(i, "s") for i in range(EVENTS)]
    asyncio.run(_publish(partitions, [*events[:100], bad, *events[100:]]))

    running = [_worker(env, 19470 + n, host) for n, host in enumerate(where)]
    try:
        _wait(lambda: store.counts()["decisions"] >= EVENTS // 2, 120, "half the events")
        owner = asyncio.run(_owner_of(0))
        victim = next(w for w in running if owner.endswith(f":{w.pid}"))
        helpers = descendants(victim.pid)
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        assert not survivors(helpers, within=30), "the killed worker's helpers outlived it"
        _wait(
            lambda: store.counts()["decisions"] >= EVENTS,
            180,
            lambda: f"every event decided ({store.counts()['decisions']} of {EVENTS})",
        )
        time.sleep(1)  # the last acknowledgements and publications
    finally:
        alive = [w for w in running if w.poll() is None]
        for worker in alive:
            worker.send_signal(signal.SIGTERM)  # drains: checkpoints in-process profiles
        outputs = [w.communicate(timeout=60)[0].decode() for w in running]
        for output in outputs:  # shown when the test fails
            print(output[-3000:])
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

    _assert_in_order(store)


def _assert_in_order(store: Store) -> None:
    """Each card's decisions were committed in the order its events were published."""
    d = store.tables.decisions
    with store.engine.connect() as conn:
        rows = conn.execute(d.select().with_only_columns(d.c.event_id, d.c.card_id, d.c.seq))
        by_card: dict[str, list[tuple[int, int]]] = {}
        for event_id, card, seq in rows:
            by_card.setdefault(card, []).append((seq, int(event_id.split("-")[1])))
    for card, decided in by_card.items():
        published_order = [i for _, i in sorted(decided)]
        assert published_order == sorted(published_order), card


@pytest.mark.postgres
@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_an_event_a_dead_worker_claimed_holds_up_its_card_until_the_claim_lapses(
    store: Store, nats_server: str, redis_database: Callable[[int], str]
) -> None:
    """A worker killed mid-decision leaves its claim on the event in the shared profiles until
    the claim lapses (10 s). The next owner must wait for it without letting the card's later
    events, or the rest of the batch, overtake it."""
    profiles_url = redis_database(11)
    seed(store)
    events = [withdrawal(i, "h") for i in range(400)]
    asyncio.run(_publish(1, events))
    held = events[45]  # card c-5's second event, in the first batch
    assert RedisProfileStore.from_url(profiles_url).claim(held["event_id"]) is None

    worker = _worker(_env(store, nats_server, 1, profiles_url), 19480)
    try:
        # Held up behind the claim, the worker reports what waits behind it as lag.
        _wait(lambda: _metric(19480, "vigil_stream_lag") > 0, 30, "a lag while held up")
        _wait(lambda: store.counts()["decisions"] >= len(events), 60, "every event decided")
        _wait(lambda: _metric(19480, "vigil_stream_lag") == 0, 10, "no lag once done")
        decided = 'vigil_stream_decided_total{kind="transactions"}'
        assert _metric(19480, decided) == len(events)
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=60)[0].decode()
        print(output[-3000:])
    assert worker.returncode == 0
    assert store.counts()["decisions"] == len(events)
    _assert_in_order(store)


def _metric(port: int, name: str) -> float:
    """A sample of a worker's /metrics (0 while the worker is not serving them yet)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            text = answer.read().decode()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.postgres
@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_a_worker_keeps_deciding_through_idle_spells(
    store: Store, nats_server: str, redis_database: Callable[[int], str]
) -> None:
    """Events trickling in, with pauses that leave the partitions' consumers idle: an idle
    fetch ends in ways (a bare timeout, no messages) that once ended a partition's task while
    its lease was still renewed, so the partition stalled with nobody deciding it (seen in
    bench/stream.py --rate 300 after ~3,500 events)."""
    profiles_url = redis_database(12)
    seed(store)
    events = [withdrawal(i, "i") for i in range(4_000)]
    worker = _worker(_env(store, nats_server, 4, profiles_url), 19481)
    try:
        _wait(lambda: _metric(19481, "vigil_stream_partitions") == 4, 60, "the partitions taken")
        asyncio.run(_publish(4, events, pause_every=200))
        _wait(
            lambda: store.counts()["decisions"] >= len(events),
            60,
            lambda: f"every event decided ({store.counts()['decisions']} of {len(events)})",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        output = worker.communicate(timeout=60)[0].decode()
        print(output[-3000:])
    assert worker.returncode == 0
    _assert_in_order(store)


def test_the_streams_keep_messages_only_as_long_as_configured(nats_server: str) -> None:
    """Raw events carry personal data in clear: the streams vigil creates expire them."""
    from vigil.stream.worker import ensure_streams

    async def ages() -> list[float]:
        nc = await nats.connect(nats_server)
        js = nc.jetstream()
        await ensure_streams(js, retain_hours=2)
        found = [
            (await js.stream_info(s)).config.max_age for s in (EVENTS_STREAM, DECISIONS_STREAM)
        ]
        await nc.close()
        return found

    assert asyncio.run(ages()) == [7200, 7200]


def test_a_worker_sets_the_collector_for_a_long_lived_heap_once_its_engine_is_loaded(
    nats_server: str, tmp_path: Path
) -> None:
    """As vigil serve does (vigil.api.collector): with the collector's defaults, a worker spent
    about 1 s in full collections over 12,000 events of bench/stream.py, each a pause of about
    0.1 s walking the reference data and profiles that live as long as the process."""
    import gc

    from vigil.config import Settings, StreamConfig
    from vigil.stream import worker as worker_module

    url = f"sqlite:///{tmp_path / 'v.db'}"
    settings = Settings(database_url=url, stream=StreamConfig(nats_url=nats_server))
    store = Store(url)
    store.init_schema()
    worker = worker_module.Worker(settings, store, tune_gc=True)
    before = gc.get_threshold()

    async def own_a_partition() -> tuple[tuple[int, int, int], bool]:
        nc = await nats.connect(nats_server)
        js = nc.jetstream()
        await worker_module.ensure_streams(js, settings.stream.retain_hours)
        owned = await worker._own(js, 0)
        assert worker.service is not None
        # Frozen objects are out of the collector's generations: the engine is among them.
        engine = worker.service.engine
        frozen = not any(o is engine for o in gc.get_objects())
        tuned = gc.get_threshold(), frozen
        await worker_module._stop(owned)
        await nc.close()
        return tuned

    try:
        threshold, engine_frozen = asyncio.run(own_a_partition())
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
        if worker.service is not None:
            worker.service.close()
        store.close()
    assert threshold == (2_000, 5, 25_000)
    assert engine_frozen


def test_vigil_consume_runs_a_worker_that_sets_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from vigil import logs
    from vigil.cli import app
    from vigil.stream import worker as worker_module

    built: list[bool] = []

    async def run(self: worker_module.Worker, stop: asyncio.Event) -> dict[str, Any]:
        built.append(self.tune_gc)
        return {}

    monkeypatch.setattr(worker_module.Worker, "run", run)
    monkeypatch.setenv("VIGIL_DEV", "1")
    try:
        result = CliRunner().invoke(app, ["consume", "-d", f"sqlite:///{tmp_path / 'v.db'}"])
    finally:
        logs.reset()
    assert result.exit_code == 0, result.output
    assert built == [True]
