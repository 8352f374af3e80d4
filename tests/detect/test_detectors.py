"""Each first detector on hand-built sequences: it must fire, and it must stay quiet."""

from __future__ import annotations

from datetime import timedelta

from tests.detect.conftest import LAGOS, T0, Script, codes, reference
from vigil.detect.velocity import poisson_tail
from vigil.domain import Terminal
from vigil.engine import Engine
from vigil.storage.reference import ReferenceData


def test_ordinary_month_raises_nothing(script: Script) -> None:
    decisions = [d for day in range(30) for d in script.tx(T0 + timedelta(days=day))]
    assert all(d.action == "allow" for d in decisions), [d.reasons for d in decisions if d.reasons]


# -- impossible travel --------------------------------------------------------------------
def test_lagos_then_abuja_twenty_minutes_later_is_impossible_travel(script: Script) -> None:
    after = script.history(5)
    script.tx(after, terminal="LAG-1")
    start, _ = script.tx(after + timedelta(minutes=20), terminal="ABJ-1")
    assert "impossible_travel" in codes(start)
    assert start.action in ("review", "block")
    assert "LAG-1 → ABJ-1" in start.reasons[0].detail


def _clone_then_return(script: Script, clones: int = 1):
    """Home in Lagos, then ``clones`` withdrawals in Abuja (~520 km) twenty minutes apart, then
    the genuine card back home forty minutes after the last: (clone starts, return start)."""
    after = script.history(5)
    script.tx(after, terminal="LAG-1")
    cloned = [
        script.tx(after + timedelta(minutes=20 * (i + 1)), terminal="ABJ-1")[0]
        for i in range(clones)
    ]
    back, _ = script.tx(after + timedelta(minutes=20 * clones + 40), terminal="LAG-2")
    return cloned, back


def test_the_cards_return_home_after_a_clone_far_away_is_not_flagged(script: Script) -> None:
    [clone], back = _clone_then_return(script)
    assert "impossible_travel" in codes(clone)
    assert "impossible_travel" not in codes(back) and back.action == "allow"
    [reason] = [r for r in back.reasons if r.code == "travel_return"]
    # the clone's transaction is the evidence (its case), and the reason weighs nothing
    assert reason.evidence == (clone.event_id.removesuffix("-s"),)
    assert reason.score == 0.0 and back.score == 0.0
    assert "ABJ-1" in reason.detail


def test_a_return_after_several_clones_names_them_all(script: Script) -> None:
    cloned, back = _clone_then_return(script, clones=3)
    # (five withdrawals at three ATMs in two hours: lost_stolen_card may speak, travel not)
    assert "impossible_travel" not in codes(back)
    [reason] = [r for r in back.reasons if r.code == "travel_return"]
    assert reason.evidence == tuple(c.event_id.removesuffix("-s") for c in cloned)


def test_a_clone_after_the_return_is_still_flagged(script: Script) -> None:
    _clone_then_return(script)
    # 30 min after the return (which came an hour after the first withdrawal at `after`)
    again, _ = script.tx(T0 + timedelta(days=5, hours=1, minutes=30), terminal="ABJ-1")
    assert "impossible_travel" in codes(again)


def test_a_clone_after_a_first_visit_near_home_is_told_by_the_cards_home() -> None:
    """The card's last place before the clone is a terminal it had never used: that it is
    nearer the card's home than the clone's place says which side is the card's own."""
    ref = reference()
    ref.terminals["LAG-3"] = Terminal(terminal_id="LAG-3", latitude=6.4474, longitude=3.4723)
    for home in (None, LAGOS):
        card = ref.cards["c-1"].model_copy(
            update={"latitude": home and home[0], "longitude": home and home[1]}
        )
        script = Script()
        bank = ReferenceData(terminals=ref.terminals, cards={"c-1": card}, users=ref.users)
        script.engine = Engine.in_memory(bank)
        after = script.history(5)
        script.tx(after, terminal="LAG-3")
        script.tx(after + timedelta(minutes=20), terminal="ABJ-1")
        back, _ = script.tx(after + timedelta(minutes=60), terminal="LAG-1")
        assert ("impossible_travel" in codes(back)) is (home is None)
        assert ("travel_return" in codes(back)) is (home is not None)


