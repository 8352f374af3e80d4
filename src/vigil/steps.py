"""The data scientist's path as Python calls, each returning Polars frames.

The same steps as the commands, on the same code: read an event file and its labels
(``vigil features build --events``), build the point-in-time features (``features build``),
train with a time protocol (``vigil train --train --test``), score transactions
(``vigil score transactions``) and import a file into the database (``vigil import events``).
Every function is importable from ``vigil`` itself; reading options are those of
:class:`~vigil.ingest.inputs.EventInput` (``mapping``, ``default_type``, ``default_channel``,
``label_column``, ``label_delay``, ``amounts``, ``format``).

>>> import tempfile, pathlib
>>> from vigil.simulate import BankConfig, generate
>>> bank = pathlib.Path(tempfile.mkdtemp()) / "bank"
>>> _ = generate(BankConfig(cards=200, days=20, fraud_rate=0.1, seed=2), bank)
>>> events, labels = read_events(bank / "events.parquet", labels=bank / "labels.csv")
>>> table = build_features(events, labels, label_delay="1d", bank=bank)
>>> model = train(table, train="2022-01-04..2022-01-12", test="2022-01-15..2022-01-20",
...               label_delay="1d", model="logreg")
>>> model.by_day.columns
['day', 'rows', 'positives', 'roc_auc', 'average_precision', 'card_precision_at_10']
>>> model.by_day.height, model.split["labels_known_at"]
(6, '2022-01-15T00:00:00+00:00')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl

from vigil.ingest.inputs import DEFAULT_LABEL_DELAY, EventInput, parse_duration

PathLike = Path | str


def read_events(
    path: PathLike, *, labels: PathLike | None = None, **options: Any
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """``(events, fraud)``: the file's events in the engine's layout, and the ``event_id,
    transaction_id`` of its fraud events, from ``labels`` (a labels.csv) or the
    ``label_column`` option; ``None`` without either. A bad row raises ``ImportRejected``
    naming its line and field.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "cards.csv"
    >>> _ = p.write_text("TX_DATETIME,CUSTOMER_ID,TX_AMOUNT,TX_FRAUD\\n"
    ...                  "2018-04-01 00:00:31,C596,57.16,0\\n2018-04-01 00:02:10,C4961,81.51,1\\n")
    >>> events, fraud = read_events(p, mapping={"timestamp": "TX_DATETIME",
    ...     "card_id": "CUSTOMER_ID", "amount": "TX_AMOUNT"}, default_type="payment",
    ...     default_channel="pos", label_column="TX_FRAUD")
    >>> events.select("card_id", "channel", "amount").rows(), fraud["event_id"].to_list()
    ([('C596', 'pos', 57.16), ('C4961', 'pos', 81.51)], ['cards-3'])
    """
    return EventInput(**options).frame(path, labels=labels)


def build_features(
    events: pl.DataFrame,
    labels: pl.DataFrame | None = None,
    *,
    label_delay: timedelta | str = DEFAULT_LABEL_DELAY,
    bank: PathLike | None = None,
) -> pl.DataFrame:
    """One row per completed transaction with every declared feature as of just before it,
    its ``label`` when ``labels`` are given (terminal risk counting each label once arrived,
    ``label_delay`` after its event); ``bank`` (a bank folder) gives terminal places and
    account ages."""
    from vigil.features import read_reference, transaction_features

    reference = read_reference(bank) if bank is not None else None
    return transaction_features(
        events, labels=labels, label_delay=_delay(label_delay), reference=reference
    )


@dataclass
class Trained:
    """A trained transaction model and its figures; ``version`` once stored in a registry."""

    model: Any
    metrics: dict[str, Any]
    #: Per day of the test part: rows, positives, ROC AUC, average precision, card precision@k.
    by_day: pl.DataFrame
    #: The test rows with their label and calibrated score.
    test_scores: pl.DataFrame
    #: How the rows were split: periods, label delay, when labels were known, ranges.
    split: dict[str, Any] = field(default_factory=dict)
    version: str | None = None


def train(
    table: pl.DataFrame,
    *,
    train: str | None = None,
    test: str | None = None,
    label_delay: timedelta | str = DEFAULT_LABEL_DELAY,
    model: str = "lightgbm",
    k: int = 10,
    drop: tuple[str, ...] | list[str] = (),
    registry: PathLike | None = None,
    promote: bool = False,
) -> Trained:
    """Train the transaction model on a feature table (:func:`build_features`, or what
    ``vigil features build`` wrote): on the ``train`` period, measured on the ``test`` one
    (``FROM..UNTIL``, dates included), labels counting once arrived; without periods the rows
    are split 60/20/20 in time. With ``registry`` (a folder) the model is stored there as the
    next version, and promoted if asked."""
    from vigil.models.metrics import daily_metrics
    from vigil.models.pipeline import save_result, transaction_feature_names
    from vigil.models.split import Period, Periods
    from vigil.models.train import TrainOptions
    from vigil.models.train import train as fit

    if (train is None) != (test is None):
        raise ValueError("train and test: give both periods, or neither")
    delay = _delay(label_delay)
    periods = (
        Periods(Period.parse(train), Period.parse(test), label_delay=delay)
        if train is not None and test is not None
        else None
    )
    features = [n for n in transaction_feature_names(list(drop)) if n in table.columns]
    options = TrainOptions(kind=model, gap=delay, k=k, periods=periods)
    result = fit(table, features, options, name="transaction")
    version = None
    if registry is not None:
        from vigil.models.registry import Registry

        store = Registry(Path(registry))
        version = save_result(store, result, sources={"python": "vigil.train"})
        if promote:
            store.promote("transaction", version)
    return Trained(
        model=result.model,
        metrics={part: result.metrics[part] for part in ("validation", "test")},
        by_day=daily_metrics(result.test_scores, k=k),
        test_scores=result.test_scores,
        split=result.split,
        version=version,
    )


def score_transactions(
    events: pl.DataFrame,
    labels: pl.DataFrame | None = None,
    *,
    registry: PathLike,
    version: str | None = None,
    label_delay: timedelta | str = DEFAULT_LABEL_DELAY,
    bank: PathLike | None = None,
) -> pl.DataFrame:
    """``event_id, transaction_id, timestamp, card_id, user_id, score`` (and ``label`` with
    ``labels``) of every completed transaction, scored by the registry's promoted transaction
    model or ``version``, on the features training built."""
    from vigil.features import read_reference
    from vigil.models.pipeline import score_frame
    from vigil.models.registry import Registry

    scores, _ = score_frame(
        Registry(Path(registry)),
        events,
        labels,
        label_delay=_delay(label_delay),
        reference=read_reference(bank) if bank is not None else None,
        version=version,
    )
    return scores


def import_events(path: PathLike, *, database: str, **options: Any) -> dict[str, Any]:
    """Store a file's events (and labels, as feedback) in the database at ``database`` (a
    URL) without deciding on them; the import's figures, as ``vigil import events`` prints
    them. A bad row raises ``ImportRejected`` naming its line and field; nothing is written."""
    from vigil.cli_common import settings, store
    from vigil.ingest.load import load_events

    summary = load_events(store(settings(database)), path, inputs=EventInput(**options))
    return summary.as_dict()


def _delay(value: timedelta | str) -> timedelta:
    return parse_duration(value) if isinstance(value, str) else value


__all__ = [
    "EventInput",
    "Trained",
    "build_features",
    "import_events",
    "read_events",
    "score_transactions",
    "train",
]
