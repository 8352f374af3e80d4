"""Lost or stolen card, far from home, card-not-present: through the real engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

from vigil.domain import Card, Terminal
from vigil.domain.entities import CardBehaviour
from vigil.engine import Engine
from vigil.storage.reference import ReferenceData

T0 = datetime(2022, 3, 1, 9, tzinfo=UTC)
HOME = (6.4541, 3.3947)  # Lagos Island
ATMS = {
    "LAG-1": (6.4541, 3.3947),
    "LAG-2": (6.6018, 3.3515),  # Ikeja, 17 km
    "LAG-3": (6.4281, 3.4216),  # Victoria Island
    "LAG-4": (6.5244, 3.3792),  # Yaba
    "IBA-1": (7.3775, 3.9470),  # Ibadan, 120 km
    "KAN-1": (12.0022, 8.5920),  # Kano, 830 km
}


class Card1:
    def __init__(self) -> None:
        behaviour = CardBehaviour(
            amount_avg_withdrawal=20_000, amount_std_withdrawal=8_000, withdrawal_day=1.0
        )
        self.engine = Engine.in_memory(
            ReferenceData(
                terminals={
                    t: Terminal(terminal_id=t, latitude=lat, longitude=lon)
                    for t, (lat, lon) in ATMS.items()
                },
                cards={
                    "c-1": Card(
                        card_id="c-1",
                        latitude=HOME[0],
                        longitude=HOME[1],
                        extract_limit=100_000,
                        behaviour=behaviour,
                    )
                },
            )
        )
        self._ids = count()

    def withdraw(self, at: datetime, terminal: str, amount: float = 20_000, **extra):
        """A two-phase withdrawal: (start decision, end decision)."""
        n = next(self._ids)
        base = {
            "kind": "transaction",
            "transaction_id": f"t{n}",
            "card_id": "c-1",
            "type": "withdrawal",
            "terminal_id": terminal,
            **extra,
        }
        start = self.engine.process(
            {**base, "event_id": f"t{n}-s", "phase": "start", "timestamp": at.isoformat()}
        )
        end = self.engine.process(
            {
                **base,
                "event_id": f"t{n}-e",
                "phase": "end",
                "timestamp": (at + timedelta(minutes=3)).isoformat(),
                "started_at": at.isoformat(),
                "amount": amount,
            }
        )
        return start, end

    def month(self) -> datetime:
        for d in range(30):
            self.withdraw(T0 + timedelta(days=d), "LAG-1" if d % 3 else "LAG-2")
        return T0 + timedelta(days=30)


def codes(*decisions) -> set[str]:
    return {r.code for d in decisions for r in d.reasons}


def test_spree_at_different_atms_is_a_lost_or_stolen_card() -> None:
    card = Card1()
    after = card.month()
    spree = [
        card.withdraw(after + timedelta(minutes=40 * i), atm, amount=45_000)
        for i, atm in enumerate(["LAG-1", "LAG-3", "LAG-4", "LAG-2"])
    ]
    # Two withdrawals at two ATMs is an errand; the third, with 90% of the limit already
    # taken, is the thief's (drained: P(N >= 3) at 1/day over 6 of 14 waking hours is 0.010).
    assert "lost_stolen_card" not in codes(*spree[0], *spree[1])
    start3 = spree[2][0]
    (reason,) = [r for r in start3.reasons if r.code == "lost_stolen_card"]
    assert reason.evidence == ("t30", "t31") and start3.flagged


def test_three_small_withdrawals_at_three_atms_on_a_busy_day_are_quiet() -> None:
    card = Card1()
    after = card.month()
    day = [
        card.withdraw(after + timedelta(hours=2 * i), atm, amount=5_000)
        for i, atm in enumerate(["LAG-1", "LAG-3", "LAG-4"])
    ]
    assert "lost_stolen_card" not in codes(*(d for pair in day for d in pair))


def test_far_from_home_is_weak_alone_and_judged_against_the_cards_range() -> None:
    card = Card1()
    after = card.month()
    ibadan, _ = card.withdraw(after, "IBA-1")
    kano, _ = card.withdraw(after + timedelta(days=2), "KAN-1")
    (far,) = [r for r in kano.reasons if r.code == "far_from_home"]
    assert 0.3 <= far.score <= 0.45 and not kano.flagged  # people travel: no alert alone
    assert "far_from_home" in codes(ibadan)  # 120 km > 100 km and > 2 x 17 km seen before
    # Once the card has been to Kano and back, Ibadan is within its range.
    again, _ = card.withdraw(after + timedelta(days=5), "IBA-1")
    assert "far_from_home" not in codes(again)


def test_online_payment_does_not_move_the_card() -> None:
    card = Card1()
    after = card.month()
    # An online payment geolocated in Kano says where the customer's browser is, not the card.
    card.engine.process(
        {
            "kind": "transaction",
            "event_id": "p",
            "transaction_id": "p",
            "card_id": "c-1",
            "type": "payment",
            "channel": "online",
            "amount": 5_000,
            "latitude": 12.0,
            "longitude": 8.59,
            "timestamp": after.isoformat(),
        }
    )
    start, _ = card.withdraw(after + timedelta(minutes=20), "LAG-1")
    assert "impossible_travel" not in codes(start)
