"""The retention policy: events older than their window are deleted (``vigil purge``).

Defaults: logins 90 days, transactions a year, risk events kept for ever (the audit trail).
A decision goes with its event, unless a kept risk event rests on it (the batches it leaves
are sealed again, :mod:`vigil.storage.audit`); feedback goes with the transactions' window, by
its own time. Times are relative to ``now`` (event time, not the time
rows were written), so a purge is reproducible.

>>> from datetime import datetime, UTC
>>> from vigil.storage import Store
>>> store = Store("sqlite://"); store.init_schema()
>>> purge(store, RetentionPolicy(), datetime(2024, 1, 1, tzinfo=UTC))["logins"]
0
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from vigil.config import RetentionConfig
from vigil.storage import audit

if TYPE_CHECKING:
    from vigil.storage import Store


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Days each kind of record is kept; None keeps it.

    >>> RetentionPolicy.from_config(RetentionConfig(logins_days=30)).logins_days
    30.0
    """

    logins_days: float | None = 90.0
    transactions_days: float | None = 365.0
    risk_events_days: float | None = None

    def __post_init__(self) -> None:
        for name in ("logins_days", "transactions_days", "risk_events_days"):
            days = getattr(self, name)
            if days is not None and not days > 0:
                raise ValueError(f"privacy.retention.{name}: {days} must be positive (or unset)")

    @classmethod
    def from_config(cls, config: RetentionConfig) -> RetentionPolicy:
        return cls(config.logins_days, config.transactions_days, config.risk_events_days)


def purge(
    store: Store, policy: RetentionPolicy, now: datetime, *, dry_run: bool = False
) -> dict[str, int]:
    """Delete what the policy no longer keeps, in one transaction; rows deleted per table.

    ``dry_run`` runs the very same deletes and rolls them back: the counts are what a purge
    at ``now`` would delete, and nothing changes.
    """
    if now.tzinfo is None:
        raise ValueError(f"now: naive datetime {now.isoformat()}; give a timezone (UTC)")
    t = store.tables
    d, r = t.decisions, t.risk_events
    counts = dict.fromkeys(("logins", "transactions", "feedback", "decisions", "risk_events"), 0)
    with store.transaction() as conn:
        savepoint = conn.begin_nested() if dry_run else None
        if policy.risk_events_days is not None:
            cut = now - timedelta(days=policy.risk_events_days)
            counts["risk_events"] = conn.execute(delete(r).where(r.c.event_time < cut)).rowcount
        audited = select(r.c.decision_id).scalar_subquery()
        batches: set[int] = set()
        for kind, table, days in (
            ("login", t.logins, policy.logins_days),
            ("transaction", t.transactions, policy.transactions_days),
        ):
            if days is None:
                continue
            cut = now - timedelta(days=days)
            counts[table.name] = conn.execute(delete(table).where(table.c.timestamp < cut)).rowcount
            old = (d.c.event_kind == kind, d.c.event_time < cut, d.c.decision_id.not_in(audited))
            batches.update(conn.execute(select(d.c.batch).where(*old).distinct()).scalars())
            counts["decisions"] += conn.execute(delete(d).where(*old)).rowcount
            if kind == "transaction":
                f = t.feedback
                counts["feedback"] = conn.execute(delete(f).where(f.c.timestamp < cut)).rowcount
        # The batches that lost decisions are sealed again over what they keep.
        audit.reseal(conn, t, batches, store.privacy.pseudonyms)
        if savepoint is not None:
            savepoint.rollback()
    return counts
