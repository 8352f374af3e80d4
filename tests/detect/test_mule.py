"""Money-mule flows through the real engine: fan-in and pass-through fire, ordinary life not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from vigil.engine import Engine

T0 = datetime(2022, 3, 1, 8, tzinfo=UTC)


class Account:
    def __init__(self) -> None:
        self.engine = Engine.in_memory()
        self._ids = count()

    def transfer(self, at: datetime, amount: float, *, incoming: bool, payee: str, country="NG"):
        n = next(self._ids)
        return self.engine.process(
            {
                "kind": "transaction",
                "event_id": f"e{n}",
                "transaction_id": f"t{n}",
                "account_id": "a-1",
                "type": "transfer",
                "channel": "online",
                "direction": "credit" if incoming else "debit",
                "amount": amount,
                "counterparty_account": payee,
                "counterparty_country": country,
                "timestamp": at.isoformat(),
            }
        )

    def ordinary_month(self) -> datetime:
        """A salary, rent to the landlord, and a weekly transfer from family, for 30 days."""
        for day in range(30):
            at = T0 + timedelta(days=day)
            if day == 0:
                self.transfer(at, 250_000, incoming=True, payee="EMPLOYER")
            if day == 1:
                self.transfer(at, 120_000, incoming=False, payee="LANDLORD")
            if day % 7 == 3:
                self.transfer(at, 20_000, incoming=True, payee="MUM")
        return T0 + timedelta(days=30)


def codes(*decisions) -> set[str]:
    return {r.code for d in decisions for r in d.reasons}


def test_many_incoming_transfers_in_a_day_then_sent_abroad() -> None:
    a = Account()
    after = a.ordinary_month()
    inflow = [
        a.transfer(after + timedelta(hours=h), 3_000 + 100 * h, incoming=True, payee=f"S{h}")
        for h in range(12)
    ]
    # Usual rate: 5 transfers in 30 days, floored at 0.5 a day. P(N >= 5) = 1.7e-4 is above
    # the 1e-4 tail, P(N >= 6) = 1.4e-5 below it: the sixth transfer of the day is the first.
    assert not codes(*inflow[:5])
    fan_in = [d for d in inflow if "fan_in" in codes(d)]
    assert len(fan_in) == 7 and fan_in[0] is inflow[5]
    # The alert names the earlier transfers of the day, not last month's.
    assert len(fan_in[0].reasons[0].evidence) == 5
    out = a.transfer(after + timedelta(hours=14), 35_000, incoming=False, payee="X", country="GB")
    (reason,) = [r for r in out.reasons if r.code == "pass_through"]
    assert out.flagged and len(reason.evidence) == 12


def test_salary_and_rent_and_family_are_quiet() -> None:
    a = Account()
    after = a.ordinary_month()
    payday = a.transfer(after, 250_000, incoming=True, payee="EMPLOYER")
    gifts = [
        a.transfer(after + timedelta(hours=h), 5_000, incoming=True, payee=f"F{h}")
        for h in (1, 2, 3)
    ]
    rent = a.transfer(after + timedelta(hours=5), 120_000, incoming=False, payee="LANDLORD")
    assert not codes(payday, *gifts, rent)


def test_paying_a_usual_payee_after_a_busy_day_is_not_pass_through() -> None:
    a = Account()
    after = a.ordinary_month()
    for h in range(6):
        a.transfer(after + timedelta(hours=h), 4_000, incoming=True, payee=f"S{h}")
    rent = a.transfer(after + timedelta(hours=8), 20_000, incoming=False, payee="LANDLORD")
    assert "pass_through" not in codes(rent)
