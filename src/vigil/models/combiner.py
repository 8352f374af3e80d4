"""The decision score: the model's probability and the detectors' evidence, stacked.

A :class:`Combiner` is a logistic regression trained on labels whose inputs are what the
engine knows of one event once it has detected: the transaction model's calibrated
probability (as its log-odds, with whether the model scored the event at all: logins and
start events it does not), the reasons' noisy-OR (as log-odds, with whether there is any)
and, for each reason code seen often enough to weigh, whether a detector or rule gave it and
how strong it was. Its output, fitted without class weights, is a
calibrated fraud probability for every event: the engine's decision score, which orders all
events, where the noisy-OR of the reasons gives most events exactly 0. The action still comes
from the reasons alone (:class:`~vigil.detect.Policy`): strong evidence acts, the score ranks.

Stacking: the combiner must see the model's probabilities on events the model was not
trained on, or it learns to trust the model's view of its own training rows.
:func:`cross_fitted` gives every row of a training table such a probability (blocks of time,
each scored by a model trained on the others); the combiner is fitted on the events of the
same period with them (:func:`stack` does both), then promoted in the registry under the
name ``combiner`` with the transaction model version it serves beside (trained on the whole
period); the engine uses it only beside that version (:func:`served_combiner`).

The inputs are built by one function, :meth:`Combiner.evidence`, online (the engine) and
offline (:func:`fit_combiner`), so the two cannot drift. scikit-learn's conventions: the
constructor only keeps parameters, :meth:`fit` returns the fitted combiner, which has
:meth:`predict_proba` (two columns) and :meth:`predict`. Serving is plain arithmetic
(:class:`~vigil.models.linear.LinearModel`), no scikit-learn.

>>> import numpy as np
>>> combiner = Combiner(["velocity"])
>>> combiner.evidence([("velocity", 0.8)], 0.9)  # the model's, all reasons', velocity's
[2.197225, 1.0, 1.386294, 1.0, 1.0, 0.8]
>>> rng = np.random.default_rng(0)
>>> p = rng.uniform(0.001, 0.999, 400)
>>> y = (rng.uniform(size=400) < p).astype(int)
>>> X = np.array([combiner.evidence([], q) for q in p])
>>> fitted = combiner.fit(X, y)
>>> fitted is combiner, fitted.predict_proba(X).shape, fitted.classes_.tolist()
(True, (400, 2), [0, 1])
>>> fitted.score([], 0.99) > fitted.score([], 0.5) > fitted.score([], 0.01)
True
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from vigil.models.linear import LinearModel
from vigil.models.model import Model

if TYPE_CHECKING:
    import polars as pl

    from vigil.config import Settings
    from vigil.domain import Decision
    from vigil.models.registry import Registry
    from vigil.models.train import TrainOptions

#: The combiner's name in the model registry.
NAME = "combiner"
#: The model whose probability the combiner takes (its own reason is not evidence again).
MODEL = "transaction"
MODEL_CODE = "transaction_model"
_LOGIT, _SCORED = "model_logit", "model_scored"
_EVIDENCE, _ANY = "evidence_logit", "evidence_any"
_HEAD = [_LOGIT, _SCORED, _EVIDENCE, _ANY]
_FIRST = len(_HEAD)
_PRESENT, _STRENGTH = "reason:", "strength:"
log = logging.getLogger(__name__)
# A probability is clipped this far from 0 and 1 before its log-odds.
_EPSILON = 1e-6


class Combiner:
    """A logistic regression over the evidence of one event (see the module doc).

    ``codes`` are the reason codes it weighs (others are ignored, the model's own reason
    too: its probability is an input already); ``c`` is the inverse of the L2 regularisation
    strength, as scikit-learn's ``C``.

    >>> Combiner(["velocity", "transaction_model"]).feature_names[-2:]
    ['reason:velocity', 'strength:velocity']
    """

    def __init__(self, codes: Sequence[str] = (), *, c: float = 1.0) -> None:
        # kept as given (scikit-learn's convention); what they mean is worked out on use
        self.codes = codes
        self.c = c

    @property
    def weighed(self) -> tuple[str, ...]:
        """The codes weighed: ``codes`` once each, the model's own reason left out."""
        return self._layout()[0]

    def _layout(self) -> tuple[tuple[str, ...], dict[str, int], int]:
        cached = self.__dict__.get("_layout_of")
        if cached is None or cached[0] is not self.codes:
            weighed = tuple(code for code in dict.fromkeys(self.codes) if code != MODEL_CODE)
            at = {code: _FIRST + 2 * i for i, code in enumerate(weighed)}
            cached = self._layout_of = (self.codes, (weighed, at, _FIRST + 2 * len(weighed)))
        return cached[1]

    # -- scikit-learn's estimator conventions -------------------------------------------
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"codes": self.codes, "c": self.c}

    def set_params(self, **params: Any) -> Combiner:
        for name, value in params.items():
            if name not in ("codes", "c"):
                raise ValueError(f"{name}: not a parameter of Combiner")
            setattr(self, name, value)
        return self

    def fit(self, X: np.ndarray, y: np.ndarray) -> Combiner:
        """Fit on rows of :meth:`evidence` and 0/1 labels; returns the fitted combiner."""
        X = np.asarray(X, dtype=np.float64)
        width = self._layout()[2]
        if X.ndim != 2 or X.shape[1] != width:
            raise ValueError(f"X: {width} columns expected (see Combiner.evidence)")
        y = np.asarray(y, dtype=int)
        if len(np.unique(y)) != 2:
            raise ValueError("y: both classes are needed to fit the combiner")
        linear = LinearModel.fit(X, y, self.feature_names, c=self.c, class_weight=None)
        self.model_ = Model(NAME, "logreg", linear, calibration=(1.0, 0.0))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Columns: the probability of legitimate, of fraud."""
        p = self._fitted().probability_batch(np.asarray(X, dtype=np.float64))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    # -- the evidence, online and offline -----------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        names = list(_HEAD)
        for code in self.weighed:
            names += [_PRESENT + code, _STRENGTH + code]
        return names

    def evidence(
        self, reasons: Iterable[tuple[str, float]], probability: float | None
    ) -> list[float]:
        """One row of inputs: the model's log-odds (NaN when it did not score the event, then
        filled as in training) and whether it scored; the log-odds of all the other reasons'
        noisy-OR (NaN without any) and whether there is any, so that evidence too rare to
        weigh on its own still counts; per code weighed, present (0/1) and the strongest
        score given with it (0 when absent)."""
        _, at, width = self._layout()
        row = [math.nan, 0.0, math.nan, 0.0] + [0.0] * (width - _FIRST)
        if probability is not None:
            row[0], row[1] = _logit(probability), 1.0
        keep = 1.0
        for code, score in reasons:
            if code == MODEL_CODE:
                continue
            keep *= 1.0 - score
            row[3] = 1.0
            i = at.get(code)
            if i is not None:
                row[i] = 1.0
                row[i + 1] = max(row[i + 1], score)
        if row[3]:
            row[2] = _logit(1.0 - keep)
        return row

    def score(self, reasons: Iterable[tuple[str, float]], probability: float | None) -> float:
        """The calibrated fraud probability of one event, rounded as decision scores are."""
        return round(self._fitted().probability(self.evidence(reasons, probability)), 6)

    # -- the registry ------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: Model) -> Combiner:
        """The fitted combiner a registry holds (``Registry.load("combiner")``)."""
        names = model.features
        if names[:_FIRST] != _HEAD:
            raise ValueError(f"model {model.name!r}: not a combiner (features {names[:_FIRST]})")
        combiner = cls(tuple(name.removeprefix(_PRESENT) for name in names[_FIRST::2]))
        if combiner.feature_names != names:
            raise ValueError(f"model {model.name!r}: features are not a combiner's")
        combiner.model_ = model
        combiner.classes_ = np.array([0, 1])
        return combiner

    def _fitted(self) -> Model:
        model = getattr(self, "model_", None)
        if model is None:
            raise RuntimeError("the combiner is not fitted: call fit first")
        return model


def _logit(p: float) -> float:
    q = min(max(p, _EPSILON), 1.0 - _EPSILON)
    return round(math.log(q / (1.0 - q)), 6)


def evidence_matrix(
    combiner: Combiner,
    reasons: Sequence[Iterable[tuple[str, float]]],
    probabilities: Sequence[float | None],
) -> np.ndarray:
    """Rows of :meth:`Combiner.evidence`, one per event."""
    rows = [combiner.evidence(r, p) for r, p in zip(reasons, probabilities, strict=True)]
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(combiner.feature_names))


def fit_combiner(
    reasons: Mapping[str, Iterable[tuple[str, float]]],
    probabilities: Mapping[str, float],
    fraud: Iterable[str],
    *,
    min_events: int = 20,
    c: float = 1.0,
) -> Combiner:
    """A combiner fitted on decided events: ``reasons`` by event id (the codes and scores
    their decisions gave), the model's probability of those it scored (the others: None),
    and the ids of the fraudulent ones. A code given on fewer than ``min_events`` events is
    not weighed (too rare to learn a weight for)."""
    ids = list(reasons)
    given = [list(reasons[i]) for i in ids]
    counts: dict[str, int] = {}
    for found in given:
        for code in {code for code, _ in found}:
            counts[code] = counts.get(code, 0) + 1
    weighed = sorted(code for code, n in counts.items() if n >= min_events and code != MODEL_CODE)
    combiner = Combiner(tuple(weighed), c=c)
    X = evidence_matrix(combiner, given, [probabilities.get(i) for i in ids])
    frauds = set(fraud)
    return combiner.fit(X, np.array([i in frauds for i in ids], dtype=int))


def cross_fitted(
    table: pl.DataFrame, features: list[str], options: TrainOptions, *, folds: int = 4
) -> dict[str, float]:
    """Each row's fraud probability (by ``event_id``) from a model that was not trained on it.

    The rows are cut into ``folds`` blocks of equal time; each block is scored by a model
    trained as ``options`` says on the other blocks, less ``options.gap`` (the label delay)
    on either side of it, so that no label of the block's days reaches its model.
    """
    import polars as pl

    from vigil.models.train import feature_matrix, train

    if folds < 2:
        raise ValueError("folds: at least 2 are needed to score every row out of its fold")
    when = table.get_column("timestamp")
    first, last = when.min(), when.max()
    edges = [first + (last - first) * k / folds for k in range(folds)] + [None]
    out: dict[str, float] = {}
    for lo, hi in itertools.pairwise(edges):
        inside = pl.col("timestamp") >= lo
        if hi is not None:
            inside &= pl.col("timestamp") < hi
        block = table.filter(inside)
        outside = pl.col("timestamp") < lo - options.gap
        if hi is not None:
            outside |= pl.col("timestamp") >= hi + options.gap
        model = train(table.filter(outside), features, options).model
        scores = model.probability_batch(feature_matrix(block, features))
        out.update(zip(block.get_column("event_id").to_list(), scores.tolist(), strict=True))
    return out


def stack(
    decisions: Iterable[Decision],
    table: pl.DataFrame,
    fraud: Iterable[str],
    features: list[str],
    options: TrainOptions,
    *,
    folds: int = 4,
    min_events: int = 20,
    c: float = 1.0,
) -> Combiner:
    """The combiner for a period: the engine's ``decisions`` over it (their reasons), its
    point-in-time feature ``table`` (the model's probabilities cross-fitted on it with
    ``features`` and ``options``, as the model is trained) and the ids of its fraudulent
    events ``fraud``; see :func:`cross_fitted` and :func:`fit_combiner`."""
    unseen = cross_fitted(table, features, options, folds=folds)
    given = {d.event_id: [(r.code, r.score) for r in d.reasons] for d in decisions}
    return fit_combiner(given, unseen, fraud, min_events=min_events, c=c)


def save_combiner(
    registry: Registry,
    combiner: Combiner,
    stacked_on: str,
    manifest: Mapping[str, Any],
    *,
    test_scores: pl.DataFrame | None = None,
) -> str:
    """Store a fitted combiner as the next ``combiner`` version, noting the transaction
    model version it was stacked on (and its ``test_scores``, for the report); returns its
    version."""
    record = {**manifest, "stacked_on": {MODEL: stacked_on}, "codes": list(combiner.weighed)}
    return registry.save(combiner._fitted(), record, test_scores=test_scores)


def served_combiner(settings: Settings, model_version: str | None) -> Combiner | None:
    """The promoted combiner when it was stacked on the transaction model the engine serves
    (``model_version``); None otherwise (no model, no combiner, or another model's)."""
    if model_version is None:
        return None
    from vigil.models.registry import Registry
    from vigil.models.scorer import registry_dir

    registry = Registry(registry_dir(settings))
    version = registry.promoted(NAME)
    if version is None:
        return None
    stacked_on = registry.manifest(NAME, version).get("stacked_on", {}).get(MODEL)
    if stacked_on != model_version:
        log.warning(
            "combiner %s was stacked on transaction model %s, not the served %s: "
            "decision scores are the reasons' noisy-OR",
            version,
            stacked_on,
            model_version,
        )
        return None
    return Combiner.from_model(registry.load(NAME, version))
