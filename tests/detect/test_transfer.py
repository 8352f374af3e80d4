"""First transfer to a new counterparty or counterparty country with a large amount."""

from __future__ import annotations

from datetime import timedelta
from itertools import count

import pytest

from tests.detect.conftest import T0, Script, codes
from vigil.config import TransferConfig
from vigil.detect.transfer import NewCounterpartyTransfer

_IDS = count()
COUNTRY = "new_counterparty_country_large"
PAYEE = "new_counterparty_large"


def transfer(script: Script, at, amount: float, payee: str, country: str, **extra):
    """An internet-banking transfer (single event, no card) from account a-1 of user u-1."""
    n = next(_IDS)
    return script.engine.process(
        {
            "kind": "transaction",
            "event_id": f"x{n}",
            "transaction_id": f"x{n}",
            "account_id": "a-1",
            "user_id": "u-1",
            "type": "transfer",
            "channel": "online",
            "amount": amount,
            "counterparty_account": payee,
            "counterparty_country": country,
            "timestamp": at.isoformat(),
            **extra,
        }
    )


def _usual(script: Script, n: int = 12):
    """Rent and family: ``n`` transfers of 10,000-14,000 to two Nigerian accounts."""
    for k in range(n):
        transfer(script, T0 + timedelta(days=2 * k), 10_000 + 1_000 * (k % 5), f"NG-{k % 2}", "NG")
    return T0 + timedelta(days=2 * n)


def test_first_transfer_abroad_above_the_usual_p95_steps_up(script: Script) -> None:
    after = _usual(script)
    d = transfer(script, after, 30_000, "AE-0042", "AE")
    assert COUNTRY in codes(d)
    assert d.action != "allow"
    reason = next(r for r in d.reasons if r.code == COUNTRY)
    assert "first transfer to AE" in reason.detail and "(n=12)" in reason.detail
    assert reason.entity == "account"


def test_score_grows_with_the_amount(script: Script) -> None:
    after = _usual(script)
    small = transfer(script, after, 16_000, "AE-1", "AE")
    large = transfer(script, after + timedelta(hours=1), 120_000, "GB-1", "GB")
    score = {d.event_id: r.score for d in (small, large) for r in d.reasons if r.code == COUNTRY}
    assert score[small.event_id] == pytest.approx(TransferConfig().country_score, abs=0.05)
    assert score[large.event_id] > score[small.event_id] + 0.1


def test_first_transfer_abroad_of_a_usual_amount_is_quiet(script: Script) -> None:
    # A family member abroad, an ordinary amount.
    after = _usual(script)
    d = transfer(script, after, 11_000, "GH-7", "GH")
    assert codes(d) & {COUNTRY, PAYEE} == set()
    assert d.action == "allow"


def test_new_domestic_payee_needs_a_much_larger_amount(script: Script) -> None:
    after = _usual(script)
    landlord = transfer(script, after, 20_000, "NG-new-landlord", "NG")
    car = transfer(script, after + timedelta(days=1), 60_000, "NG-car-dealer", "NG")
    assert codes(landlord) & {COUNTRY, PAYEE} == set()
    assert PAYEE in codes(car)
    assert next(r for r in car.reasons if r.code == PAYEE).score < 0.5


def test_large_transfer_to_a_known_payee_is_not_this_detectors(script: Script) -> None:
    after = _usual(script)
    d = transfer(script, after, 60_000, "NG-1", "NG")
    assert codes(d) & {COUNTRY, PAYEE} == set()


def test_young_account_is_not_judged(script: Script) -> None:
    after = _usual(script, n=TransferConfig().min_history - 1)
    d = transfer(script, after, 90_000, "RU-1", "RU")
    assert codes(d) & {COUNTRY, PAYEE} == set()


def test_money_received_from_abroad_is_not_a_payee_going_abroad(script: Script) -> None:
    after = _usual(script)
    incoming = transfer(script, after, 90_000, "GB-aunt", "GB", direction="credit")
    assert codes(incoming) & {COUNTRY, PAYEE} == set()
    # Sending money back to someone who sent you money: they are known.
    back = transfer(script, after + timedelta(days=3), 40_000, "GB-aunt", "GB")
    assert codes(back) & {COUNTRY, PAYEE} == set()


def test_home_country_is_never_new(script: Script) -> None:
    for k in range(12):
        transfer(script, T0 + timedelta(days=k), 10_000, "GH-1", "GH")
    d = transfer(script, T0 + timedelta(days=13), 40_000, "NG-1", "NG")  # u-1 lives in NG
    assert COUNTRY not in codes(d)


def test_a_flagged_transfer_does_not_make_its_country_familiar(script: Script) -> None:
    after = _usual(script)
    first = transfer(script, after, 60_000, "AE-1", "AE")
    again = transfer(script, after + timedelta(minutes=20), 60_000, "AE-2", "AE")
    assert first.action != "allow" and COUNTRY in codes(again)


def test_detector_ignores_logins_and_withdrawals(script: Script) -> None:
    script.history(12)
    _, end = script.tx(T0 + timedelta(days=13), amount=25_000)
    assert codes(end) & {COUNTRY, PAYEE} == set()
    assert NewCounterpartyTransfer().codes == (COUNTRY, PAYEE)
