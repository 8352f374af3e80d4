"""Login detectors through the real engine: unusual hour, rare country, failed-login burst,
credential stuffing. Each must fire on the attack and stay quiet on its legitimate lookalike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from tests.detect.conftest import T0, Script, codes
from vigil.config import LoginConfig
from vigil.detect.login import CredentialStuffing, FailedLoginBurst
from vigil.profiles.profile import LOGIN_FAILED
from vigil.profiles.update import ip_prefix

MORNING = T0.replace(hour=8)  # the user's habit: around 08:00 UTC
NIGHT = T0.replace(hour=3)


def _habit(script: Script, first, days: int = 25, *, device: str = "phone", **fields) -> None:
    """One successful login a day at the same hour (± 20 min), from the user's phone in Nigeria."""
    for d in range(days):
        at = first + timedelta(days=d, minutes=(d % 3 - 1) * 20)
        fields.setdefault("country", "NG")
        script.login(at, device_id=device, ip="102.89.1.7", **fields)


# -- unusual hour ------------------------------------------------------------------------
def test_login_at_an_hour_the_user_never_uses_fires_weakly(script: Script) -> None:
    _habit(script, MORNING)
    d = script.login(NIGHT + timedelta(days=30), country="NG", device_id="phone")
    assert codes(d) == {"unusual_login_hour"}
    assert d.reasons[0].score == pytest.approx(0.25)
    assert d.action == "allow"  # alone, a sleepless night is not fraud
    assert "03:00 UTC" in d.reasons[0].detail and "busiest hour 08:00" in d.reasons[0].detail


def test_unusual_hour_with_a_new_device_steps_up(script: Script) -> None:
    _habit(script, MORNING)
    d = script.login(NIGHT + timedelta(days=30), country="NG", device_id="laptop-x")
    assert codes(d) == {"unusual_login_hour", "new_device"}
    assert d.action == "step_up"


def test_night_shift_worker_at_three_in_the_morning_is_quiet(script: Script) -> None:
    _habit(script, NIGHT)
    d = script.login(NIGHT + timedelta(days=30, minutes=40), country="NG", device_id="phone")
    assert codes(d) == set() and d.action == "allow"


def test_an_hour_next_to_the_habit_is_quiet(script: Script) -> None:
    _habit(script, MORNING)
    d = script.login(MORNING + timedelta(days=30, hours=1), country="NG", device_id="phone")
    assert "unusual_login_hour" not in codes(d)


def test_thin_history_says_nothing_about_hours(script: Script) -> None:
    _habit(script, MORNING, days=LoginConfig().hour_min_history - 1)
    d = script.login(NIGHT + timedelta(days=30), country="NG", device_id="phone")
    assert "unusual_login_hour" not in codes(d)


def test_traveller_first_login_abroad_on_known_device_is_allowed(script: Script) -> None:
    # Abroad the clock is another clock: the hour is not judged, only the new country.
    _habit(script, MORNING)
    d = script.login(NIGHT + timedelta(days=30), country="US", device_id="phone")
    assert codes(d) == {"new_country"}
    assert d.action == "allow"


# -- rare country ------------------------------------------------------------------------
def test_return_to_a_country_seen_once_months_ago_fires(script: Script) -> None:
    script.login(MORNING, country="GB", device_id="phone")
    _habit(script, MORNING + timedelta(days=70), days=30)
    d = script.login(MORNING + timedelta(days=110), country="GB", device_id="phone")
    assert codes(d) == {"rare_login_country"}
    assert "last 110 days ago" in d.reasons[0].detail
    assert d.action == "allow"


def test_second_day_of_a_trip_is_not_rare(script: Script) -> None:
    _habit(script, MORNING, days=30)
    first = script.login(MORNING + timedelta(days=31), country="GB", device_id="phone")
    second = script.login(MORNING + timedelta(days=33), country="GB", device_id="phone")
    assert codes(first) == {"new_country"}
    assert codes(second) == set()


def test_home_country_is_never_rare(script: Script) -> None:
    # u-1 lives in NG; mostly abroad lately, home once long ago.
    script.login(MORNING, country="NG", device_id="phone")
    _habit(script, MORNING + timedelta(days=70), days=30, country="GH")
    d = script.login(MORNING + timedelta(days=110), country="NG", device_id="phone")
    assert "rare_login_country" not in codes(d)


# -- failed-login burst ------------------------------------------------------------------
def test_five_failures_in_minutes_then_the_success(script: Script) -> None:
    _habit(script, MORNING, days=10)
    at = MORNING + timedelta(days=12)
    failed = [
        script.login(at + timedelta(minutes=2 * k), device_id="phone", success=False)
        for k in range(5)
    ]
    assert [codes(d) for d in failed[:4]] == [set()] * 4
    assert codes(failed[4]) == {"failed_login_burst"}
    assert failed[4].action == "step_up"
    assert failed[4].reasons[0].detail == "5 failed login attempts in 1h"
    hit = script.login(at + timedelta(minutes=11), device_id="phone", country="NG")
    assert "failed_login_burst" in codes(hit)
    assert hit.action == "review"


