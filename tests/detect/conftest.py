"""Hand-built event sequences through the real engine (in-memory stores)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from vigil.domain import Card, Terminal, User
from vigil.domain.entities import CardBehaviour
from vigil.engine import Engine
from vigil.storage.reference import ReferenceData

T0 = datetime(2022, 3, 1, 8, tzinfo=UTC)
LAGOS = (6.4541, 3.3947)
IKEJA = (6.6018, 3.3515)
ABUJA = (9.0765, 7.3986)


def reference() -> ReferenceData:
    behaviour = CardBehaviour(
        amount_avg_withdrawal=20000,
        amount_std_withdrawal=8000,
        withdrawal_day=1.0,
        amount_avg_transfer=15000,
        amount_std_transfer=6000,
        transfer_day=0.2,
        inquiry_day=0.1,
    )
    return ReferenceData(
        terminals={
            "LAG-1": Terminal(terminal_id="LAG-1", latitude=LAGOS[0], longitude=LAGOS[1]),
            "LAG-2": Terminal(terminal_id="LAG-2", latitude=IKEJA[0], longitude=IKEJA[1]),
            "ABJ-1": Terminal(terminal_id="ABJ-1", latitude=ABUJA[0], longitude=ABUJA[1]),
        },
        cards={
            "c-1": Card(card_id="c-1", user_id="u-1", extract_limit=100_000, behaviour=behaviour),
        },
        users={"u-1": User(user_id="u-1", country="NG")},
    )


class Script:
    """Feeds events to an engine with readable defaults; returns the decisions."""

    def __init__(self) -> None:
        self.engine = Engine.in_memory(reference())
        self._ids = count()

    def tx(
        self,
        at: datetime,
        *,
        amount: float = 20000,
        terminal: str = "LAG-1",
        type: str = "withdrawal",
        seconds: float = 120,
        **extra,
    ):
        """A two-phase transaction: returns (start decision, end decision)."""
        n = next(self._ids)
        base = {
            "kind": "transaction",
            "transaction_id": f"t{n}",
            "card_id": "c-1",
            "account_id": "a-1",
            "user_id": "u-1",
            "terminal_id": terminal,
            "type": type,
        }
        base.update(extra)
        start = self.engine.process(
            {**base, "event_id": f"t{n}-s", "phase": "start", "timestamp": at.isoformat()}
        )
        end = self.engine.process(
            {
                **base,
                "event_id": f"t{n}-e",
                "phase": "end",
                "timestamp": (at + timedelta(seconds=seconds)).isoformat(),
                "started_at": at.isoformat(),
                "amount": amount,
            }
        )
        return start, end

    def login(self, at: datetime, **fields):
        n = next(self._ids)
        return self.engine.process(
            {
                "kind": "login",
                "event_id": f"l{n}",
                "user_id": "u-1",
                "timestamp": at.isoformat(),
                **fields,
            }
        )

    def history(self, days: int = 30, *, amount: float = 20000) -> datetime:
        """A month of ordinary daily withdrawals in Lagos; returns the time after it."""
        for d in range(days):
            self.tx(
                T0 + timedelta(days=d),
                amount=amount + 500 * (d % 5),
                terminal="LAG-1" if d % 2 else "LAG-2",
            )
        return T0 + timedelta(days=days)


@pytest.fixture
def script() -> Script:
    return Script()


def codes(*decisions) -> set[str]:
    return {r.code for d in decisions for r in d.reasons}
