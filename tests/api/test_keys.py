"""API keys: hashed with argon2, verified once then cached, revocation honoured, CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from typer.testing import CliRunner

from tests.api.conftest import CHEAP_HASHER
from vigil.api.keys import KeyRing, Role
from vigil.cli import app
from vigil.storage import Store


class CountingHasher(PasswordHasher):
    """The real argon2 hasher, counting how often it verifies."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.verified = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verified += 1
        return super().verify(hash, password)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_only_an_argon2_hash_of_the_secret_is_stored(store: Store) -> None:
    ring = KeyRing(store)  # default argon2 parameters
    key, info = ring.create("core banking", ["ingest", "analyst"])
    assert info.roles == [Role.INGEST, Role.ANALYST]
    secret = key.split("_", 2)[2]
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(store.tables.api_keys))]
    assert len(rows) == 1 and rows[0]["key_id"] == info.key_id
    assert rows[0]["secret_hash"].startswith("$argon2id$")
    assert not any(secret in str(value) for value in rows[0].values())
    assert ring.verify(key).roles == frozenset({Role.INGEST, Role.ANALYST})


def test_a_key_is_verified_with_argon2_once_then_from_memory(store: Store) -> None:
    hasher, clock = CountingHasher(), Clock()
    ring = KeyRing(store, ttl=30, hasher=hasher, clock=clock)
    key, _ = ring.create("teller", ["ingest"])
    for _ in range(100):
        assert ring.verify(key) is not None
    assert hasher.verified == 1
    clock.now += 31  # past the ttl: the row is read again, the hash is not recomputed
    assert ring.verify(key) is not None and hasher.verified == 1
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert ring.verify(wrong) is None and ring.verify(wrong) is None
    assert hasher.verified == 2  # a wrong secret costs one argon2, not one per attempt


def test_revocation_elsewhere_takes_effect_within_the_ttl(store: Store) -> None:
    clock = Clock()
    server = KeyRing(store, ttl=30, hasher=CHEAP_HASHER, clock=clock)
    admin = KeyRing(store, hasher=CHEAP_HASHER)  # e.g. `vigil keys revoke` in another process
    key, info = admin.create("teller", ["ingest"])
    assert server.verify(key) is not None
    assert admin.revoke(info.key_id) is True and admin.revoke(info.key_id) is False
    assert server.verify(key) is not None  # cached: still trusted inside the ttl
    clock.now += 31
    assert server.verify(key) is None


def test_bad_names_and_roles_are_refused_naming_the_field(store: Store) -> None:
    ring = KeyRing(store, hasher=CHEAP_HASHER)
    with pytest.raises(ValueError, match=r"^roles: 'root'"):
        ring.create("x", ["root"])
    with pytest.raises(ValueError, match=r"^roles: give at least one"):
        ring.create("x", [])
    with pytest.raises(ValueError, match=r"^name:"):
        ring.create("  ", ["admin"])
    assert ring.list() == []


def test_keys_cli_prints_the_key_once_lists_and_revokes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    runner = CliRunner()
    created = runner.invoke(
        app, ["keys", "create", "--name", "ops", "--role", "ingest", "--role", "analyst", "-d", url]
    )
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    key_id = key.split("_")[1]
    ring = KeyRing(Store(url))
    assert ring.verify(key).roles == frozenset({Role.INGEST, Role.ANALYST})
    listed = runner.invoke(app, ["keys", "list", "-d", url])
    assert key_id in listed.stdout and key.split("_", 2)[2] not in listed.stdout
    assert runner.invoke(app, ["keys", "revoke", key_id, "-d", url]).exit_code == 0
    assert KeyRing(Store(url)).verify(key) is None
    assert runner.invoke(app, ["keys", "revoke", key_id, "-d", url]).exit_code == 1
    bad = runner.invoke(app, ["keys", "create", "--name", "x", "--role", "root", "-d", url])
    assert bad.exit_code != 0 and "roles" in bad.output
