"""The rules page: the rule file in force, each rule with its shadow hits, the versions put in
force and the diff between any two (analysts and admins); the editor (admins only): a draft
checked as it is typed (the rule checker's own messages: line, rule, field) and put in force as
``PUT /v1/admin/rules`` does (:func:`vigil.rules.live.install`, then a reload).
"""

from __future__ import annotations

import difflib
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import polars as pl
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from vigil.api.deps import ServiceDep
from vigil.domain import FeedbackLabel
from vigil.rules.backtest import run_backtest
from vigil.rules.book import RuleBook
from vigil.rules.live import LiveRules, PackagedRulesError, compile_text, install, rule_counts
from vigil.rules.loader import RuleFileError
from vigil.web.auth import AdminViewer, AnyViewer, PageRefused, first, posted
from vigil.web.forms import instant
from vigil.web.render import HEADERS, environment, page

# A backtest replays every event of its period in the request: a month at most.
MAX_BACKTEST = timedelta(days=31)


def _live(svc: Any) -> LiveRules | None:
    rules = svc.engine.rules
    return rules if isinstance(rules, LiveRules) else None


def _text_in_force(svc: Any) -> str:
    live = _live(svc)
    if live is None:
        return ""
    try:
        return live.path.read_text(encoding="utf-8")
    except OSError:
        return ""


def check(text: str, known: frozenset[str] | None) -> dict[str, Any]:
    """The checker's verdict on a draft: counts, or every problem (rule, line, field)."""
    try:
        return {"ok": True, **rule_counts(compile_text(text, "<draft>", known))}
    except RuleFileError as exc:
        return {"ok": False, "problems": exc.problems}


def _backtest(svc: Any, draft: str, since: datetime, until: datetime) -> dict[str, Any] | str:
    """The draft beside the rules in force, replayed over the stored events of the period
    (profiles start empty at ``since``), against the fraud labels analysts and files gave."""
    store = svc.store
    labels = pl.DataFrame(
        [
            {"event_id": f.target_event_id, "transaction_id": None, "pattern": f.pattern or "fraud"}
            for f in store.load_feedback()
            if f.label in (FeedbackLabel.FRAUD, FeedbackLabel.DISPUTE)
        ],
        schema={"event_id": pl.String, "transaction_id": pl.String, "pattern": pl.String},
    ).unique(subset="event_id", keep="first", maintain_order=True)
    candidate = RuleBook(compile_text(draft, "<draft>", None), source="<draft>")
    try:
        result = run_backtest(
            store.iter_events(since, until),
            labels,
            svc.engine.rules.book,
            candidate,
            reference=store.load_reference(),
            settings=svc.settings,
        )
    except ValueError as exc:  # no events in the period
        return str(exc)
    return result.as_dict()


async def _last_week(svc: Any) -> tuple[str, str]:
    """The backtest's default period: the week of event time before the newest decision."""
    newest = await run_in_threadpool(svc.store.latest_decision_time)
    if newest is None:
        return "", ""
    end = newest.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return (end - timedelta(days=7)).strftime(_LOCAL), end.strftime(_LOCAL)


_LOCAL = "%Y-%m-%dT%H:%M"  # a datetime-local input's value


def router() -> APIRouter:
    web = APIRouter(include_in_schema=False)

    @web.get("/rules")
    async def rules_page(
        request: Request, viewer: AnyViewer, svc: ServiceDep, a: int = 0, b: int = 0
    ) -> Response:
        store = svc.store

        def read() -> tuple[list[dict[str, Any]], Counter[str]]:
            hits = Counter(h["rule"] for h in store.rule_shadow_hits(limit=10_000))
            return store.rule_versions(50), hits

        versions, hits = await run_in_threadpool(read)
        by_version = {v["version"]: v for v in versions}
        diff = None
        if a and b:
            if a not in by_version or b not in by_version:
                raise PageRefused(404, "Choose two rule versions listed on the page.")
            diff = list(
                difflib.unified_diff(
                    by_version[a]["content"].splitlines(),
                    by_version[b]["content"].splitlines(),
                    f"version {a}",
                    f"version {b}",
                    lineterm="",
                )
            )
        book = svc.engine.rules.book
        return page(
            request,
            "rules.html",
            {
                "viewer": viewer,
                "book": book,
                "live": _live(svc),
                "text": _text_in_force(svc),
                "hits": hits,
                "versions": versions,
                "diff": diff,
                "a": a,
                "b": b,
            },
        )

    @web.get("/rules/edit")
    async def edit_page(request: Request, viewer: AdminViewer, svc: ServiceDep) -> Response:
        live = _live(svc)
        if live is None:
            raise PageRefused(409, "Rules are switched off (rules.enabled = false).")
        text = _text_in_force(svc)
        context = {
            "viewer": viewer,
            "live": live,
            "text": text,
            "v": check(text, live.known_reasons),
        }
        return page(request, "rules_edit.html", {**context, "period": await _last_week(svc)})

    @web.post("/rules/check")
    async def check_draft(request: Request, viewer: AdminViewer, svc: ServiceDep) -> Response:
        fields = await posted(request, viewer)
        live = _live(svc)
        verdict = check(first(fields, "draft"), live.known_reasons if live else None)
        html = environment().get_template("_rule_check.html").render(v=verdict)
        return HTMLResponse(html, headers=HEADERS)

    @web.post("/rules/backtest")
    async def backtest_draft(request: Request, viewer: AdminViewer, svc: ServiceDep) -> Response:
        fields = await posted(request, viewer)
        live = _live(svc)
        draft = (fields.get("draft") or [""])[0].replace("\r\n", "\n")
        verdict = check(draft, live.known_reasons if live else None)
        if not verdict["ok"]:
            html = environment().get_template("_rule_check.html").render(v=verdict)
            return HTMLResponse(html, status_code=422, headers=HEADERS)
        since = instant(first(fields, "since"), "since")
        until = instant(first(fields, "until"), "until")
        if since is None or until is None or not since < until:
            raise PageRefused(422, "Choose a period: from, then until, both in UTC.")
        if until - since > MAX_BACKTEST:
            raise PageRefused(422, f"Backtest at most {MAX_BACKTEST.days} days at a time.")
        result = await run_in_threadpool(_backtest, svc, draft, since, until)
        html = (
            environment().get_template("_backtest.html").render(r=result, since=since, until=until)
        )
        return HTMLResponse(html, headers=HEADERS)

    @web.post("/rules")
    async def put_in_force(request: Request, viewer: AdminViewer, svc: ServiceDep) -> Response:
        fields = await posted(request, viewer)
        live = _live(svc)
        if live is None:
            raise PageRefused(409, "Rules are switched off (rules.enabled = false).")
        text = (fields.get("draft") or [""])[0].replace("\r\n", "\n")
        verdict = check(text, live.known_reasons)
        if not verdict["ok"]:  # the editor again, with the draft and what is wrong with it
            context = {"viewer": viewer, "live": live, "text": text, "v": verdict}
            context["period"] = await _last_week(svc)
            return page(request, "rules_edit.html", context, status=422)
        try:
            version, _ = await run_in_threadpool(
                install, live.path, text, store=svc.store, source=f"workbench {viewer.name}"
            )
        except PackagedRulesError as exc:
            raise PageRefused(409, str(exc)) from None
        live.reload()
        return RedirectResponse(f"/rules?put={version}", status_code=303)

    return web
