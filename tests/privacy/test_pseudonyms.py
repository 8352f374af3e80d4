"""Pseudonyms: keyed, deterministic, idempotent, and IP networks keep their locality."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from vigil.config import PrivacyConfig, Settings
from vigil.domain import Card, Login, Transaction
from vigil.engine import Engine
from vigil.privacy import Pseudonymiser
from vigil.profiles.update import ip_prefix

P = Pseudonymiser(b"test-key")


def test_same_key_same_pseudonym_other_key_other_pseudonym() -> None:
    assert P.ip("10.1.2.3") == Pseudonymiser(b"test-key").ip("10.1.2.3")
    assert P.ip("10.1.2.3") != Pseudonymiser(b"other-key").ip("10.1.2.3")
    assert P.device("d-1") == P.device("d-1") != Pseudonymiser(b"other-key").device("d-1")
    # Domain separation: one string as a device and as a subject gives two pseudonyms.
    assert P.device("x") != P.subject("x")


def test_applying_twice_changes_nothing() -> None:
    for value, fn in (("10.1.2.3", P.ip), ("d-1", P.device), ("u-1", P.subject)):
        once = fn(value)
        assert P.is_pseudonym(once) and not P.is_pseudonym(value)
        assert fn(once) == once


@pytest.mark.parametrize(
    ("a", "b", "same_network"),
    [
        ("102.89.4.17", "102.89.4.200", True),
        ("102.89.4.17", "102.89.5.17", False),
        ("2001:db8:85a3::1", "2001:db8:85a3:ffff::2", True),
        ("2001:db8:85a3::1", "2001:db8:85a4::1", False),
        # One address written two ways is one address.
        ("2001:db8::1", "2001:0db8:0000:0000:0000:0000:0000:0001", True),
    ],
)
def test_ip_networks_keep_their_locality(a: str, b: str, same_network: bool) -> None:
    pa, pb = P.ip(a), P.ip(b)
    assert (ip_prefix(pa) == ip_prefix(pb)) is same_network
    assert len(pa) <= 64 and a not in pa and ip_prefix(a) not in pa


def test_same_address_written_two_ways_is_one_pseudonym() -> None:
    assert P.ip("2001:db8::1") == P.ip("2001:0DB8:0:0:0:0:0:1")
    assert P.ip("10.0.0.1") != P.ip("10.0.0.2")


def test_a_string_that_is_no_ip_is_still_pseudonymised() -> None:
    p = P.ip("not-an-ip")
    assert P.is_pseudonym(p) and "not-an-ip" not in p
    assert ip_prefix(p) != ip_prefix(P.ip("not-an-ip-either"))


def test_event_and_row_pseudonymised_once() -> None:
    login = Login(
        event_id="l1",
        user_id="u-1",
        ip="102.89.4.17",
        device_id="dev-xyz",
        timestamp=datetime(2022, 1, 1, tzinfo=UTC),
    )
    out = P.event(login)
    assert out.ip == P.ip("102.89.4.17") and out.device_id == P.device("dev-xyz")
    assert P.event(out) is out
    row = {"ip": "1.2.3.4", "device_id": None}
    assert P.row(row) == {"ip": P.ip("1.2.3.4"), "device_id": None}


def test_engine_profiles_hold_pseudonyms_only() -> None:
    key = "engine-key"
    engine = Engine.in_memory(settings=Settings(privacy=PrivacyConfig(hmac_key=key)))
    p = Pseudonymiser(key.encode())
    for i, ip in enumerate(("102.89.4.17", "102.89.4.99")):
        engine.process(
            {
                "kind": "login",
                "event_id": f"l{i}",
                "user_id": "u-1",
                "timestamp": f"2022-01-01T0{i}:00:00Z",
                "ip": ip,
                "device_id": "fingerprint-abc",
            }
        )
    keys = {(kind, key) for kind, key, _ in engine.profiles.items()}
    assert ("device", p.device("fingerprint-abc")) in keys
    assert not any("fingerprint-abc" in key or "102.89" in key for _, key in keys)
    user = engine.profiles.get("user", "u-1")
    assert user.has_seen("ip_prefix", ip_prefix(p.ip("102.89.4.17")))
    assert user.seen_count("ip_prefix") == 1  # two hosts, one network
    blob = b"".join(profile.to_bytes() for _, _, profile in engine.profiles.items())
    assert b"102.89" not in blob and b"fingerprint-abc" not in blob


def test_card_numbers_and_cvc_have_no_field_and_are_refused() -> None:
    base = {
        "event_id": "e1",
        "transaction_id": "t1",
        "card_id": "c-1",
        "type": "withdrawal",
        "timestamp": datetime(2022, 1, 1, tzinfo=UTC),
        "amount": "10.00",
    }
    for field in ("cvc", "card_number", "pan"):
        with pytest.raises(ValidationError, match=field):
            Transaction(**base, **{field: "4111111111111111"})
        with pytest.raises(ValidationError, match=field):
            Card(card_id="c-1", **{field: "123"})
