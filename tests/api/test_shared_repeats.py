"""Servers sharing Redis and the database answer a repeat with its first decision, whichever of
them took it and however late the repeat comes: the claim in Redis lapses after
``profiles.claim_ttl_seconds``, and then what each server knows of the log answers."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
import redis

from tests.api.conftest import settings_for
from vigil.api.service import DecisionService
from vigil.domain import Decision, Transaction
from vigil.profiles.redis_store import RedisProfileStore
from vigil.storage import Store

CLAIM_SECONDS = 1.0


def withdrawal(event_id: str) -> Transaction:
    return Transaction(
        event_id=event_id,
        transaction_id=f"t-{event_id}",
        type="withdrawal",
        amount="50.00",
        card_id="c-1",
        terminal_id="ATM-1",
        timestamp=datetime(2024, 5, 1, 10, tzinfo=UTC),
    )


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_a_repeat_after_its_claim_lapsed_gets_the_first_decision_at_another_server(
    store: Store, redis_client: redis.Redis
) -> None:
    prefix = f"vigil-repeats-test:{uuid.uuid4().hex[:12]}:"
    settings = settings_for(store)
    settings = settings.model_copy(
        update={"profiles": settings.profiles.model_copy(update={"claim_ttl_seconds": 1.0})}
    )

    async def scenario() -> tuple[Decision, Decision, int, int]:
        # Both started before the event is decided: neither read it from the log at its start.
        servers = [
            DecisionService(
                settings,
                store,
                profiles=RedisProfileStore(redis_client, settings.profiles, prefix=prefix),
            )
            for _ in range(2)
        ]
        for server in servers:
            server.start()
        first, other = servers
        try:
            decided = first.decide([withdrawal("e-1")])[0]
            await first.commit(["e-1"])
            await asyncio.sleep(CLAIM_SECONDS * 3)
            assert not redis_client.keys(f"{prefix}claim:*"), "the claim should have lapsed"
            again = other.decide([withdrawal("e-1")])[0]
            await other.commit(["e-1"])
            events_counted = other.profiles.get("card", "c-1").n
            return decided, again, events_counted, other.recorder.unrecorded
        finally:
            for server in servers:
                server.close()
            for key in redis_client.scan_iter(f"{prefix}*"):
                redis_client.delete(key)

    decided, again, events_counted, unrecorded = asyncio.run(scenario())
    assert again.decision_id == decided.decision_id
    assert events_counted == 1  # applied to the card's profile once
    assert unrecorded == 0
    assert store.get_decision("e-1").decision_id == decided.decision_id
