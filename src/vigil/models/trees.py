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

Reasons: :meth:`CompiledTrees.contributions` walks the same paths and credits each split's
feature with the change of the node value along the path (Saabas attribution). It is exact in
sum — bias plus contributions equals the raw score — and cheap, but it is not TreeSHAP;
offline reports use LightGBM's ``pred_contrib`` (TreeSHAP) instead.

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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

_ZERO = 1e-35  # LightGBM's kZeroThreshold
_MAX_DEPTH = 60  # CPython refuses sources nested much deeper than ~100 blocks


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

    def probability(self, x: Sequence[float]) -> float:
        """LightGBM's probability: ``1 / (1 + exp(-sigmoid * raw))``."""
        return 1.0 / (1.0 + math.exp(-self.sigmoid * self.raw(x)))

    def _generate(self) -> str:
        n = len(self.features)
        lines = ["def raw(x):"]
        if n:
            names = ", ".join(f"f{i}" for i in range(n))
            lines.append(f"    {names}{',' if n == 1 else ''} = x")
        lines.append("    s = 0.0")
        for tree in self.trees:
            _emit(tree, lines, 1)
        lines.append("    return s")
        return "\n".join(lines) + "\n"

    def contributions(self, x: Sequence[float]) -> tuple[float, list[float]]:
        """``(bias, per-feature contributions)`` of the raw score along each tree's path."""
        bias = 0.0
        out = [0.0] * len(self.features)
        for tree in self.trees:
            node = tree
            value = float(node.get("internal_value", node.get("leaf_value", 0.0)))
            bias += value
            while "leaf_value" not in node:
                child = node["left_child"] if _goes_left(node, x) else node["right_child"]
                child_value = float(child.get("leaf_value", child.get("internal_value", 0.0)))
                out[node["split_feature"]] += child_value - value
                node, value = child, child_value
        return bias, out


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


def _emit(node: dict[str, Any], lines: list[str], depth: int) -> None:
    pad = "    " * depth
    if "leaf_value" in node:
        lines.append(f"{pad}s += {_literal(node['leaf_value'])}")
        return
    v = f"f{int(node['split_feature'])}"
    threshold = _literal(node["threshold"])
    if node["missing_type"] == "Zero":
        default = node["default_left"]
        zero = f"(-{_ZERO!r} <= {v} <= {_ZERO!r} or {v} != {v})"
        test = f"{zero} or {v} <= {threshold}" if default else f"not {zero} and {v} <= {threshold}"
    elif _nan_left(node):
        test = f"{v} <= {threshold} or {v} != {v}"
    else:
        test = f"{v} <= {threshold}"  # NaN compares False: right, as it should
    lines.append(f"{pad}if {test}:")
    _emit(node["left_child"], lines, depth + 1)
    lines.append(f"{pad}else:")
    _emit(node["right_child"], lines, depth + 1)
