"""How good a model's scores are: ROC AUC, average precision, and card precision@k per day.

ROC AUC and average precision come from :mod:`vigil.evaluate.ranking` (one definition in the
repo). Card precision@k is what a team of analysts who can look at ``k`` cards a day gets:
each day, every card is scored by its highest transaction score that day; of the ``k`` best,
the share that really were compromised that day. A card already caught (compromised and in
the top ``k``) on an earlier day is blocked by then, so it is left out of later days.

>>> import polars as pl
>>> from datetime import datetime, UTC
>>> d1, d2 = datetime(2022, 1, 1, tzinfo=UTC), datetime(2022, 1, 2, tzinfo=UTC)
>>> f = pl.DataFrame({"timestamp": [d1, d1, d1, d2, d2], "card_id": ["a", "b", "c", "a", "b"],
...                   "label": [1, 0, 0, 1, 1], "score": [0.9, 0.1, 0.5, 0.9, 0.2]})
>>> card_precision_at_k(f, k=1).get_column("precision").to_list()
[1.0, 1.0]
"""

from __future__ import annotations

import numpy as np
import polars as pl

from vigil.evaluate import ranking


def card_precision_at_k(
    frame: pl.DataFrame,
    *,
    k: int,
    card_column: str = "card_id",
    time_column: str = "timestamp",
    label_column: str = "label",
    score_column: str = "score",
) -> pl.DataFrame:
    """Per day: ``day, cards, compromised, k, hits, precision`` (see the module doc)."""
    if k < 1:
        raise ValueError(f"k: {k} must be at least 1")
    for column in (card_column, time_column, label_column, score_column):
        if column not in frame.columns:
            raise ValueError(f"{column}: no such column (have {', '.join(frame.columns)})")
    daily = (
        frame.filter(pl.col(card_column).is_not_null())
        .group_by(pl.col(time_column).dt.date().alias("day"), pl.col(card_column))
        .agg(
            pl.col(score_column).max().alias("score"),
            (pl.col(label_column).cast(pl.Int8).max() > 0).alias("compromised"),
        )
        .sort("day", "score", card_column, descending=[False, True, False])
    )
    caught: set[str] = set()
    rows = []
    for (day,), cards in daily.group_by("day", maintain_order=True):
        cards = cards.filter(~pl.col(card_column).is_in(list(caught)))
        top = cards.head(k)
        hits = top.filter(pl.col("compromised"))
        caught.update(hits.get_column(card_column).to_list())
        rows.append(
            {
                "day": day,
                "cards": cards.height,
                "compromised": int(cards.get_column("compromised").sum()),
                "k": k,
                "hits": hits.height,
                "precision": hits.height / k,
            }
        )
    schema = {
        "day": pl.Date,
        "cards": pl.Int64,
        "compromised": pl.Int64,
        "k": pl.Int64,
        "hits": pl.Int64,
        "precision": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


def score_metrics(
    frame: pl.DataFrame, score: np.ndarray, *, k: int, label_column: str = "label"
) -> dict[str, float | int | None]:
    """ROC AUC, average precision, mean card precision@k per day, rows and positives."""
    y = frame.get_column(label_column).cast(pl.Int8).to_numpy().astype(bool)
    out: dict[str, float | int | None] = {
        "rows": int(y.size),
        "positives": int(y.sum()),
        "roc_auc": ranking.roc_auc(y, score),
        "average_precision": ranking.average_precision(y, score),
    }
    if "card_id" in frame.columns and "timestamp" in frame.columns and y.size:
        per_day = card_precision_at_k(frame.with_columns(score=pl.Series(score)), k=k)
        mean = per_day.get_column("precision").mean()
        out[f"card_precision_at_{k}"] = float(mean) if mean is not None else None  # type: ignore[arg-type]
    return out


def daily_metrics(
    frame: pl.DataFrame,
    *,
    k: int,
    time_column: str = "timestamp",
    label_column: str = "label",
    score_column: str = "score",
) -> pl.DataFrame:
    """Per day: ``day, rows, positives, roc_auc, average_precision, card_precision_at_<k>``
    (null where a day has one class only, or no cards).

    >>> import polars as pl
    >>> from datetime import datetime, UTC
    >>> d1, d2 = datetime(2022, 1, 1, tzinfo=UTC), datetime(2022, 1, 2, tzinfo=UTC)
    >>> f = pl.DataFrame({"timestamp": [d1, d1, d1, d2, d2], "card_id": ["a", "b", "c", "a", "b"],
    ...                   "label": [1, 0, 0, 0, 0], "score": [0.9, 0.1, 0.5, 0.9, 0.2]})
    >>> for row in daily_metrics(f, k=1).iter_rows():
    ...     print(row)
    (datetime.date(2022, 1, 1), 3, 1, 1.0, 1.0, 1.0)
    (datetime.date(2022, 1, 2), 2, 0, None, None, 0.0)
    """
    day = pl.col(time_column).dt.date().alias("day")
    rows = []
    for (when,), part in frame.sort(time_column).group_by(day, maintain_order=True):
        y = part.get_column(label_column).cast(pl.Int8).to_numpy().astype(bool)
        score = part.get_column(score_column).to_numpy()
        rows.append(
            {
                "day": when,
                "rows": int(y.size),
                "positives": int(y.sum()),
                "roc_auc": ranking.roc_auc(y, score),
                "average_precision": ranking.average_precision(y, score),
            }
        )
    schema = {
        "day": pl.Date,
        "rows": pl.Int64,
        "positives": pl.Int64,
        "roc_auc": pl.Float64,
        "average_precision": pl.Float64,
    }
    out = pl.DataFrame(rows, schema=schema)
    name = f"card_precision_at_{k}"
    if "card_id" not in frame.columns:
        return out.with_columns(pl.lit(None, pl.Float64).alias(name))
    cards = card_precision_at_k(
        frame,
        k=k,
        time_column=time_column,
        label_column=label_column,
        score_column=score_column,
    ).select("day", pl.col("precision").alias(name))
    return out.join(cards, on="day", how="left")
