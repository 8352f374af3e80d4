"""Servers sharing Redis and the database answer a repeat with its first decision, whichever of
them took it and however late the repeat comes. A claim in Redis keeps its decision as long as
the profiles until it is committed (its server may die first), then
``profiles.claim_ttl_seconds``; after that, what each server knows of the log answers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import redis

from tests.api.conftest import settings_for
from vigil.api.service import DecisionService
from vigil.config import Settings
from vigil.domain import Decision, Transaction
from vigil.engine import Engine
from vigil.profiles.redis_store import RedisProfileStore
from vigil.recorder import Recorder
from vigil.storage import Store

pytestmark = pytest.mark.parametrize("store", ["postgresql"], indirect=True)
CLAIM_SECONDS = 1.0


def withdrawal(event_id: str, card_id: str = "c-1") -> Transaction:
    return Transaction(
        event_id=event_id,
        transaction_id=f"t-{event_id}",
        type="withdrawal",
        amount="50.00",
        card_id=card_id,
        terminal_id="ATM-1",
        timestamp=datetime(2024, 5, 1, 10, tzinfo=UTC),
    )


@pytest.fixture
def settings(store: Store) -> Settings:
    """Claims kept a second once committed, so that a test can outlive them."""
    settings = settings_for(store)
    profiles = settings.profiles.model_copy(update={"claim_ttl_seconds": CLAIM_SECONDS})
    return settings.model_copy(update={"profiles": profiles})


@pytest.fixture
def shared(
    settings: Settings, redis_client: redis.Redis
) -> Iterator[Callable[[], RedisProfileStore]]:
    """Profile stores on the real Redis under one key prefix of the test's own, removed after."""
    prefix = f"vigil-repeats-test:{uuid.uuid4().hex[:12]}:"
    yield lambda: RedisProfileStore(redis_client, settings.profiles, prefix=prefix)
    for key in redis_client.scan_iter(f"{prefix}*"):
        redis_client.delete(key)


def started(settings: Settings, store: Store, profiles: RedisProfileStore) -> DecisionService:
    server = DecisionService(settings, store, profiles=profiles)
    server.start()
    return server


def test_a_repeat_after_its_claim_lapsed_gets_the_first_decision_at_another_server(
    store: Store,
    settings: Settings,
    shared: Callable[[], RedisProfileStore],
    redis_client: redis.Redis,
) -> None:
    async def scenario() -> tuple[Decision, Decision, int, bool]:
        # Both started before the event is decided: neither read it from the log at its start.
        first, other = started(settings, store, shared()), started(settings, store, shared())
        try:
            decided = first.decide([withdrawal("e-1")])[0]
            await first.commit(["e-1"])
            first.decide([withdrawal("e-2", card_id="c-2")])  # brings e-1's commit to Redis
            await first.commit(["e-2"])
            await asyncio.sleep(CLAIM_SECONDS * 3)
            lapsed = not redis_client.exists(f"{other.profiles.prefix}claim:e-1")
            again = other.decide([withdrawal("e-1")])[0]
            await other.commit(["e-1"])
            return decided, again, other.profiles.get("card", "c-1").n, lapsed
        finally:
            first.close()
            other.close()

    decided, again, events_counted, lapsed = asyncio.run(scenario())
    assert lapsed, "the claim should have lapsed"
    assert again.decision_id == decided.decision_id
    assert events_counted == 1  # applied to the card's profile once
    assert store.get_decision("e-1").decision_id == decided.decision_id


def test_an_event_whose_server_died_before_its_commit_is_applied_once_however_late_resent(
    store: Store, settings: Settings, shared: Callable[[], RedisProfileStore]
) -> None:
    # A server that wrote the event to the shared profiles, with its claim, and died before
    # its commit: its recorder never flushes.
    dead = Engine(store.load_reference(), shared(), Recorder(store), settings=settings)
    first = dead.process(withdrawal("e-1"))
    assert store.get_decision("e-1") is None

    async def resent_later() -> tuple[Decision, int]:
        await asyncio.sleep(CLAIM_SECONDS * 3)  # the client sends again, long after
        server = started(settings, store, shared())
        try:
            again = server.decide([withdrawal("e-1")])[0]
            await server.commit(["e-1"])
            return again, server.profiles.get("card", "c-1").n
        finally:
            server.close()

    again, events_counted = asyncio.run(resent_later())
    assert again.decision_id == first.decision_id
    assert events_counted == 1
    assert store.get_decision("e-1").decision_id == first.decision_id


def test_a_committed_claim_is_kept_only_its_time_to_live(
    store: Store,
    settings: Settings,
    shared: Callable[[], RedisProfileStore],
    redis_client: redis.Redis,
) -> None:
    async def scenario() -> list[int]:
        server = started(settings, store, shared())
        try:
            server.decide([withdrawal("e-1")])
            await server.commit(["e-1"])
            server.decide([withdrawal("e-2")])  # carries the news of e-1's commit
            await server.commit(["e-2"])
            prefix = server.profiles.prefix
            return [redis_client.pttl(f"{prefix}claim:{e}") for e in ("e-1", "e-2")]
        finally:
            server.close()

    committed, last = asyncio.run(scenario())
    assert 0 < committed <= CLAIM_SECONDS * 1000
    # Not yet known to be committed when it was written: kept as long as the profiles.
    assert last > settings.profiles.idle_ttl_seconds * 1000 - 60_000
