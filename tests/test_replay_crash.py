"""``vigil replay`` killed with SIGKILL mid-run, then run again, ends exactly where an
uninterrupted replay ends: the same decisions on every event, byte-identical profiles.

A real ``vigil replay`` process over a generated bank (about 11,800 events); the kill comes
once its first chunk is committed, while it decides the next one. On the embedded default
(SQLite, profiles in process) and on PostgreSQL with profiles in Redis, where profiles are
written as each event is decided, before its chunk is committed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from vigil.cli import app
from vigil.profiles.redis_store import RedisProfileStore
from vigil.storage import Store

VIGIL = [sys.executable, "-c", "from vigil.cli import app; app()"]


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from typer.testing import CliRunner

    out = tmp_path_factory.mktemp("bank")
    generated = CliRunner().invoke(
        app, ["generate", "--out", str(out), "--cards", "300", "--days", "20"]
    )
    assert generated.exit_code == 0, generated.output
    return out


def _replay(bank: Path, url: str, profiles: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env["VIGIL_DEV"] = "1"  # synthetic data: the development privacy keys will do
    if profiles is not None:
        env["VIGIL_PROFILES_URL"] = profiles
    return subprocess.Popen(
        [
            *VIGIL,
            "replay",
            str(bank / "events.parquet"),
            "--bank",
            str(bank),
            "--feedback",
            str(bank / "feedback.csv"),
            "--database",
            url,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _finished(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    output = process.communicate(timeout=600)[0].decode()
    assert process.returncode == 0, output[-3000:]
    return json.loads(output.strip().splitlines()[-1])


def _decided(store: Store) -> int:
    try:
        return store.counts()["decisions"]
    except OperationalError:  # SQLite busy, or the schema not there yet
        return 0


def _decisions(store: Store) -> dict[str, tuple[Any, ...]]:
    d = store.tables.decisions
    with store.engine.connect() as conn:
        rows = conn.execute(select(d.c.event_id, d.c.action, d.c.score, d.c.reasons))
        return {event_id: (action, score, reasons) for event_id, action, score, reasons in rows}


def _profiles(store: Store, profiles_url: str | None) -> dict[tuple[str, str], bytes]:
    if profiles_url is None:
        return {(kind, key): data for kind, key, data in store.load_profiles()}
    shared = RedisProfileStore.from_url(profiles_url)
    return {(kind, key): profile.to_bytes() for kind, key, profile in shared.items()}


@pytest.fixture
def redis_dbs(redis_database: Callable[[int], str]) -> tuple[str, str]:
    """Two Redis databases of this test's own, empty: one per replay."""
    return redis_database(11), redis_database(12)


@pytest.fixture
def second_store(request: pytest.FixtureRequest, store: Store, tmp_path: Path) -> Store:
    """Another empty store on the same backend, for the uninterrupted run."""
    if store.dialect == "sqlite":
        other = Store(f"sqlite:///{tmp_path / 'whole.db'}")
        other.init_schema()
        return other
    return request.getfixturevalue("other_postgres_store")


@pytest.mark.parametrize(
    "store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_a_replay_killed_mid_run_and_run_again_ends_as_an_uninterrupted_one(
    bank: Path, store: Store, second_store: Store, request: pytest.FixtureRequest
) -> None:
    shared = request.getfixturevalue("redis_dbs") if store.dialect != "sqlite" else (None, None)
    whole = _finished(_replay(bank, second_store.url, shared[0]))

    first = _replay(bank, store.url, shared[1])
    deadline = time.monotonic() + 300
    while _decided(store) < 5_000 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, "the replay ended before it could be killed"
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=30)
    done_before = _decided(store)
    assert 0 < done_before < whole["events"]

    rerun = _finished(_replay(bank, store.url, shared[1]))
    assert rerun["duplicates"] == done_before
    assert rerun["events"] + done_before == whole["events"]

    assert _decisions(store) == _decisions(second_store)
    profiles, again = _profiles(second_store, shared[0]), _profiles(store, shared[1])
    assert again.keys() == profiles.keys()
    differing = [key for key in profiles if again[key] != profiles[key]]
    assert not differing, f"{len(differing)} of {len(profiles)} profiles differ"
