"""The jobs behind ``vigil train`` and ``vigil score``: files in, registry and tables out.

- :func:`train_target` builds the point-in-time training table with :mod:`vigil.features`
  (transactions, or the user / card StandIn tables), trains (:mod:`vigil.models.train`),
  stores the version with its manifest (:mod:`vigil.models.registry`) and writes its report.
- :func:`score_profiles` scores every user and card with the promoted user and card models on
  the daily snapshot after the last event, writes ``user_profile_scores`` /
  ``card_profile_scores``, and chooses the StandIn thresholds (:mod:`vigil.models.standin`).

The transaction model keeps the terminal-risk features by default: the engine serving it
reads them with a :class:`~vigil.features.TerminalRisk` of the model's label delay from the
terminal profiles, which count every decided transaction and every fraud label the engines
sharing them learn (``Engine.learn``), and online and offline agree on them
(tests/features/test_parity.py). ``keep_terminal_risk=False`` leaves them out, for a deployment
whose engine is never told of labels: a feature known offline but missing online would make the
served model worse than its report says.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from vigil.config import StandinConfig
from vigil.ingest.inputs import EventInput
from vigil.models import standin
from vigil.models.feature_card import AMOUNT, feature_card, offline_features
from vigil.models.gate import promotion_refusal
from vigil.models.registry import Registry
from vigil.models.report import write_model_report
from vigil.models.scorer import TERMINAL_RISK_PREFIX
from vigil.models.split import Period, Periods
from vigil.models.standin import StandinPolicy
from vigil.models.train import TrainOptions, TrainResult, feature_matrix, train

if TYPE_CHECKING:
    from vigil.features.spec import Feature

# Fewer StandIn outcomes than this after the models' training period: thresholds are chosen
# on all of them (in-sample, and the figures say so).
_MIN_HELD_OUT = 30


def transaction_feature_names(
    drop: list[str] | tuple[str, ...] = (),
    *,
    keep_terminal_risk: bool = True,
    declared: tuple[Feature, ...] = (),
) -> list[str]:
    """The transaction model's features: the built-in ones, the amount and a feature file's
    ``declared`` ones, minus ``drop``.

    >>> names = transaction_feature_names(["card_km_from_last"])
    >>> "amount" in names, "card_km_from_last" in names, "terminal_fraud_rate_7d" in names
    (True, False, True)
    >>> "terminal_fraud_rate_7d" in transaction_feature_names(keep_terminal_risk=False)
    False
    >>> from vigil.features import load_features
    >>> declared = load_features("features: [{name: t_1d, over: terminal, aggregate: count, "
    ...                          "window: 1d}]")
    >>> transaction_feature_names(declared=declared)[-2:]
    ['amount', 't_1d']
    """
    from vigil.features import FEATURE_NAMES

    every = (*FEATURE_NAMES, AMOUNT, *(f.name for f in declared))
    unknown = sorted(set(drop) - set(every))
    if unknown:
        raise ValueError(f"drop: no feature named {', '.join(unknown)}")
    return [
        name
        for name in every
        if name not in drop and (keep_terminal_risk or not name.startswith(TERMINAL_RISK_PREFIX))
    ]


def train_target(
    registry: Registry,
    *,
    target: str,
    events: Path | None = None,
    labels: Path | None = None,
    feedback: Path | None = None,
    inputs: EventInput | None = None,
    feature_table: Path | None = None,
    periods: tuple[Period, Period] | None = None,
    kind: str = "lightgbm",
    k: int = 10,
    drop: list[str] | None = None,
    keep_terminal_risk: bool = True,
    promote: bool = False,
    bank: Path | None = None,
    feature_file: Path | None = None,
) -> dict[str, Any]:
    """Build the table (or read ``feature_table``, what ``vigil features build`` wrote), train,
    store, report; returns the figures the CLI prints.

    ``periods`` (train, test) trains on the first and tests on the second, with the history
    before them feeding the features and labels known ``label_delay`` after their event;
    without them the rows are split 60/20/20 in time with a label-delay gap.
    ``feature_file`` adds its declared features to the transaction model's inputs (a feature
    table must have been built with it); the model's card records them and the file's sha256."""
    import time

    started = time.perf_counter()
    inputs = inputs or EventInput()
    label_delay = inputs.label_delay
    drop = drop or []
    if (events is None) == (feature_table is None):
        raise ValueError("events: give an event file or a feature table (--features), not both")
    declared = _declared(feature_file, target)
    if feature_table is not None:
        if target != "transaction":
            raise ValueError("--features: a feature table trains the transaction model only")
        table = _read_feature_table(feature_table)
        names = transaction_feature_names(
            drop, keep_terminal_risk=keep_terminal_risk, declared=declared
        )
        absent = [f.name for f in declared if f.name in names and f.name not in table.columns]
        if absent:
            raise ValueError(
                f"{feature_table}: no column for the declared feature(s) {', '.join(absent)}; "
                f"build the table with vigil features build --feature-file {feature_file}"
            )
        features = [n for n in names if n in table.columns]
    else:
        table, features = _training_table(
            target,
            events=events,  # type: ignore[arg-type]
            labels=labels,
            feedback=feedback,
            inputs=inputs,
            drop=drop,
            keep_terminal_risk=keep_terminal_risk,
            reference=_reference(bank),
            declared=declared,
        )
    built = time.perf_counter() - started
    empty = uninformative(table, features)
    options = TrainOptions(
        kind=kind,
        gap=label_delay,
        k=k,
        periods=None if periods is None else Periods(*periods, label_delay=label_delay),
    )
    result = train(table, features, options, name=target)
    sources = {
        "events": _str(events),
        "features": _str(feature_table),
        "labels": _str(labels),
        "feedback": _str(feedback),
        "bank": _str(bank),
        "input": inputs.as_dict(),
    }
    version = save_result(
        registry,
        result,
        sources=sources,
        table_seconds=built,
        uninformative=empty,
        card=None if feature_file is None else feature_card(feature_file, declared, features),
    )
    refused = None
    if promote:  # only a model no worse than the one it replaces (vigil.models.gate)
        current = registry.promoted(target)
        theirs = None if current is None else registry.manifest(target, current)["metrics"]["test"]
        refused = promotion_refusal(result.metrics["test"], theirs, current)
        if refused is None:
            registry.promote(target, version)
    report = write_model_report(
        registry.manifest(target, version),
        result.test_scores,
        registry.root / target / version / "report.html",
    )
    return {
        "name": target,
        "version": version,
        "kind": kind,
        "promoted": promote and refused is None,
        "promotion_refused": refused,
        "rows": table.height,
        "positives": int(table.get_column("label").sum()),
        "features": len(features),
        "declared_features": [f.name for f in declared if f.name in features],
        "uninformative_features": empty,
        "table_seconds": round(built, 3),
        "train_seconds": round(result.seconds, 3),
        "metrics": {p: result.metrics[p] for p in ("validation", "test")},
        "test_by_day": result.metrics.get("test_by_day", []),
        "split": result.split,
        "report": str(report),
    }


def uninformative(table: pl.DataFrame, features: Sequence[str]) -> dict[str, str]:
    """The features that tell no row from another on this data: all null (nothing to compute
    them from: user features of a file without users, say) or the same value on every row
    (missing on some rows is information: a model can split on it). They
    cost the model and teach it nothing: map what they need, or ``--drop`` them.

    >>> frame = pl.DataFrame({"a": [None, None], "b": [1.0, 1.0], "c": [float("nan"), 2.0]})
    >>> uninformative(frame, ["a", "b", "c"])
    {'a': 'all null', 'b': 'constant'}
    """
    out: dict[str, str] = {}
    for name in features:
        column = table.get_column(name)
        if column.dtype.is_float():
            column = column.fill_nan(None)
        if column.null_count() == column.len():
            out[name] = "all null"
        elif column.null_count() == 0 and column.n_unique() == 1:
            out[name] = "constant"
    return out


def _declared(feature_file: Path | None, target: str) -> tuple[Feature, ...]:
    """The feature file's declared features, checked before any event is read (every mistake
    named, :class:`~vigil.features.declared.FeatureFileError`)."""
    if feature_file is None:
        return ()
    if target != "transaction":
        raise ValueError(f"--feature-file: the {target} model reads its daily snapshots only")
    from vigil.features import load_feature_file

    return load_feature_file(feature_file)


def _read_feature_table(path: Path) -> pl.DataFrame:
    """A training table written by ``vigil features build``: features, label, timestamp."""
    from vigil.features.io import read_event_frame

    table = read_event_frame(path)
    if "label" not in table.columns:
        raise ValueError(f"{path}: no label column (build it with --labels or --label-column)")
    return table


def save_result(
    registry: Registry,
    result: TrainResult,
    *,
    sources: dict[str, Any] | None = None,
    table_seconds: float | None = None,
    uninformative: dict[str, str] | None = None,
    card: dict[str, Any] | None = None,
) -> str:
    """Store a training result as the next version of its model; returns the version.
    ``uninformative`` (features that were all null or constant) goes in the model card, and
    so does ``card``, the feature file it was trained with
    (:func:`~vigil.models.feature_card.feature_card`)."""
    rows = {part: result.metrics[part]["rows"] for part in ("train", "validation", "test")}
    manifest = {
        "training_data": {
            "ranges": result.ranges,
            "rows": rows,
            "split": result.split,
            "sha256": result.data_sha256,
            "sources": sources or {},
            "uninformative_features": uninformative or {},
        },
        "parameters": {**result.options.as_params(), **result.extra},
        "metrics": result.metrics,
        "importance": result.importance,
        "feature_file": card,
        "seconds": {
            "train": round(result.seconds, 3),
            "table": None if table_seconds is None else round(table_seconds, 3),
        },
    }
    return registry.save(
        result.model, manifest, booster=result.booster, test_scores=result.test_scores
    )


def _reference(bank: Path | None) -> Any:
    """The bank folder's reference data (terminal places, account creation dates), or None:
    then the features that need it are undefined offline, as for an unknown terminal online."""
    if bank is None:
        return None
    from vigil.features import read_reference

    return read_reference(bank)


def _str(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _training_table(
    target: str,
    *,
    events: Path,
    labels: Path | None,
    feedback: Path | None,
    inputs: EventInput,
    drop: list[str],
    keep_terminal_risk: bool,
    reference: Any,
    declared: tuple[Feature, ...] = (),
) -> tuple[pl.DataFrame, list[str]]:
    import vigil.features as F

    delay = inputs.label_delay
    if target == "transaction":
        if labels is None and inputs.label_column is None:
            raise ValueError("labels: give a labels file or the label column of the event file")
        frame, fraud = inputs.frame(events, labels=labels)
        table = F.transaction_features(
            frame,
            labels=fraud,
            label_delay=delay,
            reference=reference,
            features=F.with_declared(declared),
        )
        names = transaction_feature_names(
            drop, keep_terminal_risk=keep_terminal_risk, declared=declared
        )
        return table, names
    if feedback is None:
        raise ValueError(f"feedback: the {target} model learns StandIn outcomes; give feedback.csv")
    frame, fraud_or_none = inputs.frame(events, labels=labels)
    fb = F.read_feedback_frame(feedback)
    build = F.user_model_training_data if target == "user" else F.card_model_training_data
    names = F.USER_SNAPSHOT_FEATURES if target == "user" else F.CARD_SNAPSHOT_FEATURES
    table = build(frame, feedback=fb, labels=fraud_or_none, label_delay=delay, reference=reference)
    return table, [n for n in names if n not in drop]


def score_transactions(
    registry: Registry,
    events: Path,
    *,
    inputs: EventInput | None = None,
    labels: Path | None = None,
    bank: Path | None = None,
    version: str | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Every completed transaction of the file ``events`` scored (:func:`score_frame`), with
    the figures the CLI prints."""
    inputs = inputs or EventInput()
    frame, fraud = inputs.frame(events, labels=labels)
    out, figures = score_frame(
        registry,
        frame,
        fraud,
        label_delay=inputs.label_delay,
        reference=_reference(bank),
        version=version,
    )
    return out, figures


