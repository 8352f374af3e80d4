"""Named, parameterised questions over the profiles table, and raw SQL with DuckDB.

Each named query is SQL over the ``profiles`` and ``genome`` tables (see
:mod:`vigil.query.frame`) with ``$name`` parameters and their defaults; ``vigil query --list``
shows them.

>>> import polars as pl
>>> frame = pl.DataFrame({"kind": ["account"] * 3, "key": ["a", "b", "c"],
...     "country": ["NG"] * 3, "transfer_in_sum_30d": [10.0, 900.0, 50.0],
...     "transfer_in_count_30d": [1, 30, 2]})
>>> run_named("top-inflow", frame, {"limit": 1}).select("key").item()
'b'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from vigil.query.frame import GENOME_SCHEMA


@dataclass(frozen=True)
class NamedQuery:
    description: str
    sql: str
    params: dict[str, Any] = field(default_factory=dict)


NAMED: dict[str, NamedQuery] = {
    "above-peer-p99": NamedQuery(
        "Accounts whose expectation E (mean amount) to or from a counterparty country exceeds "
        "the given percentile of their peer group (holder's country) for the same country and "
        "direction, with volume and count beside their peers' (the flow genome's question); "
        "direction is debit, credit or any.",
        """
        WITH peers AS (
            SELECT peer_group, counterparty_country, direction,
                   quantile_cont(mean, $q) AS peer_mean, quantile_cont(volume, $q) AS peer_volume,
                   quantile_cont(n, $q) AS peer_n, count(*) AS group_size
            FROM genome WHERE kind = 'account' GROUP BY ALL
        )
        SELECT g.key, g.peer_group, g.counterparty_country, g.direction, g.mean,
               peers.peer_mean, g.volume, peers.peer_volume, g.n, peers.peer_n, peers.group_size
        FROM genome g JOIN peers USING (peer_group, counterparty_country, direction)
        WHERE g.kind = 'account' AND g.mean > peers.peer_mean
              AND peers.group_size >= $min_group AND g.n >= $min_n
              AND ($direction = 'any' OR g.direction = $direction)
        ORDER BY g.mean / peers.peer_mean DESC LIMIT $limit
        """,
        {"q": 0.99, "min_group": 20, "min_n": 1, "direction": "debit", "limit": 50},
    ),
    "top-inflow": NamedQuery(
        "Accounts with the highest incoming transfer volume over the last 30 days.",
        """
        SELECT key, country, transfer_in_sum_30d, transfer_in_count_30d
        FROM profiles WHERE kind = 'account' AND transfer_in_count_30d > 0
        ORDER BY transfer_in_sum_30d DESC LIMIT $limit
        """,
        {"limit": 20},
    ),
    "busiest": NamedQuery(
        "Entities of a kind with the most withdrawals over the last 30 days.",
        """
        SELECT key, withdrawal_count_30d, withdrawal_sum_30d, withdrawal_mean, withdrawal_p95
        FROM profiles WHERE kind = $kind ORDER BY withdrawal_count_30d DESC LIMIT $limit
        """,
        {"kind": "card", "limit": 20},
    ),
    "many-payees": NamedQuery(
        "Accounts or users paying the most distinct counterparties and countries.",
        """
        SELECT kind, key, counterparties, counterparty_countries, transfer_n, transfer_volume
        FROM profiles WHERE counterparties > 0
        ORDER BY counterparty_countries DESC, counterparties DESC LIMIT $limit
        """,
        {"limit": 20},
    ),
}


def run_sql(
    sql: str,
    profiles: pl.DataFrame,
    params: dict[str, Any] | None = None,
    *,
    genome: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Run ``sql`` with DuckDB over the tables ``profiles`` and ``genome`` (empty if None)."""
    import duckdb  # here: every other vigil command starts without it (37 ms)

    if genome is None:
        genome = pl.DataFrame(schema=GENOME_SCHEMA)
    con = duckdb.connect()
    try:
        con.register("profiles", profiles.to_arrow())
        con.register("genome", genome.to_arrow())
        return pl.from_arrow(con.sql(sql, params=params or None).to_arrow_table())
    finally:
        con.close()


def run_named(
    name: str,
    profiles: pl.DataFrame,
    params: dict[str, Any] | None = None,
    *,
    genome: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Run a named query; ``params`` override its defaults (unknown names are an error)."""
    if name not in NAMED:
        raise KeyError(f"query: unknown {name!r}; named queries: {', '.join(sorted(NAMED))}")
    query = NAMED[name]
    unknown = set(params or {}) - set(query.params)
    if unknown:
        raise ValueError(
            f"query {name}: unknown parameter(s) {sorted(unknown)}; it takes {sorted(query.params)}"
        )
    values = {**query.params, **(params or {})}
    used = {k: v for k, v in values.items() if f"${k}" in query.sql}
    if "direction" in values and values["direction"] not in ("debit", "credit", "any"):
        raise ValueError(f"direction: {values['direction']!r} is not debit, credit or any")
    return run_sql(query.sql, profiles, used, genome=genome)
