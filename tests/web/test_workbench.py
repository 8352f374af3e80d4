"""The analyst workbench end to end, in headless Chromium against a real ``vigil serve`` on a
demo store: sign in, filter the queue, open a case, see its reasons and map, label it, see it
leave the queue and the API show the label and the journal; take and bulk close; the refusals
(wrong key, expired or forged session, missing CSRF token, an analyst on an admin page); every
page keyboard-reachable with labelled fields; a screenshot of each page."""

from __future__ import annotations

import re
import urllib.error
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web.conftest import Served, shot
from vigil.api.keys import Role
from vigil.config import DEV_HMAC_KEY
from vigil.storage import Store
from vigil.web.session import COOKIE, Signer, secret_from


def sign_in(page: Any, served: Served, role: str = "analyst", then: str = "/queue") -> None:
    page.goto(served.url + then)
    page.wait_for_url(re.compile(r"/sign-in\?next="))
    page.get_by_label("API key").fill(served.keys[role])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(re.escape(then) + "$"))


def queue_ids(page: Any, rows: str = "tr[data-risk-event]") -> list[int]:
    """The risk events the queue's table shows (``tr.lead``: one per case)."""
    found = page.locator(f"table[aria-label=Cases] tbody {rows}")
    return [int(v) for v in found.evaluate_all("rs => rs.map(r => r.dataset.riskEvent)")]


