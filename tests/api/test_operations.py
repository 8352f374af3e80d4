"""What operators see of a running API: request ids (at the front door and through FastAPI),
structured log lines carrying them, one debug line per decision, Prometheus counters per reason
code and per rule (shadow rules included), the process collectors, and the Grafana dashboard
asking only for metrics that exist (docs/operations.md)."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import CHEAP_HASHER, seed, tx
from vigil import logs
from vigil.api.app import create_app
from vigil.api.request_id import MAX_LENGTH, new_request_id
from vigil.config import Settings
from vigil.storage import Store
from vigil.stream.worker import WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana" / "vigil.json"
RULES = """rules:
  - {name: big, condition: amount > 1000, score: 0.3}
  - {name: trial, condition: amount > 500, score: 0.9, shadow: true}
"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A started app on SQLite with a live and a shadow rule, and an ingest key's headers."""
    store = Store(f"sqlite:///{tmp_path / 'vigil.db'}")
    store.init_schema()
    seed(store)
    (tmp_path / "rules.yaml").write_text(RULES)
    settings = Settings(
        database_url=store.url,
        rules={"path": tmp_path / "rules.yaml", "poll_seconds": 3600},
        data_dir=tmp_path,
    )
    settings.api = settings.api.model_copy(update={"max_body_bytes": 4096})
    app = create_app(settings, store=store, hasher=CHEAP_HASHER)
    key = app.state.keys.create("ingest", ["ingest"])[0]
    with TestClient(app) as client:
        yield client, {"X-API-Key": key}
    store.close()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """vigil's logs as JSON lines, at debug level, into a buffer."""
    out = io.StringIO()
    logs.configure("debug", json=True, stream=out)
    yield out
    logs.reset()


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


# -- request ids ----------------------------------------------------------------------------


def test_the_front_door_answers_with_the_callers_request_id_or_one_it_made(served) -> None:
    client, key = served
    assert client.app.direct is not None  # type: ignore[attr-defined]
    given = client.post("/v1/transactions", json=tx("r-1"), headers={**key, "X-Request-ID": "c-7"})
    assert given.status_code == 200 and given.headers["x-request-id"] == "c-7"
    made = [client.post("/v1/transactions", json=tx(f"r-{i}", i), headers=key) for i in (2, 3)]
    ids = [answer.headers["x-request-id"] for answer in made]
    assert all(re.fullmatch(r"[0-9a-f]{12}-[0-9a-f]+", i) for i in ids) and len(set(ids)) == 2
    # Errors answered at the door carry it too.
    unkeyed = client.post("/v1/transactions", json=tx("r-4"), headers={"X-Request-ID": "c-8"})
    assert unkeyed.status_code == 401 and unkeyed.headers["x-request-id"] == "c-8"
    big = client.post(
        "/v1/transactions", content=b" " * 5000, headers={**key, "X-Request-ID": "c-9"}
    )
    assert big.status_code == 413 and big.headers["x-request-id"] == "c-9"
    # An id too long to put in every log line is replaced.
    long = client.post(
        "/v1/transactions",
        json=tx("r-5", 5),
        headers={**key, "X-Request-ID": "x" * (MAX_LENGTH + 1)},
    )
    assert long.status_code == 200 and long.headers["x-request-id"] != "x" * (MAX_LENGTH + 1)


def test_every_other_route_has_a_request_id_too(served) -> None:
    client, key = served
    for path in ("/health", "/metrics", "/nowhere"):
        assert client.get(path, headers={"X-Request-ID": "c-1"}).headers["x-request-id"] == "c-1"
        assert client.get(path).headers["x-request-id"]
    # With the front door aside (OpenTelemetry set up), FastAPI's route answers with it.
    client.app.direct = None  # type: ignore[attr-defined]
    answer = client.post("/v1/transactions", json=tx("f-1"), headers={**key, "X-Request-ID": "c-2"})
    assert answer.status_code == 200 and answer.headers["x-request-id"] == "c-2"
    assert [v for k, v in answer.headers.multi_items() if k == "x-request-id"] == ["c-2"]


def test_made_request_ids_are_unique_and_cheap() -> None:
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert len({i.split(b"-")[0] for i in ids}) == 1  # one prefix per process, then a counter


# -- logs -----------------------------------------------------------------------------------


