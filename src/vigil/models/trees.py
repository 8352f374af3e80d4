"""A LightGBM binary model compiled to plain Python, for scoring one event in microseconds.

``Booster.predict`` on a single row spends tens of microseconds crossing into C++ and
validating its input; the engine's budget for the whole model is 20 µs. The trees from
``Booster.dump_model()`` are therefore turned into one generated Python function of nested
``if``/``else`` (every threshold a literal, every feature a local variable), which CPython
runs at a few tens of nanoseconds per split. Serving needs neither LightGBM nor numpy.

Splits follow LightGBM's ``NumericalDecision`` exactly: with ``missing_type`` ``NaN`` a NaN
goes the ``default_left`` way; with ``None`` a NaN is read as 0.0; with ``Zero`` a value
within ±1e-35 (or NaN) goes the default way. Categorical splits are refused (vigil's features
are numeric). Equality with LightGBM's own predictions is a test (``tests/models``).

Stopping early: a detector only needs the score when it is high, and most events are far
below. :meth:`CompiledTrees.raw_reaching` is the same function with a test after each tree:
once the score so far plus the most the remaining trees can add (the sum of their largest
leaves) is below the score asked for, it stops. For a model of 120 trees a typical event
stops after a dozen or so.

Reasons: :meth:`CompiledTrees.contributions` follows the same paths and credits each split's
feature with the change of the node value along the path (Saabas attribution), compiled the
same way (each credit a literal added to the feature's local; ten times faster than walking
the dump, which :meth:`~CompiledTrees.contributions_by_walking` still does, as its reference).
It is exact in sum — bias plus contributions equals the raw score — and cheap, but it is not
TreeSHAP; offline reports use LightGBM's ``pred_contrib`` (TreeSHAP) instead.

The generated source only ever contains numbers taken from the dump (formatted by ``repr``
of a float or int), never text from it, so compiling a stored artefact cannot run its text.

>>> dump = {"objective": "binary sigmoid:1", "feature_names": ["amount"], "tree_info": [
...     {"tree_structure": {"split_feature": 0, "threshold": 100.0, "decision_type": "<=",
...      "default_left": True, "missing_type": "NaN", "internal_value": 0.0,
...      "left_child": {"leaf_value": -1.0}, "right_child": {"leaf_value": 2.0}}}]}
>>> trees = CompiledTrees(dump)
>>> trees.raw([50.0]), trees.raw([500.0]), trees.raw([float("nan")])
(-1.0, 2.0, -1.0)
>>> trees.contributions([500.0])
(0.0, [2.0])
>>> trees.raw_reaching([500.0], 1.0), trees.raw_reaching([50.0], 1.0)
(2.0, -1.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

_ZERO = 1e-35  # LightGBM's kZeroThreshold
_MAX_DEPTH = 60  # CPython refuses sources nested much deeper than ~100 blocks
# Added to the bound on what the remaining trees can add, far above the rounding of the two
# sums it compares (relative ~1e-16 per addition), so a stop never drops a score that the
# full sum would have brought to the one asked for.
_SLACK = 1e-9


def _literal(value: float) -> str:
    value = float(value)
    if math.isnan(value):
        raise ValueError("threshold: NaN in a LightGBM dump")
    if math.isinf(value):
        return "_INF" if value > 0 else "-_INF"
    return repr(value)


class CompiledTrees:
    """The trees of a LightGBM binary model as one Python function; raw score and attributions.

    ``dump`` is ``Booster.dump_model()``. :meth:`raw` takes the feature values in the order of
    ``dump["feature_names"]``.

    >>> CompiledTrees({"objective": "binary sigmoid:1", "feature_names": ["x"],
    ...                "tree_info": [{"tree_structure": {"leaf_value": 0.5}}]}).raw([1.0])
    0.5
    """

    def __init__(self, dump: dict[str, Any]) -> None:
        objective = str(dump.get("objective", ""))
        if not objective.startswith("binary"):
            raise ValueError(f"objective: {objective!r} is not a binary LightGBM model")
        if dump.get("average_output"):
            raise ValueError("average_output: random-forest mode is not supported")
        self.features: list[str] = list(dump["feature_names"])
        self.sigmoid = 1.0
        for part in objective.split():
            if part.startswith("sigmoid:"):
                self.sigmoid = float(part.split(":", 1)[1])
        self.trees = [info["tree_structure"] for info in dump["tree_info"]]
        for i, tree in enumerate(self.trees):
            _check(tree, f"tree_info[{i}]", 0)
        self.source = self._generate()
        namespace: dict[str, Any] = {"_INF": math.inf}
        exec(compile(self.source, "<vigil.models.trees>", "exec"), namespace)
        #: The raw score (log-odds) of one row: the compiled function itself, no wrapper.
        self.raw: Callable[[Sequence[float]], float] = namespace["raw"]
        self.reaching_source = self._generate(stops=True)
        exec(compile(self.reaching_source, "<vigil.models.trees>", "exec"), namespace)
        #: ``raw_reaching(x, least)``: :meth:`raw` when that is at least ``least``; otherwise
        #: a number below ``least`` and not below the raw score (the sum so far plus the
        #: most the trees not yet read can add), after as few trees as that takes.
        self.raw_reaching: Callable[[Sequence[float], float], float] = namespace["raw_reaching"]
        #: ``(bias, per-feature contributions)`` of one row, compiled the same way.
        self.contributions_source = self._generate_contributions()
        exec(compile(self.contributions_source, "<vigil.models.trees>", "exec"), namespace)
        self._contributions: Callable[[Sequence[float]], list[float]] = namespace["contributions"]
        self._bias = 0.0
        for tree in self.trees:
            self._bias += float(tree.get("internal_value", tree.get("leaf_value", 0.0)))

    def probability(self, x: Sequence[float]) -> float:
        """LightGBM's probability: ``1 / (1 + exp(-sigmoid * raw))``."""
        return 1.0 / (1.0 + math.exp(-self.sigmoid * self.raw(x)))

    def _unpack(self, name: str, arguments: str = "x") -> list[str]:
        n = len(self.features)
        lines = [f"def {name}({arguments}):"]
        if n:
            names = ", ".join(f"f{i}" for i in range(n))
            lines.append(f"    {names}{',' if n == 1 else ''} = x")
        return lines

    def _generate(self, *, stops: bool = False) -> str:
        lines = self._unpack("raw_reaching", "x, least") if stops else self._unpack("raw")
        lines.append("    s = 0.0")
        rest = _most_added(self.trees)
        for i, tree in enumerate(self.trees):
            _emit(tree, lines, 1)
            if stops and i + 1 < len(self.trees):
                most = _literal(rest[i + 1])
                lines.append(f"    if s + {most} < least:")
                lines.append(f"        return s + {most}")
        lines.append("    return s")
        return "\n".join(lines) + "\n"

    def _generate_contributions(self) -> str:
        # one local per feature (cheaper to add to than a list's items), listed at the end
        lines = self._unpack("contributions")
        credited = ", ".join(f"c{i}" for i in range(len(self.features)))
        for i in range(len(self.features)):
            lines.append(f"    c{i} = 0.0")
        for tree in self.trees:
            _emit_contributions(tree, _value(tree), lines, 1)
        lines.append(f"    return [{credited}]")
        return "\n".join(lines) + "\n"

    def contributions(self, x: Sequence[float]) -> tuple[float, list[float]]:
        """``(bias, per-feature contributions)`` of the raw score along each tree's path."""
        return self._bias, self._contributions(x)

    def contributions_by_walking(self, x: Sequence[float]) -> tuple[float, list[float]]:
        """:meth:`contributions` computed by walking the dump (the compiled one's reference)."""
        bias = 0.0
        out = [0.0] * len(self.features)
        for tree in self.trees:
            node = tree
            value = float(node.get("internal_value", node.get("leaf_value", 0.0)))
            bias += value
            while "leaf_value" not in node:
                child = node["left_child"] if _goes_left(node, x) else node["right_child"]
                child_value = _value(child)
                out[node["split_feature"]] += child_value - value
                node, value = child, child_value
        return bias, out


