"""Every route, role and error of the API, on SQLite and on PostgreSQL (the ``api`` fixture)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import ROLES, Api, login, make_app, tx
from vigil.api.schemas import ProfileView, RiskEventPage
from vigil.domain import Decision
from vigil.profiles.store import PENDING
from vigil.storage import Store

PROBLEM = "application/problem+json"

# (method, path, body, the one role that may call it)
ROUTES: list[tuple[str, str, Any, str]] = [
    ("POST", "/v1/transactions", tx("r-1"), "ingest"),
    ("POST", "/v1/logins", login("r-2"), "ingest"),
    ("POST", "/v1/feedback", {"target_event_id": "nope", "label": "fraud"}, "analyst"),
    ("GET", "/v1/decisions/nope", None, "analyst"),
    ("GET", "/v1/risk-events", None, "analyst"),
    ("GET", "/v1/risk-events/1", None, "analyst"),
    ("PATCH", "/v1/risk-events/1", {"note": "x"}, "analyst"),
    ("GET", "/v1/profiles/card/nope", None, "analyst"),
    ("GET", "/v1/admin/keys", None, "admin"),
    ("POST", "/v1/admin/keys", {"name": "x", "roles": ["ingest"]}, "admin"),
    ("DELETE", "/v1/admin/keys/0123456789abcdef", None, "admin"),
]


def call(api: Api, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return api.client.request(method, path, json=body, headers=headers)


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    if field is not None:
        assert field in [e["field"] for e in problem["errors"]], problem
    return problem


# -- access control -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body", "role"), ROUTES)
def test_every_route_refuses_a_missing_or_invalid_key_with_401(
    api: Api, method: str, path: str, body: Any, role: str
) -> None:
    assert_problem(call(api, method, path, body, {}), 401)
    forged = "vgl_0123456789abcdef_" + "A" * 43
    for key in ("nonsense", forged, api.keys[role] + "x"):
        response = call(api, method, path, body, {"X-API-Key": key})
        assert_problem(response, 401)
        assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize(("method", "path", "body", "role"), ROUTES)
def test_every_route_refuses_the_wrong_role_with_403_and_admits_its_own(
    api: Api, method: str, path: str, body: Any, role: str
) -> None:
    for other in ROLES:
        response = call(api, method, path, body, api.headers(other))
        if other == role:
            assert response.status_code not in (401, 403), response.text
        else:
            problem = assert_problem(response, 403)
            assert role in problem["detail"]


def test_health_and_metrics_need_no_key(api: Api) -> None:
    health = api.client.get("/health")
    assert health.status_code == 200
    assert health.json()["status"] == "ok"
    assert health.json()["database"] == api.store.dialect
    assert api.client.get("/metrics").status_code == 200


def test_a_revoked_key_is_refused_at_once(api: Api) -> None:
    created = api.client.post(
        "/v1/admin/keys", json={"name": "teller", "roles": ["ingest"]}, headers=api.headers("admin")
    )
    assert created.status_code == 201
    key, key_id = created.json()["key"], created.json()["key_id"]
    assert api.client.post("/v1/logins", json=login("k-1"), headers={"X-API-Key": key}).is_success
    listed = api.client.get("/v1/admin/keys", headers=api.headers("admin")).json()
    assert next(k for k in listed if k["key_id"] == key_id)["revoked_at"] is None
    assert all("key" not in k and "secret_hash" not in k for k in listed)
    revoked = api.client.delete(f"/v1/admin/keys/{key_id}", headers=api.headers("admin"))
    assert revoked.status_code == 204
    assert_problem(
        api.client.post("/v1/logins", json=login("k-2"), headers={"X-API-Key": key}), 401
    )
    again = api.client.delete(f"/v1/admin/keys/{key_id}", headers=api.headers("admin"))
    assert_problem(again, 404)


def test_key_creation_names_a_bad_role(api: Api) -> None:
    response = api.client.post(
        "/v1/admin/keys", json={"name": "x", "roles": ["root"]}, headers=api.headers("admin")
    )
    assert_problem(response, 422, "roles[0]")


# -- decisions ------------------------------------------------------------------------------


def test_one_transaction_gets_one_decision(api: Api) -> None:
    response = api.client.post("/v1/transactions", json=tx("d-1"), headers=api.headers("ingest"))
    assert response.status_code == 200
    decision = response.json()
    assert decision["event_id"] == "d-1" and decision["event_kind"] == "transaction"
    assert decision["action"] == "allow" and decision["score"] == 0.0
    assert len(decision["decision_id"]) == 32 and decision["latency_us"] > 0


def test_a_batch_gets_decisions_in_order_and_flags_impossible_travel(api: Api) -> None:
    batch = [tx("b-1", 0), tx("b-2", 5, terminal_id="ATM-2")]
    response = api.client.post("/v1/transactions", json=batch, headers=api.headers("ingest"))
    assert response.status_code == 200
    first, second = response.json()
    assert (first["event_id"], second["event_id"]) == ("b-1", "b-2")
    assert first["action"] == "allow"
    assert second["action"] == "block" and second["score"] >= 0.9
    assert [r["code"] for r in second["reasons"]] == ["impossible_travel"]


def test_the_decision_routes_answer_alike_through_fastapis_layers(api: Api) -> None:
    """With OpenTelemetry set up the front door stands aside (``direct`` is None) and FastAPI
    routes the decisions: the same answers, errors and headers as at the front door."""
    headers = api.headers("ingest")

    def exchange(suffix: str) -> list[Any]:
        one = api.client.post("/v1/transactions", json=tx(f"f-{suffix}"), headers=headers)
        batch = api.client.post(
            "/v1/logins",
            json=[login(f"f-l-{suffix}", 1), login(f"f-m-{suffix}", 2)],
            headers=headers,
        )
        unkeyed = api.client.post("/v1/logins", json=login(f"f-n-{suffix}"))
        big = api.client.post("/v1/logins", content=b" " * 5000, headers=headers)
        bad = api.client.post(
            "/v1/logins", json={**login(f"f-o-{suffix}"), "success": "x"}, headers=headers
        )
        return [
            (one.status_code, one.headers["content-type"], sorted(one.json())),
            (batch.status_code, [d["event_id"].removesuffix(suffix) for d in batch.json()]),
            (unkeyed.status_code, unkeyed.headers["www-authenticate"]),
            (big.status_code, big.json()["detail"]),
            (bad.status_code, [e["field"] for e in bad.json()["errors"]]),
        ]

    assert api.app.direct is not None
    at_the_door = exchange("a")
    api.app.direct = None
    assert exchange("b") == at_the_door
    assert at_the_door[0][:2] == (200, "application/json")
    assert [code for code, *_ in at_the_door] == [200, 200, 401, 413, 422]


def test_logins_single_and_batch(api: Api) -> None:
    one = api.client.post("/v1/logins", json=login("l-1"), headers=api.headers("ingest"))
    assert one.status_code == 200 and one.json()["event_kind"] == "login"
    many = api.client.post(
        "/v1/logins", json=[login("l-2", 1), login("l-3", 2)], headers=api.headers("ingest")
    )
    assert [d["event_id"] for d in many.json()] == ["l-2", "l-3"]


def test_a_repeated_event_id_gets_its_first_decision_only_for_the_same_event(api: Api) -> None:
    headers = api.headers("ingest")
    first = api.client.post("/v1/transactions", json=tx("i-1"), headers=headers).json()
    again = api.client.post("/v1/transactions", json=tx("i-1"), headers=headers).json()
    assert again == first
    in_batch = api.client.post("/v1/transactions", json=[tx("i-1"), tx("i-2", 1)], headers=headers)
    assert in_batch.json()[0] == first
    # The same id with another event: another client's decision is never given away.
    other = api.client.post("/v1/transactions", json=tx("i-1", amount="999999.00"), headers=headers)
    assert other.status_code == 409
    assert other.json()["errors"][0]["field"] == "event_id"
    across_kinds = api.client.post("/v1/logins", json=login("i-1"), headers=headers)
    assert across_kinds.status_code == 409
    assert first["decision_id"] not in other.text + across_kinds.text
    assert api.store.counts()["decisions"] == 2


def test_idempotency_holds_across_a_restart_on_the_same_database(api: Api) -> None:
    headers = api.headers("ingest")
    first = api.client.post("/v1/transactions", json=tx("x-1"), headers=headers).json()
    api.client.__exit__(None, None, None)  # stop the first app: commit, checkpoint profiles
    restarted = make_app(Store(api.store.url), api.profiles)
    restarted_key = restarted.state.keys.create("again", ["ingest", "analyst"])[0]
    with TestClient(restarted) as client:
        h = {"X-API-Key": restarted_key}
        again = client.post("/v1/transactions", json=tx("x-1"), headers=h)
        assert again.json() == first  # found in the database, compared with the stored event
        changed = client.post("/v1/transactions", json=tx("x-1", amount="1.00"), headers=h)
        later = client.post("/v1/transactions", json=tx("x-1", minute=59), headers=h)
        assert changed.status_code == later.status_code == 409
        # the profile survived the restart: the card has one withdrawal, not two
        profile = client.get("/v1/profiles/card/c-1", headers=h).json()
        assert profile["events"] == 1
        fresh = client.post("/v1/transactions", json=tx("x-2", 1), headers=h).json()
        assert fresh["decision_id"] != first["decision_id"]
        assert client.get("/v1/profiles/card/c-1", headers=h).json()["events"] == 2
    assert api.store.counts()["decisions"] == 2


def test_a_decision_is_committed_before_it_is_answered(api: Api) -> None:
    answer = api.client.post("/v1/logins", json=login("bg-1"), headers=api.headers("ingest"))
    assert api.store.get_decision("bg-1").decision_id == answer.json()["decision_id"]
    batch = [login(f"bg-{i}", i) for i in range(2, 6)]
    answers = api.client.post("/v1/logins", json=batch, headers=api.headers("ingest")).json()
    stored = api.store.get_decisions([d["event_id"] for d in answers])
    assert [stored[d["event_id"]].decision_id for d in answers] == [
        d["decision_id"] for d in answers
    ]


def test_amounts_the_store_cannot_hold_exactly_are_422_naming_amount(api: Api) -> None:
    headers = api.headers("ingest")
    for amount, currency in (("10.001", "NGN"), ("10.5", "JPY"), ("1e13", "NGN")):
        answer = api.client.post(
            "/v1/transactions", json=tx("a-1", amount=amount, currency=currency), headers=headers
        )
        assert answer.status_code == 422, (amount, answer.text)
        assert answer.json()["errors"][0]["field"] == "amount", answer.text
    ok = api.client.post("/v1/transactions", json=tx("a-1", amount="10.10"), headers=headers)
    assert ok.status_code == 200 and api.store.counts()["decisions"] == 1


# -- errors on the decision routes ------------------------------------------------------------


def test_a_bad_field_is_named_in_a_422_problem(api: Api) -> None:
    headers = api.headers("ingest")
    bad = {**tx("e-1"), "amount": "-5"}
    problem = assert_problem(
        api.client.post("/v1/transactions", json=bad, headers=headers), 422, "amount"
    )
    assert problem["type"] == "urn:vigil:problem:invalid-request"
    missing = {k: v for k, v in tx("e-2").items() if k != "timestamp"}
    assert_problem(
        api.client.post("/v1/transactions", json=missing, headers=headers), 422, "timestamp"
    )
    # a model-level rule still names its field
    no_amount = {**tx("e-3"), "amount": None}
    assert_problem(
        api.client.post("/v1/transactions", json=no_amount, headers=headers), 422, "amount"
    )
    assert_problem(
        api.client.post("/v1/logins", json=login("e-4", country="Nigeria"), headers=headers),
        422,
        "country",
    )


def test_a_batch_with_one_bad_event_is_refused_whole(api: Api) -> None:
    headers = api.headers("ingest")
    batch = [tx("h-1"), {**tx("h-2", 1), "type": "teleport"}]
    assert_problem(
        api.client.post("/v1/transactions", json=batch, headers=headers), 422, "[1].type"
    )
    assert api.client.get("/v1/decisions/h-1", headers=api.headers("analyst")).status_code == 404


def test_malformed_json_and_empty_batches_are_422(api: Api) -> None:
    headers = {**api.headers("ingest"), "content-type": "application/json"}
    assert_problem(
        api.client.post("/v1/logins", content=b"{not json", headers=headers), 422, "body"
    )
    assert_problem(api.client.post("/v1/logins", content=b"[]", headers=headers), 422, "body")


def test_too_large_a_batch_or_body_is_413(api: Api) -> None:
    headers = api.headers("ingest")
    batch = [login(f"big-{i}", i) for i in range(6)]  # the fixture allows 5
    assert_problem(api.client.post("/v1/logins", json=batch, headers=headers), 413)
    huge = b'{"event_id": "' + b"x" * 5000 + b'"}'  # the fixture allows 4096 bytes
    assert_problem(api.client.post("/v1/logins", content=huge, headers=headers), 413)

    def chunks() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b" " * 1000

    assert_problem(api.client.post("/v1/logins", content=chunks(), headers=headers), 413)


# -- reading ------------------------------------------------------------------------------------


def test_a_decision_is_found_by_decision_id_and_by_event_id(api: Api) -> None:
    decided = api.client.post(
        "/v1/transactions", json=tx("g-1"), headers=api.headers("ingest")
    ).json()
    headers = api.headers("analyst")
    by_id = api.client.get(f"/v1/decisions/{decided['decision_id']}", headers=headers)
    by_event = api.client.get("/v1/decisions/g-1", headers=headers)
    assert by_id.json() == by_event.json() == decided
    assert_problem(api.client.get("/v1/decisions/never", headers=headers), 404)


def test_risk_events_are_filtered_and_paginated(api: Api) -> None:
    ingest, analyst = api.headers("ingest"), api.headers("analyst")
    # four trips between Lagos and Abuja five minutes apart: three impossible-travel flags
    batch = [tx(f"p-{i}", 5 * i, terminal_id=f"ATM-{1 + i % 2}") for i in range(4)]
    actions = [
        d["action"] for d in api.client.post("/v1/transactions", json=batch, headers=ingest).json()
    ]
    flagged = [f"p-{i}" for i, a in enumerate(actions) if a != "allow"]
    assert len(flagged) == 3
    page = api.client.get("/v1/risk-events", params={"limit": 2}, headers=analyst).json()
    assert [r["event_id"] for r in page["items"]] == flagged[::-1][:2]  # newest first
    assert page["next_offset"] == 2
    rest = api.client.get(
        "/v1/risk-events", params={"limit": 2, "offset": 2}, headers=analyst
    ).json()
    assert [r["event_id"] for r in rest["items"]] == [flagged[0]] and rest["next_offset"] is None
    filters = {
        "card_id": "c-1",
        "user_id": "u-1",
        "reason": "impossible_travel",
        "since": "2024-05-01T10:05:00Z",
        "until": "2024-05-01T10:15:00Z",
    }
    found = api.client.get("/v1/risk-events", params=filters, headers=analyst).json()
    assert [r["event_id"] for r in found["items"]] == ["p-2", "p-1"]
    assert all(r["reason_codes"] == ["impossible_travel"] for r in found["items"])
    for nothing in ({"card_id": "c-9"}, {"reason": "velocity"}, {"action": "step_up"}):
        assert (
            api.client.get("/v1/risk-events", params=nothing, headers=analyst).json()["items"] == []
        )
    assert_problem(
        api.client.get("/v1/risk-events", params={"limit": 0}, headers=analyst), 422, "limit"
    )
    assert_problem(
        api.client.get("/v1/risk-events", params={"action": "shrug"}, headers=analyst),
        422,
        "action",
    )
    assert_problem(
        api.client.get("/v1/risk-events", params={"since": "2024-05-01T10:00:00"}, headers=analyst),
        422,
        "since",
    )


def test_a_profile_shows_windows_amounts_seen_values_and_location(api: Api) -> None:
    batch = [tx("v-1", 0, amount="1000.00"), tx("v-2", 30, amount="3000.00")]
    api.client.post("/v1/transactions", json=batch, headers=api.headers("ingest"))
    api.client.post(
        "/v1/logins", json=login("v-3", device_id="dev-1"), headers=api.headers("ingest")
    )
    headers = api.headers("analyst")
    card = api.client.get("/v1/profiles/card/c-1", headers=headers).json()
    assert card["events"] == 2
    assert card["windows"]["1h"]["withdrawal"] == {"count": 2, "amount": 4000.0}
    stats = card["amounts"]["withdrawal"]
    assert (stats["n"], stats["mean"], stats["min"], stats["max"]) == (2, 2000.0, 1000.0, 3000.0)
    assert card["seen"]["terminal"] == [
        {
            "value": "ATM-1",
            "count": 2,
            "first_seen": "2024-05-01T10:00:00Z",
            "last_seen": "2024-05-01T10:30:00Z",
        }
    ]
    assert card["last_location"]["latitude"] == 6.45
    assert card["last_seen"] == "2024-05-01T10:30:00Z" and sum(card["hours"]) == 2
    # devices are profiled under a pseudonym; the raw fingerprint still finds the profile
    device = api.client.get("/v1/profiles/device/dev-1", headers=headers).json()
    assert device["events"] == 1 and device["id"] == "dev-1"
    user = api.client.get("/v1/profiles/user/u-1", headers=headers).json()
    assert user["windows"]["1d"]["login"]["count"] == 1
    assert_problem(api.client.get("/v1/profiles/card/c-404", headers=headers), 404)
    assert_problem(api.client.get("/v1/profiles/planet/c-1", headers=headers), 422, "entity")


def test_a_card_sent_by_its_number_is_kept_under_a_token_and_found_by_the_number(
    api: Api,
) -> None:
    pan = "4111111111111111"
    decided = api.client.post(
        "/v1/transactions", json=tx("pan-1", card_id=pan), headers=api.headers("ingest")
    ).json()
    assert decided["card_id"] != pan and decided["card_id"].startswith("~")
    headers = api.headers("analyst")
    card = api.client.get(f"/v1/profiles/card/{pan}", headers=headers).json()
    assert card["events"] == 1
    by_token = api.client.get(f"/v1/profiles/card/{decided['card_id']}", headers=headers).json()
    assert {**by_token, "id": pan} == card


def test_feedback_labels_an_event_by_event_or_decision_id_once(api: Api) -> None:
    decided = api.client.post(
        "/v1/transactions", json=tx("f-1"), headers=api.headers("ingest")
    ).json()
    headers = api.headers("analyst")
    body = {"event_id": "fb-1", "decision_id": decided["decision_id"], "label": "fraud"}
    first = api.client.post("/v1/feedback", json=body, headers=headers)
    assert first.status_code == 201
    assert first.json() == {
        "event_id": "fb-1",
        "target_event_id": "f-1",
        "decision_id": decided["decision_id"],
        "label": "fraud",
        "created": True,
    }
    again = api.client.post("/v1/feedback", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["created"] is False
    by_event = api.client.post(
        "/v1/feedback", json={"target_event_id": "f-1", "label": "legitimate"}, headers=headers
    )
    assert by_event.status_code == 201
    assert sorted(f.label.value for f in api.store.load_feedback("f-1")) == ["fraud", "legitimate"]
    assert_problem(
        api.client.post(
            "/v1/feedback", json={"target_event_id": "zz", "label": "fraud"}, headers=headers
        ),
        404,
    )
    assert_problem(
        api.client.post("/v1/feedback", json={"label": "fraud"}, headers=headers),
        422,
        "target_event_id",
    )
    assert_problem(
        api.client.post(
            "/v1/feedback", json={"target_event_id": "f-1", "label": "maybe"}, headers=headers
        ),
        422,
        "label",
    )


def test_metrics_count_decisions_by_action_and_errors(api: Api) -> None:
    batch = [tx("m-1", 0), tx("m-2", 5, terminal_id="ATM-2")]
    api.client.post("/v1/transactions", json=batch, headers=api.headers("ingest"))
    api.client.post("/v1/transactions", json={"event_id": "m-3"}, headers=api.headers("ingest"))
    api.client.post("/v1/transactions", json=tx("m-1", 0), headers=api.headers("ingest"))
    text = api.client.get("/metrics").text
    assert 'vigil_repeated_events_total{kind="transaction"} 1.0' in text  # not decided again
    assert 'vigil_decisions_total{action="allow",kind="transaction"} 1.0' in text
    assert 'vigil_decisions_total{action="block",kind="transaction"} 1.0' in text
    assert 'vigil_decision_latency_seconds_count{kind="transaction"} 2.0' in text
    assert 'vigil_http_errors_total{status="422"} 1.0' in text


def test_metrics_count_a_body_refused_as_too_large(api: Api) -> None:
    h = api.headers("ingest")
    declared = api.client.post("/v1/transactions", content=b"x" * 5000, headers=h)
    assert_problem(declared, 413)

    def chunks():  # no Content-Length: counted as it arrives
        yield b"x" * 3000
        yield b"x" * 3000

    assert_problem(api.client.post("/v1/transactions", content=chunks(), headers=h), 413)
    assert 'vigil_http_errors_total{status="413"} 2.0' in api.client.get("/metrics").text


def test_a_failure_while_deciding_is_a_logged_500_problem_and_serving_goes_on(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    service = api.app.state.service
    real = service.decide

    def broken(events):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service, "decide", broken)
    h = api.headers("ingest")
    failed = api.client.post("/v1/transactions", json=tx("x-1"), headers=h)
    assert_problem(failed, 500)
    assert "disk on fire" not in failed.text  # the cause is logged, not shown
    assert any("disk on fire" in str(r.exc_info) for r in caplog.records if r.exc_info)
    assert 'vigil_http_errors_total{status="500"} 1.0' in api.client.get("/metrics").text
    monkeypatch.setattr(service, "decide", real)
    assert api.client.post("/v1/transactions", json=tx("x-1"), headers=h).status_code == 200


def test_a_repeat_sent_while_another_process_decides_it_is_a_409(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    profiles = api.app.state.service.engine.profiles
    read = profiles.read

    def claimed(keys, claim=None):  # by another process, which never settles it
        return replace(read(keys), earlier=PENDING) if claim else read(keys)

    monkeypatch.setattr(profiles, "read", claimed)
    monkeypatch.setattr(profiles, "claim", lambda event_id: PENDING)
    answer = api.client.post("/v1/transactions", json=tx("busy"), headers=api.headers("ingest"))
    assert "being decided by another process" in assert_problem(answer, 409)["detail"]


def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    assert_problem(api.client.get("/v1/nowhere", headers=api.headers("analyst")), 404)
    assert_problem(api.client.get("/v1/transactions", headers=api.headers("ingest")), 405)
    # Without a key, no route is told apart from another: which exist is not given away.
    assert_problem(api.client.get("/v1/nowhere"), 401)


def test_the_openapi_document_has_examples_and_every_route(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    paths = doc["paths"]
    for path in (
        "/v1/transactions",
        "/v1/logins",
        "/v1/feedback",
        "/v1/decisions/{id}",
        "/v1/risk-events",
        "/v1/profiles/{entity}/{id}",
        "/v1/admin/keys",
        "/v1/admin/keys/{key_id}",
        "/health",
        "/metrics",
    ):
        assert path in paths
    body = paths["/v1/transactions"]["post"]["requestBody"]["content"]["application/json"]
    assert set(body["examples"]) == {"one", "batch"}
    assert body["schema"]["oneOf"][1]["maxItems"] == 5
    assert "Transaction" in doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
    assert paths["/v1/transactions"]["post"]["security"] == [{"ApiKey": ["ingest"]}]
    responses = paths["/v1/transactions"]["post"]["responses"]
    assert "application/problem+json" in responses["422"]["content"]
    # What the read routes answer comes with an example, valid against its own schema.
    schemas = doc["components"]["schemas"]
    for path, model in (
        ("/v1/decisions/{id}", Decision),
        ("/v1/risk-events", RiskEventPage),
        ("/v1/profiles/{entity}/{id}", ProfileView),
    ):
        ok = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok["$ref"].endswith("/" + model.__name__)
        (example,) = schemas[model.__name__]["examples"]
        model.model_validate(example)


def test_a_key_without_the_routes_role_gets_403_before_its_malformed_body_is_read(
    api: Api,
) -> None:
    """Issue 18: a valid key lacking the route's role, with a malformed body, got 422."""
    import re

    # Every operation the app documents (an undocumented /v1/ route is 401 to every key).
    routes = [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in api.app.openapi()["paths"].items()
        if path.startswith("/v1/")
        for method in operations
        if method in ("get", "put", "post", "patch", "delete")
    ]
    assert len(routes) > len(ROUTES)  # the admin extensions' routes too
    broken = {"content-type": "application/json"}
    wrong = []
    for method, path in routes:
        refused = [
            role
            for role in ROLES
            if api.client.request(
                method, path, content=b'{"broken', headers={**broken, **api.headers(role)}
            ).status_code
            == 403
        ]
        # Roles do not imply one another: every route is one role's, refused to the other two.
        if len(refused) != len(ROLES) - 1:
            wrong.append((method, path, refused))
    assert wrong == []
