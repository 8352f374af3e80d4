"""Contexts for rule tests: real events, real profiles recorded through Profile's own API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vigil.detect.context import Context
from vigil.domain import Card, Login, Terminal, Transaction
from vigil.domain.entities import CardBehaviour
from vigil.profiles import Profile
from vigil.profiles.windows import CATEGORY_INDEX

WITHDRAWAL = CATEGORY_INDEX["withdrawal"]
DAY = 86400.0
# 2022-01-31 02:00 UTC: a Monday, in the small hours.
NOW = datetime(2022, 1, 31, 2, tzinfo=UTC)


def card_profile(amounts: list[float], *, end: float) -> Profile:
    """A card that withdrew these amounts once a day up to a day before ``end``."""
    p = Profile()
    first = end - DAY * len(amounts)
    for i, amount in enumerate(amounts):
        t = first + i * DAY
        p.advance(t)
        p.record_transaction(
            t, t + 60, WITHDRAWAL, round(amount * 100), place="ATM-1", latitude=6.45,
            longitude=3.39, attributes=(("country", "NG"), ("terminal", "ATM-1")),
        )  # fmt: skip
    p.advance(end)
    return p


def withdrawal(amount: str = "900.00", **extra: object) -> Transaction:
    fields = {
        "event_id": "e-1",
        "transaction_id": "t-1",
        "card_id": "c-1",
        "type": "withdrawal",
        "amount": amount,
        "timestamp": NOW,
        "terminal_id": "ATM-2",
    }
    fields.update(extra)
    return Transaction(**fields)


@pytest.fixture
def ctx() -> Context:
    """A 900.00 withdrawal by a card whose 20 earlier withdrawals were 100-195."""
    end = NOW.timestamp()
    tx = withdrawal()
    card = card_profile([100 + 5 * i for i in range(20)], end=end)
    return Context(
        tx,
        end,
        end,
        WITHDRAWAL,
        90000,
        latitude=9.06,
        longitude=7.49,
        place="ATM-2",
        card=Card(
            card_id="c-1",
            extract_limit=1000.0,
            behaviour=CardBehaviour(amount_avg_withdrawal=150.0),
        ),
        terminal=Terminal(terminal_id="ATM-2", latitude=9.06, longitude=7.49, internal=False),
        profiles={"card": card},
    )


@pytest.fixture
def login_ctx() -> Context:
    when = NOW.timestamp()
    login = Login(event_id="l-1", user_id="u-1", timestamp=NOW, success=True, country="GH")
    user = Profile()
    user.advance(when)
    return Context(login, when, when, CATEGORY_INDEX["login"], None, profiles={"user": user})
