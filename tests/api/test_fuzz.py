"""Property-based fuzz of every operation in the app's own OpenAPI document, with every
schemathesis check: never a 5xx, and every answer as documented (status codes, problem+json
content type, headers such as Allow, response schemas), invalid input refused and valid input
accepted.

Valid input is what the document describes; for three operations it cannot describe all the
API checks (a rule file's YAML must compile against the detectors; a transaction's
``started_at`` must not follow its ``timestamp``, and its amount must suit its phase, type and
currency), so there a 422 naming the field is the documented answer to schema-valid input and
the positive-data check alone is left out (:data:`SEMANTIC_BODIES`).

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
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.api.conftest import ROLES, make_app, seed
from tests.conftest import postgres_url
from vigil.api.deps import API_KEY_SCHEME
from vigil.profiles.redis_store import RedisProfileStore
from vigil.storage import Store

# Operations whose bodies the API checks beyond what JSON Schema can say (module docstring).
SEMANTIC_BODIES = frozenset(
    {"POST /v1/admin/rules/check", "PUT /v1/admin/rules", "POST /v1/transactions"}
)


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


def test_no_operation_answers_with_a_server_error(fuzz_app: tuple[Any, str]) -> None:
    app, key = fuzz_app
    # The key as the document's ApiKey scheme, so schemathesis knows it is the credential:
    # a request it makes without (or with a wrong) key is meant to be refused.
    config = SchemathesisConfig.from_dict({"auth": {"openapi": {API_KEY_SCHEME: {"api_key": key}}}})
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    documented = sum(len(methods) for methods in app.openapi()["paths"].values())
    assert len(operations) == documented > 0  # every documented operation is fuzzed
    for operation in operations:
        fuzz_operation(operation, GenerationMode.POSITIVE)
        if any(operation.iter_parameters()) or operation.body:  # something to make invalid
            fuzz_operation(operation, GenerationMode.NEGATIVE)


def fuzz_operation(operation: Any, mode: GenerationMode) -> None:
    """Valid (positive) or invalid (negative) requests for one operation, never a 5xx."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=20,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        excluded = [positive_data_acceptance] if operation.label in SEMANTIC_BODIES else []
        response = case.call_and_validate(excluded_checks=excluded)
        label = (mode.value, case.method, case.formatted_path, response.text)
        assert response.status_code < 500, label
        if response.status_code >= 400:
            assert response.headers["content-type"] == ["application/problem+json"], label

    check()