def score_frame(
    registry: Registry,
    events: pl.DataFrame,
    fraud: pl.DataFrame | None = None,
    *,
    label_delay: timedelta,
    reference: Any = None,
    version: str | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Every completed transaction of ``events`` (the engine's layout) scored by the
    transaction model (``version``, else the promoted one): ``event_id, transaction_id,
    timestamp, card_id, user_id, score`` (and ``label`` when ``fraud`` labels are given).

    The features are built as for training, point in time; the terminal-risk ones need the
    fraud labels (each counted ``label_delay`` after its event), else they are undefined, as
    for a terminal the engine has never been told of a fraud at. A model trained with a
    feature file reads the declared features its card keeps."""
    import vigil.features as F

    model = registry.load("transaction", version)
    manifest = registry.manifest("transaction", str(model.version))
    table = F.transaction_features(
        events,
        labels=fraud,
        label_delay=label_delay,
        reference=reference,
        features=offline_features(manifest),
    )
    score = model.probability_batch(feature_matrix(table, model.features))
    keep = ("event_id", "transaction_id", "timestamp", "card_id", "user_id")
    out = table.select(*[c for c in keep if c in table.columns]).with_columns(
        score=pl.Series(score, dtype=pl.Float64)
    )
    figures: dict[str, Any] = {
        "model": "transaction",
        "version": model.version,
        "transactions": out.height,
        "mean_score": float(score.mean()) if score.size else None,
    }
    trained_delay = manifest["parameters"].get("gap_seconds")
    figures["label_delay_seconds"] = label_delay.total_seconds()
    figures["model_label_delay_seconds"] = trained_delay
    if "label" in table.columns:
        from vigil.models.metrics import score_metrics

        out = out.with_columns(table.get_column("label").cast(pl.Int8))
        figures["metrics"] = score_metrics(out, score, k=10)
    return out, figures


def standin_policy_path(registry: Registry) -> Path:
    """Where ``vigil score profiles`` keeps the StandIn thresholds it chose."""
    return standin.standin_policy_path(registry.root)


def score_profiles(
    store: Any,
    registry: Registry,
    config: StandinConfig,
    *,
    events: Path,
    feedback: Path,
    labels: Path | None = None,
    inputs: EventInput | None = None,
    bank: Path | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Batch-score users and cards, store the scores, fit and save the StandIn policy.

    The event file is read as for training (:meth:`~vigil.ingest.EventInput.frame`)."""
    import vigil.features as F

    inputs = inputs or EventInput()
    models = {kind: registry.load(kind) for kind in ("user", "card")}
    frame, fraud = inputs.frame(events, labels=labels)
    fb = F.read_feedback_frame(feedback)
    # the event history built once, for the two snapshots and the two training sets
    snapshots = F.Snapshots(
        frame,
        feedback=fb,
        labels=fraud,
        label_delay=inputs.label_delay,
        reference=_reference(bank),
    )
    last = frame.get_column("timestamp").max()
    # The snapshot read just before midnight after the last event: everything known.
    day: date = last.date() + timedelta(days=1)  # type: ignore[union-attr]
    now = now or datetime.now(UTC)
    figures: dict[str, Any] = {"snapshot_date": day.isoformat()}
    for kind in ("user", "card"):
        model = models[kind]
        rows = snapshots.table(kind, [day])
        scores = model.probability_batch(feature_matrix(rows, model.features))
        ids = rows.get_column(f"{kind}_id").to_list()
        written = store.upsert_profile_scores(
            kind,
            (
                {
                    f"{kind}_id": i,
                    "score": float(s),
                    "model_version": model.version,
                    "score_timestamp": now,
                }
                for i, s in zip(ids, scores.tolist(), strict=True)
            ),
        )
        figures[f"{kind}_scores"] = {
            "written": written,
            "model_version": model.version,
            "mean": float(scores.mean()) if scores.size else None,
        }
    policy, how = _fit_policy(registry, models, snapshots, config)
    policy.save(standin_policy_path(registry))
    figures["standin"] = {
        **policy.figures,
        "chosen_on": how,
        "approve_below": policy.approve_below,
        "decline_from": policy.decline_from,
        "target": policy.target,
        "target_value": policy.target_value,
    }
    return figures


def _fit_policy(
    registry: Registry, models: dict[str, Any], snapshots: Any, config: StandinConfig
) -> tuple[StandinPolicy, str]:
    """Thresholds on StandIn requests scored as of their own day, after the models' training."""
    tables = {kind: snapshots.training(kind) for kind in ("user", "card")}
    scored = []
    for kind, table in tables.items():
        model = models[kind]
        scored.append(
            table.select("event_id").with_columns(
                pl.Series(
                    f"{kind}_score", model.probability_batch(feature_matrix(table, model.features))
                )
            )
        )
    requests = (
        tables["card"]
        .select("event_id", "timestamp", "amount", "label")
        .join(scored[0], on="event_id", how="left")
        .join(scored[1], on="event_id", how="left")
    )
    # Requests the user and card models never trained on: from the later of their test parts.
    starts = []
    for kind, model in models.items():
        test = registry.manifest(kind, model.version)["training_data"]["ranges"]["test"][0]
        if test is not None:
            starts.append(datetime.fromisoformat(test))
    held_out = requests.filter(pl.col("timestamp") >= max(starts)) if starts else requests.head(0)
    how = "held-out requests (after the models' training and validation)"
    if held_out.height < _MIN_HELD_OUT or held_out.get_column("label").sum() == 0:
        held_out, how = requests, "all requests (in-sample: too few held-out outcomes)"
    policy = StandinPolicy.fit(
        held_out.get_column("user_score").fill_null(float("nan")).to_numpy(),
        held_out.get_column("card_score").fill_null(float("nan")).to_numpy(),
        held_out.get_column("amount").to_numpy(),
        held_out.get_column("label").to_numpy(),
        **StandinPolicy.from_config(
            config, model_versions={k: str(m.version) for k, m in models.items()}
        ),
    )
    return policy, how
