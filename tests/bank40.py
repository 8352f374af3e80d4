"""The crash and stream tests' workload: 40 cards at 5 ATMs, and withdrawals that go round the
cards (one card's events 40 apart, a little over an hour of event time)."""

from __future__ import annotations

from typing import Any

from vigil.domain import Card, Terminal, User
from vigil.storage import Store

CARDS = 40


def seed(store: Store) -> None:
    store.upsert_terminals(
        [Terminal(terminal_id=f"ATM-{i}", latitude=6.4 + i / 100, longitude=3.4) for i in range(5)]
    )
    store.upsert_users([User(user_id=f"u-{i}", country="NG") for i in range(CARDS)])
    store.upsert_cards(
        [Card(card_id=f"c-{i}", user_id=f"u-{i}", extract_limit=200_000) for i in range(CARDS)]
    )


def withdrawal(i: int, prefix: str = "w") -> dict[str, Any]:
    """The ``i``-th withdrawal: card ``i % 40``, at an ATM near its holder."""
    card = i % CARDS
    seconds = i * 97
    return {
        "event_id": f"{prefix}-{i}",
        "transaction_id": f"{prefix}t-{i}",
        "timestamp": f"2024-05-{1 + seconds // 86400:02d}T{seconds // 3600 % 24:02d}:"
        f"{seconds // 60 % 60:02d}:{seconds % 60:02d}Z",
        "type": "withdrawal",
        "amount": f"{1000 + (i * 37) % 5000}.{i % 100:02d}",
        "card_id": f"c-{card}",
        "user_id": f"u-{card}",
        "terminal_id": f"ATM-{card % 5}",
    }
