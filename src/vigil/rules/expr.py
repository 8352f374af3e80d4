"""The rule expression language: a safe subset of Python expressions, type-checked, compiled once.

An expression is parsed with :mod:`ast` and only whitelisted nodes are accepted: literals
(numbers, strings, ``true``/``false``), field names from :data:`~vigil.rules.fields.FIELDS`
(``card.withdrawal.p95``), arithmetic (``+ - * / %``, unary ``-``), comparisons (chains
allowed), ``in`` / ``not in`` a list of literals, ``and`` / ``or`` / ``not``, and the calls
``abs(x)``, ``min(a, b, ...)``, ``max(a, b, ...)``, ``has(field)`` and ``has_reason("code")``.
No other name, attribute, call, subscript or Python construct exists; nothing is ever passed
to ``eval``. Every node is type-checked when the rule loads, then compiled to a closure
``f(ctx, codes)`` so evaluation costs a few Python calls.

**Missing values** (see :mod:`vigil.rules.fields`) propagate through arithmetic (``missing * 3``
is missing, as is a division by zero), make every comparison false (``<``, ``==``, ``!=``,
``in`` and ``not in`` alike), make ``min``/``max``/``abs`` missing, and count as false where a
boolean is expected (``and``, ``or``, the condition itself). So ``not x`` is true when ``x`` is
missing; ``has(x)`` tests presence explicitly.

>>> from datetime import datetime, UTC
>>> from vigil.detect.context import Context
>>> from vigil.domain import Transaction
>>> tx = Transaction(event_id="e", transaction_id="t", card_id="c", type="withdrawal",
...                  amount="900.00", timestamp=datetime(2022, 1, 1, 9, tzinfo=UTC))
>>> ctx = Context(tx, 0.0, 0.0, 0, 90000)
>>> rule = compile_expression('amount > 3 * 250 and channel in ["atm", "pos"]')
>>> rule.type, rule.fn(ctx, frozenset())
('bool', True)
>>> compile_expression("amount > card.withdrawal.p95").fn(ctx, frozenset())  # no card profile
False
>>> try:
...     compile_expression('channel == "branch"')
... except ExpressionError as exc:
...     print(exc, "/", exc.field)
'branch' is not a value of channel (atm, pos, online, mobile) (column 12) / channel
"""

from __future__ import annotations

import ast
import difflib
import operator
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from vigil.rules.fields import FIELDS, Field

Fn = Callable[[Any, frozenset[str]], Any]
_LIST = "list"
_CONSTANTS = {"true": True, "false": False, "True": True, "False": False}
_ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
}
_ORDER: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
_EQUALITY: dict[type, Callable[[Any, Any], bool]] = {ast.Eq: operator.eq, ast.NotEq: operator.ne}
_SYMBOLS = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
    ast.In: "in", ast.NotIn: "not in", ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/",
    ast.Mod: "%",
}  # fmt: skip
FUNCTIONS = ("abs", "min", "max", "has", "has_reason")


class ExpressionError(ValueError):
    """A rule expression that does not parse or type-check; ``field`` names the culprit."""

    def __init__(self, message: str, field: str | None = None, column: int | None = None):
        super().__init__(message)
        self.field = field
        self.column = column


@dataclass(frozen=True, slots=True)
class Compiled:
    """A type-checked expression: its type, its closure, and what it reads.

    ``constant`` holds the value when the expression has no field (folded at compile time).
    """

    type: str
    fn: Fn
    fields: frozenset[str] = frozenset()
    reasons: frozenset[str] = frozenset()
    constant: Any = None
    is_constant: bool = False
    # Allowed values of the string field this expression is (for checking literals).
    values: tuple[str, ...] | None = field(default=None, compare=False)