def test_one_mistyped_password_is_quiet(script: Script) -> None:
    _habit(script, MORNING, days=10)
    at = MORNING + timedelta(days=12)
    typo = script.login(at, device_id="phone", success=False)
    ok = script.login(at + timedelta(seconds=30), device_id="phone", country="NG")
    assert codes(typo, ok) == set()
    assert typo.action == ok.action == "allow"


def test_failures_spread_over_a_day_are_not_a_burst(script: Script) -> None:
    _habit(script, MORNING, days=10)
    at = MORNING + timedelta(days=12)
    decisions = [script.login(at + timedelta(hours=2 * k), success=False) for k in range(6)]
    assert codes(*decisions) == set()


def test_burst_threshold_comes_from_configuration() -> None:
    assert FailedLoginBurst(LoginConfig(burst_min_failures=3)).config.burst_min_failures == 3
    with pytest.raises(ValidationError, match="burst_window"):
        LoginConfig(burst_window="2h")


# -- credential stuffing -----------------------------------------------------------------
def test_many_users_failing_from_one_network_is_stuffing(script: Script) -> None:
    at = MORNING + timedelta(days=3)
    decisions = [
        script.login(
            at + timedelta(seconds=40 * k),
            user_id=f"victim-{k}",
            ip=f"41.58.2.{10 + k}",  # a rotating host inside one /24
            device_id=f"bot-{k}",
            success=False,
        )
        for k in range(8)
    ]
    flagged = [i for i, d in enumerate(decisions) if "credential_stuffing" in codes(d)]
    assert flagged == [4, 5, 6, 7]  # from the fifth distinct user on
    assert decisions[7].action in ("review", "block")
    assert "8 users tried network" in next(
        r.detail for r in decisions[7].reasons if r.code == "credential_stuffing"
    )
    hit = script.login(
        at + timedelta(minutes=7), user_id="victim-8", ip="41.58.2.99", device_id="bot-8"
    )
    assert "credential_stuffing" in codes(hit) and hit.action != "allow"


def test_office_network_with_many_users_and_a_typo_is_quiet(script: Script) -> None:
    at = MORNING + timedelta(days=3)
    decisions = [
        script.login(
            at + timedelta(minutes=3 * k),
            user_id=f"staff-{k}",
            ip="105.112.40.1",  # everyone behind one NAT address
            device_id=f"desk-{k}",
            success=k != 4,
        )
        for k in range(12)
    ]
    assert codes(*decisions) == set()


def test_one_device_logging_into_many_users_is_stuffing(script: Script) -> None:
    at = MORNING + timedelta(days=3)
    decisions = [
        script.login(
            at + timedelta(minutes=5 * k), user_id=f"mule-{k}", device_id="one-phone", ip=None
        )
        for k in range(4)
    ]
    assert [("credential_stuffing" in codes(d)) for d in decisions] == [False] * 3 + [True]
    reason = next(r for r in decisions[3].reasons if r.code == "credential_stuffing")
    assert reason.entity == "device" and reason.score == pytest.approx(0.7)


def test_family_sharing_a_tablet_is_quiet(script: Script) -> None:
    decisions = []
    for day in range(10):
        for who in ("mum", "dad"):
            at = MORNING + timedelta(days=day, minutes=10 if who == "dad" else 0)
            decisions.append(script.login(at, user_id=who, device_id="tablet", ip="102.89.9.1"))
    assert "credential_stuffing" not in codes(*decisions)


def test_stuffing_users_are_counted_within_the_window_only() -> None:
    # Five users on one network, but spread over a day: never five within the hour.
    script = Script()
    decisions = [
        script.login(
            MORNING + timedelta(hours=2 * k), user_id=f"u-{k}", ip="41.58.3.4", success=False
        )
        for k in range(6)
    ]
    assert "credential_stuffing" not in codes(*decisions)
    assert CredentialStuffing().codes == ("credential_stuffing",)


def test_network_profile_remembers_users_who_failed(script: Script) -> None:
    # The user's own profile learns nothing from a failure; the network's remembers who tried.
    at = MORNING + timedelta(days=3)
    script.login(at, user_id="a", ip="41.58.7.1", device_id="pc-1", success=False)
    script.login(at + timedelta(minutes=1), user_id="b", ip="41.58.7.2", device_id="pc-1")
    engine = script.engine
    network = engine.profiles.get("ip", ip_prefix(engine.pseudonyms.ip("41.58.7.1")))
    device = engine.profiles.get("device", engine.pseudonyms.device("pc-1"))
    assert sorted(network.seen["user"].values) == sorted(device.seen["user"].values) == ["a", "b"]
    assert network.windows.count(0, LOGIN_FAILED) == 1
    assert engine.profiles.get("user", "a").seen == {}