def test_a_reachable_trip_then_a_jump_home_is_still_flagged(script: Script) -> None:
    """Lagos, Abuja twenty hours later (a trip), Lagos forty minutes after: the trip was
    possible, so the card may really be in Abuja and the jump home is the odd one."""
    after = script.history(5)
    script.tx(after, terminal="LAG-1")
    script.tx(after + timedelta(hours=20), terminal="ABJ-1")
    back, _ = script.tx(after + timedelta(hours=20, minutes=40), terminal="LAG-2")
    assert "impossible_travel" in codes(back)
    assert "travel_return" not in codes(back)


def test_lagos_then_abuja_next_day_is_fine(script: Script) -> None:
    after = script.history(5)
    script.tx(after, terminal="LAG-1")
    start, end = script.tx(after + timedelta(hours=20), terminal="ABJ-1")
    assert "impossible_travel" not in codes(start, end)


def test_two_nearby_atms_minutes_apart_are_fine(script: Script) -> None:
    after = script.history(5)
    script.tx(after, terminal="LAG-1")
    start, _ = script.tx(after + timedelta(minutes=10), terminal="LAG-2")  # 17 km
    assert "impossible_travel" not in codes(start)


def test_start_far_away_while_another_is_open_is_overlap(script: Script) -> None:
    script.history(3)
    at = T0 + timedelta(days=3, hours=2)
    e = script.engine
    e.process(
        {
            "kind": "transaction",
            "event_id": "o1-s",
            "transaction_id": "o1",
            "card_id": "c-1",
            "terminal_id": "LAG-1",
            "type": "withdrawal",
            "phase": "start",
            "timestamp": at.isoformat(),
        }
    )
    d = e.process(
        {
            "kind": "transaction",
            "event_id": "o2-s",
            "transaction_id": "o2",
            "card_id": "c-1",
            "terminal_id": "ABJ-1",
            "type": "withdrawal",
            "phase": "start",
            "timestamp": (at + timedelta(minutes=2)).isoformat(),
        }
    )
    assert "overlapping_transactions" in codes(d), d.reasons


def test_login_far_away_an_hour_after_a_local_one(script: Script) -> None:
    script.login(T0, latitude=6.45, longitude=3.39, country="NG", device_id="d1")
    far = script.login(
        T0 + timedelta(hours=1), latitude=51.5, longitude=-0.12, country="GB", device_id="d1"
    )
    assert "impossible_travel" in codes(far)
    near = script.login(
        T0 + timedelta(days=2), latitude=9.07, longitude=7.4, country="NG", device_id="d1"
    )
    assert "impossible_travel" not in codes(near)


# -- new country / device ----------------------------------------------------------------
def _settled_logins(script: Script, n: int = 10) -> None:
    for i in range(n):
        script.login(T0 + timedelta(days=i), country="NG", device_id="phone", ip="102.89.1.7")


def test_new_country_and_new_device_together_step_up(script: Script) -> None:
    _settled_logins(script)
    d = script.login(T0 + timedelta(days=20), country="RU", device_id="laptop-x")
    assert codes(d) == {"new_country", "new_device"}
    assert d.action != "allow"


def test_known_device_abroad_or_new_phone_at_home_alone_are_allowed(script: Script) -> None:
    _settled_logins(script)
    travel = script.login(T0 + timedelta(days=20), country="GH", device_id="phone")
    new_phone = script.login(T0 + timedelta(days=40), country="NG", device_id="phone-2")
    assert codes(travel) == {"new_country"} and travel.action == "allow"
    assert codes(new_phone) == {"new_device"} and new_phone.action == "allow"


def test_unsettled_profile_weighs_novelty_less(script: Script) -> None:
    _settled_logins(script, 2)
    d = script.login(T0 + timedelta(days=20), country="RU", device_id="laptop-x")
    assert d.action == "allow" and d.score < 0.5


