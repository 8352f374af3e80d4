"""An API on every backend: the embedded default (SQLite file, profiles in process), PostgreSQL
with profiles in process, and PostgreSQL with profiles in the real Redis (VIGIL_TEST_REDIS_URL,
default redis://127.0.0.1:6379/0, under a key prefix of its own, removed afterwards). Like
PostgreSQL, an unreachable Redis skips, except under CI=true where it fails.

Keys are real argon2 hashes with small cost parameters, so each test does not spend a quarter
of a second hashing; the default parameters are tested once in test_keys.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from vigil.api.app import create_app
from vigil.config import Settings
from vigil.domain import Card, Terminal, User
from vigil.profiles import ProfileStore
from vigil.profiles.redis_store import RedisProfileStore
from vigil.storage import Store

CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
ROLES = ("ingest", "analyst", "admin")


def settings_for(store: Store, **api: Any) -> Settings:
    settings = Settings(database_url=store.url)
    return settings.model_copy(update={"api": settings.api.model_copy(update=api)})


def seed(store: Store) -> None:
    """Reference data the events below refer to: two ATMs, one card and its user."""
    store.upsert_terminals(
        [
            Terminal(terminal_id="ATM-1", latitude=6.45, longitude=3.39),  # Lagos
            Terminal(terminal_id="ATM-2", latitude=9.07, longitude=7.49),  # Abuja, 500 km away
        ]
    )
    store.upsert_users([User(user_id="u-1", country="NG")])
    store.upsert_cards([Card(card_id="c-1", user_id="u-1", extract_limit=100_000)])


def tx(event_id: str, minute: int = 0, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "transaction_id": f"t-{event_id}",
        "timestamp": f"2024-05-01T10:{minute:02d}:00Z",
        "type": "withdrawal",
        "amount": "2500.00",
        "card_id": "c-1",
        "user_id": "u-1",
        "terminal_id": "ATM-1",
        **fields,
    }


def login(event_id: str, minute: int = 0, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "user_id": "u-1",
        "timestamp": f"2024-05-01T09:{minute:02d}:00Z",
        "country": "NG",
        **fields,
    }


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Redis is the production pairing of PostgreSQL: SQLite + Redis is not a deployment."""
    items[:] = [
        item
        for item in items
        if not (
            (spec := getattr(item, "callspec", None)) is not None
            and spec.params.get("store") == "sqlite"
            and spec.params.get("profiles") == "redis"
        )
    ]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.postgres)])
def profiles(request: pytest.FixtureRequest) -> Iterator[ProfileStore | None]:
    """None for the in-process default, or a Redis profile store under a fresh prefix."""
    if request.param == "memory":
        yield None
        return
    client: redis.Redis = request.getfixturevalue("redis_client")
    shared = RedisProfileStore(client, prefix=f"vigil-api-test:{uuid.uuid4().hex[:12]}:")
    yield shared
    shared.clear()


@dataclass
class Api:
    app: FastAPI
    client: TestClient
    store: Store
    keys: dict[str, str]
    profiles: ProfileStore | None = None

    def headers(self, *roles: str) -> dict[str, str]:
        return {"X-API-Key": self.keys["+".join(roles)]}


def make_app(store: Store, profiles: ProfileStore | None = None, **api: Any) -> FastAPI:
    return create_app(
        settings_for(store, **api), store=store, hasher=CHEAP_HASHER, profile_store=profiles
    )


@pytest.fixture
def api(store: Store, profiles: ProfileStore | None) -> Iterator[Api]:
    """A started app on ``store`` with one key per role and one holding all three."""
    seed(store)
    app = make_app(store, profiles, max_batch=5, max_body_bytes=4096)
    keys = {role: app.state.keys.create(role, [role])[0] for role in ROLES}
    keys["+".join(ROLES)] = app.state.keys.create("all", ROLES)[0]
    with TestClient(app) as client:
        yield Api(app, client, store, keys, profiles)
