"""Servers sharing Redis share terminal risk: a label posted to any of them is counted once in
the labelled transaction's terminal profile, which every server's model reads."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import redis

from tests.api.conftest import settings_for
from vigil.api.schemas import FeedbackIn
from vigil.api.service import DecisionService
from vigil.domain import Transaction
from vigil.features import TerminalRisk
from vigil.profiles.redis_store import RedisProfileStore
from vigil.storage import Store

T0 = datetime(2024, 5, 1, 10, tzinfo=UTC)
HOUR = 3600.0
WEEK = 7 * 86400.0


@pytest.mark.parametrize("store", ["postgresql"], indirect=True)
def test_a_label_posted_to_one_server_counts_once_at_every_server(
    store: Store, redis_client: redis.Redis
) -> None:
    prefix = f"vigil-labels-test:{uuid.uuid4().hex[:12]}:"

    async def scenario() -> list[tuple[int, int]]:
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
            for i, server in enumerate(servers):  # one transaction at ATM-1 on each server
                server.decide(
                    [
                        Transaction(
                            event_id=f"e-{i}",
                            transaction_id=f"t-{i}",
                            type="withdrawal",
                            amount="50.00",
                            card_id=f"c-{i}",
                            terminal_id="ATM-1",
                            timestamp=T0 + timedelta(minutes=i),
                        )
                    ]
                )
                await server.sync()
            # The other server never saw e-0; a second label on it, at the decider, counts
            # nothing more (a transaction is fraud once).
            for server, label in ((other, "f-1"), (decider, "f-2")):
                await server.label(
                    FeedbackIn(
                        event_id=label,
                        target_event_id="e-0",
                        label="fraud",
                        timestamp=T0 + timedelta(hours=2),
                    )
                )
            now = (T0 + timedelta(days=2)).timestamp()
            return [
                server.engine.terminal_risk.counts(
                    server.profiles.get("terminal", "ATM-1"), now, WEEK
                )
                for server in servers
            ]
        finally:
            for server in servers:
                server.close()

    try:
        counts = asyncio.run(scenario())
    finally:
        RedisProfileStore(redis_client, prefix=prefix).clear()
    assert counts == [(2, 1), (2, 1)]  # both transactions, the label posted elsewhere, once
    assert [f.event_id for f in store.load_feedback("e-0")] == ["f-1", "f-2"]


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