def test_failed_login_from_new_device_does_not_teach_the_profile(script: Script) -> None:
    _settled_logins(script)
    script.login(T0 + timedelta(days=20), country="NG", device_id="evil", success=False)
    d = script.login(T0 + timedelta(days=21), country="NG", device_id="evil")
    assert "new_device" in codes(d)


# -- amount ------------------------------------------------------------------------------
def test_amount_far_above_history_fires(script: Script) -> None:
    # An hour past the last day's withdrawal: the daily window reaches up to 15 minutes further
    # back than 24 h (vigil.profiles.windows).
    after = script.history(30) + timedelta(hours=1)
    _, end = script.tx(after, amount=95_000)  # under the extract limit, far above usual
    assert codes(end) == {"amount_anomaly"}
    assert end.action in ("review", "block")


def test_ordinary_and_moderately_high_amounts_pass(script: Script) -> None:
    after = script.history(30)
    _, end = script.tx(after, amount=35_000)
    assert "amount_anomaly" not in codes(end)


def test_no_amount_judgement_without_history_or_prior(script: Script) -> None:
    # Payments have no behaviour prior on the card and no history yet.
    _, end = script.tx(T0, amount=90_000, type="payment")
    assert "amount_anomaly" not in codes(end)


def test_prior_from_card_behaviour_judges_a_new_card(script: Script) -> None:
    _, end = script.tx(T0, amount=99_000)  # prior mean 20,000, sd 8,000: z ≈ 10
    assert "amount_anomaly" in codes(end)


# -- extract limit -----------------------------------------------------------------------
def test_single_withdrawal_over_extract_limit(script: Script) -> None:
    after = script.history(5)
    _, end = script.tx(after, amount=120_000)
    assert "extract_limit" in codes(end) and end.action == "block"


def test_daily_total_over_limit(script: Script) -> None:
    after = script.history(5)
    decisions = [
        script.tx(
            after + timedelta(hours=2 * i), amount=30_000, terminal="LAG-1" if i % 2 else "LAG-2"
        )[1]
        for i in range(4)
    ]
    assert "extract_limit_daily" not in codes(*decisions[:3])
    assert "extract_limit_daily" in codes(decisions[3])


def test_deposits_never_count_against_the_extract_limit(script: Script) -> None:
    _, end = script.tx(T0, amount=500_000, type="deposit")
    assert not codes(end) & {"extract_limit", "extract_limit_daily"}


# -- velocity ----------------------------------------------------------------------------
def test_burst_of_operations_in_an_hour_fires(script: Script) -> None:
    after = script.history(10)
    decisions = [
        script.tx(
            after + timedelta(minutes=5 * i),
            amount=500,
            type="balance_inquiry" if i % 2 else "withdrawal",
        )[0]
        for i in range(10)
    ]
    assert "velocity" not in codes(*decisions[:2])
    assert "velocity" in codes(*decisions[-3:])


def test_velocity_names_the_burst_it_rests_on(script: Script) -> None:
    after = script.history(10)  # transactions t0..t9, days before the burst
    for i in range(6):
        script.tx(after + timedelta(minutes=5 * i), amount=500)  # t10..t15
    start, _ = script.tx(after + timedelta(minutes=30), amount=500)  # t16
    velocity = next(r for r in start.reasons if r.code == "velocity")
    # The operations completed within the hour before this one, and nothing older.
    assert velocity.evidence == tuple(f"t{n}" for n in range(10, 16))


def test_a_few_operations_spread_over_the_day_are_fine(script: Script) -> None:
    after = script.history(10)
    decisions = [d for i in range(4) for d in script.tx(after + timedelta(hours=3 * i))]
    assert "velocity" not in codes(*decisions)


def test_poisson_tail_matches_direct_sum() -> None:
    import math

    for lam in (0.05, 0.5, 3.0):
        for k in (1, 3, 6, 12):
            direct = 1 - sum(math.exp(-lam) * lam**i / math.factorial(i) for i in range(k))
            assert math.isclose(poisson_tail(k, lam), direct, rel_tol=1e-6, abs_tol=1e-15)