def unlabelled_fields(page: Any) -> list[str]:
    """Visible form fields with no label (a <label for>, a wrapping label, or aria-label)."""
    return page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(e => e.type !== 'hidden')
            .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
            .map(e => e.outerHTML)"""
    )


def test_an_analyst_filters_opens_labels_fraud_and_the_api_agrees(page, served: Served) -> None:
    page.goto(served.url + "/queue")
    page.wait_for_url(re.compile(r"/sign-in"))
    assert unlabelled_fields(page) == []
    shot(page, "sign-in")
    sign_in(page, served)
    assert unlabelled_fields(page) == []
    shot(page, "queue")

    # The case to work: the newest open alert with a card, by the API.
    items = served.api("/v1/risk-events?status=open&limit=200")["items"]
    target = next(r for r in items if r["card_id"] and r["reason_codes"])
    reason = target["reason_codes"][0]

    page.get_by_label("Reason code").fill(reason)
    page.get_by_label("Card").fill(target["card_id"])
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(rf"reason={reason}"))
    ids = queue_ids(page)
    assert target["risk_event_id"] in ids
    for row in page.locator("table[aria-label=Cases] tbody tr[data-risk-event]").all():
        assert reason in row.inner_text()
        assert target["card_id"] in row.inner_text()

    page.locator(f'a[href="/cases/{target["risk_event_id"]}"]').first.click()
    page.wait_for_url(re.compile(rf"/cases/{target['risk_event_id']}$"))
    reasons = page.get_by_role("region", name="Reasons")
    assert reason in reasons.inner_text()
    places = page.get_by_role("region", name="Places around the event")
    assert places.locator("svg.map circle").count() >= 1
    assert page.get_by_role("region", name="Timeline of the card and user").is_visible()
    assert unlabelled_fields(page) == []
    shot(page, "case")

    page.get_by_label("fraud", exact=True).check()
    page.get_by_label("Note (kept in the journal and with the feedback)").fill("card stolen")
    page.get_by_role("button", name="Label and close").click()
    page.wait_for_url(re.compile(r"done=label"))
    assert "Labelled fraud" in page.get_by_role("status").inner_text()
    journal = page.get_by_role("region", name="Case journal").inner_text()
    assert "ann" in journal and "fraud" in journal and "card stolen" in journal

    page.goto(served.url + "/queue")
    assert target["risk_event_id"] not in queue_ids(page)

    shown = served.api(f"/v1/risk-events/{target['risk_event_id']}")
    assert (shown["status"], shown["analyst_label"]) == ("closed", "fraud")
    (entry,) = shown["journal"]
    assert (entry["actor"], entry["action"], entry["label"], entry["note"]) == (
        "ann",
        "label",
        "fraud",
        "card stolen",
    )
    with Store(served.database) as store:
        stored = store.load_feedback(target["event_id"])
    assert [
        (f.label.value, f.source) for f in stored if f.event_id == entry["feedback_event_id"]
    ] == [("fraud", "analyst")]


def test_take_and_bulk_close_with_a_legitimate_label_that_feeds_the_engine(
    page, served: Served
) -> None:
    sign_in(page, served)
    page.get_by_label("Order").select_option("score")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"sort=score"))
    first, second, third = queue_ids(page, "tr.lead")[:3]

    page.get_by_role("button", name=f"Take case {first}", exact=True).click()
    row = page.locator(f'tr[data-risk-event="{first}"]')
    expect(row).to_contain_text("in review")  # swapped in place by htmx, no reload
    assert "ann" in row.inner_text()
    assert served.api(f"/v1/risk-events/{first}")["assignee"] == "ann"

    page.goto(f"{served.url}/cases/{first}")
    page.get_by_label("Assign to (an analyst's key name; empty: nobody)").fill("bob")
    page.get_by_role("button", name="Assign").click()
    page.wait_for_url(re.compile(rf"/cases/{first}$"))
    assert "with bob" in page.get_by_role("heading", level=1).inner_text()
    journal = served.api(f"/v1/risk-events/{first}")["journal"]
    assert [(j["action"], j["assignee"], j["actor"]) for j in journal] == [
        ("assign", "ann", "ann"),
        ("assign", "bob", "ann"),
    ]
    page.goto(f"{served.url}/queue?sort=score")
    page.get_by_label(f"Select case {second}", exact=True).check()
    page.get_by_label(f"Select case {third}", exact=True).check()
    page.get_by_label("Label", exact=True).select_option("legitimate")
    page.get_by_label("Note").last.fill("customer confirmed")
    page.get_by_role("button", name="Close selected").click()
    page.wait_for_url(re.compile(r"closed=\d+"))
    assert re.search(r"Closed \d+ cases?", page.get_by_role("status").inner_text())
    ids = queue_ids(page)
    assert second not in ids and third not in ids and first in ids  # taken, still to work
    for case in (second, third):
        shown = served.api(f"/v1/risk-events/{case}")
        assert (shown["status"], shown["analyst_label"]) == ("closed", "legitimate")
        # The label is feedback on the event, as POST /v1/feedback stores it: what the engine
        # and the next training read.
        with Store(served.database) as store:
            labels = [f.label.value for f in store.load_feedback(shown["event_id"])]
        assert "legitimate" in labels


def test_a_wrong_key_an_ingest_key_and_a_forged_sign_in_are_refused(page, served: Served) -> None:
    for key, message in (
        ("vgl_0123456789abcdef_" + "A" * 43, "unknown, malformed or revoked"),
        (served.keys["ingest"], "neither the analyst nor the admin role"),
    ):
        page.goto(served.url + "/sign-in")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        assert message in page.get_by_role("alert").inner_text()
        assert COOKIE not in {c["name"] for c in page.context.cookies()}
    # A sign-in posted from elsewhere has no sign-in token cookie: refused before any key check.
    answer = page.request.post(
        served.url + "/sign-in",
        form={"api_key": served.keys["analyst"], "csrf": "guess"},
        max_redirects=0,
    )
    assert answer.status == 403
    assert COOKIE not in {c["name"] for c in page.context.cookies()}


def test_an_expired_or_forged_session_is_sent_to_sign_in(page, served: Served) -> None:
    with Store(served.database) as store:
        row = next(r for r in store.list_api_keys() if r["name"] == "ann")
    secret = secret_from(DEV_HMAC_KEY)  # what vigil serve --dev signs with
    expired = Signer(secret, lifetime=-1).issue(row["key_id"], "ann", frozenset({Role.ANALYST}))
    forged = Signer(b"not the server's secret").issue(row["key_id"], "ann", frozenset({Role.ADMIN}))
    for session, signer in (
        (expired, Signer(secret)),
        (forged, Signer(b"not the server's secret")),
    ):
        page.context.clear_cookies()
        page.context.add_cookies(
            [{"name": COOKIE, "value": signer.dumps(session), "url": served.url}]
        )
        page.goto(served.url + "/queue")
        assert re.search(r"/sign-in\?next=%2Fqueue$", page.url)
    # The same cookie, valid, is let in: what was refused was the expiry and the signature.
    fresh = Signer(secret).issue(row["key_id"], "ann", frozenset({Role.ANALYST}))
    page.context.add_cookies(
        [{"name": COOKIE, "value": Signer(secret).dumps(fresh), "url": served.url}]
    )
    page.goto(served.url + "/queue")
    assert page.url.endswith("/queue")


def test_a_form_without_its_csrf_token_changes_nothing(page, served: Served) -> None:
    sign_in(page, served)
    case = served.api("/v1/risk-events?status=open&limit=1")["items"][0]["risk_event_id"]
    for path, form in (
        (f"/cases/{case}/label", {"label": "fraud"}),
        (f"/cases/{case}/take", {}),
        ("/queue/close", {"ids": str(case), "label": "fraud"}),
        ("/sign-out", {}),
    ):
        answer = page.request.post(served.url + path, form=form, max_redirects=0)
        assert answer.status == 403, path
        wrong = page.request.post(
            served.url + path, form={**form, "csrf": "not-the-token"}, max_redirects=0
        )
        assert wrong.status == 403, path
    shown = served.api(f"/v1/risk-events/{case}")
    assert shown["status"] == "open" and shown["journal"] == []


def test_an_analyst_cannot_reach_admin_pages_and_an_admin_edits_rules(page, served: Served) -> None:
    sign_in(page, served)
    page.goto(served.url + "/rules")
    assert page.get_by_role("link", name="Edit the rule file").count() == 0
    shot(page, "rules")
    token = page.evaluate("() => document.querySelector('input[name=csrf]').value")
    refused = page.goto(served.url + "/rules/edit")
    assert refused.status == 403 and "needs the admin role" in page.inner_text("main")
    for path in ("/rules/check", "/rules"):
        answer = page.request.post(
            served.url + path, form={"csrf": token, "draft": "rules: []"}, max_redirects=0
        )
        assert answer.status == 403, path
    page.goto(served.url + "/rules")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/sign-in$"))
    assert page.goto(served.url + "/queue").url.startswith(served.url + "/sign-in")

    sign_in(page, served, role="admin", then="/rules")
    page.get_by_role("link", name="Edit the rule file").click()
    page.wait_for_url(re.compile(r"/rules/edit$"))
    assert "The draft checks" in page.locator("#check").inner_text()
    draft = page.get_by_label("Rule file (YAML)")
    text = draft.input_value()
    draft.fill(text.replace("amount > 3 * card.withdrawal.p95", "amount > 3 * card.nonsense"))
    page.wait_for_function("() => document.querySelector('#check').innerText.includes('problem')")
    problems = page.locator("#check").inner_text()
    assert "card.nonsense" in problems and "line" in problems
    assert unlabelled_fields(page) == []
    shot(page, "rules-edit")
    draft.fill(text.replace("shadow: true", "shadow: false", 1))  # a rule goes live
    page.get_by_role("button", name="Backtest").click()
    per_rule = page.get_by_role("table", name="Backtest per rule")
    per_rule.wait_for(timeout=60_000)
    assert "withdrawal_far_above_p95" in per_rule.inner_text()
    assert "The draft adds" in page.locator("#backtest").inner_text()
    page.get_by_role("heading", name="Backtest the draft").scroll_into_view_if_needed()
    page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    shot(page, "rules-backtest")
    # An admin key alone is no analyst: the queue is refused to it, as the API refuses it.
    assert page.goto(served.url + "/queue").status == 403


def test_the_queue_filters_by_a_pattern_of_reasons(page, served: Served) -> None:
    sign_in(page, served)
    items = served.api("/v1/risk-events?limit=500")["items"]
    target = next(r for r in items if len(r["reason_codes"]) >= 2)
    first, second = target["reason_codes"][:2]
    page.goto(f"{served.url}/queue?status=all&reason={first},+{second}")
    rows = page.locator("table[aria-label=Cases] tbody tr[data-risk-event]").all()
    assert target["risk_event_id"] in queue_ids(page)
    for row in rows:
        assert first in row.inner_text() and second in row.inner_text()
    expected = {r["risk_event_id"] for r in items if {first, second} <= set(r["reason_codes"])}
    assert set(queue_ids(page)) == expected


def test_the_other_pages_render_and_are_keyboard_usable(page, served: Served) -> None:
    sign_in(page, served)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    case = served.api("/v1/risk-events?limit=1")["items"][0]
    for path, name in (
        (
            f"/entities/card/{case['card_id']}"
            if case["card_id"]
            else f"/entities/user/{case['user_id']}",
            "entity",
        ),
        ("/overview", "overview"),
        ("/models", "models"),
    ):
        answer = page.goto(served.url + path)
        assert answer.status == 200, path
        assert unlabelled_fields(page) == []
        shot(page, name)
    page.goto(served.url + "/models")
    row = page.get_by_role("table", name="Model versions").locator("tbody tr")
    assert "transaction" in row.inner_text() and "0.810" in row.inner_text()
    page.get_by_role("link", name="Report of transaction v0001").click()
    page.wait_for_selector(".plotly-graph-div .main-svg")
    assert "vigil model transaction v0001" in page.content()
    shot(page, "model-report")
    missing = page.goto(served.url + "/cases/999999")
    assert missing.status == 404 and "There is no case #999999" in page.inner_text("main")
    assert page.get_by_role("heading", level=1).inner_text() == "Not found"
    page.goto(served.url + "/overview")
    assert page.locator("svg.chart").count() >= 2
    with pytest.raises(urllib.error.HTTPError) as refused:
        served.api("/v1/risk-events", role="ingest")
    assert refused.value.code == 403


def test_the_html_report_charts_fit_their_panels_and_nothing_overlaps(page, served: Served) -> None:
    """The demo's report (vigil.evaluate.report): each figure as wide as its grid column, every
    label inside its figure (category names not cut), no legend over an axis title."""
    page.goto((served.demo / "report" / "report.html").as_uri())
    page.wait_for_selector("#figure-2 .main-svg")
    problems = page.evaluate(
        """() => {
        const out = [];
        const inside = (a, b) => a.left >= b.left - 1 && a.right <= b.right + 1
            && a.top >= b.top - 1 && a.bottom <= b.bottom + 1;
        const meet = (a, b) => !(a.right < b.left || a.left > b.right
            || a.bottom < b.top || a.top > b.bottom);
        for (const fig of document.querySelectorAll('.grid .plotly-graph-div')) {
            const panel = fig.closest('.panel').getBoundingClientRect();
            const svg = fig.querySelector('.main-svg').getBoundingClientRect();
            if (!inside(svg, panel)) out.push(fig.id + ': wider than its panel');
            for (const t of fig.querySelectorAll('text')) {
                const box = t.getBoundingClientRect();
                if (box.width && !inside(box, svg)) out.push(fig.id + ': cut ' + t.textContent);
            }
            const legend = fig.querySelector('.legend');
            const xtitle = fig.querySelector('.g-xtitle text');
            if (legend && xtitle && meet(legend.getBoundingClientRect(),
                                          xtitle.getBoundingClientRect()))
                out.push(fig.id + ': legend over the x axis title');
        }
        return out;
    }"""
    )
    assert problems == []
    # The score histogram reaches score 1: no score is hidden past the panel's edge.
    ticks = page.locator("#figure-0 .xtick text").evaluate_all("ts => ts.map(t => t.textContent)")
    assert ticks[-1] == "1"
    page.locator(".grid").first.scroll_into_view_if_needed()
    shot(page, "report-charts")
