"""Property-based fuzz of every operation in the app's own OpenAPI document: never a 5xx.

Schemathesis generates requests (valid and invalid) from the document and runs them in process
against the app, which it starts with its lifespan (engine, recorder, key ring on a SQLite file).
A key holding every role is sent, so the fuzz reaches the routes' logic, not only the 401.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python import asgi

from tests.api.conftest import ROLES, make_app, seed
from vigil.storage import Store

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    store = Store(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'vigil.db'}")
    store.init_schema()
    seed(store)
    app = make_app(store, max_batch=20)
    key = app.state.keys.create("fuzz", ROLES)[0]
    yield app, key
    asgi.shutdown_lifespans()  # stop the app schemathesis started: commit, snapshot
    store.close()


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
