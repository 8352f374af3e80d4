"""Property-based fuzz of every operation in the app's own OpenAPI document: never a 5xx.

Schemathesis generates requests (valid and invalid) from the document and runs them in process
against the app, which it starts with its lifespan (engine, recorder, key ring), on the
embedded default (a SQLite file, profiles in process) and on PostgreSQL with profiles in the
real Redis. A key holding every role is sent, so the fuzz reaches the routes' logic, not only
the 401.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python import asgi
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.api.conftest import ROLES, make_app, seed
from tests.conftest import postgres_url
from vigil.profiles.redis_store import RedisProfileStore
from vigil.storage import Store

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql+redis", marks=pytest.mark.postgres)],
)
def fuzz_app(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, str]]:
    profiles = schema_name = None
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'vigil.db'}")
    else:
        admin = request.getfixturevalue("postgres_admin")
        schema_name = f"vigil_fuzz_{uuid.uuid4().hex[:12]}"
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema_name}"'))
        url = make_url(postgres_url()).update_query_dict(
            {"options": f"-csearch_path={schema_name}"}
        )
        store = Store(url.render_as_string(hide_password=False))
        client = request.getfixturevalue("redis_client")
        profiles = RedisProfileStore(client, prefix=f"vigil-fuzz:{uuid.uuid4().hex[:12]}:")
    store.init_schema()
    seed(store)
    app = make_app(store, profiles, max_batch=20)
    key = app.state.keys.create("fuzz", ROLES)[0]
    yield app, key
    asgi.shutdown_lifespans()  # stop the app schemathesis started: commit, snapshot
    store.close()
    if profiles is not None:
        profiles.clear()
    if schema_name is not None:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema_name}" CASCADE'))


@pytest.fixture(scope="module")
def api_schema(fuzz_app: tuple[Any, str]) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app[0])


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_operation_answers_with_a_server_error(case: Any, fuzz_app: tuple[Any, str]) -> None:
    response = case.call(headers={"X-API-Key": fuzz_app[1]})
    assert response.status_code < 500, (case.method, case.path, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"] == ["application/problem+json"], response.text
