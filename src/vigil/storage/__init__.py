"""Storage: reference data, events, decisions, risk events and profile snapshots in SQL.

Two backends behind one :class:`Store`, chosen by URL (SQLAlchemy Core, no ORM):

* **SQLite file** (the default, ``sqlite:///vigil.db``): zero setup, one file on one machine.
  The store runs it in WAL mode with ``synchronous=NORMAL`` and foreign keys on, and opens every
  transaction with an explicit ``BEGIN`` so a batch is all-or-nothing. SQLite has no time zones
  or decimals: timestamps are stored as naive UTC text and come back tz-aware UTC; amounts are
  stored as REAL and come back as the exact ``Decimal`` (amounts are capped at 1e12 with two
  decimals, within a double's 15 exact digits).
* **PostgreSQL** (``postgresql://user@host/db``, driven by psycopg 3): ``transactions`` and
  ``logins`` are range-partitioned by month on ``timestamp``, with monthly partitions such as
  ``transactions_2022_01`` created on demand in the inserting transaction. A partitioned table's
  key must contain the partition key, so theirs is ``(event_id, timestamp)``: a re-sent event is
  ignored when it repeats its id and time, as a replayed event does.

Events are idempotent by ``event_id``; ``Store.record`` writes a batch's events, decisions and
risk events in one transaction. A card's CVC is never stored: no table has a column for it.

**Layout.** :class:`Store` is the one object callers hold. It is composed of parts, one module
each, named for what it stores; each part is a class with that table's methods, built on
:class:`~vigil.storage.database.Database`, and ``Store`` inherits them all (mixins, so callers
keep writing ``store.record(...)`` rather than ``store.decisions.record(...)``):

* ``connection``: database URLs and engines (SQLite's pragmas and ``BEGIN IMMEDIATE``);
* ``database``: :class:`~vigil.storage.database.Database`, the base every part shares: engine,
  schema, transactions, and the write paths (new event rows, rows that must be new, upserts);
* ``reference``: banks, terminals, cards and users; ``events``: transactions and logins;
  ``feedback``: labels on events; ``decisions``: decisions, with the risk events and shadow-rule
  hits ``record`` writes beside them; ``risk_events``: listing and updating risk events;
  ``rules``: rule versions and shadow hits; ``api_keys``; ``scores``: batch model scores;
  ``standin``: StandIn inferences; ``aggregates``: daily user and card aggregates;
  ``checkpoints``: profile checkpoints and profile state;
* ``store``: :class:`Store` itself, the parts put together.

A new table's code goes in a new part (a ``Database`` subclass in a module named for the table),
added to ``Store``'s bases. Code that works *across* tables, without a place on ``Store``, is
functions taking the store: ``schema``, ``columns`` and ``migrations`` (the tables), ``rows``
(models to rows and back), ``bulk`` (COPY and batched inserts), ``partitions``, ``log`` (the
decision log's order), ``audit`` and ``anchor`` (the tamper-evident chains), ``cases`` (the case
workflow), ``timeline`` (an entity's events for an analyst) and ``figures`` (the overview).

>>> store = Store("sqlite://")
>>> store.init_schema()
>>> store.load_reference()
ReferenceData(banks={}, terminals={}, cards={}, users={})
"""

from vigil.storage.connection import normalise_url
from vigil.storage.reference import ReferenceData
from vigil.storage.store import Store

__all__ = ["ReferenceData", "Store", "normalise_url"]
