"""Profiles are a cache of the log: periodic checkpoints, recovery after them, a lost Redis
rebuilt, ``vigil profiles rebuild``, and no erasure undone by a running server."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.api.conftest import CHEAP_HASHER, make_app, seed, settings_for, tx
from vigil.api.app import create_app
from vigil.api.service import DecisionService
from vigil.cli import app as cli
from vigil.profiles import MemoryProfileStore
from vigil.profiles.profile import Profile
from vigil.profiles.recovery import Checkpoint
from vigil.profiles.redis_store import RedisProfileStore
from vigil.storage import Store

on_sqlite = pytest.mark.parametrize("store", ["sqlite"], indirect=True)


def _post(client: TestClient, key: str, *events: dict) -> None:
    for event in events:
        answer = client.post("/v1/transactions", json=event, headers={"X-API-Key": key})
        assert answer.status_code == 200, answer.text


def _checkpointed(store: Store) -> tuple[int, MemoryProfileStore]:
    profiles = MemoryProfileStore()
    state = profiles.restore(store) or {}
    return state.get("position", 0), profiles


def _checkpointing_app(
    store: Store, every_seconds: float, writer: str = "process"
) -> tuple[FastAPI, str]:
    """A server on ``store`` checkpointing its profiles every ``every_seconds``, and an
    ingest key."""
    seed(store)
    settings = settings_for(store)
    settings.profiles.checkpoint_seconds = every_seconds
    settings.api.writer = writer
    app = create_app(settings, store=store, hasher=CHEAP_HASHER)
    return app, app.state.keys.create("ingest", ["ingest"])[0]


def _busy(service: DecisionService, n: int) -> Profile:
    """A busy server's ``n`` changed profiles (``card x-0`` ...), each a copy of card c-1's,
    put while the loop waits for the next checkpoint; returns that profile."""
    busy = service.profiles.get("card", "c-1")
    for i in range(n):
        service.profiles.put("card", f"x-{i}", busy)
    return busy


def _checkpointed_with(
    store: Store, kind: str, key: str, seconds: float
) -> tuple[int, MemoryProfileStore]:
    """The newest checkpoint, once it holds that profile (within ``seconds``)."""
    deadline = time.monotonic() + seconds
    while (saved := _checkpointed(store))[1].get(kind, key).n == 0:
        assert time.monotonic() < deadline, "no checkpoint of the profiles"
        time.sleep(0.05)
    return saved


@on_sqlite
def test_profiles_are_checkpointed_as_the_server_runs_and_recovered_after_it(
    store: Store,
) -> None:
    app, key = _checkpointing_app(store, 0.2)
    with TestClient(app) as client:
        _post(client, key, *(tx(f"c-{i}", minute=i) for i in range(5)))
        deadline = time.monotonic() + 5
        while _checkpointed(store)[0] < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        position, saved = _checkpointed(store)
        assert position == 5 and saved.get("card", "c-1").n == 5  # while it runs
        _post(client, key, *(tx(f"c-{i}", minute=i) for i in range(5, 8)))
        # As if the server died now: a new one recovers from the checkpoint and the log.
        crashed = DecisionService(app.state.settings, Store(store.url))
        assert crashed.recovery.checkpoint >= 5
        assert crashed.recovery.checkpoint + crashed.recovery.reapplied == 8
        assert crashed.profiles.get("card", "c-1").n == 8
        assert crashed.profiles.get("card", "c-1").to_bytes() == (
            app.state.service.profiles.get("card", "c-1").to_bytes()
        )


@on_sqlite
def test_a_cli_erasure_is_refused_while_a_server_holds_the_profiles(store: Store) -> None:
    seed(store)
    app = make_app(store)
    key = app.state.keys.create("ingest", ["ingest"])[0]
    runner = CliRunner()
    with TestClient(app) as client:
        _post(client, key, tx("f-1"))
        refused = runner.invoke(cli, ["forget", "u-1", "--database", store.url])
        assert refused.exit_code == 1
        assert "DELETE /v1/admin/users/u-1" in refused.stderr
        assert store.get_decision("f-1") is not None  # nothing erased
        replay = runner.invoke(cli, ["replay", "nowhere.parquet", "--database", store.url])
        assert replay.exit_code != 0
    erased = runner.invoke(cli, ["forget", "u-1", "--database", store.url])
    assert erased.exit_code == 0, erased.output
    assert store.get_decision("f-1") is None
    assert _checkpointed(store)[1].get("card", "c-1").n == 0


@on_sqlite
def test_vigil_profiles_rebuild_recomputes_what_the_server_had(store: Store) -> None:
    seed(store)
    app = make_app(store)
    key = app.state.keys.create("ingest", ["ingest"])[0]
    with TestClient(app) as client:
        _post(
            client, key, *(tx(f"r-{i}", minute=i, terminal_id=f"ATM-{1 + i % 2}") for i in range(6))
        )
    _, served = _checkpointed(store)
    rebuilt = CliRunner().invoke(cli, ["profiles", "rebuild", "--database", store.url])
    assert rebuilt.exit_code == 0, rebuilt.output
    _, again = _checkpointed(store)
    assert {(k, key) for k, key, _ in again.items()} == {(k, key) for k, key, _ in served.items()}
    assert all(p.to_bytes() == served.get(k, key).to_bytes() for k, key, p in again.items())


@pytest.mark.postgres
@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_a_flushed_redis_is_rebuilt_from_the_log_when_a_server_starts(
    store: Store, redis_client
) -> None:
    import uuid

    seed(store)
    shared = RedisProfileStore(redis_client, prefix=f"vigil-rebuild:{uuid.uuid4().hex[:12]}:")
    try:
        app = make_app(store, shared)
        key = app.state.keys.create("ingest", ["ingest"])[0]
        with TestClient(app) as client:
            _post(client, key, *(tx(f"x-{i}", minute=i) for i in range(4)))
        before = shared.get("card", "c-1").to_bytes()
        shared.clear()
        assert len(shared) == 0
        restarted = make_app(store, shared)
        with TestClient(restarted):
            assert restarted.state.service.recovery.rebuilt
            assert shared.get("card", "c-1").to_bytes() == before
    finally:
        shared.clear()


@on_sqlite
def test_a_checkpoint_of_many_profiles_does_not_hold_the_event_loop(store: Store) -> None:
    """Serialising every changed profile at once held the event loop (and every request) for
    as long as that takes: 0.3-0.8 s for a busy server's profiles (here the longest gap was
    longer than serialising them all). They are taken a few at a time instead, and the
    checkpoint still holds each as it was at its cut."""
    app, key = _checkpointing_app(store, 1.0)
    with TestClient(app) as client:
        _post(client, key, tx("f-1"))
        busy = _busy(app.state.service, 20_000)
        started = time.perf_counter()
        for _ in range(200):
            busy.to_bytes()
        at_once = (time.perf_counter() - started) / 200 * 20_000  # serialising them all
        # The longest the loop went without a turn for a coroutine waiting 1 ms, measured on
        # the loop itself: a client in this process would wait for the interpreter lock too.
        gaps: list[float] = []
        done = threading.Event()

        async def watch() -> None:
            while not done.is_set():
                started = time.perf_counter()
                await asyncio.sleep(0.001)
                gaps.append(time.perf_counter() - started)

        gc.disable()  # a server tunes its collector (vigil.api.app); this process does not
        watching = client.portal.start_task_soon(watch)
        try:  # written 100 profiles every 50 ms
            position, saved = _checkpointed_with(store, "card", "x-19999", 30)
        finally:
            done.set()
            watching.result(timeout=5)
            gc.enable()
        slowest = max(gaps)
        # Handing the taken checkpoint over (pickled, sent) still costs the loop a little.
        assert slowest < at_once / 2, (slowest, at_once)
        # The checkpoint includes the one decision taken, and the profiles as they were then.
        assert position == 1 and saved.get("card", "x-0").to_bytes() == busy.to_bytes()


def test_a_checkpoint_goes_to_the_writer_in_parts(store: Store) -> None:
    """Written in one transaction, a checkpoint of 10,000 profiles held the writer 200 ms,
    and every request waiting for a commit with it. It goes in parts, each with a batch, and
    counts once the last is written."""
    app, key = _checkpointing_app(store, 0.5)
    parts: list[tuple[int, bool]] = []  # rows and completeness of each part handed over
    with TestClient(app) as client:
        _post(client, key, tx("p-1"))
        service = app.state.service
        flush = service.recorder.flush

        def watched(checkpoint=None):
            if isinstance(checkpoint, Checkpoint):
                parts.append((len(checkpoint.rows), checkpoint.complete))
            return flush(checkpoint)

        service.recorder.flush = watched
        _busy(service, 5_000)
        _checkpointed_with(store, "card", "x-4999", 20)
    assert sum(rows for rows, _ in parts) >= 5_000
    assert max(rows for rows, _ in parts) <= 500, parts
    assert [complete for _, complete in parts].index(True) >= 9  # after the others


@on_sqlite
def test_a_checkpoint_missing_a_part_never_counts(store: Store, monkeypatch) -> None:
    """A part the writer could not write gives the whole checkpoint up: completed without
    it, the profiles of that part would be read as they were one checkpoint earlier, short
    of the events between. They all go to the next checkpoint instead."""
    from vigil.profiles import recovery

    save = recovery.save_checkpoint
    failed: list[int] = []

    def failing_once(store, rows, position=None, *, complete=True):
        if not complete and not failed:
            failed.append(position)
            raise OSError("disk full")
        return save(store, rows, position, complete=complete)

    monkeypatch.setattr(recovery, "save_checkpoint", failing_once)
    app, key = _checkpointing_app(store, 0.3, writer="thread")
    with TestClient(app) as client:
        _post(client, key, tx("m-1"))
        busy = _busy(app.state.service, 2_000)
        _post(client, key, tx("m-2", minute=1))
        _, profiles = _checkpointed_with(store, "card", "x-1999", 20)
    assert failed, "no part failed"
    assert all(profiles.get("card", f"x-{i}").n == busy.n for i in range(2_000))