def test_each_decision_is_a_debug_line_with_its_request_id(served, log_lines) -> None:
    client, key = served
    answer = client.post(
        "/v1/transactions", json=tx("l-1", amount="2500.00"), headers={**key, "X-Request-ID": "c-3"}
    ).json()
    client.post("/v1/transactions", json=tx("l-1", amount="2500.00"), headers=key)  # a repeat
    lines = [line for line in _lines(log_lines) if line.get("logger") == "vigil.api.service"]
    decided, repeated = lines
    assert decided["event"] == "decided" and decided["level"] == "debug"
    assert decided["request_id"] == "c-3" and decided["timestamp"].endswith("Z")
    assert {
        k: decided[k] for k in ("decision_id", "event_id", "event_kind", "action", "score")
    } == {k: answer[k] for k in ("decision_id", "event_id", "event_kind", "action", "score")}
    assert decided["latency_us"] > 0
    assert repeated["event"] == "repeated" and repeated["request_id"] != "c-3"
    # Outside a request nothing is bound.
    logging.getLogger("vigil.test").warning("after")
    assert "request_id" not in _lines(log_lines)[-1]


def test_at_info_level_no_decision_is_logged(served) -> None:
    client, key = served
    out = io.StringIO()
    logs.configure("info", json=True, stream=out)
    try:
        assert client.post("/v1/transactions", json=tx("i-1"), headers=key).status_code == 200
        assert not logging.getLogger("vigil.api.service").isEnabledFor(logging.DEBUG)
    finally:
        logs.reset()
    assert '"decided"' not in out.getvalue()


# -- metrics --------------------------------------------------------------------------------


def _decide_with_reasons(client: TestClient, key: dict[str, str]) -> None:
    # The second withdrawal, 500 km from the first ten minutes later: impossible travel; both
    # are over the live rule's 1,000 and the shadow rule's 500.
    for event in (tx("m-1", 0), tx("m-2", 10, terminal_id="ATM-2")):
        assert client.post("/v1/transactions", json=event, headers=key).status_code == 200


def test_metrics_count_reasons_rule_hits_and_the_process(served) -> None:
    client, key = served
    _decide_with_reasons(client, key)
    text = client.get("/metrics").text
    assert 'vigil_reasons_total{code="rule:big"} 2.0' in text
    assert 'vigil_reasons_total{code="impossible_travel"} 1.0' in text
    assert 'vigil_rule_hits_total{rule="big",shadow="false"} 2.0' in text
    assert 'vigil_rule_hits_total{rule="trial",shadow="true"} 2.0' in text
    assert 'vigil_reasons_total{code="rule:trial"}' not in text  # a shadow hit is no reason
    for name in ("process_cpu_seconds_total", "python_gc_collections_total", "python_info"):
        assert re.search(rf"^{name}[{{ ]", text, re.M), name


# -- the Grafana dashboard ------------------------------------------------------------------

_SELECTED = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{")
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def _exposed(families: Iterable[Metric]) -> set[str]:
    """Every series name the families can show, whether or not they have samples yet."""
    names: set[str] = set()
    for family in families:
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def _queried(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, expression) of every target of every panel."""
    found = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            for target in inner.get("targets", []):
                found.append((inner["title"], target["expr"]))
    return found


def test_every_metric_the_dashboard_queries_exists(served) -> None:
    client, key = served
    _decide_with_reasons(client, key)
    exposed = _exposed(text_string_to_metric_families(client.get("/metrics").text))
    exposed |= _exposed(WorkerMetrics().registry.collect())
    dashboard = json.loads(DASHBOARD.read_text())
    queried = _queried(dashboard)
    assert len(queried) >= 15
    wanted = {
        "vigil_decisions_total",
        "vigil_decision_latency_seconds_bucket",
        "vigil_http_errors_total",
        "vigil_reasons_total",
        "vigil_rule_hits_total",
        "vigil_unrecorded_decisions_total",
        "vigil_stream_lag",
        "vigil_stream_decided_total",
        "vigil_stream_rejected_total",
    }
    names = set()
    for title, expr in queried:
        used = set(_SELECTED.findall(expr))
        assert used, f"{title}: {expr} selects no metric with {{...}}"
        assert used <= exposed, f"{title}: {sorted(used - exposed)} not in /metrics"
        names |= used
    assert wanted <= names
    assert {p["id"] for p in dashboard["panels"]} == set(range(1, len(dashboard["panels"]) + 1))
