"""An entity's stored events around a time, each with its decision and place: what an analyst
reads beside a case (the card's and user's timeline, the evidence a reason names, an entity's
recent activity).

Each event is a dict: ``event_id``, ``kind`` (transaction or login), ``timestamp``, ``type``,
``amount``, ``currency``, ``card_id``, ``user_id``, ``account_id``, ``terminal_id``,
``device_id``, ``country``, ``city``, ``latitude`` and ``longitude`` (the event's own, else its
terminal's), ``success`` (logins), and its decision's ``action``, ``score`` and ``reason_codes``
(None when undecided).

>>> from vigil.storage import Store
>>> store = Store("sqlite://"); store.init_schema()
>>> recent(store, "card", "c-1"), by_ids(store, ["e-1"])
([], {})
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, func, literal, null, select

if TYPE_CHECKING:
    from vigil.storage import Store

# Which columns name an entity, per event table (logins have no card, account or terminal).
_TX_COLUMNS = {
    "card": "card_id",
    "user": "user_id",
    "account": "account_id",
    "terminal": "terminal_id",
    "device": "device_id",
}
_LOGIN_COLUMNS = {"user": "user_id", "device": "device_id"}
ENTITY_KINDS = tuple(_TX_COLUMNS)


def _transactions(store: Store) -> Select:
    t, d, term = store.tables.transactions, store.tables.decisions, store.tables.terminals
    return (
        select(
            t.c.event_id,
            literal("transaction").label("kind"),
            t.c.timestamp,
            t.c.type,
            t.c.amount,
            t.c.currency,
            t.c.card_id,
            t.c.user_id,
            t.c.account_id,
            t.c.terminal_id,
            t.c.device_id,
            func.coalesce(t.c.country, term.c.country).label("country"),
            term.c.city,
            func.coalesce(t.c.latitude, term.c.latitude).label("latitude"),
            func.coalesce(t.c.longitude, term.c.longitude).label("longitude"),
            null().label("success"),
            d.c.action,
            d.c.score,
            d.c.reasons,
        )
        .select_from(t)
        .outerjoin(d, d.c.event_id == t.c.event_id)
        .outerjoin(term, term.c.terminal_id == t.c.terminal_id)
    )


def _logins(store: Store) -> Select:
    lg, d = store.tables.logins, store.tables.decisions
    return (
        select(
            lg.c.event_id,
            literal("login").label("kind"),
            lg.c.timestamp,
            literal("login").label("type"),
            null().label("amount"),
            null().label("currency"),
            null().label("card_id"),
            lg.c.user_id,
            null().label("account_id"),
            null().label("terminal_id"),
            lg.c.device_id,
            lg.c.country,
            null().label("city"),
            lg.c.latitude,
            lg.c.longitude,
            lg.c.success,
            d.c.action,
            d.c.score,
            d.c.reasons,
        )
        .select_from(lg)
        .outerjoin(d, d.c.event_id == lg.c.event_id)
    )


def _rows(store: Store, queries: Sequence[Select]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with store.engine.connect() as conn:
        for query in queries:
            for row in conn.execute(query):
                item = dict(row._mapping)
                reasons = item.pop("reasons")
                item["reason_codes"] = [r["code"] for r in reasons] if reasons else []
                out.append(item)
    return out


def by_ids(store: Store, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored events among ``event_ids``, by id."""
    if not event_ids:
        return {}
    t, lg = store.tables.transactions, store.tables.logins
    ids = list(event_ids)
    queries = [
        _transactions(store).where(t.c.event_id.in_(ids)),
        _logins(store).where(lg.c.event_id.in_(ids)),
    ]
    rows = _rows(store, queries)
    return {r["event_id"]: r for r in rows}


def around(
    store: Store,
    at: datetime,
    *,
    card_id: str | None = None,
    user_id: str | None = None,
    before: timedelta = timedelta(days=2),
    after: timedelta = timedelta(hours=6),
    limit: int = 60,
) -> list[dict[str, Any]]:
    """The card's transactions and the user's logins (and, without a card, the user's
    transactions) from ``at - before`` to ``at + after``, oldest first, at most ``limit`` of
    them, those nearest ``at`` kept."""
    t, lg = store.tables.transactions, store.tables.logins
    lo, hi = at - before, at + after
    queries = []
    if card_id is not None:
        queries.append(
            _transactions(store).where(t.c.card_id == card_id, t.c.timestamp.between(lo, hi))
        )
    elif user_id is not None:
        queries.append(
            _transactions(store).where(t.c.user_id == user_id, t.c.timestamp.between(lo, hi))
        )
    if user_id is not None:
        queries.append(
            _logins(store).where(lg.c.user_id == user_id, lg.c.timestamp.between(lo, hi))
        )
    rows = _rows(store, queries)
    rows.sort(key=lambda r: abs((r["timestamp"] - at).total_seconds()))
    return sorted(rows[:limit], key=lambda r: (r["timestamp"], r["event_id"]))


def recent(store: Store, kind: str, entity_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """The entity's newest events (transactions, and logins for users and devices)."""
    if kind not in _TX_COLUMNS:
        raise ValueError(f"kind: {kind!r} is not one of {', '.join(_TX_COLUMNS)}")
    t, lg = store.tables.transactions, store.tables.logins
    queries = [
        _transactions(store)
        .where(t.c[_TX_COLUMNS[kind]] == entity_id)
        .order_by(t.c.timestamp.desc())
        .limit(limit)
    ]
    if kind in _LOGIN_COLUMNS:
        queries.append(
            _logins(store)
            .where(lg.c[_LOGIN_COLUMNS[kind]] == entity_id)
            .order_by(lg.c.timestamp.desc())
            .limit(limit)
        )
    rows = _rows(store, queries)
    rows.sort(key=lambda r: (r["timestamp"], r["event_id"]), reverse=True)
    return rows[:limit]
