"""Train a fraud model on a labelled, point-in-time feature table.

The table has one row per scored event: the feature columns, a 0/1 ``label``, the event
``timestamp`` and, for card precision@k, the ``card_id``. The rows are split in time
(:mod:`vigil.models.split`: by shares with a gap for the label delay, or by explicit train and
test periods with labels as known at the test start); LightGBM (default) or logistic
regression is fitted on the train part with the classes reweighted (LightGBM
``scale_pos_weight`` = sqrt(negatives / positives), logistic regression
``class_weight="balanced"``); LightGBM stops early on validation average precision; the
probability is calibrated on validation; every metric is reported on validation and on the
untouched test part.

>>> import numpy as np, polars as pl
>>> from datetime import datetime, timedelta, UTC
>>> rng = np.random.default_rng(0)
>>> n = 3000
>>> x = rng.normal(size=n)
>>> frame = pl.DataFrame({"timestamp": [datetime(2022, 1, 1, tzinfo=UTC) +
...     timedelta(minutes=10 * i) for i in range(n)], "card_id": [f"c{i % 300}" for i in range(n)],
...     "x": x, "noise": rng.normal(size=n), "label": (x + rng.normal(size=n) > 2.5).astype(int)})
>>> result = train(frame, ["x", "noise"], TrainOptions(kind="logreg", gap=timedelta(hours=6)))
>>> result.metrics["test"]["roc_auc"] > 0.8, result.model.features
(True, ['x', 'noise'])
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from vigil.models.linear import LinearModel
from vigil.models.metrics import daily_metrics, score_metrics
from vigil.models.model import KINDS, Model
from vigil.models.split import Periods, Split, period_split, time_split
from vigil.models.trees import CompiledTrees


@dataclass(frozen=True)
class TrainOptions:
    """How to train; every field lands in the registry manifest as a parameter.

    >>> TrainOptions().kind, TrainOptions().gap
    ('lightgbm', datetime.timedelta(days=1))
    """

    kind: str = "lightgbm"
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    # Fraud is confirmed after the fact: rows this close after a cut are not trained on.
    gap: timedelta = timedelta(days=1)
    # Analysts' daily capacity for card precision@k.
    k: int = 10
    # At most this many trees of at most this depth: the compiled evaluator's cost is about
    # 0.1 µs per tree, and the engine's budget for the model is 20 µs an event.
    num_boost_round: int = 120
    early_stopping_rounds: int = 30
    learning_rate: float = 0.1
    num_leaves: int = 15
    max_depth: int = 6
    min_child_samples: int = 20
    # A leaf holding a few frauds otherwise gets a huge Newton step: without L2 the
    # synthetic bank's validation precision falls after a few dozen trees instead of rising.
    lambda_l2: float = 10.0
    logreg_c: float = 1.0
    seed: int = 7
    # Explicit train and test periods instead of ``fractions`` and ``gap``.
    periods: Periods | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainOptions:
        """The options a manifest's ``parameters`` record (:meth:`as_params`), without what
        training added to them and without the periods: how a model was trained, to train its
        like again on other rows (a combiner cross-fits it).

        >>> options = TrainOptions(kind="logreg", gap=timedelta(days=3), k=5)
        >>> TrainOptions.from_params({**options.as_params(), "trees": 80}) == options
        True
        """
        names = {f.name for f in fields(cls)} - {"gap", "periods"}
        kept = {name: value for name, value in params.items() if name in names}
        kept["fractions"] = tuple(kept.get("fractions", cls.fractions))
        return cls(**kept, gap=timedelta(seconds=params["gap_seconds"]))

    def as_params(self) -> dict[str, Any]:
        params = asdict(self)
        params["gap_seconds"] = self.gap.total_seconds()
        del params["gap"], params["periods"]
        params["fractions"] = list(self.fractions)
        if self.periods is not None:
            params["periods"] = self.periods.as_dict()
        return params


@dataclass
class TrainResult:
    """The model and everything the registry and the report keep about it."""

    model: Model
    options: TrainOptions
    metrics: dict[str, dict[str, Any]]
    ranges: dict[str, list[str | None]]
    data_sha256: str
    seconds: float
    importance: dict[str, float]
    # Test rows with their calibrated score: timestamp, card_id (if any), label, score.
    test_scores: pl.DataFrame
    booster: str | None = None  # LightGBM's model text, for TreeSHAP offline
    extra: dict[str, Any] = field(default_factory=dict)
    # How the rows were split (ranges, periods, labels held back): the model card's record.
    split: dict[str, Any] = field(default_factory=dict)


def feature_matrix(frame: pl.DataFrame, features: list[str]) -> np.ndarray:
    """The feature columns as a float64 matrix, nulls as NaN; a missing column is named."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ValueError(f"features: no column {', '.join(missing)} in the training table")
    if not features:
        raise ValueError("features: none given")
    return frame.select(pl.col(f).cast(pl.Float64) for f in features).to_numpy()


