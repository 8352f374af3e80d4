"""Questions over the stored profiles: named, parameterised queries and raw SQL.

The behavioural-genome design asks population questions ("accounts whose debit expectation
exceeds the 99th percentile of their country", "accounts with the highest incoming volume").
:func:`profiles_frame` flattens every stored profile into one row of figures as of a time;
:mod:`vigil.query.named` holds the named queries, and :func:`run_sql` runs any SQL over the
same frame with DuckDB (the frame is a table called ``profiles``; nothing leaves the process).
"""

from vigil.query.frame import profiles_frame
from vigil.query.named import NAMED, run_named, run_sql

__all__ = ["NAMED", "profiles_frame", "run_named", "run_sql"]
