"""Read a YAML rule file into compiled, type-checked :class:`Rule` objects, or every error in it.

A rule file is a mapping with a ``rules`` list; each rule has:

``name``        letters, digits, ``_ . -``; unique; its hits are reasons with code ``rule:<name>``
``condition``   a boolean expression (:mod:`vigil.rules.expr`) over the fields
                (:mod:`vigil.rules.fields`)
``score``       contribution in (0, 1], combined with the detectors' reasons by noisy-OR
``action``      ``step_up``, ``review`` or ``block``: the decision is at least that action;
                ``allow``: the score no longer decides (only another rule's action can raise it)
``reason``      text with placeholders, ``"{amount:,.0f} is {ratio:.1f}× the card's p95"``,
                each a field, a named value or an expression; a missing value shows as ``n/a``
``values``      optional named expressions for the reason text (``ratio: amount / card.p95``)
``enabled``     default true; a disabled rule is checked but never evaluated
``shadow``      default false; a shadow rule is evaluated and its hits recorded on the
                decision's ``shadow`` list, but it changes neither score nor action
``description`` optional free text

A file with no rules is refused unless it also says ``empty: true``: switching every rule off
is an explicit act, never the result of an empty upload or a truncated file.

A rule needs ``score`` or ``action`` (or both). Loading checks everything and reports every
problem at once, each naming the rule, its line in the file and the field.

>>> rules = load_rules('''
... rules:
...   - name: big_withdrawal
...     condition: type == "withdrawal" and amount > 3 * card.withdrawal.p95
...     score: 0.6
...     values: {ratio: amount / card.withdrawal.p95}
...     reason: "{amount:,.0f} is {ratio:.1f}x the card's p95"
... ''')
>>> rules[0].code, rules[0].score, rules[0].line
('rule:big_withdrawal', 0.6, 3)
>>> try:
...     load_rules("rules:\\n  - name: r\\n    condition: amount > card.withdrawl.p95\\n    score: 1")
... except RuleFileError as exc:
...     print(exc.problems[0])
<rules>:3: rule 'r': condition: unknown field card.withdrawl.p95; did you mean card.withdrawal.p95? (column 10)
"""  # noqa: E501

from __future__ import annotations

import re
import string
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from vigil.domain import Action
from vigil.rules.expr import Compiled, ExpressionError, Fn, compile_expression
from vigil.rules.fields import FIELDS, Field

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
_RULE_KEYS = (
    "name", "condition", "score", "action", "reason", "values", "enabled", "shadow", "description",
)  # fmt: skip
_FILE_KEYS = ("rules", "version", "description", "empty")
_NO_RULES_HINT = "write `empty: true` beside `rules: []` to switch every rule off on purpose"
_LINE = "__line__"
_LINES = "__lines__"
_MISSING_TEXT = "n/a"
_SAMPLES = {"number": 1.5, "string": "text", "bool": True}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in a rule file: where, which rule, which field, what."""

    source: str
    line: int | None
    rule: str | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        rule = f" rule {self.rule!r}:" if self.rule else ""
        field = f" {self.field}:" if self.field else ""
        return f"{where}:{rule}{field} {self.message}"


class RuleFileError(ValueError):
    """A rule file that cannot be put in force; ``problems`` lists every error found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} error(s)\n{lines}")


@dataclass(frozen=True, slots=True)
class Template:
    """Reason text with placeholders, rendered only when the rule hits."""

    text: str
    parts: tuple[tuple[str, Fn | None, str], ...]

    def render(self, ctx: Any, codes: frozenset[str]) -> str:
        out = []
        for literal, fn, spec in self.parts:
            out.append(literal)
            if fn is not None:
                value = fn(ctx, codes)
                out.append(_MISSING_TEXT if value is None else format(value, spec))
        return "".join(out)


@dataclass(frozen=True, slots=True)
class Rule:
    """One compiled rule (see the module docstring for what each setting means)."""

    name: str
    condition: str
    test: Fn
    score: float | None
    action: Action | None
    reason: Template
    enabled: bool = True
    shadow: bool = False
    line: int | None = None
    fields: frozenset[str] = frozenset()
    reasons: frozenset[str] = frozenset()
    description: str = ""

    @property
    def code(self) -> str:
        return f"rule:{self.name}"


