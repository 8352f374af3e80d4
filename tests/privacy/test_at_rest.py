"""What reaches the database: pseudonyms instead of IPs and devices, ciphertext instead of
contact data — through the engine and through imports, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from vigil.config import PrivacyConfig, Settings
from vigil.domain import Card, Login, Transaction, User
from vigil.engine import Engine
from vigil.privacy import ContactCipher, PrivacyKeys
from vigil.privacy.rotation import rotate_contact_key
from vigil.recorder import Recorder
from vigil.storage import Store

T0 = datetime(2022, 3, 1, 9, tzinfo=UTC)
RAW_IPS = ("102.89.4.17", "2001:db8:85a3::8a2e:370:7334")
RAW_DEVICE = "fp-8c1e-raw-device"
CONTACT = {"email": "ada@example.com", "phone": "+234 803 555 0101", "address": "1 Marina, Lagos"}


def _key(byte: int) -> str:
    return base64.b64encode(bytes([byte]) * 32).decode()


def _events() -> list[Transaction | Login]:
    events: list[Transaction | Login] = []
    for i in range(6):
        events.append(
            Login(
                event_id=f"l{i}",
                user_id="u-1",
                timestamp=T0 + timedelta(hours=i),
                ip=RAW_IPS[i % 2],
                device_id=RAW_DEVICE,
            )
        )
        events.append(
            Transaction(
                event_id=f"t{i}",
                transaction_id=f"tx{i}",
                type="payment",
                channel="online",
                amount="25.00",
                user_id="u-1",
                card_id="c-1",
                timestamp=T0 + timedelta(hours=i, minutes=5),
                ip=RAW_IPS[i % 2],
                device_id=RAW_DEVICE,
            )
        )
    return events


def _all_text(store: Store) -> str:
    """Every value of every row of every table, as one string."""
    parts = []
    with store.engine.connect() as conn:
        for table in store.tables.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                parts.extend(repr(v) for v in row)
    return "\n".join(parts)


def _sqlite_bytes(store: Store) -> bytes:
    path = Path(store.engine.url.database)
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


def test_decided_and_imported_events_are_stored_with_pseudonyms(store: Store) -> None:
    engine = Engine(store.load_reference(), _memory(), Recorder(store), settings=Settings())
    decided = _events()
    for event in decided:
        engine.process(event)
    engine.recorder.flush()
    # An import stores events without deciding on them: the store pseudonymises those.
    imported = [e.model_copy(update={"event_id": "imp-" + e.event_id}) for e in decided[:4]]
    store.insert_logins([e for e in imported if isinstance(e, Login)])
    store.insert_transactions([e for e in imported if isinstance(e, Transaction)])

    p = store.privacy.pseudonyms
    with store.engine.connect() as conn:
        ips = set(conn.execute(select(store.tables.logins.c.ip)).scalars())
        ips |= set(conn.execute(select(store.tables.transactions.c.ip)).scalars())
        devices = set(conn.execute(select(store.tables.logins.c.device_id)).scalars())
    assert ips == {p.ip(ip) for ip in RAW_IPS}
    assert devices == {p.device(RAW_DEVICE)}
    assert store.counts()["logins"] == 8 and store.counts()["transactions"] == 8
    dump = _all_text(store)
    for raw in (*RAW_IPS, "102.89.4", RAW_DEVICE):
        assert raw not in dump
    if store.dialect == "sqlite":
        store.close()
        raw_bytes = _sqlite_bytes(store)
        assert b"102.89.4.17" not in raw_bytes and RAW_DEVICE.encode() not in raw_bytes
        assert p.ip(RAW_IPS[0]).encode() in raw_bytes


KNOWN_PAN, UNKNOWN_PAN = "4111 1111 1111 1111", "5500-0000-0000-0004"


def test_card_numbers_are_stored_as_tokens_and_found_by_number(store: Store) -> None:
    p = store.privacy.pseudonyms
    store.upsert_cards([Card(card_id=KNOWN_PAN, user_id="u-1")])
    engine = Engine(store.load_reference(), _memory(), Recorder(store), settings=Settings())
    decisions = []
    for i, pan in enumerate((KNOWN_PAN, UNKNOWN_PAN, KNOWN_PAN.replace(" ", ""))):
        tx = Transaction(
            event_id=f"c{i}",
            transaction_id=f"ctx{i}",
            type="withdrawal",
            amount="40.00",
            card_id=pan,
            terminal_id="ATM-1",
            timestamp=T0 + timedelta(hours=i),
        )
        decisions.append(engine.process(tx))
        store.insert_transactions([tx.model_copy(update={"event_id": f"imp-c{i}"})])
    engine.recorder.flush()
    # The card is one card however its number is written, known to the reference data.
    assert {d.card_id for d in decisions} == {p.card(KNOWN_PAN), p.card(UNKNOWN_PAN)}
    assert [any(r.code == "unknown_card" for r in d.reasons) for d in decisions] == [
        False,
        True,
        False,
    ]
    assert engine.profiles.get("card", p.card(KNOWN_PAN)).n == 2
    # The unknown card's decision is a risk event; an analyst finds it by the number too.
    assert [r["event_id"] for r in store.list_risk_events(card_id=UNKNOWN_PAN)] == ["c1"]
    stamp = T0 + timedelta(days=1)
    row = {"card_id": KNOWN_PAN, "score": 0.7, "model_version": "v1", "score_timestamp": stamp}
    store.upsert_profile_scores("card", [row])
    assert store.profile_scores("card", [KNOWN_PAN]) == {KNOWN_PAN: (0.7, "v1")}
    dump = _all_text(store)
    for pan in (KNOWN_PAN, UNKNOWN_PAN):
        assert pan not in dump and pan.replace(" ", "").replace("-", "") not in dump
    assert p.card(KNOWN_PAN) in dump


def test_contact_data_is_encrypted_at_rest_and_read_back(store: Store) -> None:
    store.upsert_users([User(user_id="u-1", **CONTACT), User(user_id="u-2")])
    with store.engine.connect() as conn:
        row = conn.execute(select(store.tables.users).where(text("user_id = 'u-1'"))).one()
    for name, value in CONTACT.items():
        stored = getattr(row, name)
        assert stored.startswith("enc:dev:") and value not in stored
    assert store.load_reference().users["u-1"] == User(user_id="u-1", **CONTACT)
    assert all(v not in _all_text(store) for v in CONTACT.values())
    if store.dialect == "sqlite":
        store.close()
        assert b"ada@example.com" not in _sqlite_bytes(store)


def test_key_rotation_re_encrypts_and_retires_the_old_key(store: Store) -> None:
    old = PrivacyKeys.from_config(
        PrivacyConfig(encryption_keys={"k1": _key(1)}, encryption_key_id="k1")
    )
    both = PrivacyKeys.from_config(
        PrivacyConfig(encryption_keys={"k1": _key(1), "k2": _key(2)}, encryption_key_id="k2")
    )
    only_new = PrivacyKeys.from_config(
        PrivacyConfig(encryption_keys={"k2": _key(2)}, encryption_key_id="k2")
    )
    url = store.engine.url.render_as_string(hide_password=False)
    Store(url, privacy=old).upsert_users(
        [User(user_id="u-1", **CONTACT), User(user_id="u-2", email="b@x.io")]
    )
    with pytest.raises(ValueError, match=r"u-1/(email|phone|address): encrypted with key 'k1'"):
        Store(url, privacy=only_new).load_reference()

    rotating = Store(url, privacy=both)
    assert rotate_contact_key(rotating) == {"users": 2, "fields": 4, "from_keys": {"k1": 4}}
    assert rotate_contact_key(rotating)["fields"] == 0  # nothing left under the old key
    with store.engine.connect() as conn:
        stored = [v for row in conn.execute(select(store.tables.users.c.email)) for v in row]
    assert all(ContactCipher.key_id(v) == "k2" for v in stored)
    assert Store(url, privacy=only_new).load_reference().users["u-1"].email == CONTACT["email"]


def test_plaintext_rows_from_before_encryption_are_read_and_then_encrypted(store: Store) -> None:
    with store.transaction() as conn:
        conn.execute(store.tables.users.insert(), {"user_id": "u-old", "email": "old@x.io"})
    assert store.load_reference().users["u-old"].email == "old@x.io"
    assert rotate_contact_key(store) == {"users": 1, "fields": 1, "from_keys": {"plaintext": 1}}
    assert "old@x.io" not in _all_text(store)
    assert store.load_reference().users["u-old"].email == "old@x.io"


def test_ciphertext_is_bound_to_its_user_and_field() -> None:
    cipher = ContactCipher({"k": _key(3)}, "k")
    sealed = cipher.encrypt("ada@example.com", "u-1/email")
    with pytest.raises(ValueError, match="u-2/email: ciphertext does not decrypt"):
        cipher.decrypt(sealed, "u-2/email")
    with pytest.raises(ValueError, match="u-1/phone"):
        cipher.decrypt(sealed, "u-1/phone")
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(ValueError, match="tampered or wrong key"):
        cipher.decrypt(tampered, "u-1/email")
    assert cipher.encrypt("x", "c") != cipher.encrypt("x", "c")  # fresh nonce every time


def test_bad_key_configuration_names_the_setting() -> None:
    with pytest.raises(ValueError, match=r"privacy.encryption_keys.k: 16 bytes; AES-256 needs 32"):
        ContactCipher({"k": base64.b64encode(bytes(16)).decode()}, "k")
    with pytest.raises(ValueError, match=r"privacy.encryption_keys.k: not valid base64"):
        ContactCipher({"k": "***"}, "k")
    with pytest.raises(ValueError, match=r"privacy.encryption_key_id: 'k9' is not a known key"):
        ContactCipher({"k": _key(1)}, "k9")
    with pytest.raises(ValueError, match=r"privacy\.hmac_key"):
        PrivacyKeys.from_config(PrivacyConfig(hmac_key=""))
    assert PrivacyKeys.from_config(PrivacyConfig()).uses_development_keys
    own = PrivacyConfig(hmac_key="prod", encryption_keys={"p": _key(7)}, encryption_key_id="p")
    assert not PrivacyKeys.from_config(own).uses_development_keys


def test_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_PRIVACY__HMAC_KEY", "from-env")
    monkeypatch.setenv("VIGIL_PRIVACY__ENCRYPTION_KEYS", f'{{"e1": "{_key(5)}"}}')
    monkeypatch.setenv("VIGIL_PRIVACY__ENCRYPTION_KEY_ID", "e1")
    monkeypatch.setenv("VIGIL_PRIVACY__RETENTION__LOGINS_DAYS", "30")
    settings = Settings()
    keys = PrivacyKeys.from_settings(settings)
    assert keys.cipher.current == "e1" and not keys.uses_development_keys
    assert settings.privacy.retention.logins_days == 30
    assert keys.pseudonyms.ip("1.2.3.4") == PrivacyKeys.from_config(
        PrivacyConfig(hmac_key="from-env")
    ).pseudonyms.ip("1.2.3.4")


def _memory():
    from vigil.profiles import MemoryProfileStore

    return MemoryProfileStore()