def compile_expression(
    text: str,
    *,
    fields: Mapping[str, Field] = FIELDS,
    known_reasons: Collection[str] | None = None,
    names: Mapping[str, Compiled] | None = None,
) -> Compiled:
    """Parse, type-check and compile ``text``; raises :class:`ExpressionError`.

    ``known_reasons``: reason codes ``has_reason`` may name (None: any). ``names``: extra
    compiled values by name (a rule's ``values``), usable like fields.
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("empty expression")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        column = exc.offset
        raise ExpressionError(
            f"syntax error at column {column}: {exc.msg}", column=column
        ) from None
    return _Compiler(fields, known_reasons, names or {}).node(tree.body)


def _const(value: Any, type_: str) -> Compiled:
    return Compiled(type_, lambda ctx, codes: value, constant=value, is_constant=True)


def _merge(*parts: Compiled) -> dict[str, frozenset[str]]:
    return {
        "fields": frozenset().union(*(p.fields for p in parts)),
        "reasons": frozenset().union(*(p.reasons for p in parts)),
    }


def _where(node: ast.AST) -> str:
    return f" (column {node.col_offset + 1})" if hasattr(node, "col_offset") else ""


class _Compiler:
    def __init__(
        self,
        fields: Mapping[str, Field],
        known_reasons: Collection[str] | None,
        names: Mapping[str, Compiled],
    ) -> None:
        self.fields = fields
        self.known_reasons = known_reasons
        self.names = names

    def fail(self, node: ast.AST, message: str, field: str | None = None) -> ExpressionError:
        column = node.col_offset + 1 if hasattr(node, "col_offset") else None
        return ExpressionError(message + _where(node), field=field, column=column)

    def node(self, node: ast.AST) -> Compiled:
        handler = getattr(self, f"_{type(node).__name__}", None)
        if handler is None:
            raise self.fail(node, f"{type(node).__name__.lower()} is not allowed in a rule")
        return handler(node)

    # -- leaves ------------------------------------------------------------------------------
    def _Constant(self, node: ast.Constant) -> Compiled:
        value = node.value
        if isinstance(value, bool):
            return _const(value, "bool")
        if isinstance(value, int | float):
            return _const(value, "number")
        if isinstance(value, str):
            return _const(value, "string")
        raise self.fail(node, f"the literal {value!r} is not allowed (numbers, text, true/false)")

    def _Name(self, node: ast.Name) -> Compiled:
        if node.id in _CONSTANTS:
            return _const(_CONSTANTS[node.id], "bool")
        return self.field(node.id, node)

    def _Attribute(self, node: ast.Attribute) -> Compiled:
        return self.field(self.dotted(node), node)

    def dotted(self, node: ast.AST) -> str:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute):
            return f"{self.dotted(node.value)}.{node.attr}"
        raise self.fail(node, "only field names may be followed by '.'")

    def field(self, name: str, node: ast.AST) -> Compiled:
        named = self.names.get(name)
        if named is not None:
            return named
        spec = self.fields.get(name)
        if spec is None:
            close = difflib.get_close_matches(name, [*self.fields, *self.names], n=1, cutoff=0.75)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise self.fail(node, f"unknown field {name}{hint}", field=name)
        return Compiled(spec.type, spec.get, fields=frozenset((name,)), values=spec.values)

    # -- operators ---------------------------------------------------------------------------
    def _BoolOp(self, node: ast.BoolOp) -> Compiled:
        parts = [
            self.boolean(v, "and" if isinstance(node.op, ast.And) else "or") for v in node.values
        ]
        fns = [p.fn for p in parts]
        meta = _merge(*parts)
        if isinstance(node.op, ast.And):
            if len(fns) == 2:
                a, b = fns
                return Compiled("bool", lambda c, r: bool(a(c, r)) and bool(b(c, r)), **meta)
            return Compiled("bool", lambda c, r: all(f(c, r) for f in fns), **meta)
        if len(fns) == 2:
            a, b = fns
            return Compiled("bool", lambda c, r: bool(a(c, r)) or bool(b(c, r)), **meta)
        return Compiled("bool", lambda c, r: any(f(c, r) for f in fns), **meta)

    def boolean(self, node: ast.AST, where: str) -> Compiled:
        part = self.node(node)
        if part.type != "bool":
            raise self.fail(
                node,
                f"'{where}' needs true/false, got a {part.type}{_named(part)}",
                field=_first(part),
            )
        return part

    def _UnaryOp(self, node: ast.UnaryOp) -> Compiled:
        if isinstance(node.op, ast.Not):
            inner = self.boolean(node.operand, "not")
            f = inner.fn
            return Compiled("bool", lambda c, r: not f(c, r), **_merge(inner))
        if isinstance(node.op, ast.USub | ast.UAdd):
            inner = self.number(node.operand, "-" if isinstance(node.op, ast.USub) else "+")
            if inner.is_constant:
                value = -inner.constant if isinstance(node.op, ast.USub) else inner.constant
                return _const(value, "number")
            f = inner.fn
            if isinstance(node.op, ast.UAdd):
                return inner
            return Compiled(
                "number", lambda c, r: None if (v := f(c, r)) is None else -v, **_merge(inner)
            )
        raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")

    def number(self, node: ast.AST, where: str) -> Compiled:
        part = self.node(node)
        if part.type != "number":
            raise self.fail(
                node,
                f"'{where}' needs a number, got a {part.type}{_named(part)}",
                field=_first(part),
            )
        return part

    def _BinOp(self, node: ast.BinOp) -> Compiled:
        op = _ARITHMETIC.get(type(node.op))
        if op is None:
            raise self.fail(node, f"operator {type(node.op).__name__} is not allowed")
        symbol = _SYMBOLS[type(node.op)]
        left, right = self.number(node.left, symbol), self.number(node.right, symbol)
        meta = _merge(left, right)
        if left.is_constant and right.is_constant:
            return _const(_arith(op, left.constant, right.constant), "number")
        lf, rf = left.fn, right.fn
        if right.is_constant:
            k = right.constant
            if k == 0 and op in (operator.truediv, operator.mod):
                # Division by zero is missing, as at run time with a zero field.
                return Compiled("number", lambda c, r: None, **meta)
            return Compiled(
                "number", lambda c, r: None if (v := lf(c, r)) is None else op(v, k), **meta
            )
        if left.is_constant:
            k = left.constant
            return Compiled("number", lambda c, r: _arith(op, k, rf(c, r)), **meta)
        return Compiled("number", lambda c, r: _arith(op, lf(c, r), rf(c, r)), **meta)

    def _Compare(self, node: ast.Compare) -> Compiled:
        tests = []
        left = self.node(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.node(right_node) if not isinstance(op, ast.In | ast.NotIn) else None
            tests.append(self.compare(op, left, right, right_node))
            if right is not None:
                left = right
        if len(tests) == 1:
            return tests[0]
        fns = [t.fn for t in tests]
        return Compiled("bool", lambda c, r: all(f(c, r) for f in fns), **_merge(*tests))

    def compare(
        self, op: ast.cmpop, left: Compiled, right: Compiled | None, right_node: ast.AST
    ) -> Compiled:
        symbol = _SYMBOLS.get(type(op), type(op).__name__)
        if isinstance(op, ast.In | ast.NotIn):
            return self.membership(isinstance(op, ast.NotIn), left, right_node)
        assert right is not None
        if isinstance(op, ast.Is | ast.IsNot):
            raise self.fail(right_node, "'is' is not allowed; use == or has(field)")
        if type(op) in _ORDER:
            for side in (left, right):
                if side.type != "number":
                    raise self.fail(
                        right_node,
                        f"'{symbol}' compares numbers, got a {side.type}{_named(side)}",
                        field=_first(side),
                    )
            fn = _ORDER[type(op)]
        else:
            if left.type != right.type:
                raise self.fail(
                    right_node,
                    f"'{symbol}' compares a {left.type}{_named(left)} with a "
                    f"{right.type}{_named(right)}",
                    field=_first(left) or _first(right),
                )
            self.check_values(left, right, right_node)
            self.check_values(right, left, right_node)
            fn = _EQUALITY[type(op)]
        meta = _merge(left, right)
        lf, rf = left.fn, right.fn
        if left.is_constant and right.is_constant:
            return _const(fn(left.constant, right.constant), "bool")
        if right.is_constant:
            k = right.constant
            if k is None:
                return Compiled("bool", lambda c, r: False, **meta)
            return Compiled("bool", lambda c, r: (v := lf(c, r)) is not None and fn(v, k), **meta)
        if left.is_constant:
            k = left.constant
            return Compiled("bool", lambda c, r: (v := rf(c, r)) is not None and fn(k, v), **meta)
        return Compiled("bool", lambda c, r: _compare(fn, lf(c, r), rf(c, r)), **meta)

    def check_values(self, spec: Compiled, other: Compiled, node: ast.AST) -> None:
        """A literal compared with an enumerated field must be one of its values."""
        if spec.values is not None and other.is_constant and other.constant not in spec.values:
            raise self.fail(
                node,
                f"{other.constant!r} is not a value of {_first(spec)} ({', '.join(spec.values)})",
                field=_first(spec),
            ) from None

    def membership(self, negate: bool, left: Compiled, node: ast.AST) -> Compiled:
        if not isinstance(node, ast.List | ast.Tuple | ast.Set):
            raise self.fail(node, '\'in\' needs a list of literals, e.g. country in ["NG", "GH"]')
        items = [self.node(e) for e in node.elts]
        for item in items:
            if not item.is_constant:
                raise self.fail(node, "'in' lists hold literals only")
            if item.type != left.type:
                raise self.fail(
                    node,
                    f"'in' list holds a {item.type} but {_first(left) or 'the value'} is a "
                    f"{left.type}",
                    field=_first(left),
                )
            self.check_values(left, item, node)
        members = frozenset(i.constant for i in items)
        lf = left.fn
        meta = _merge(left)
        if negate:
            return Compiled(
                "bool", lambda c, r: (v := lf(c, r)) is not None and v not in members, **meta
            )
        return Compiled("bool", lambda c, r: lf(c, r) in members, **meta)

    def _Call(self, node: ast.Call) -> Compiled:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS:
            shown = name or ast.unparse(node.func)
            raise self.fail(
                node, f"function {shown}() is not allowed (only {', '.join(FUNCTIONS)})"
            )
        if node.keywords:
            raise self.fail(node, f"{name}() takes no keyword arguments")
        args = node.args
        if name == "has_reason":
            return self.has_reason(node)
        if name == "has":
            if len(args) != 1:
                raise self.fail(node, "has() takes one field")
            inner = self.node(args[0])
            f = inner.fn
            return Compiled("bool", lambda c, r: f(c, r) is not None, **_merge(inner))
        if name == "abs":
            if len(args) != 1:
                raise self.fail(node, "abs() takes one number")
            inner = self.number(args[0], "abs")
            f = inner.fn
            return Compiled(
                "number", lambda c, r: None if (v := f(c, r)) is None else abs(v), **_merge(inner)
            )
        if len(args) < 2:
            raise self.fail(node, f"{name}() takes two or more numbers")
        parts = [self.number(a, name) for a in args]
        fns = [p.fn for p in parts]
        pick = min if name == "min" else max

        def extreme(c: Any, r: frozenset[str]) -> Any:
            values = [f(c, r) for f in fns]
            return None if None in values else pick(values)

        return Compiled("number", extreme, **_merge(*parts))

    def has_reason(self, node: ast.Call) -> Compiled:
        args = node.args
        if len(args) != 1 or not (
            isinstance(args[0], ast.Constant) and isinstance(args[0].value, str)
        ):
            raise self.fail(node, 'has_reason() takes one reason code in quotes, e.g. "new_device"')
        code = args[0].value
        if self.known_reasons is not None and code not in self.known_reasons:
            close = difflib.get_close_matches(code, list(self.known_reasons), n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise self.fail(node, f"unknown reason code {code!r}{hint}", field=code)
        return Compiled("bool", lambda c, r: code in r, reasons=frozenset((code,)))


def _arith(op: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    try:
        return op(a, b)
    except ZeroDivisionError:
        return None


def _compare(fn: Callable[[Any, Any], bool], a: Any, b: Any) -> bool:
    return a is not None and b is not None and fn(a, b)


def _first(part: Compiled) -> str | None:
    return min(part.fields) if len(part.fields) == 1 else None


def _named(part: Compiled) -> str:
    name = _first(part)
    return f" ({name})" if name is not None and not part.is_constant else ""
