"""``/v1/admin/rules``: the rules in force, check or put in force a rule file, the history.

Mounted by :mod:`vigil.api.extensions` under ``/v1/admin`` behind the `admin` role. A rule
file travels as its YAML text (``application/yaml`` or ``text/plain``). ``PUT`` validates it
against the running engine's detectors, replaces the rule file atomically, records it as a
version and has this server's engine reload at once (other servers follow the file within
``rules.poll_seconds``); a broken file changes nothing and answers 422 with one error per
problem, each naming its rule, line and field. The same steps as ``vigil rules reload``
(:func:`vigil.rules.live.install`).

>>> sorted({r.path for r in router.routes})
['/rules', '/rules/check', '/rules/history']
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool

from vigil.api.deps import ServiceDep, require
from vigil.api.keys import Principal, Role
from vigil.api.problems import FieldError, ProblemError, invalid, problem_responses
from vigil.domain import Action
from vigil.rules.live import (
    LiveRules,
    PackagedRulesError,
    compile_text,
    install,
    rule_counts,
    rules_path,
)
from vigil.rules.loader import Rule, RuleFileError

YAML_TYPES = ("application/yaml", "text/plain")
_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            kind: {
                "schema": {"type": "string"},
                "example": "rules:\n  - name: big_withdrawal\n"
                '    condition: type == "withdrawal" and amount > 50000\n    score: 0.6\n',
            }
            for kind in YAML_TYPES
        },
    }
}


class RuleView(BaseModel):
    name: str
    line: int | None
    enabled: bool
    shadow: bool
    score: float | None
    action: Action | None
    condition: str

    @classmethod
    def of(cls, rule: Rule) -> RuleView:
        return cls(
            name=rule.name,
            line=rule.line,
            enabled=rule.enabled,
            shadow=rule.shadow,
            score=rule.score,
            action=rule.action,
            condition=rule.condition,
        )


class RulesInForce(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "enabled": True,
                    "file": "/etc/vigil/rules.yaml",
                    "version": 3,
                    "sha256": "9f2c…",
                    "rules": [
                        {
                            "name": "big_withdrawal",
                            "line": 2,
                            "enabled": True,
                            "shadow": False,
                            "score": 0.6,
                            "action": None,
                            "condition": 'type == "withdrawal" and amount > 50000',
                        }
                    ],
                }
            ]
        }
    )

    enabled: bool
    file: str | None
    version: int | None
    sha256: str | None
    rules: list[RuleView]


class RulesChecked(BaseModel):
    rules: int
    live: int
    shadow: int
    disabled: int


class RulesPut(RulesChecked):
    version: int
    new: bool


class RuleVersion(BaseModel):
    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "version": 3,
                    "sha256": "9f2c…",
                    "path": "/etc/vigil/rules.yaml",
                    "source": "api key 0123456789abcdef",
                    "activated_at": "2024-05-01T10:00:00Z",
                }
            ]
        },
    )

    version: int
    sha256: str
    path: str | None
    source: str
    activated_at: datetime


def _live(svc: Any) -> LiveRules:
    rules = svc.engine.rules
    if not isinstance(rules, LiveRules):
        raise ProblemError(409, "rules are switched off (rules.enabled = false)")
    return rules


async def _text(request: Request) -> str:
    body = await request.body()
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        error = FieldError(field="body", message=f"not UTF-8: {exc}", type="encoding")
        raise invalid([error]) from None


def _compile(text: str, source: str, known: frozenset[str] | None) -> list[Rule]:
    """The text's rules, or a 422 listing every problem (rule, line, field)."""
    try:
        return compile_text(text, source, known)
    except RuleFileError as exc:
        raise invalid(
            [
                FieldError(
                    field=p.field or ("rules" if p.rule else "body"),
                    message=p.message,
                    type="rule_file",
                    rule=p.rule,
                    line=p.line,
                )
                for p in exc.problems
            ]
        ) from None


router = APIRouter(prefix="/rules", tags=["admin"], responses=problem_responses(401, 403))


@router.get("", summary="The rules in force")
async def rules_in_force(svc: ServiceDep) -> RulesInForce:
    """The rule file this server runs, its version and each rule. Needs `admin`."""
    book = svc.engine.rules.book
    enabled = isinstance(svc.engine.rules, LiveRules)
    return RulesInForce(
        enabled=enabled,
        file=str(rules_path(svc.settings.rules)) if enabled else None,
        version=book.version,
        sha256=book.sha256,
        rules=[RuleView.of(r) for r in book.rules],
    )


@router.post(
    "/check",
    summary="Validate a rule file",
    openapi_extra=_BODY,
    responses=problem_responses(409, 413, 422),
)
async def check_rules(request: Request, svc: ServiceDep) -> RulesChecked:
    """Validate posted YAML against this server's detectors; nothing changes. Needs `admin`."""
    live = _live(svc)
    rules = _compile(await _text(request), "<posted>", live.known_reasons)
    return RulesChecked(**rule_counts(rules))


@router.put(
    "",
    summary="Put a rule file in force",
    openapi_extra=_BODY,
    responses=problem_responses(409, 413, 422),
)
async def put_rules(
    request: Request,
    svc: ServiceDep,
    principal: Annotated[Principal, Depends(require(Role.ADMIN))],
) -> RulesPut:
    """Validate, replace the rule file, record a version and reload now; a broken file
    changes nothing (422). Needs `admin`."""
    live = _live(svc)
    text = await _text(request)
    rules = _compile(text, str(live.path), live.known_reasons)
    who = f"api key {principal.key_id}"
    try:
        version, new = await run_in_threadpool(
            install, live.path, text, store=svc.store, source=who
        )
    except PackagedRulesError as exc:
        raise ProblemError(409, str(exc)) from None
    # Now, not at the next poll: the book swaps in one assignment between two events.
    live.reload()
    return RulesPut(version=version, new=new, **rule_counts(rules))


@router.get("/history", summary="Rule versions put in force")
async def rule_history(
    svc: ServiceDep, limit: Annotated[int, Query(ge=1, le=1000)] = 20
) -> list[RuleVersion]:
    """Newest first: who put each version in force, when, from which file. Needs `admin`."""
    versions = await run_in_threadpool(svc.store.rule_versions, limit)
    return [RuleVersion.model_validate(v) for v in versions]