class _LineLoader(yaml.SafeLoader):
    """A safe loader that remembers the line of every mapping and of each of its keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        mapping = super().construct_mapping(node, deep=deep)
        mapping[_LINE] = node.start_mark.line + 1
        mapping[_LINES] = {
            key.value: key.start_mark.line + 1 for key, _ in node.value if hasattr(key, "value")
        }
        return mapping


def known_reason_codes() -> frozenset[str]:
    """The reason codes the default detectors and the transaction model can emit."""
    from vigil.detect import default_detectors
    from vigil.models.scorer import CODE

    return frozenset(code for d in default_detectors() for code in d.codes) | {CODE}


def load_rules(
    text: str,
    *,
    source: str = "<rules>",
    known_reasons: Collection[str] | None = None,
    fields: Mapping[str, Field] = FIELDS,
) -> list[Rule]:
    """Every rule of a YAML rule file, compiled; raises :class:`RuleFileError` with all errors."""
    problems: list[Problem] = []
    try:
        document = yaml.load(text, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        problem = Problem(source, line, None, None, f"not YAML: {reason}")
        raise RuleFileError(source, [problem]) from None
    if document is None:
        problem = Problem(source, 1, None, "rules", f"the file is empty; {_NO_RULES_HINT}")
        raise RuleFileError(source, [problem])
    if not isinstance(document, dict) or "rules" not in document:
        raise RuleFileError(
            source, [Problem(source, 1, None, None, "expected a mapping with a 'rules' list")]
        )
    lines = document.get(_LINES, {})
    for key in _user_keys(document):
        if key not in _FILE_KEYS:
            problems.append(
                Problem(
                    source,
                    lines.get(key),
                    None,
                    key,
                    f"unknown setting (expected {', '.join(_FILE_KEYS)})",
                )
            )
    items = document["rules"] or []
    if not isinstance(items, list):
        problems.append(Problem(source, lines.get("rules"), None, "rules", "must be a list"))
        raise RuleFileError(source, problems)
    _check_empty(document, len(items), source, lines, problems)
    rules: list[Rule] = []
    seen: dict[str, int | None] = {}
    for index, item in enumerate(items):
        rule = _rule(item, index, source, known_reasons, fields, problems)
        if rule is None:
            continue
        if rule.name in seen:
            problems.append(
                Problem(
                    source,
                    rule.line,
                    rule.name,
                    "name",
                    f"defined twice (first at line {seen[rule.name]})",
                )
            )
            continue
        seen[rule.name] = rule.line
        rules.append(rule)
    if problems:
        raise RuleFileError(source, problems)
    return rules


def _check_empty(
    document: dict, count: int, source: str, lines: dict[str, int], problems: list[Problem]
) -> None:
    """No rules only with ``empty: true``, and ``empty: true`` only with no rules."""
    empty = document.get("empty", False)
    if not isinstance(empty, bool):
        problems.append(
            Problem(source, lines.get("empty"), None, "empty", f"{empty!r} must be true or false")
        )
    elif count == 0 and not empty:
        line = lines.get("rules", 1)
        problems.append(Problem(source, line, None, "rules", f"no rules; {_NO_RULES_HINT}"))
    elif count and empty:
        message = f"true, but the file has {count} rule(s)"
        problems.append(Problem(source, lines.get("empty"), None, "empty", message))


def _user_keys(mapping: dict) -> list[str]:
    return [k for k in mapping if k not in (_LINE, _LINES)]


def _rule(
    item: Any,
    index: int,
    source: str,
    known_reasons: Collection[str] | None,
    fields: Mapping[str, Field],
    problems: list[Problem],
) -> Rule | None:
    if not isinstance(item, dict):
        problems.append(
            Problem(source, None, None, f"rules[{index}]", "each rule must be a mapping")
        )
        return None
    line = item.get(_LINE)
    lines: dict[str, int] = item.get(_LINES, {})
    name = item.get("name")
    label = name if isinstance(name, str) else f"rules[{index}]"
    start = len(problems)

    def problem(field: str | None, message: str, at: int | None = None) -> None:
        problems.append(Problem(source, at or lines.get(field or "", line), label, field, message))

    for key in _user_keys(item):
        if key not in _RULE_KEYS:
            problem(str(key), f"unknown setting (expected {', '.join(_RULE_KEYS)})")
    if not isinstance(name, str) or not _NAME.match(name):
        problem("name", "required: 1-64 letters, digits, '_', '.' or '-'")

    values: dict[str, Compiled] = {}
    raw_values = item.get("values") or {}
    if not isinstance(raw_values, dict):
        problem("values", "must be a mapping of name: expression")
        raw_values = {}
    for key in _user_keys(raw_values):
        expression = raw_values[key]
        if not isinstance(key, str) or not key.isidentifier():
            problem("values", f"{key!r} is not a plain name")
            continue
        if key in fields:
            problem("values", f"{key} is a field already; choose another name")
            continue
        compiled = _expression(
            expression, known_reasons, fields, values, "values", problem, f"{key}: "
        )
        if compiled is not None:
            values[key] = compiled

    condition = item.get("condition")
    test = _expression(condition, known_reasons, fields, values, "condition", problem)
    if test is not None and test.type != "bool":
        problem("condition", f"must be true/false, got a {test.type}")
        test = None

    score = item.get("score")
    if score is not None and (
        isinstance(score, bool) or not isinstance(score, int | float) or not 0 < score <= 1
    ):
        problem("score", f"{score!r} must be a number in (0, 1]")
    action = item.get("action")
    ruled: Action | None = None
    if action is not None:
        try:
            ruled = Action(action)
        except ValueError:
            problem("action", f"{action!r} is not one of {', '.join(a.value for a in Action)}")
    if score is None and action is None:
        problem(None, "needs a score or an action")

    flags = {}
    for flag, default in (("enabled", True), ("shadow", False)):
        value = item.get(flag, default)
        if not isinstance(value, bool):
            problem(flag, f"{value!r} must be true or false")
        flags[flag] = value is True

    description = item.get("description", "")
    if not isinstance(description, str):
        problem("description", "must be text")
    reason = _template(item.get("reason"), name, known_reasons, fields, values, problem)

    if len(problems) > start or test is None or reason is None:
        return None
    used = test.fields.union(*(v.fields for v in values.values()))
    return Rule(
        name=name,
        condition=condition.strip(),
        test=test.fn,
        score=float(score) if score is not None else None,
        action=ruled,
        reason=reason,
        enabled=flags["enabled"],
        shadow=flags["shadow"],
        line=line,
        fields=frozenset(used),
        reasons=test.reasons,
        description=description,
    )


def _expression(
    text: Any,
    known_reasons: Collection[str] | None,
    fields: Mapping[str, Field],
    values: Mapping[str, Compiled],
    field: str,
    problem: Callable[..., None],
    prefix: str = "",
) -> Compiled | None:
    """Compile one expression of a rule; a problem on ``field`` (message after ``prefix``)."""
    if not isinstance(text, str) or not text.strip():
        problem(field, f"{prefix}required, an expression in text")
        return None
    try:
        return compile_expression(text, fields=fields, known_reasons=known_reasons, names=values)
    except ExpressionError as exc:
        problem(field, f"{prefix}{exc.args[0]}")
        return None


def _template(
    text: Any,
    name: Any,
    known_reasons: Collection[str] | None,
    fields: Mapping[str, Field],
    values: Mapping[str, Compiled],
    problem: Callable[..., None],
) -> Template | None:
    if text is None:
        text = f"rule {name}" if isinstance(name, str) else "rule"
    if not isinstance(text, str):
        problem("reason", "must be text")
        return None
    parts: list[tuple[str, Fn | None, str]] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        problem("reason", f"bad placeholder: {exc} (write {{{{ and }}}} for braces)")
        return None
    ok = True
    for literal, placeholder, spec, conversion in parsed:
        if placeholder is None:
            parts.append((literal, None, ""))
            continue
        if conversion or not placeholder.strip():
            problem("reason", f"placeholder {{{placeholder}}} must name a field or value")
            ok = False
            continue
        compiled = _expression(
            placeholder, known_reasons, fields, values, "reason", problem, f"{{{placeholder}}}: "
        )
        if compiled is None:
            ok = False
            continue
        try:
            format(_SAMPLES.get(compiled.type, ""), spec or "")
        except ValueError as exc:
            problem(
                "reason", f"{{{placeholder}:{spec}}}: format does not suit a {compiled.type}: {exc}"
            )
            ok = False
            continue
        parts.append((literal, compiled.fn, spec or ""))
    return Template(text, tuple(parts)) if ok else None
