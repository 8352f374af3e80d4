"""Logistic regression, the baseline: fitted with scikit-learn, served as plain arithmetic.

Missing values are filled with the training median, features standardised, classes weighted
``balanced``. The fitted model is a handful of numbers (fill, mean, scale, coefficients,
intercept) kept as JSON, so serving needs no scikit-learn and no pickle. A feature's
contribution is ``coef * standardised value``: exact, and in sum the raw score minus the
intercept.

>>> import numpy as np
>>> X = np.array([[0.0], [1.0], [2.0], [3.0], [np.nan], [4.0]])
>>> model = LinearModel.fit(X, np.array([0, 0, 0, 1, 0, 1]), ["amount"])
>>> model.raw([4.0]) > model.raw([0.0])
True
>>> LinearModel.from_dict(model.to_dict()).raw([4.0]) == model.raw([4.0])
True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np


class LinearModel:
    """``raw(x) = intercept + Σ coef_i * (fill(x_i) - mean_i) / scale_i``, the log-odds.

    >>> m = LinearModel(["a"], fill=[0.0], mean=[1.0], scale=[2.0], coef=[0.5], intercept=-1.0)
    >>> m.raw([5.0]), m.contributions([5.0])
    (0.0, (-1.0, [1.0]))
    """

    def __init__(
        self,
        features: Sequence[str],
        *,
        fill: Sequence[float],
        mean: Sequence[float],
        scale: Sequence[float],
        coef: Sequence[float],
        intercept: float,
    ) -> None:
        n = len(features)
        for name, values in (("fill", fill), ("mean", mean), ("scale", scale), ("coef", coef)):
            if len(values) != n:
                raise ValueError(f"{name}: {len(values)} values for {n} features")
        self.features = list(features)
        self.fill = [float(v) for v in fill]
        self.intercept = float(intercept)
        # Folded once so one row costs one multiply-add per feature.
        self.mean = [float(v) for v in mean]
        self.scale = [float(v) for v in scale]
        self.coef = [float(v) for v in coef]
        self._weights = [c / s for c, s in zip(self.coef, self.scale, strict=True)]
        self._offset = self.intercept - sum(
            w * m for w, m in zip(self._weights, self.mean, strict=True)
        )

    @classmethod
    def fit(
        cls,
        X: np.ndarray,
        y: np.ndarray,
        features: Sequence[str],
        *,
        c: float = 1.0,
        class_weight: str | None = "balanced",
    ) -> LinearModel:
        """Fit on ``X`` (NaN: missing); ``class_weight=None`` keeps the classes' own weights,
        so the probability is calibrated as fitted (the stacked combiner's)."""
        from sklearn.linear_model import LogisticRegression

        X = np.asarray(X, dtype=np.float64)
        with warnings.catch_warnings():
            # A feature never defined in training (no reference data) is filled with 0.
            warnings.simplefilter("ignore", RuntimeWarning)
            fill = np.nanmedian(np.where(np.isfinite(X), X, np.nan), axis=0)
        fill = np.where(np.isfinite(fill), fill, 0.0)
        filled = _filled(X, fill)
        mean = filled.mean(axis=0)
        scale = filled.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        lr = LogisticRegression(C=c, class_weight=class_weight, max_iter=2000)
        lr.fit((filled - mean) / scale, np.asarray(y, dtype=int))
        return cls(
            features,
            fill=fill.tolist(),
            mean=mean.tolist(),
            scale=scale.tolist(),
            coef=lr.coef_[0].tolist(),
            intercept=float(lr.intercept_[0]),
        )

    def raw(self, x: Sequence[float]) -> float:
        s = self._offset
        for v, w, f in zip(x, self._weights, self.fill, strict=True):
            s += w * (f if v != v or v in (math.inf, -math.inf) else v)
        return s

    def raw_batch(self, X: np.ndarray) -> np.ndarray:
        filled = _filled(np.asarray(X, dtype=np.float64), np.asarray(self.fill))
        return filled @ np.asarray(self._weights) + self._offset

    def contributions(self, x: Sequence[float]) -> tuple[float, list[float]]:
        out = []
        for v, c, m, s, f in zip(x, self.coef, self.mean, self.scale, self.fill, strict=True):
            value = f if not math.isfinite(v) else v
            out.append(c * (value - m) / s)
        return self.intercept, out

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": self.features,
            "fill": self.fill,
            "mean": self.mean,
            "scale": self.scale,
            "coef": self.coef,
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LinearModel:
        return cls(
            data["features"],
            fill=data["fill"],
            mean=data["mean"],
            scale=data["scale"],
            coef=data["coef"],
            intercept=data["intercept"],
        )


def _filled(X: np.ndarray, fill: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(X), X, fill)
