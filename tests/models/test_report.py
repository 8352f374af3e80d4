"""The model report's ROC curve comes from the metrics' own threshold sweep."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.evaluate.ranking import roc_auc
from vigil.models.report import roc_points


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_points_enclose_the_metrics_roc_auc(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.random(3000) < 0.05
    # rounded scores: many ties, which the curve must step over as the AUC counts them
    score = np.round(rng.normal(size=3000) + 1.5 * y, 1)
    fpr, tpr, thresholds = roc_points(y, score)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
    assert (np.diff(thresholds) < 0).all()
    assert float(np.trapezoid(tpr, fpr)) == pytest.approx(roc_auc(y, score), abs=1e-12)
    # each point flags the rows scoring at least its threshold
    at = len(thresholds) // 2
    flagged = score >= thresholds[at]
    assert tpr[at] == pytest.approx(flagged[y].mean())
    assert fpr[at] == pytest.approx(flagged[~y].mean())
