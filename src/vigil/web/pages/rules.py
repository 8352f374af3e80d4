"""The rules page: the rule file in force, each rule with its shadow hits, the versions put in
force and the diff between any two (analysts and admins); the editor (admins only): a draft
checked as it is typed (the rule checker's own messages: line, rule, field) and put in force as
``PUT /v1/admin/rules`` does (:func:`vigil.rules.live.install`, then a reload).
"""

from __future__ import annotations

import difflib
from collections import Counter
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from vigil.api.deps import ServiceDep
from vigil.rules.live import LiveRules, PackagedRulesError, compile_text, install, rule_counts
from vigil.rules.loader import RuleFileError
from vigil.web.auth import AdminViewer, AnyViewer, PageRefused, first, posted
from vigil.web.render import HEADERS, environment, page


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
        return page(
            request,
            "rules_edit.html",
            {"viewer": viewer, "live": live, "text": text, "v": check(text, live.known_reasons)},
        )

    @web.post("/rules/check")
    async def check_draft(request: Request, viewer: AdminViewer, svc: ServiceDep) -> Response:
        fields = await posted(request, viewer)
        live = _live(svc)
        verdict = check(first(fields, "draft"), live.known_reasons if live else None)
        html = environment().get_template("_rule_check.html").render(v=verdict)
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
