"""A dormant account suddenly active: fires on the customer's return, quiet otherwise."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.detect.conftest import T0, Script, codes
from vigil.config import DormancyConfig
from vigil.detect.dormancy import DormantReactivation

CODE = "dormant_reactivated"


def _active_month(script: Script) -> None:
    for d in range(20):
        script.login(T0 + timedelta(days=d), country="NG", device_id="phone", ip="102.89.1.7")


def test_login_after_four_months_of_silence_fires_below_step_up(script: Script) -> None:
    _active_month(script)
    d = script.login(T0 + timedelta(days=19 + 120), country="NG", device_id="phone")
    assert codes(d) == {CODE}
    assert d.action == "allow"
    assert d.reasons[0].detail.startswith("first activity of the customer in 120 days")


def test_dormant_account_on_a_new_device_steps_up(script: Script) -> None:
    _active_month(script)
    d = script.login(T0 + timedelta(days=200), country="NG", device_id="someone-elses")
    assert codes(d) == {CODE, "new_device"}
    assert d.action == "step_up"


def test_score_grows_with_the_silence(script: Script) -> None:
    cfg = DormancyConfig()
    _active_month(script)
    d = script.login(T0 + timedelta(days=19 + 400), country="NG", device_id="phone")
    assert d.reasons[0].score == pytest.approx(cfg.high_score)
    other = Script()
    for k in range(20):
        other.login(T0 + timedelta(days=k), country="NG", device_id="phone")
    early = other.login(T0 + timedelta(days=19 + 91), country="NG", device_id="phone")
    assert cfg.low_score <= early.reasons[0].score < cfg.low_score + 0.01


def test_two_months_away_is_not_dormant(script: Script) -> None:
    _active_month(script)
    d = script.login(T0 + timedelta(days=19 + 60), country="NG", device_id="phone")
    assert codes(d) == set()


def test_a_customer_with_little_history_is_never_dormant(script: Script) -> None:
    for d in range(DormancyConfig().min_history - 1):
        script.login(T0 + timedelta(days=d), country="NG", device_id="phone")
    d = script.login(T0 + timedelta(days=300), country="NG", device_id="phone")
    assert CODE not in codes(d)


def test_money_arriving_or_a_failed_login_does_not_wake_it(script: Script) -> None:
    _active_month(script)
    later = T0 + timedelta(days=150)
    salary = script.engine.process(
        {
            "kind": "transaction",
            "event_id": "in-1",
            "transaction_id": "in-1",
            "account_id": "a-1",
            "user_id": "u-1",
            "type": "transfer",
            "channel": "online",
            "direction": "credit",
            "amount": 50_000,
            "counterparty_account": "NG-employer",
            "timestamp": later.isoformat(),
        }
    )
    failed = script.login(T0 + timedelta(days=151), device_id="phone", success=False)
    assert CODE not in codes(salary, failed)
    # Neither kept the account awake: the customer's own return is still a reactivation.
    back = script.login(T0 + timedelta(days=152), country="NG", device_id="phone")
    assert codes(back) == {CODE}
    assert "over 90 days (since then only money in or failed logins)" in back.reasons[0].detail


def test_withdrawal_after_dormancy_flags_the_start_only(script: Script) -> None:
    script.history(10)
    start, end = script.tx(T0 + timedelta(days=9 + 100), amount=20_000)
    assert CODE in codes(start)
    assert CODE not in codes(end)
    assert DormantReactivation().codes == (CODE,)
