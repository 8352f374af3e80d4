"""ROC AUC, average precision and the PR curve against known small examples."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.evaluate import ranking

# The textbook example (also scikit-learn's documentation example).
Y = [0, 0, 1, 1]
S = [0.1, 0.4, 0.35, 0.8]


@pytest.mark.parametrize(
    ("auc", "ap"),
    [
        (ranking.roc_auc, ranking.average_precision),
        (ranking.roc_auc_numpy, ranking.average_precision_numpy),
    ],
)
def test_known_example(auc, ap) -> None:
    assert auc(Y, S) == pytest.approx(0.75)
    # Thresholds 0.8 (P=1, R=.5), 0.4 (P=.5, R=.5), 0.35 (P=2/3, R=1).
    assert ap(Y, S) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


@pytest.mark.parametrize("auc", [ranking.roc_auc, ranking.roc_auc_numpy])
def test_ties_count_half(auc) -> None:
    assert auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    assert auc([0, 0, 1, 1], [0.2, 0.5, 0.5, 0.9]) == pytest.approx(3.5 / 4)


@pytest.mark.parametrize("ap", [ranking.average_precision, ranking.average_precision_numpy])
def test_tied_scores_form_one_threshold(ap) -> None:
    # One tie of everything: precision 1/2 at recall 1.
    assert ap([0, 1, 0, 1], [0.3, 0.3, 0.3, 0.3]) == pytest.approx(0.5)
    assert ap([1, 0, 1], [0.9, 0.9, 0.1]) == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)


def test_one_class_is_undefined() -> None:
    for f in (
        ranking.roc_auc,
        ranking.average_precision,
        ranking.roc_auc_numpy,
        ranking.average_precision_numpy,
    ):
        assert f([0, 0, 0], [0.1, 0.2, 0.3]) is None
        assert f([1, 1], [0.1, 0.2]) is None


def test_perfect_and_inverted_scores() -> None:
    y = [0, 0, 0, 1, 1]
    s = [0.1, 0.2, 0.3, 0.8, 0.9]
    assert ranking.roc_auc_numpy(y, s) == 1.0
    assert ranking.average_precision_numpy(y, s) == 1.0
    assert ranking.roc_auc_numpy(y, [1 - v for v in s]) == 0.0


def test_numpy_agrees_with_scikit_learn_on_random_tied_scores() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(11)
    for _ in range(20):
        y = rng.random(500) < 0.1
        y[0], y[1] = True, False
        s = np.round(rng.random(500) * (1 + y), 1) / 2  # coarse scores: many ties
        assert ranking.roc_auc_numpy(y, s) == pytest.approx(metrics.roc_auc_score(y, s))
        assert ranking.average_precision_numpy(y, s) == pytest.approx(
            metrics.average_precision_score(y, s)
        )


def test_precision_recall_curve_points() -> None:
    precision, recall, thresholds = ranking.precision_recall_curve(Y, S)
    assert thresholds.tolist() == [0.8, 0.4, 0.35, 0.1]
    assert recall.tolist() == [0.5, 0.5, 1.0, 1.0]
    assert precision.tolist() == pytest.approx([1.0, 0.5, 2 / 3, 0.5])


def test_mismatched_lengths_are_an_error() -> None:
    with pytest.raises(ValueError, match="score"):
        ranking.roc_auc([0, 1], [0.1])
    with pytest.raises(ValueError, match="score"):
        ranking.average_precision([0, 1], [0.1, float("nan")])
