"""Rule files put in force, kept as versions, and the hits of shadow rules (:mod:`vigil.rules`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from vigil.storage import rows as R
from vigil.storage.database import Database


class RuleStore(Database):
    """The ``rule_versions`` table (every rule file put in force, numbered) and reads of
    ``rule_shadow_hits`` (:meth:`DecisionStore.record` writes those with their decisions).

    >>> from vigil.storage import Store
    >>> store = Store("sqlite://"); store.init_schema()
    >>> [store.activate_rules("rules: []", "ab" * 32, path=None, source="test") for _ in "xy"]
    [(1, True), (1, False)]
    >>> store.rule_shadow_hits()
    []
    """

    def activate_rules(
        self, content: str, sha256: str, *, path: str | None, source: str
    ) -> tuple[int, bool]:
        """Record a rule file put in force: ``(version, True)`` for a new version, or
        ``(version in force, False)`` when its sha256 is the one in force already."""
        t = self.tables.rule_versions
        latest_query = select(t.c.version, t.c.sha256).order_by(t.c.version.desc()).limit(1)
        for attempt in range(3):
            try:
                with self.transaction() as conn:
                    latest = conn.execute(latest_query).first()
                    if latest is not None and latest.sha256 == sha256:
                        return latest.version, False
                    version = 1 if latest is None else latest.version + 1
                    row = {
                        "version": version,
                        "sha256": sha256,
                        "content": content,
                        "path": path,
                        "source": source[:200],
                        "activated_at": R.utc_now(),
                    }
                    conn.execute(t.insert(), row)
                return version, True
            except IntegrityError:
                # Another process took this version number first; read again.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def rule_versions(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest rule versions put in force, newest first (content included)."""
        t = self.tables.rule_versions
        with self.engine.connect() as conn:
            query = select(t).order_by(t.c.version.desc()).limit(limit)
            return [dict(r._mapping) for r in conn.execute(query)]

    def rule_shadow_hits(self, rule: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Hits of shadow rules (``rule`` is its code, ``rule:<name>``), newest first."""
        t = self.tables.rule_shadow_hits
        query = select(t).order_by(t.c.event_time.desc(), t.c.hit_id.desc()).limit(limit)
        if rule is not None:
            query = query.where(t.c.rule == rule)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
