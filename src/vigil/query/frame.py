"""The tables queries read: one row of figures per stored profile as of a moment (``profiles``),
and one row per account × counterparty country × direction of the flow genome (``genome``).
Peer-group profiles (kind ``peer``) are the genome detector's state, not entities: they are in
neither table (a query recomputes exact percentiles from ``genome``).

>>> from vigil.profiles import Profile
>>> p = Profile()
>>> p.record_transaction(0.0, 0.0, 2, 50_000_00, place=None, latitude=None, longitude=None,
...                      attributes=(("country", "NG"),))
>>> frame = profiles_frame([("account", "a-1", p.to_bytes())], as_of=86400.0)
>>> frame.select("kind", "key", "country", "transfer_n", "transfer_count_30d").row(0)
('account', 'a-1', 'NG', 1, 1)
>>> _ = p.record_flow("GB", "debit", 50_000_00, 0.0, group="NG")
>>> genome_frame([("account", "a-1", p.to_bytes())]).row(0)
('account', 'a-1', 'NG', 'GB', 'debit', 50000.0, 0.0, 50000.0, 1)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import polars as pl

from vigil.profiles import Profile
from vigil.profiles.windows import CATEGORY_INDEX, WINDOW_INDEX

#: The money-moving categories a profile row reports (see profiles.windows.CATEGORIES).
CATEGORIES = ("withdrawal", "deposit", "transfer", "payment", "transfer_in")
_MONTH = WINDOW_INDEX["30d"]


def _when(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _row(kind: str, key: str, profile: Profile) -> dict:
    countries = profile.seen.get("country")
    top = countries.most_common(1) if countries else []
    row: dict = {
        "kind": kind,
        "key": key,
        "n": profile.n,
        "first_seen": _when(profile.first_time),
        "last_seen": _when(profile.last_time),
        "country": top[0][0] if top else None,
        "counterparties": profile.seen_count("counterparty"),
        "counterparty_countries": profile.seen_count("counterparty_country"),
    }
    for name in CATEGORIES:
        c = CATEGORY_INDEX[name]
        stats = profile.amount_stats(c)
        row[f"{name}_n"] = stats.n
        row[f"{name}_mean"] = stats.mean if stats.n else None
        row[f"{name}_std"] = stats.std if stats.n else None
        row[f"{name}_p95"] = profile.amount_quantile(c, 0.95) if stats.n else None
        row[f"{name}_volume"] = stats.mean * stats.n
        row[f"{name}_count_30d"] = profile.windows.count(_MONTH, c)
        row[f"{name}_sum_30d"] = profile.windows.total(_MONTH, c) / 100
    return row


GENOME_SCHEMA = {
    "kind": pl.String,
    "key": pl.String,
    "peer_group": pl.String,
    "counterparty_country": pl.String,
    "direction": pl.String,
    "mean": pl.Float64,
    "std": pl.Float64,
    "volume": pl.Float64,
    "n": pl.Int64,
}


def genome_frame(rows: Iterable[tuple[str, str, bytes]]) -> pl.DataFrame:
    """One row per genome cell of every stored profile that has a genome (accounts)."""
    out = []
    for kind, key, data in rows:
        genome = Profile.from_bytes(data).genome
        if genome is None:
            continue
        for country, direction, flow in genome.flows():
            out.append(
                (
                    kind,
                    key,
                    genome.group,
                    country,
                    direction,
                    flow.mean,
                    flow.std,
                    flow.volume,
                    flow.n,
                )
            )
    return pl.DataFrame(out, schema=GENOME_SCHEMA, orient="row")


def profiles_frame(
    rows: Iterable[tuple[str, str, bytes]], *, as_of: float | None = None
) -> pl.DataFrame:
    """Flatten stored ``(kind, key, data)`` profiles; windows are moved to ``as_of`` (epoch s).

    Without ``as_of`` each profile's windows stay where its last event left them.
    """
    out = []
    for kind, key, data in rows:
        if kind == "peer":
            continue
        profile = Profile.from_bytes(data)
        if as_of is not None:
            profile.advance(as_of)
        out.append(_row(kind, key, profile))
    return pl.DataFrame(out, infer_schema_length=None)
