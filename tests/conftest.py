"""Fixtures shared across the test suite: a ``store`` on every storage backend, the real Redis.

PostgreSQL tests use ``VIGIL_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/test``), each in a fresh schema of its own; Redis tests
``VIGIL_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``). When a server is unreachable
its tests skip, except under ``CI=true`` where they fail: CI must test every backend.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.engine import make_url

from vigil.storage import Store, normalise_url

# The tests run on synthetic data with the published development privacy keys: a development
# setup, for every command they run and every process those start. Tests of the refusal unset it.
os.environ["VIGIL_DEV"] = "1"

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = os.environ.get("VIGIL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _unreachable(message: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def postgres_url() -> str:
    return normalise_url(os.environ.get("VIGIL_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL))


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """An engine on the test database, for creating and dropping per-test schemas."""
    url = postgres_url()
    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        engine.dispose()
        shown = make_url(url).render_as_string(hide_password=True)
        _unreachable(f"PostgreSQL at {shown} is unreachable (set VIGIL_TEST_POSTGRES_URL): {exc}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def redis_client() -> Iterator[redis.Redis]:
    """A client of the real Redis; tests keep to a key prefix of their own and remove it."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        _unreachable(f"Redis at {REDIS_URL} is unreachable (set VIGIL_TEST_REDIS_URL): {exc}")
    yield client
    client.close()


@pytest.fixture
def redis_database(redis_client: redis.Redis) -> Iterator[Callable[[int], str]]:
    """Redis databases of a test's own, by number, emptied before it uses them and after: for
    processes the test starts, which use vigil's default key prefix."""
    used: list[str] = []

    def url(number: int) -> str:
        database = REDIS_URL.rsplit("/", 1)[0] + f"/{number}"
        redis.Redis.from_url(database).flushdb()
        used.append(database)
        return database

    yield url
    for database in used:
        redis.Redis.from_url(database).flushdb()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An initialised, empty Store: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        sqlite_store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
        sqlite_store.init_schema()
        yield sqlite_store
        sqlite_store.close()
        return
    with postgres_store(request.getfixturevalue("postgres_admin")) as pg_store:
        yield pg_store


@contextmanager
def postgres_store(admin: Engine) -> Iterator[Store]:
    """An initialised Store in a fresh PostgreSQL schema of its own, dropped afterwards."""
    schema = f"vigil_test_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_url()).update_query_dict({"options": f"-csearch_path={schema}"})
    pg_store = Store(url.render_as_string(hide_password=False))
    try:
        pg_store.init_schema()
        yield pg_store
    finally:
        pg_store.close()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture
def other_postgres_store(postgres_admin: Engine) -> Iterator[Store]:
    """A second PostgreSQL store, beside ``store``, for comparing two runs."""
    with postgres_store(postgres_admin) as pg_store:
        yield pg_store


def table_dump(store: Store) -> str:
    """Every value of every row of every table, as text: what a person must be absent from."""
    parts = []
    with store.engine.connect() as conn:
        for table in store.tables.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                parts.extend(repr(v) for v in row)
    return "\n".join(parts)
