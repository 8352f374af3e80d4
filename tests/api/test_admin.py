"""Rule, model and privacy administration over HTTP (`admin`), on every backend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import CHEAP_HASHER, ROLES, Api, seed, tx
from tests.api.test_routes import assert_problem
from tests.conftest import table_dump
from vigil.api.app import create_app
from vigil.config import Settings
from vigil.domain import parse_event
from vigil.models.linear import LinearModel
from vigil.models.model import Model
from vigil.models.registry import Registry
from vigil.models.standin import StandinPolicy, standin_policy_path
from vigil.profiles import ProfileStore
from vigil.storage import Store

NO_RULES = "rules: []\nempty: true\n"
BIG = "rules:\n  - name: big\n    condition: amount > 1000\n    score: 0.3\n    action: review\n"
BROKEN = (
    "rules:\n  - name: ok\n    condition: amount > 1\n    score: 0.1\n"
    "  - name: typo\n    condition: amount > card.withdrawl.p95\n    score: 0.5\n"
    "  - name: nothing\n    condition: amount > 2\n"
)


def _settings(store: Store, tmp_path: Path, **privacy: Any) -> Settings:
    """Rules from an (empty) file of the test's own, models in a registry of its own."""
    rules = tmp_path / "rules.yaml"
    if not rules.exists():
        rules.write_text(NO_RULES)
    settings = Settings(
        database_url=store.url,
        rules={"path": tmp_path / "rules.yaml", "poll_seconds": 3600},
        models={"registry_dir": tmp_path / "models"},
        data_dir=tmp_path,
    )
    if privacy:
        settings.privacy = settings.privacy.model_copy(update=privacy)
    return settings


def _start(store: Store, settings: Settings, profiles: ProfileStore | None) -> Api:
    app = create_app(settings, store=store, hasher=CHEAP_HASHER, profile_store=profiles)
    keys = {role: app.state.keys.create(role, [role])[0] for role in ROLES}
    return Api(app, TestClient(app), store, keys, profiles)


@pytest.fixture
def admin(store: Store, profiles: ProfileStore | None, tmp_path: Path) -> Iterator[Api]:
    seed(store)
    api = _start(store, _settings(store, tmp_path), profiles)
    with api.client:
        yield api


def _yaml(api: Api, method: str, path: str, text: str, role: str = "admin") -> Any:
    headers = {**api.headers(role), "Content-Type": "application/yaml"}
    return api.client.request(method, path, content=text.encode(), headers=headers)


# -- rules --------------------------------------------------------------------------------------


def test_rule_routes_need_the_admin_role(admin: Api) -> None:
    for method, path in (("GET", ""), ("POST", "/check"), ("PUT", ""), ("GET", "/history")):
        url = f"/v1/admin/rules{path}"
        assert_problem(admin.client.request(method, url), 401)
        assert_problem(_yaml(admin, method, url, BIG, role="analyst"), 403)


def test_a_put_rule_file_is_in_force_at_once_and_recorded(admin: Api, tmp_path: Path) -> None:
    before = admin.client.get("/v1/admin/rules", headers=admin.headers("admin")).json()
    assert before["rules"] == [] and before["file"] == str(tmp_path / "rules.yaml")
    assert (
        admin.client.post(
            "/v1/transactions", json=tx("before", amount="2500"), headers=admin.headers("ingest")
        ).json()["action"]
        == "allow"
    )

    put = _yaml(admin, "PUT", "/v1/admin/rules", BIG)
    assert put.status_code == 200, put.text
    assert put.json() == {"version": 2, "new": True, "rules": 1, "live": 1, "shadow": 0,
                          "disabled": 0}  # fmt: skip
    assert (tmp_path / "rules.yaml").read_text() == BIG
    # No poll interval waited (it is an hour): the very next event meets the new rule.
    decided = admin.client.post(
        "/v1/transactions", json=tx("after", minute=5, amount="2500"),
        headers=admin.headers("ingest"),
    ).json()  # fmt: skip
    assert decided["action"] == "review" and "rule:big" in [r["code"] for r in decided["reasons"]]

    now = admin.client.get("/v1/admin/rules", headers=admin.headers("admin")).json()
    assert now["version"] == 2 and [r["name"] for r in now["rules"]] == ["big"]
    assert now["rules"][0] == {"name": "big", "line": 2, "enabled": True, "shadow": False,
                               "score": 0.3, "action": "review",
                               "condition": "amount > 1000"}  # fmt: skip
    history = admin.client.get("/v1/admin/rules/history", headers=admin.headers("admin")).json()
    assert [v["version"] for v in history] == [2, 1]
    key_id = admin.keys["admin"].split("_")[1]
    assert history[0]["source"] == f"api key {key_id}" and "content" not in history[0]
    # The same text again is no new version.
    assert _yaml(admin, "PUT", "/v1/admin/rules", BIG).json()["new"] is False


