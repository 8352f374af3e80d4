"""API keys: hashed with argon2, verified once then cached, revocation honoured, CLI."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from typer.testing import CliRunner

from tests.api.conftest import CHEAP_HASHER
from vigil.api.attempts import KeyThrottled
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


class SlowHasher(PasswordHasher):
    """argon2 as slow as production's (~0.3 s a check), without the CPU: a sleep."""

    def __init__(self, seconds: float) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.seconds = seconds

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        time.sleep(self.seconds)
        return super().verify(hash, password)


def _wrong(key: str, n: int) -> str:
    return key[:-4] + f"{n:04d}"


def test_wrong_secrets_never_delay_other_keys(store: Store) -> None:
    clock = Clock()
    ring = KeyRing(store, ttl=30, hasher=SlowHasher(0.3), clock=clock)
    target, _ = ring.create("target", ["ingest"])
    known, _ = ring.create("known", ["ingest"])
    fresh, _ = ring.create("fresh", ["ingest"])
    assert ring.verify(known) is not None
    clock.now += 31  # the known key's cache ran out: the next check reads its row again

    timings: dict[str, float] = {}

    def timed(name: str, key: str) -> None:
        started = time.perf_counter()
        assert ring.verify(key) is not None
        timings[name] = time.perf_counter() - started

    with ThreadPoolExecutor(max_workers=10) as pool:
        # Eight clients hammer one key id with wrong secrets, each check 0.3 s of "argon2".
        attacks = [pool.submit(ring.verify, _wrong(target, n), f"10.0.0.{n}") for n in range(8)]
        time.sleep(0.05)
        valid = [pool.submit(timed, "known", known), pool.submit(timed, "fresh", fresh)]
        for future in valid:
            future.result()
        assert all(a.result() is None for a in attacks)
    assert timings["known"] < 0.1, timings  # no argon2 to redo, no queue to wait in
    assert timings["fresh"] < 0.5, timings  # its own argon2 only, not eight others first


def test_failed_checks_are_limited_per_key_id_and_per_client(store: Store) -> None:
    hasher, clock = CountingHasher(), Clock()
    ring = KeyRing(store, hasher=hasher, clock=clock, max_failures=5, failure_window=60)
    key, info = ring.create("teller", ["ingest"])
    other, _ = ring.create("other", ["ingest"])
    unseen, _ = ring.create("unseen", ["ingest"])
    assert ring.verify(key, "10.0.0.1") is not None  # verified once: known to this ring
    for n in range(5):
        assert ring.verify(_wrong(key, n), f"10.0.1.{n}") is None
    assert hasher.verified == 6
    with pytest.raises(KeyThrottled) as throttled:
        ring.verify(_wrong(key, 99), "10.0.2.1")  # another address, the same key id
    assert throttled.value.retry_after == 60 and f"key {info.key_id}" in str(throttled.value)
    assert hasher.verified == 6  # refused before argon2
    clock.now += 31  # cache expired; the key verified before is still let through
    assert ring.verify(key, "10.0.0.1") is not None
    assert ring.verify(other, "10.0.0.1") is not None  # other key ids are not limited

    # One address trying many key ids is limited too, other addresses are not.
    for n in range(5):
        assert ring.verify(f"vgl_{n:016x}_" + "s" * 43, "10.9.9.9") is None
    with pytest.raises(KeyThrottled, match=r"client 10\.9\.9\.9"):
        ring.verify(unseen, "10.9.9.9")
    assert ring.verify(other, "10.9.9.9") is not None  # verified before: no argon2 to limit
    clock.now += 61  # the window passed
    assert ring.verify(unseen, "10.9.9.9") is not None


def test_the_api_answers_429_with_retry_after_once_a_key_id_fails_too_often(
    store: Store, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from tests.api.test_routes import assert_problem
    from vigil.api.app import create_app
    from vigil.config import Settings

    app = create_app(Settings(database_url=store.url, data_dir=tmp_path), store=store,
                     hasher=CHEAP_HASHER)  # fmt: skip
    key, info = app.state.keys.create("teller", ["analyst"])
    with TestClient(app) as client:
        for n in range(10):
            wrong = {"X-API-Key": _wrong(key, n)}
            assert_problem(client.get("/v1/risk-events", headers=wrong), 401)
        answer = client.get("/v1/risk-events", headers={"X-API-Key": _wrong(key, 99)})
        problem = assert_problem(answer, 429)
        assert int(answer.headers["Retry-After"]) == 60 and info.key_id in problem["detail"]
