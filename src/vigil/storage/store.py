"""The Store: every part of vigil's SQL storage in one object, the one callers hold.

Each part lives in a module named for what it stores, and :class:`Store` inherits them all;
they share one engine and one schema through :class:`~vigil.storage.database.Database`.

>>> import tempfile
>>> from datetime import datetime, UTC
>>> from vigil.domain import Decision, Transaction
>>> store = Store(f"sqlite:///{tempfile.mkdtemp()}/vigil.db")
>>> store.init_schema()
>>> tx = Transaction(event_id="e1", transaction_id="t1", card_id="c-1", type="withdrawal",
...                  timestamp=datetime(2022, 1, 3, 10, tzinfo=UTC), amount="2500.00")
>>> store.record([tx], [Decision(decision_id="d1", event_id="e1", event_kind="transaction",
...                              score=0.95, action="block", card_id="c-1")])
>>> store.get_decision("e1").action, store.counts()["risk_events"]
(<Action.BLOCK: 'block'>, 1)
>>> store.close()
"""

from __future__ import annotations

from vigil.storage.aggregates import AggregateStore
from vigil.storage.api_keys import ApiKeyStore
from vigil.storage.checkpoints import CheckpointStore
from vigil.storage.connection import normalise_url
from vigil.storage.decisions import DecisionStore
from vigil.storage.events import EventStore
from vigil.storage.feedback import FeedbackStore
from vigil.storage.reference import ReferenceStore
from vigil.storage.risk_events import RiskEventStore
from vigil.storage.rules import RuleStore
from vigil.storage.scores import ScoreStore
from vigil.storage.standin import StandInStore

# normalise_url was defined here before the parts had modules; it stays importable from here.
__all__ = ["Store", "normalise_url"]


# No two parts define the same name, so their order decides nothing but how the API reference
# lists their methods on Store: from the last base to the first, reference data first.
class Store(
    CheckpointStore,
    AggregateStore,
    StandInStore,
    ScoreStore,
    ApiKeyStore,
    RuleStore,
    RiskEventStore,
    FeedbackStore,
    DecisionStore,
    EventStore,
    ReferenceStore,
):
    """SQL storage for vigil on a SQLite file (default) or PostgreSQL.

    Every writer takes an optional ``conn`` from :meth:`transaction` to join a larger atomic
    unit; without one it runs in its own transaction.

    >>> store = Store("sqlite://")
    >>> store.dialect
    'sqlite'
    >>> Store("postgresql://u@db/vigil").url
    'postgresql+psycopg://u@db/vigil'
    """
