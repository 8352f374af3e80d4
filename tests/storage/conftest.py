"""Builders for the storage tests: valid events and decisions with only the interesting bits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from vigil.domain import Decision, Login, Reason, Transaction

T0 = datetime(2022, 1, 3, 10, 0, tzinfo=UTC)


class Make:
    """Factories: ``make.tx("e1", minutes=5, amount="10.00")``, ``make.decision("e1", 0.95)``."""

    def tx(self, event_id: str, *, at: datetime | None = None, minutes: float = 0, **kw: Any):
        fields: dict[str, Any] = {
            "event_id": event_id,
            "transaction_id": f"t-{event_id}",
            "timestamp": (at or T0) + timedelta(minutes=minutes),
            "type": "withdrawal",
            "amount": Decimal("100.00"),
            "card_id": "c-B1-1",
            "account_id": "a-B1-1",
            "user_id": "u-B1-1",
            "terminal_id": "B1-1",
        }
        fields.update(kw)
        return Transaction(**fields)

    def login(self, event_id: str, *, at: datetime | None = None, minutes: float = 0, **kw: Any):
        fields: dict[str, Any] = {
            "event_id": event_id,
            "user_id": "u-B1-1",
            "timestamp": (at or T0) + timedelta(minutes=minutes),
        }
        fields.update(kw)
        return Login(**fields)

    def decision(self, event: Transaction | Login, score: float, action: str, *codes: str):
        return Decision(
            decision_id=f"d-{event.event_id}",
            event_id=event.event_id,
            event_kind=event.kind,
            score=score,
            action=action,
            reasons=[Reason(code=c, score=score, detail=f"{c} fired") for c in codes],
            event_time=event.timestamp,
            user_id=event.user_id,
            card_id=getattr(event, "card_id", None),
            model_versions={"policy": "1"},
            latency_us=42.5,
        )


@pytest.fixture
def make() -> Make:
    return Make()