def test_a_broken_rule_file_is_refused_naming_each_error_and_changes_nothing(
    admin: Api, tmp_path: Path
) -> None:
    for method, path in (("POST", "/v1/admin/rules/check"), ("PUT", "/v1/admin/rules")):
        problem = assert_problem(_yaml(admin, method, path, BROKEN), 422)
        errors = [(e["rule"], e["line"], e["field"]) for e in problem["errors"]]
        assert errors == [("typo", 6, "condition"), ("nothing", 8, "rules")], problem
        assert "withdrawal" in problem["errors"][0]["message"]  # the did-you-mean
    assert (tmp_path / "rules.yaml").read_text() == NO_RULES
    assert [v["version"] for v in admin.store.rule_versions()] == [1]
    assert admin.app.state.service.engine.rules.book.rules == ()
    assert_problem(_yaml(admin, "PUT", "/v1/admin/rules", "rules: [\n"), 422, "body")
    bad = admin.client.put("/v1/admin/rules", content=b"\xff\xfe", headers=admin.headers("admin"))
    assert_problem(bad, 422, "body")


def test_a_valid_file_checks_without_changing_anything(admin: Api, tmp_path: Path) -> None:
    checked = _yaml(admin, "POST", "/v1/admin/rules/check", BIG)
    assert checked.status_code == 200 and checked.json()["rules"] == 1
    assert (tmp_path / "rules.yaml").read_text() == NO_RULES


def test_the_packaged_default_rule_file_is_not_overwritten(
    store: Store, profiles: ProfileStore | None, tmp_path: Path
) -> None:
    settings = _settings(store, tmp_path)
    settings.rules = settings.rules.model_copy(update={"path": None})
    api = _start(store, settings, profiles)
    with api.client:
        problem = assert_problem(_yaml(api, "PUT", "/v1/admin/rules", BIG), 409)
        assert "packaged default" in problem["detail"]


# -- models -------------------------------------------------------------------------------------


def _model(registry: Registry, name: str) -> str:
    lm = LinearModel(["amount"], fill=[0.0], mean=[0.0], scale=[1.0], coef=[1.0], intercept=0.0)
    metrics = {"metrics": {"test": {"roc_auc": 0.9}}}
    return registry.save(Model(name, "logreg", lm, calibration=(1.0, 0.0)), metrics)


