"""A trained model as served: its feature list, its scorer, and its probability calibration.

The scorer is a :class:`~vigil.models.trees.CompiledTrees` (LightGBM) or a
:class:`~vigil.models.linear.LinearModel` (logistic regression); both give a raw log-odds score
for one row. Training reweights the classes, which shifts raw scores away from true odds, so
the probability is ``sigmoid(a * raw + b)`` with ``a, b`` fitted on the validation part
(Platt scaling): a probability the engine's noisy-OR policy can combine with detector scores.

>>> from vigil.models.linear import LinearModel
>>> lm = LinearModel(["amount"], fill=[0.0], mean=[0.0], scale=[1.0], coef=[1.0], intercept=0.0)
>>> m = Model("transaction", "logreg", lm, calibration=(1.0, 0.0))
>>> m.probability([0.0]), m.features
(0.5, ['amount'])
>>> m.reasons([2.0], top=1)
[('amount', 2.0)]
>>> at_least = m.at_least(0.8)
>>> at_least([0.0]), round(at_least([2.0]), 3)
(None, 0.881)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from vigil.models.linear import LinearModel
from vigil.models.trees import CompiledTrees

KINDS = ("lightgbm", "logreg")


class Model:
    """One servable model: ``probability(row)`` for a row in ``features`` order.

    >>> Model("card", "forest", None, calibration=(1.0, 0.0))  # type: ignore[arg-type]
    Traceback (most recent call last):
    ValueError: kind: 'forest' is not one of lightgbm, logreg
    """

    def __init__(
        self,
        name: str,
        kind: str,
        scorer: CompiledTrees | LinearModel,
        *,
        calibration: tuple[float, float],
        version: str | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
        self.name = name
        self.kind = kind
        self.scorer = scorer
        self.features: list[str] = list(scorer.features)
        self.calibration = (float(calibration[0]), float(calibration[1]))
        self.version = version

    def raw(self, x: Sequence[float]) -> float:
        return self.scorer.raw(x)

    def probability(self, x: Sequence[float]) -> float:
        return self._calibrated(self.scorer.raw(x))

    def _calibrated(self, raw: float) -> float:
        a, b = self.calibration
        z = a * raw + b
        # exp overflows past ~709; the probability is 0 or 1 there anyway.
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0

    def at_least(self, least: float) -> Callable[[Sequence[float]], float | None]:
        """``f(x)``: :meth:`probability` when it is at least ``least``, else None; trees stop
        as soon as the rest cannot bring the score up to it (``raw_reaching``), which is
        the most a detector scoring only high probabilities needs of most events."""
        probability = self.probability
        reaching = getattr(self.scorer, "raw_reaching", None)
        floor = self._raw_floor(least) if reaching is not None else None
        if reaching is None or floor is None:

            def whole(x: Sequence[float]) -> float | None:
                p = probability(x)
                return p if p >= least else None

            return whole
        calibrated = self._calibrated

        def stopping(x: Sequence[float]) -> float | None:
            raw = reaching(x, floor)
            if raw < floor:
                return None
            p = calibrated(raw)
            return p if p >= least else None

        return stopping

    def _raw_floor(self, least: float) -> float | None:
        """A raw score whose probability is below ``least``, and close to the first that is
        not; None when there is none to find (a probability bar outside (0, 1), or a
        calibration that does not rise with the raw score)."""
        a, b = self.calibration
        if not a > 0 or not 0 < least < 1:
            return None
        floor = (math.log(least / (1 - least)) - b) / a
        # The calibration rounds; it is monotonic, so a raw score below a floor whose own
        # probability is below ``least`` has one below it too. A slope so flat that a few
        # steps down do not get there is not worth stopping for.
        for _ in range(8):
            if self._calibrated(floor) < least:
                return floor
            floor -= 1e-9 * (1.0 + abs(floor))
        return None

    def raw_batch(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if isinstance(self.scorer, LinearModel):
            return self.scorer.raw_batch(X)
        raw = self.scorer.raw
        return np.fromiter((raw(row) for row in X.tolist()), dtype=np.float64, count=len(X))

    def probability_batch(self, X: np.ndarray) -> np.ndarray:
        a, b = self.calibration
        return 1.0 / (1.0 + np.exp(-np.clip(a * self.raw_batch(X) + b, -700, 700)))

    def reasons(self, x: Sequence[float], *, top: int = 3) -> list[tuple[str, float]]:
        """The ``top`` features that pushed this row's raw score up most, with their share."""
        _, contributions = self.scorer.contributions(x)
        ranked = sorted(zip(self.features, contributions, strict=True), key=lambda p: -p[1])
        return [(name, value) for name, value in ranked[:top] if value > 0]
