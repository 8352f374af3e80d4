"""How well vigil's decisions catch the labelled fraud: figures, evaluation.json, HTML report.

>>> import polars as pl
>>> from datetime import datetime, UTC
>>> t = datetime(2022, 1, 1, tzinfo=UTC)
>>> decisions = pl.DataFrame({"event_id": ["e1", "e2"], "event_time": [t, t],
...     "score": [0.9, 0.1], "action": ["block", "allow"]})
>>> labels = pl.DataFrame({"event_id": ["e1"], "pattern": ["amount_spike"]})
>>> evaluate(decisions, labels).overall.recall
1.0
"""

from vigil.evaluate.metrics import evaluate
from vigil.evaluate.report import write_report
from vigil.evaluate.results import (
    Evaluation,
    OperatingPoint,
    Overall,
    PatternResult,
    ReasonResult,
)

__all__ = [
    "Evaluation",
    "OperatingPoint",
    "Overall",
    "PatternResult",
    "ReasonResult",
    "evaluate",
    "write_report",
]