def test_models_are_listed_shown_and_promoted(admin: Api, tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models")
    first, second = _model(registry, "card"), _model(registry, "card")
    h = admin.headers("admin")
    listed = admin.client.get("/v1/admin/models", headers=h).json()
    assert [(m["name"], m["version"], m["status"]) for m in listed] == [
        ("card", first, "candidate"),
        ("card", second, "candidate"),
    ]
    assert listed[0]["metrics"]["test"]["roc_auc"] == 0.9 and not listed[0]["in_service"]

    promoted = admin.client.post(f"/v1/admin/models/card/{second}/promote", headers=h)
    assert promoted.status_code == 200, promoted.text
    assert promoted.json() == {"name": "card", "version": second, "status": "promoted",
                               "in_service": False}  # fmt: skip
    shown = admin.client.get("/v1/admin/models/card", headers=h).json()
    assert shown["promoted"] == second and len(shown["versions"]) == 2
    assert shown["versions"][1]["features"] == ["amount"]
    assert registry.promoted("card") == second

    assert_problem(admin.client.get("/v1/admin/models/nope", headers=h), 404)
    assert_problem(admin.client.post("/v1/admin/models/card/v0099/promote", headers=h), 404)
    assert_problem(admin.client.post("/v1/admin/models/card/latest/promote", headers=h), 422)
    assert_problem(admin.client.get("/v1/admin/models", headers=admin.headers("analyst")), 403)


def test_a_standin_request_is_decided_from_the_scores_and_logged(
    admin: Api, tmp_path: Path
) -> None:
    h = admin.headers("admin")
    body = {"card_id": "c-1", "user_id": "u-1", "amount": 80.0, "event_id": "s-1"}
    url = "/v1/admin/models/standin/decide"
    assert_problem(admin.client.post(url, json=body, headers=h), 409)  # no `vigil score` yet

    path = standin_policy_path(tmp_path / "models")
    path.parent.mkdir(parents=True)
    StandinPolicy(0.5, 0.5, 0.0, 100.0, approve_below=0.3, decline_from=0.6).save(path)
    at = datetime(2024, 5, 1, tzinfo=UTC)
    for kind, key, score in (("user", "u-1", 0.9), ("card", "c-1", 0.8)):
        admin.store.upsert_profile_scores(
            kind, [{f"{kind}_id": key, "score": score, "model_version": "v0001",
                    "score_timestamp": at}]
        )  # fmt: skip
    risky = admin.client.post(url, json=body, headers=h)
    assert risky.status_code == 200, risky.text
    assert risky.json() == {"decision": "decline", "risk": pytest.approx(0.85),
                            "user_score": 0.9, "card_score": 0.8}  # fmt: skip
    unknown = {"card_id": "c-new", "amount": 80.0}  # unscored: the policy's default scores
    assert admin.client.post(url, json=unknown, headers=h).json()["decision"] == "approve"
    log = admin.store.standin_log()
    assert {(r["event_id"], r["decision"]) for r in log} == {("s-1", "decline"), (None, "approve")}
    assert_problem(admin.client.post(url, json={"amount": -1}, headers=h), 422, "amount")


# -- privacy ------------------------------------------------------------------------------------


def test_an_erased_person_is_gone_after_the_service_stops_and_snapshots(
    store: Store, profiles: ProfileStore | None, tmp_path: Path
) -> None:
    seed(store)
    api = _start(store, _settings(store, tmp_path), profiles)
    with api.client:
        for i in range(3):
            event = tx(f"e-{i}", minute=i, device_id="dev-secret")
            assert api.client.post("/v1/transactions", json=event, headers=api.headers("ingest"))
        login = {"event_id": "l-0", "user_id": "u-1", "timestamp": "2024-05-01T09:00:00Z",
                 "ip": "10.9.8.7", "country": "NG"}  # fmt: skip
        api.client.post("/v1/logins", json=login, headers=api.headers("ingest"))
        service = api.app.state.service
        assert service.profile("user", "u-1") is not None

        assert_problem(
            api.client.delete("/v1/admin/users/u-1", headers=api.headers("analyst")), 403
        )
        erased = api.client.delete("/v1/admin/users/u-1", headers=api.headers("admin"))
        assert erased.status_code == 200, erased.text
        report = erased.json()
        assert report["deleted"]["transactions"] == 3 and report["deleted"]["logins"] == 1
        assert report["deleted"]["profiles"] >= 3  # user, card, device (and account if any)
        assert service.profile("user", "u-1") is None and service.profile("card", "c-1") is None
    # Closed: the decisions are committed and the in-process profiles snapshotted.
    device = store.privacy.pseudonyms.device("dev-secret")
    dump = table_dump(store)
    # (Their event ids stay a while in the terminal's recent-event ring: see vigil.privacy.erasure.)
    for raw in ("u-1", "c-1", device):
        assert raw not in dump, raw
    if profiles is not None:  # Redis: nothing of theirs there either
        assert profiles.get("user", "u-1").n == 0 and profiles.get("card", "c-1").n == 0
    again = _start(store, _settings(store, tmp_path), profiles)
    with again.client:
        assert again.app.state.service.profile("user", "u-1") is None


def test_the_service_purges_expired_events_on_its_schedule(
    store: Store, profiles: ProfileStore | None, tmp_path: Path
) -> None:
    seed(store)
    # Events of May 2024 are far past 90 days (logins) and a year (transactions) by now.
    store.insert_transactions([parse_event({"kind": "transaction", **tx("old-1")})])
    store.insert_logins(
        [parse_event({"kind": "login", "event_id": "old-l", "user_id": "u-1",
                      "timestamp": "2024-05-01T09:00:00Z"})]
    )  # fmt: skip
    assert store.counts()["transactions"] == 1 and store.counts()["logins"] == 1
    settings = _settings(store, tmp_path, purge_interval_hours=0.5 / 3600)
    api = _start(store, settings, profiles)
    with api.client:
        service = api.app.state.service
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            # The loop keeps answering while a purge runs in its worker thread.
            assert api.client.get("/health").status_code == 200
            if store.counts()["transactions"] == 0 and store.counts()["logins"] == 0:
                break
            time.sleep(0.1)
        assert store.counts()["transactions"] == 0 and store.counts()["logins"] == 0
        assert service.last_purge is not None


def test_a_zero_purge_interval_schedules_no_purge(store: Store, tmp_path: Path) -> None:
    api = _start(store, _settings(store, tmp_path, purge_interval_hours=0), None)
    with api.client:
        running = {task.get_name() for task in api.app.state.service._tasks}
        assert running == {"vigil-group-commit", "vigil-checkpoint"}  # no purge


def test_an_empty_upload_is_refused_and_changes_nothing(admin: Api, tmp_path: Path) -> None:
    assert _yaml(admin, "PUT", "/v1/admin/rules", BIG).status_code == 200
    for method, path in (("POST", "/v1/admin/rules/check"), ("PUT", "/v1/admin/rules")):
        for text in ("", "rules: []\n", "rules:\n"):
            problem = assert_problem(_yaml(admin, method, path, text), 422, "rules")
            assert "empty: true" in problem["errors"][0]["message"]
    assert (tmp_path / "rules.yaml").read_text() == BIG
    assert [r.name for r in admin.app.state.service.engine.rules.book.rules] == ["big"]
    # Switching every rule off is still possible, as an explicit act.
    off = _yaml(admin, "PUT", "/v1/admin/rules", "rules: []\nempty: true\n")
    assert off.status_code == 200 and off.json()["rules"] == 0
    assert admin.app.state.service.engine.rules.book.rules == ()
