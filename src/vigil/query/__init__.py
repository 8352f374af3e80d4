"""Questions over the stored profiles: named, parameterised queries and raw SQL.

The behavioural-genome design asks population questions ("accounts whose debit expectation
exceeds the 99th percentile of their country", "accounts with the highest incoming volume").
:func:`profiles_frame` flattens every stored profile into one row of figures as of a time;
:func:`genome_frame` lists every account's flow genome (account × counterparty country ×
direction: E, SD, volume, N); :mod:`vigil.query.named` holds the named queries, and
:func:`run_sql` runs any SQL over both with DuckDB (tables ``profiles`` and ``genome``;
nothing leaves the process).
"""

from vigil.query.frame import genome_frame, profiles_frame
from vigil.query.named import NAMED, run_named, run_sql

__all__ = ["NAMED", "genome_frame", "profiles_frame", "run_named", "run_sql"]
