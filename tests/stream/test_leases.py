"""Partition leases against the real NATS JetStream: a worker takes a free partition, never
one another worker holds, takes over one whose lease expired or was given back, and never dies
of a refused lease write, whatever error the server answers it with. Each test uses a bucket of
its own. Unreachable NATS skips, except under CI=true where it fails."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import nats
import pytest
from nats.js.api import KeyValueConfig
from nats.js.errors import APIError

from vigil.stream.leases import Leases

NATS_URL = os.environ.get("VIGIL_TEST_NATS_URL", "nats://127.0.0.1:4222")


def _with_bucket(test: Callable[[Any], Awaitable[None]], ttl: float = 1.0) -> None:
    async def run() -> None:
        try:
            nc = await nats.connect(NATS_URL, connect_timeout=3)
        except Exception as exc:
            if os.environ.get("CI") == "true":
                pytest.fail(f"NATS at {NATS_URL} is unreachable: {exc}")
            pytest.skip(f"NATS at {NATS_URL} is unreachable: {exc}")
        js = nc.jetstream()
        bucket = f"VIGIL_TEST_LEASES_{uuid.uuid4().hex[:8]}"
        kv = await js.create_key_value(config=KeyValueConfig(bucket=bucket, ttl=ttl, history=1))
        try:
            await test(kv)
        finally:
            await js.delete_key_value(bucket)
            await nc.close()

    asyncio.run(run())


def test_a_held_partition_is_not_taken_until_its_lease_expires() -> None:
    async def test(kv: Any) -> None:
        first, second = Leases(kv, "w1"), Leases(kv, "w2")
        assert await first.take(0) and await second.take(1)
        assert not await second.take(0)
        assert await first.renew() == []
        await asyncio.sleep(1.6)  # first stops renewing: its leases expire
        assert await second.take(0)
        assert await first.renew() == [0]  # refused: the lease is second's now
        assert first.held == {}

    _with_bucket(test)


def test_a_partition_given_back_is_taken_at_once() -> None:
    async def test(kv: Any) -> None:
        first, second = Leases(kv, "w1"), Leases(kv, "w2")
        assert await first.take(0)
        await first.release()  # the key is deleted: a tombstone, not an absence
        assert await second.take(0)

    _with_bucket(test, ttl=30.0)


def test_a_lease_write_refused_by_any_error_loses_the_partition_and_never_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The server's answer to a compare-and-set that lost on a key expired meanwhile, with no
    # error code the client maps to KeyWrongLastSequenceError: it ended a worker once.
    refused = APIError(code=400, description="wrong last sequence: 0")

    async def test(kv: Any) -> None:
        leases = Leases(kv, "w1")
        assert await leases.take(0)

        async def refuse(*args: Any, **kwargs: Any) -> int:
            raise refused

        monkeypatch.setattr(kv, "update", refuse)
        assert await leases.renew() == [0] and leases.held == {}
        monkeypatch.setattr(kv, "create", refuse)
        assert not await leases.take(1)

    _with_bucket(test, ttl=30.0)
