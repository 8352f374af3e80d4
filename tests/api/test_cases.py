"""Working cases through the API: the status and assignee filters, GET /v1/risk-events/{id}
with its append-only journal, and PATCH (take, note, label): a label is feedback through the
one feedback path (stored once, counted by the engine) and closes the case."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.api.conftest import Api, tx
from tests.api.test_routes import assert_problem
from vigil.features import TerminalRisk

DAY = 86400.0


def _flag_three(api: Api) -> list[dict[str, Any]]:
    """Four trips between Lagos and Abuja five minutes apart: three impossible-travel flags."""
    batch = [tx(f"p-{i}", 5 * i, terminal_id=f"ATM-{1 + i % 2}") for i in range(4)]
    api.client.post("/v1/transactions", json=batch, headers=api.headers("ingest"))
    page = api.client.get("/v1/risk-events", headers=api.headers("analyst")).json()
    assert len(page["items"]) == 3
    return page["items"]


def _ids(api: Api, **params: str) -> list[int]:
    page = api.client.get("/v1/risk-events", params=params, headers=api.headers("analyst"))
    assert page.status_code == 200, page.text
    return [r["risk_event_id"] for r in page.json()["items"]]


def test_a_case_is_taken_noted_and_labelled_with_every_action_journaled(api: Api) -> None:
    analyst = api.headers("analyst")
    newest, middle, oldest = _flag_three(api)
    case = f"/v1/risk-events/{middle['risk_event_id']}"
    assert _ids(api, status="open") == [r["risk_event_id"] for r in (newest, middle, oldest)]

    fresh = api.client.get(case, headers=analyst).json()
    assert fresh["status"] == "open" and fresh["journal"] == [] and fresh["assignee"] is None

    taken = api.client.patch(
        case, json={"status": "in_review", "assignee": "analyst"}, headers=analyst
    )
    assert taken.status_code == 200, taken.text
    assert (taken.json()["status"], taken.json()["assignee"]) == ("in_review", "analyst")
    assert _ids(api, assignee="analyst") == [middle["risk_event_id"]]
    assert _ids(api, status="in_review") == [middle["risk_event_id"]]

    api.client.patch(case, json={"note": "called the customer"}, headers=analyst)
    labelled = api.client.patch(
        case, json={"label": "fraud", "note": "card stolen"}, headers=analyst
    ).json()
    assert labelled["status"] == "closed" and labelled["analyst_label"] == "fraud"
    assert labelled["closed_at"] is not None and labelled["action_taken"] == "labelled by analyst"
    journal = labelled["journal"]
    assert [e["action"] for e in journal] == ["assign", "note", "label"]
    assert {e["actor"] for e in journal} == {"analyst"}
    assert journal[0]["status"] == "in_review" and journal[0]["assignee"] == "analyst"
    assert journal[1]["note"] == "called the customer"
    assert journal[2]["label"] == "fraud" and journal[2]["note"] == "card stolen"
    assert journal[2]["status"] == "closed"
    assert journal[2]["feedback_event_id"] == f"case-{middle['risk_event_id']}-fraud"
    assert [e["entry_id"] for e in journal] == sorted(e["entry_id"] for e in journal)

    # The label is feedback on the event, as POST /v1/feedback stores it.
    (feedback,) = api.store.load_feedback(middle["event_id"])
    assert (feedback.label.value, feedback.source, feedback.note) == (
        "fraud",
        "analyst",
        "card stolen",
    )
    # It has left the open queue; the closed filter finds it.
    assert _ids(api, status="open") == [newest["risk_event_id"], oldest["risk_event_id"]]
    assert _ids(api, status="closed") == [middle["risk_event_id"]]

    # The same label again is journaled but stored (and taught) once; reopening clears closed_at.
    api.client.patch(case, json={"label": "fraud"}, headers=analyst)
    assert len(api.store.load_feedback(middle["event_id"])) == 1
    reopened = api.client.patch(case, json={"status": "open", "assignee": ""}, headers=analyst)
    body = reopened.json()
    assert (body["status"], body["closed_at"], body["assignee"]) == ("open", None, None)
    assert len(body["journal"]) == 5


def test_labels_reach_the_engine_as_posted_feedback_does(api: Api, monkeypatch) -> None:
    engine = api.app.state.service.engine
    engine.terminal_risk = TerminalRisk(label_delay=1.0)
    taught: list[tuple[str, str]] = []
    learn = engine.learn

    def spy(feedback, event=None):
        taught.append((feedback.target_event_id, feedback.label.value))
        return learn(feedback, event)

    monkeypatch.setattr(engine, "learn", spy)
    newest, _middle, oldest = _flag_three(api)
    analyst = api.headers("analyst")
    for row, label in ((oldest, "legitimate"), (newest, "fraud")):
        done = api.client.patch(
            f"/v1/risk-events/{row['risk_event_id']}", json={"label": label}, headers=analyst
        )
        assert done.status_code == 200, done.text
    assert taught == [(oldest["event_id"], "legitimate"), (newest["event_id"], "fraud")]
    # Terminal risk counts the fraud (p-3, at Abuja) in the terminal's profile, from when the
    # label was given: read a few days after the transaction, past the delay.
    later = datetime(2024, 5, 4, tzinfo=UTC).timestamp()  # the trips are of 2024-05-01
    atm = api.app.state.service.profiles.get("terminal", "ATM-2")
    assert engine.terminal_risk.counts(atm, later, 30 * DAY) == (2, 1)
    assert [f.label.value for f in api.store.load_feedback(oldest["event_id"])] == ["legitimate"]


def test_case_errors_name_the_field(api: Api) -> None:
    analyst = api.headers("analyst")
    _flag_three(api)
    assert_problem(api.client.get("/v1/risk-events/999999", headers=analyst), 404)
    assert_problem(
        api.client.patch("/v1/risk-events/999999", json={"note": "x"}, headers=analyst), 404
    )
    one = _ids(api)[0]
    for body, field in (
        ({"status": "maybe"}, "status"),
        ({"label": "perhaps"}, "label"),
        ({"note": "x" * 2001}, "note"),
        ({"owner": "x"}, "owner"),
    ):
        assert_problem(
            api.client.patch(f"/v1/risk-events/{one}", json=body, headers=analyst), 422, field
        )
    assert_problem(api.client.patch(f"/v1/risk-events/{one}", json={}, headers=analyst), 422)
    assert_problem(
        api.client.get("/v1/risk-events", params={"status": "maybe"}, headers=analyst),
        422,
        "status",
    )
    assert api.client.get(f"/v1/risk-events/{one}", headers=analyst).json()["journal"] == []
