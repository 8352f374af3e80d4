"""How well a score ranks fraud above legitimate units: ROC AUC, average precision, PR curve.

scikit-learn computes ROC AUC and average precision when it is importable (it is not a
dependency of vigil); otherwise the numpy implementations here do, with the same definitions:
ROC AUC as the Mann–Whitney statistic with tied scores counted half, average precision as
``sum((R_n - R_{n-1}) * P_n)`` over the distinct score thresholds. Both give ``None`` when
only one class is present, where neither is defined.

>>> y = [0, 0, 1, 1]
>>> s = [0.1, 0.4, 0.35, 0.8]
>>> roc_auc(y, s), round(average_precision(y, s), 4)
(0.75, 0.8333)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

try:  # pragma: no cover - which branch runs depends on the machine
    import sklearn
    from sklearn import metrics as _sk_metrics
except ImportError:  # pragma: no cover
    sklearn = None
    _sk_metrics = None


def backend() -> str:
    """Which implementation computes ROC AUC and average precision, with its version."""
    if _sk_metrics is None:
        return f"numpy {np.__version__}"
    return f"scikit-learn {sklearn.__version__}"


def _arrays(
    y_true: Sequence[Any] | np.ndarray, score: Sequence[Any] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"score: {s.shape} scores for {y.shape} labels")
    if not np.isfinite(s).all():
        raise ValueError("score: scores must be finite")
    return y, s


def _both_classes(y: np.ndarray) -> bool:
    return bool(y.any()) and not bool(y.all())


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given the mean of the ranks they span."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], ordered.size]
    mean_rank = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc_numpy(
    y_true: Sequence[Any] | np.ndarray, score: Sequence[Any] | np.ndarray
) -> float | None:
    """ROC AUC with numpy alone; ``None`` when only one class is present."""
    y, s = _arrays(y_true, score)
    if not _both_classes(y):
        return None
    positives = int(y.sum())
    negatives = y.size - positives
    rank_sum = float(_midranks(s)[y].sum())
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def precision_recall_curve(
    y_true: Sequence[Any] | np.ndarray, score: Sequence[Any] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and threshold at each distinct score, highest threshold first.

    Point ``i`` flags every unit scoring at least ``thresholds[i]``.
    """
    y, s = _arrays(y_true, score)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_tie = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
    true_pos = np.cumsum(y)[last_of_tie].astype(np.float64)
    flagged = (last_of_tie + 1).astype(np.float64)
    positives = max(int(y.sum()), 1)
    return true_pos / flagged, true_pos / positives, s[last_of_tie]


def average_precision_numpy(
    y_true: Sequence[Any] | np.ndarray, score: Sequence[Any] | np.ndarray
) -> float | None:
    """Average precision with numpy alone; ``None`` when only one class is present."""
    y, s = _arrays(y_true, score)
    if not _both_classes(y):
        return None
    precision, recall, _ = precision_recall_curve(y, s)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def roc_auc(y_true: Sequence[Any] | np.ndarray, score: Sequence[Any] | np.ndarray) -> float | None:
    """ROC AUC of ``score`` for the boolean ``y_true``; ``None`` with only one class."""
    y, s = _arrays(y_true, score)
    if not _both_classes(y):
        return None
    if _sk_metrics is None:  # pragma: no cover
        return roc_auc_numpy(y, s)
    return float(_sk_metrics.roc_auc_score(y, s))


def average_precision(
    y_true: Sequence[Any] | np.ndarray, score: Sequence[Any] | np.ndarray
) -> float | None:
    """Average precision of ``score`` for the boolean ``y_true``; ``None`` with one class."""
    y, s = _arrays(y_true, score)
    if not _both_classes(y):
        return None
    if _sk_metrics is None:  # pragma: no cover
        return average_precision_numpy(y, s)
    return float(_sk_metrics.average_precision_score(y, s))
