"""Servers sharing Redis tell each other of new labels: the one that decided the labelled
transaction counts it in its terminal risk, whichever server the label was posted to."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis

from tests.api.conftest import settings_for
from vigil.api.service import DecisionService
from vigil.domain import Feedback, Transaction
from vigil.features import TerminalRisk
from vigil.profiles.redis_store import RedisProfileStore
from vigil.storage import Store

T0 = datetime(2024, 5, 1, 10, tzinfo=UTC)
HOUR = 3600.0


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_a_label_posted_to_one_server_counts_at_the_server_that_decided(
    store: Store, redis_client: redis.Redis
) -> None:
    prefix = f"vigil-labels-test:{uuid.uuid4().hex[:12]}:"

    async def scenario() -> tuple[tuple[int, int], tuple[int, int]]:
        servers = [
            DecisionService(
                settings_for(store), store, profiles=RedisProfileStore(redis_client, prefix=prefix)
            )
            for _ in range(2)
        ]
        for server in servers:  # as a served model reading terminal risk would give it
            server.engine.terminal_risk = TerminalRisk(label_delay=HOUR)
            server.start()
        decider, other = servers
        try:
            decider.decide(
                [
                    Transaction(
                        event_id="e-1",
                        transaction_id="t-1",
                        type="withdrawal",
                        amount="50.00",
                        card_id="c-1",
                        terminal_id="ATM-1",
                        timestamp=T0,
                    )
                ]
            )
            label = Feedback(
                event_id="f-1", target_event_id="e-1", label="fraud", timestamp=T0 + timedelta(1)
            )
            other.learn(label)  # the other server never saw e-1
            now = (T0 + timedelta(days=2)).timestamp()
            risk = decider.engine.terminal_risk
            for _ in range(200):
                if risk.counts("ATM-1", now, 7 * 86400.0)[1]:
                    break
                await asyncio.sleep(0.01)
            return risk.counts("ATM-1", now, 7 * 86400.0), other.engine.terminal_risk.counts(
                "ATM-1", now, 7 * 86400.0
            )
        finally:
            for server in servers:
                server.close()

    try:
        at_decider, at_other = asyncio.run(scenario())
    finally:
        RedisProfileStore(redis_client, prefix=prefix).clear()
    assert at_decider == (1, 1)  # its transaction, and the label posted elsewhere
    assert at_other == (0, 0)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_the_service_keeps_the_profile_store_it_is_given_even_empty(
    store: Store, redis_client: redis.Redis
) -> None:
    empty = RedisProfileStore(redis_client, prefix=f"vigil-empty-test:{uuid.uuid4().hex[:12]}:")
    assert len(empty) == 0  # falsy, which once made the service fall back to its own store
    service = DecisionService(settings_for(store), store, profiles=empty)
    try:
        assert service.profiles is empty
    finally:
        service.close()