def _labels(frame: pl.DataFrame, column: str = "label") -> np.ndarray:
    if column not in frame.columns:
        raise ValueError(f"{column}: the training table has no label column")
    labels = frame.get_column(column)
    if labels.null_count():
        raise ValueError(f"{column}: {labels.null_count()} rows have no label")
    y = labels.cast(pl.Int64).to_numpy()
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{column}: labels must be 0 or 1")
    return y


def data_sha256(frame: pl.DataFrame, columns: list[str]) -> str:
    """A hash of exactly the data trained on (column names, then each column's values)."""
    digest = hashlib.sha256()
    for name in columns:
        digest.update(name.encode() + b"\x00")
        column = frame.get_column(name)
        if column.dtype == pl.String:
            digest.update("\x1f".join(column.fill_null("\x00").to_list()).encode())
        elif column.dtype.is_temporal():
            digest.update(column.dt.epoch("us").fill_null(-1).to_numpy().tobytes())
        else:
            digest.update(column.cast(pl.Float64).to_numpy().tobytes())
    return digest.hexdigest()


def _platt(raw: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``a, b`` so that ``sigmoid(a * raw + b)`` is calibrated on these rows."""
    if y.min() == y.max():
        return 1.0, 0.0  # one class only: nothing to calibrate against
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e6, max_iter=1000)
    lr.fit(raw.reshape(-1, 1), y)
    return float(lr.coef_[0][0]), float(lr.intercept_[0])


def _fit_lightgbm(
    split: Split, features: list[str], options: TrainOptions
) -> tuple[CompiledTrees, str, dict[str, float], dict[str, Any]]:
    import lightgbm as lgb

    X, y = feature_matrix(split.train, features), _labels(split.train)
    Xv, yv = feature_matrix(split.validation, features), _labels(split.validation)
    positives = int(y.sum())
    params: dict[str, Any] = {
        "objective": "binary",
        "learning_rate": options.learning_rate,
        "num_leaves": options.num_leaves,
        "max_depth": options.max_depth,
        "min_child_samples": options.min_child_samples,
        "lambda_l2": options.lambda_l2,
        # Tempered weighting: the full negatives/positives ratio lets a few hundred frauds
        # dominate and early stopping ends after a handful of trees; its square root keeps
        # the positives heavy without that (measured on the synthetic bank, see the report).
        "scale_pos_weight": math.sqrt((y.size - positives) / positives),
        "feature_fraction": 0.9,
        "seed": options.seed,
        "deterministic": True,
        "num_threads": 2,
        "verbose": -1,
        # Ranking fraud first is the job; average precision measures it under imbalance.
        "metric": "average_precision",
    }
    train_set = lgb.Dataset(X, y, feature_name=features, free_raw_data=False)
    callbacks = []
    valid_sets = []
    # Early stopping needs both classes in validation to measure average precision.
    if 0 < int(yv.sum()) < yv.size:
        valid_sets = [lgb.Dataset(Xv, yv, reference=train_set)]
        callbacks.append(lgb.early_stopping(options.early_stopping_rounds, verbose=False))
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=options.num_boost_round,
        valid_sets=valid_sets,
        callbacks=callbacks,
    )
    best = booster.best_iteration or booster.current_iteration()
    text = booster.model_to_string(num_iteration=best)
    trimmed = lgb.Booster(model_str=text)
    gain = trimmed.feature_importance(importance_type="gain")
    importance = {f: float(g) for f, g in zip(features, gain, strict=True)}
    info: dict[str, Any] = {
        "best_iteration": best,
        "trees": trimmed.num_trees(),
        "lightgbm_params": params,
    }
    if split.test.height:
        # TreeSHAP on the test part: how much each feature moves a score, on average.
        shap = trimmed.predict(feature_matrix(split.test, features), pred_contrib=True)
        mean_abs = np.abs(shap[:, :-1]).mean(axis=0)
        info["mean_abs_contribution"] = {
            f: float(v) for f, v in zip(features, mean_abs, strict=True)
        }
    return CompiledTrees(trimmed.dump_model()), text, importance, info


def train(
    frame: pl.DataFrame,
    features: list[str],
    options: TrainOptions | None = None,
    *,
    name: str = "transaction",
) -> TrainResult:
    """Split, fit, calibrate and measure (see the module doc)."""
    options = options or TrainOptions()
    if options.kind not in KINDS:
        raise ValueError(f"kind: {options.kind!r} is not one of {', '.join(KINDS)}")
    started = time.perf_counter()
    y_all = _labels(frame)
    feature_matrix(frame.head(0), features)  # names a missing column before any work
    columns = [c for c in ("timestamp", "card_id", "user_id") if c in frame.columns]
    sha = data_sha256(frame, [*columns, *features, "label"])
    if options.periods is not None:
        split = period_split(frame, options.periods)
    else:
        split = time_split(frame, fractions=options.fractions, gap=options.gap)
    if split.validation.is_empty() or split.test.is_empty():
        raise ValueError(
            f"the split leaves {split.validation.height} validation and {split.test.height} "
            f"test rows: give more days, a shorter --label-delay, or --train/--test periods"
        )
    y = _labels(split.train)
    if not 0 < int(y.sum()) < y.size:
        raise ValueError(
            f"label: the train part ({split.train.height} rows) needs both classes; "
            f"the table has {int(y_all.sum())} positives of {y_all.size}"
        )
    booster = None
    extra: dict[str, Any] = {}
    scorer: CompiledTrees | LinearModel
    if options.kind == "lightgbm":
        scorer, booster, importance, extra = _fit_lightgbm(split, features, options)
    else:
        scorer = LinearModel.fit(
            feature_matrix(split.train, features), y, features, c=options.logreg_c
        )
        importance = {f: abs(c) for f, c in zip(features, scorer.coef, strict=True)}
    model = Model(name, options.kind, scorer, calibration=(1.0, 0.0))
    raw_valid = model.raw_batch(feature_matrix(split.validation, features))
    model.calibration = _platt(raw_valid, _labels(split.validation))
    metrics = {}
    test_scores = pl.DataFrame()
    for part_name, part in (("validation", split.validation), ("test", split.test)):
        score = model.probability_batch(feature_matrix(part, features))
        metrics[part_name] = score_metrics(part, score, k=options.k)
        if part_name == "test":
            keep = [c for c in ("event_id", "timestamp", "card_id", "user_id") if c in part.columns]
            test_scores = part.select(*keep, "label").with_columns(score=pl.Series(score))
            if "timestamp" in part.columns:
                by_day = daily_metrics(test_scores, k=options.k)
                metrics["test_by_day"] = [
                    {**row, "day": row["day"].isoformat()} for row in by_day.iter_rows(named=True)
                ]
    metrics["train"] = {"rows": split.train.height, "positives": int(y.sum())}
    metrics["gap_rows_dropped"] = {"rows": split.dropped}
    seconds = time.perf_counter() - started
    extra["calibration"] = list(model.calibration)
    return TrainResult(
        model=model,
        options=options,
        metrics=metrics,
        ranges=split.ranges(),
        data_sha256=sha,
        seconds=seconds,
        importance=importance,
        test_scores=test_scores,
        booster=booster,
        extra=extra,
        split=split.card(),
    )


def finite(value: float | None) -> float | None:
    """JSON has no NaN: a non-finite metric is reported as null."""
    return value if value is None or math.isfinite(value) else None