def _leaves(node: dict[str, Any]) -> list[float]:
    if "leaf_value" in node:
        return [float(node["leaf_value"])]
    return _leaves(node["left_child"]) + _leaves(node["right_child"])


def _most_added(trees: list[dict[str, Any]]) -> list[float]:
    """Per tree ``i``: at least the most that trees ``i`` onwards can add to the raw score,
    whatever the row (the sum of their largest leaves, plus slack for rounding)."""
    leaves = [_leaves(tree) for tree in trees]
    slack = _SLACK * (1.0 + sum(max(map(abs, values)) for values in leaves))
    out = [0.0] * len(trees)
    for i in reversed(range(len(trees))):
        out[i] = max(leaves[i]) + (out[i + 1] if i + 1 < len(trees) else 0.0)
    return [most + slack for most in out]


def _check(node: dict[str, Any], where: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise ValueError(f"{where}: deeper than {_MAX_DEPTH} splits; train with max_depth")
    if "leaf_value" in node:
        return
    if node.get("decision_type") != "<=":
        raise ValueError(f"{where}: decision_type {node.get('decision_type')!r} (categorical?)")
    _check(node["left_child"], where, depth + 1)
    _check(node["right_child"], where, depth + 1)


def _nan_left(node: dict[str, Any]) -> bool:
    """Where a NaN goes: the default side, or (missing_type None) where 0.0 goes."""
    if node["missing_type"] == "None":
        return float(node["threshold"]) >= 0.0
    return bool(node["default_left"])


def _goes_left(node: dict[str, Any], x: Sequence[float]) -> bool:
    v = float(x[node["split_feature"]])
    missing = node["missing_type"]
    if missing == "Zero" and (math.isnan(v) or -_ZERO <= v <= _ZERO):
        return bool(node["default_left"])
    if math.isnan(v):
        return _nan_left(node)
    return v <= float(node["threshold"])


def _value(node: dict[str, Any]) -> float:
    """A node's value for the attributions: a leaf's value, else its internal value."""
    return float(node.get("leaf_value", node.get("internal_value", 0.0)))


def _emit(node: dict[str, Any], lines: list[str], depth: int) -> None:
    pad = "    " * depth
    if "leaf_value" in node:
        lines.append(f"{pad}s += {_literal(node['leaf_value'])}")
        return
    lines.append(f"{pad}if {_test(node)}:")
    _emit(node["left_child"], lines, depth + 1)
    lines.append(f"{pad}else:")
    _emit(node["right_child"], lines, depth + 1)


def _emit_contributions(node: dict[str, Any], value: float, lines: list[str], depth: int) -> None:
    """Each split on the path credits its feature with the change of the node value."""
    if "leaf_value" in node:
        return
    pad = "    " * depth
    at = int(node["split_feature"])
    for side, child in (("if", node["left_child"]), ("else", node["right_child"])):
        lines.append(f"{pad}if {_test(node)}:" if side == "if" else f"{pad}else:")
        child_value = _value(child)
        lines.append(f"{pad}    c{at} += {_literal(child_value - value)}")
        _emit_contributions(child, child_value, lines, depth + 1)


def _test(node: dict[str, Any]) -> str:
    """The generated condition under which a row goes to the node's left child."""
    v = f"f{int(node['split_feature'])}"
    threshold = _literal(node["threshold"])
    if node["missing_type"] == "Zero":
        default = node["default_left"]
        zero = f"(-{_ZERO!r} <= {v} <= {_ZERO!r} or {v} != {v})"
        test = f"{zero} or {v} <= {threshold}" if default else f"not {zero} and {v} <= {threshold}"
    elif _nan_left(node):
        # NaN compares False either way, so ``not v > t`` is ``v <= t or v != v`` in one test
        test = f"not {v} > {threshold}"
    else:
        test = f"{v} <= {threshold}"  # NaN compares False: right, as it should
    return test
