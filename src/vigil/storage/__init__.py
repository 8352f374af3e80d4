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

>>> store = Store("sqlite://")
>>> store.init_schema()
>>> store.load_reference()
ReferenceData(banks={}, terminals={}, cards={}, users={})
"""

from vigil.storage.reference import ReferenceData
from vigil.storage.store import Store, normalise_url

__all__ = ["ReferenceData", "Store", "normalise_url"]
