"""Input edges (issue 18, item 7): invisible or spoofing characters, duplicate JSON keys, the key
checked before the body is read, and a chunked body past the limit."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.api.conftest import Api, tx
from tests.api.test_routes import assert_problem

# A C1 control, the bidi overrides and isolates that reorder what an analyst reads, a mark.
SPOOFING = ["\x85", "\x9b", "\u202e", "\u202d", "\u2066", "\u2069", "\u200f", "\u061c"]


def _raw(api: Api, path: str, body: str, role: str, method: str = "POST") -> object:
    headers = {**api.headers(role), "Content-Type": "application/json"}
    return api.client.request(method, path, content=body.encode(), headers=headers)


@pytest.mark.parametrize("char", SPOOFING, ids=lambda c: f"U+{ord(c):04X}")
def test_spoofing_characters_in_ids_and_notes_are_refused_naming_the_field(
    api: Api, char: str
) -> None:
    sent = api.client.post("/v1/transactions", json=tx(f"e-{char}-1", card_id=f"c-{char}1"),
                           headers=api.headers("ingest"))  # fmt: skip
    problem = assert_problem(sent, 422)
    assert {e["field"] for e in problem["errors"]} == {"event_id", "transaction_id", "card_id"}
    assert api.client.post("/v1/transactions", json=tx("plain"), headers=api.headers("ingest"))
    note = {"target_event_id": "plain", "label": "fraud", "note": f"paid by {char}gnirts"}
    assert_problem(api.client.post("/v1/feedback", json=note, headers=api.headers("analyst")),
                   422, "note")  # fmt: skip
    patch = api.client.patch("/v1/risk-events/1", json={"note": f"x{char}y"},
                             headers=api.headers("analyst"))  # fmt: skip
    assert_problem(patch, 422, "note")


def test_notes_keep_their_newlines_tabs_and_other_scripts(api: Api) -> None:
    assert api.client.post("/v1/transactions", json=tx("ok-1"), headers=api.headers("ingest"))
    note = {"target_event_id": "ok-1", "label": "fraud", "note": "line 1\n\tline 2 — ça, عربى"}
    answer = api.client.post("/v1/feedback", json=note, headers=api.headers("analyst"))
    assert answer.status_code in (200, 201), answer.text


def test_duplicate_json_keys_are_refused_naming_the_field(api: Api) -> None:
    body = json.dumps(tx("dup-1"))[:-1] + ', "amount": "90000.00"}'
    problem = assert_problem(_raw(api, "/v1/transactions", body, "ingest"), 422, "amount")
    assert "twice" in problem["errors"][0]["message"]
    batch = "[" + body + "]"
    assert_problem(_raw(api, "/v1/transactions", batch, "ingest"), 422, "amount")
    assert api.store.get_decision("dup-1") is None
    feedback = '{"target_event_id": "x", "label": "legitimate", "label": "fraud"}'
    assert_problem(_raw(api, "/v1/feedback", feedback, "analyst"), 422, "label")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/feedback"),
        ("PATCH", "/v1/risk-events/1"),
        ("POST", "/v1/admin/keys"),
        ("POST", "/v1/admin/rules/check"),
        ("POST", "/v1/transactions"),
    ],
)
def test_the_key_is_checked_before_the_body(api: Api, method: str, path: str) -> None:
    """An anonymous caller learns nothing of how its body would be read: 401 first. (A valid
    key without the route's role is told 403 by the route, after its body is validated.)"""
    wrong = {"X-API-Key": "vgl_0123456789abcdef_" + "s" * 43}
    for headers in ({}, wrong, {"X-API-Key": "nonsense"}):
        for body in (b'{"broken', b'{"a": 1, "a": 2}', b"\xff"):
            sent = {**headers, "Content-Type": "application/json"}
            assert_problem(api.client.request(method, path, content=body, headers=sent), 401)


def _chunks(size: int) -> Iterator[bytes]:
    chunk = b" " * 65536
    for _ in range(size // len(chunk)):
        yield chunk


def test_a_chunked_body_past_the_limit_is_413(api: Api) -> None:
    headers = {**api.headers("analyst"), "Content-Type": "application/json"}
    for path in ("/v1/feedback", "/v1/transactions"):
        answer = api.client.post(path, content=_chunks(1_048_576), headers=headers)
        assert_problem(answer, 413 if path == "/v1/feedback" else 403)
    ingest = {**api.headers("ingest"), "Content-Type": "application/json"}
    assert_problem(api.client.post("/v1/transactions", content=_chunks(1_048_576),
                                   headers=ingest), 413)  # fmt: skip


def test_a_405_allows_every_method_of_the_path(api: Api) -> None:
    answer = api.client.request("DELETE", "/v1/risk-events/1", headers=api.headers("analyst"))
    assert_problem(answer, 405)
    assert answer.headers["Allow"] == "GET, PATCH"


def test_unknown_query_parameters_and_undecodable_bodies_are_refused(api: Api) -> None:
    misspelt = api.client.get("/v1/risk-events?limti=5&user_id=u-1", headers=api.headers("analyst"))
    problem = assert_problem(misspelt, 422, "limti")
    assert [e["field"] for e in problem["errors"]] == ["limti"]
    latin1 = _raw(api, "/v1/feedback", '{"target_event_id": "x", "label": "fraud"}', "analyst")
    assert latin1.status_code != 422  # well-formed: reaches the route (404: no such event)
    body = b'{"target_event_id": "x", "label": "fraud", "note": "caf\xe9"}'
    headers = {**api.headers("analyst"), "Content-Type": "application/json"}
    assert_problem(api.client.post("/v1/feedback", content=body, headers=headers), 422, "body")


def test_the_openapi_document_describes_what_the_api_answers_and_accepts(api: Api) -> None:
    """Findings of the fuzz with all checks: errors documented as application/json (they are
    problem documents), and bodies the document allowed but the API refused."""
    doc = api.client.get("/openapi.json").json()
    errors = [
        (path, method, status, response.get("content"))
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if status[0] in "45"
    ]
    assert errors and all(
        list(content) == ["application/problem+json"] for *_, content in errors
    ), [e for e in errors if list(e[3]) != ["application/problem+json"]]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    schemas = doc["components"]["schemas"]
    assert [b["required"] for b in schemas["FeedbackIn"]["oneOf"]] == [
        ["target_event_id"],
        ["decision_id"],
    ]
    assert len(schemas["RiskEventPatch"]["anyOf"]) == 4
    timestamp = schemas["Transaction"]["properties"]["timestamp"]
    assert timestamp["pattern"] == r"^(199\d|20\d\d)-"
    both = {"target_event_id": "x", "decision_id": "y", "label": "fraud"}
    assert_problem(api.client.post("/v1/feedback", json=both, headers=api.headers("analyst")), 422)
    empty = api.client.patch(
        "/v1/risk-events/1", json={"note": None}, headers=api.headers("analyst")
    )
    assert_problem(empty, 422)


def test_a_query_parameter_given_twice_is_refused_unless_it_is_a_list(api: Api) -> None:
    polluted = "/v1/risk-events?assignee=ann&assignee=bob&status=open"
    problem = assert_problem(api.client.get(polluted, headers=api.headers("analyst")), 422)
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [("assignee", "repeated")]