# -- engine behaviour --------------------------------------------------------------------
def test_repeated_event_returns_first_decision_and_changes_no_profile(script: Script) -> None:
    script.history(3)
    e = script.engine
    event = {
        "kind": "transaction",
        "event_id": "dup",
        "transaction_id": "dup",
        "card_id": "c-1",
        "terminal_id": "LAG-1",
        "type": "withdrawal",
        "amount": 1000,
        "timestamp": (T0 + timedelta(days=4)).isoformat(),
    }
    first = e.process(event)
    before = e.profiles.get("card", "c-1").to_bytes()
    again = e.process(event)
    assert again == first
    assert e.profiles.get("card", "c-1").to_bytes() == before


def test_unknown_card_is_accepted_with_a_reason(script: Script) -> None:
    d = script.engine.process(
        {
            "kind": "transaction",
            "event_id": "x",
            "transaction_id": "x",
            "card_id": "c-404",
            "terminal_id": "LAG-1",
            "type": "withdrawal",
            "amount": 10,
            "timestamp": T0.isoformat(),
        }
    )
    assert codes(d) == {"unknown_card"}


def test_home_country_is_never_new(script: Script) -> None:
    for i in range(10):  # a user who first banked online while abroad
        script.login(T0 + timedelta(days=i), country="US", device_id="phone")
    d = script.login(T0 + timedelta(days=20), country="NG", device_id="phone")
    assert "new_country" not in codes(d)


def test_login_after_a_flight_is_not_impossible_travel(script: Script) -> None:
    script.login(T0, latitude=6.45, longitude=3.39, country="NG", device_id="d1")
    # Lagos to London (5,000 km) in 7 hours is an airliner, not an impossibility.
    d = script.login(
        T0 + timedelta(hours=7), latitude=51.5, longitude=-0.12, country="GB", device_id="d1"
    )
    assert "impossible_travel" not in codes(d)


def test_transfers_after_a_flagged_login_still_look_new(script: Script) -> None:
    _settled_logins(script)
    at = T0 + timedelta(days=20)
    login = script.login(at, country="RU", device_id="laptop-x", ip="91.1.2.3")
    assert login.action != "allow"
    transfer = script.engine.process(
        {
            "kind": "transaction",
            "event_id": "ato-1",
            "transaction_id": "ato-1",
            "user_id": "u-1",
            "account_id": "a-1",
            "type": "transfer",
            "channel": "online",
            "amount": 14000,
            "counterparty_account": "RU-999",
            "counterparty_country": "RU",
            "country": "RU",
            "device_id": "laptop-x",
            "ip": "91.1.2.3",
            "timestamp": (at + timedelta(minutes=5)).isoformat(),
        }
    )
    assert {"new_country", "new_device"} <= codes(transfer)
    assert transfer.action != "allow"


def test_travel_is_timed_from_when_the_user_was_last_located(script: Script) -> None:
    script.login(T0, latitude=6.45, longitude=3.39, country="NG", device_id="d1")
    # Three days later an online transfer without geolocation says nothing about where they are.
    script.engine.process(
        {
            "kind": "transaction",
            "event_id": "t-online",
            "transaction_id": "t-online",
            "user_id": "u-1",
            "account_id": "a-1",
            "type": "transfer",
            "channel": "online",
            "amount": 1000,
            "timestamp": (T0 + timedelta(days=3)).isoformat(),
        }
    )
    d = script.login(
        T0 + timedelta(days=3, hours=1),
        latitude=51.5,
        longitude=-0.12,
        country="GB",
        device_id="d1",
    )
    assert "impossible_travel" not in codes(d)


def test_blocked_withdrawal_does_not_use_up_the_daily_limit(script: Script) -> None:
    after = script.history(5)
    _, blocked = script.tx(after, amount=150_000)
    assert blocked.action == "block"
    _, later = script.tx(after + timedelta(hours=3), amount=30_000)
    assert "extract_limit_daily" not in codes(later)
