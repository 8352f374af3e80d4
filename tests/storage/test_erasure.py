"""Erasure (forget one person) and retention (purge old events), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import table_dump
from vigil.domain import Card, Feedback, User
from vigil.privacy.erasure import forget
from vigil.privacy.retention import RetentionPolicy, purge
from vigil.profiles import MemoryProfileStore, Profile
from vigil.storage import Store
from vigil.storage.audit import verify

from .conftest import T0

GONE = "u-gone"
STAYS = "u-stays"
TAG = {GONE: "A", STAYS: "B"}


def _verify(store: Store):
    """The whole audit trail: the risk-event chain and every decision batch's seal."""
    return verify(store)


def _bank(store: Store, make) -> MemoryProfileStore:
    store.upsert_users(
        [
            User(user_id=GONE, email="gone@example.com", phone="+234 1", address="Somewhere"),
            User(user_id=STAYS, email="stays@example.com"),
        ]
    )
    store.upsert_cards(
        [Card(card_id="c-gone", user_id=GONE), Card(card_id="c-stays", user_id=STAYS)]
    )
    events, decisions = [], []
    for i in range(4):
        for user, card in ((GONE, "c-gone"), (STAYS, "c-stays")):
            tag = TAG[user]  # event ids are opaque: they must not name the person
            tx = make.tx(
                f"t-{tag}-{i}",
                minutes=i,
                user_id=user,
                card_id=card,
                account_id=f"a-{user}",
                device_id=f"dev-{user}",
            )
            login = make.login(
                f"l-{tag}-{i}", minutes=i, user_id=user, ip=f"10.0.{i}.1", device_id=f"dev-{user}"
            )
            events += [tx, login]
            flagged = i % 2 == 0
            decisions.append(
                make.decision(tx, 0.95, "block", "amount_anomaly")
                if flagged
                else make.decision(tx, 0.0, "allow")
            )
            decisions.append(make.decision(login, 0.0, "allow"))
    store.record(events, decisions)
    store.insert_feedback(
        [
            Feedback(
                event_id="f1",
                target_event_id="t-A-0",
                label="fraud",
                timestamp=T0 + timedelta(days=1),
            ),
            Feedback(
                event_id="f2",
                target_event_id="t-B-0",
                label="legitimate",
                timestamp=T0 + timedelta(days=1),
            ),
        ]
    )
    p = store.privacy.pseudonyms
    live = MemoryProfileStore()
    network = Profile()
    network.record_login(
        0.0,
        True,
        latitude=None,
        longitude=None,
        place=None,
        attributes=(("user", GONE), ("user", STAYS)),
    )
    kinds = [
        ("user", GONE),
        ("card", "c-gone"),
        ("account", f"a-{GONE}"),
        ("device", p.device(f"dev-{GONE}")),
    ]
    kinds += [("user", STAYS), ("card", "c-stays")]
    for kind, key in kinds:
        live.put(kind, key, Profile())
    elsewhere = Profile()  # a network only the other user logged in from: untouched
    elsewhere.record_login(
        0.0, True, latitude=None, longitude=None, place=None, attributes=(("user", STAYS),)
    )
    live.put("ip", "~0123456789abcdef", elsewhere)
    from vigil.profiles.update import ip_prefix

    live.put("ip", ip_prefix(p.ip("10.0.0.1")), network)
    # The ATM both used: its recent-event ring and open starts name their transactions.
    atm = Profile()
    for i in range(4):
        for tag in ("A", "B"):
            atm.record_transaction(
                i * 60.0,
                i * 60.0 + 30,
                0,
                10_000,
                place="B1-1",
                latitude=None,
                longitude=None,
                transaction_id=f"t-t-{tag}-{i}",
            )
    atm.record_start("t-t-A-3", 600.0, "B1-1", None, None)
    atm.record_start("t-t-B-3", 600.0, "B1-1", None, None)
    live.put("terminal", "B1-1", atm)
    live.snapshot(store)
    return live


def _terminal_transactions(profile: Profile) -> set[str]:
    return {e.transaction_id for e in profile.recent.events} | set(profile.open)


def test_forget_erases_the_person_and_keeps_a_verifiable_pseudonymous_audit_trail(
    store: Store, make
) -> None:
    live = _bank(store, make)
    elsewhere_bytes = live.get("ip", "~0123456789abcdef").to_bytes()
    before = store.counts()
    assert _verify(store).ok and before["risk_events"] == 4

    report = forget(store, GONE, profiles=live)

    p = store.privacy.pseudonyms
    assert report.pseudonym == p.subject(GONE)
    assert report.deleted == {
        "feedback": 1,
        "transactions": 4,
        "logins": 4,
        "decisions": 6,  # 8 minus the 2 a risk event rests on
        "cards": 1,
        "users": 1,
        "profile_snapshots": 4,  # user, card, account, device
        "profiles": 4,
        "claims": 0,  # in-process profiles: the recorder alone answers repeats
        "rule_shadow_hits": 0,
        "standin_inferences": 0,
        "scores": 0,
        "aggregates": 0,
    }
    assert report.pseudonymised == {
        "case_journal": 0,
        "decisions": 2,
        "risk_events": 2,
        "profile_snapshots": 2,  # the shared network and the ATM
        "profiles": 2,
    }
    dump = table_dump(store)
    for raw in (GONE, "c-gone", f"a-{GONE}", "gone@example.com", p.device(f"dev-{GONE}")):
        assert raw not in dump, raw
    after = store.counts()
    assert after["risk_events"] == 4 and after["transactions"] == 4 and after["logins"] == 4
    assert after["users"] == 1 and store.load_reference().users[STAYS].email == "stays@example.com"
    # The audit trail: the person's risk events remain, under their pseudonyms, and verify.
    trail = store.list_risk_events(user_id=p.subject(GONE))
    assert len(trail) == 2 and {r["card_id"] for r in trail} == {p.subject("c-gone")}
    assert len(store.list_risk_events(user_id=STAYS)) == 2
    assert _verify(store).ok
    kept = store.get_decision("t-A-0")
    assert kept.user_id == p.subject(GONE) and [r.detail for r in kept.reasons] == [""]
    assert store.get_decision("t-A-1") is None and store.get_decision("t-B-1") is not None
    # Live profiles: theirs gone, the shared network no longer lists them.
    assert {k for k, key, _ in live.items() if key in (GONE, "c-gone")} == set()
    assert ("user", STAYS) in {(k, key) for k, key, _ in live.items()}
    from vigil.profiles.update import ip_prefix

    network = live.get("ip", ip_prefix(p.ip("10.0.0.1")))
    assert not network.has_seen("user", GONE) and network.has_seen("user", STAYS)
    assert live.get("ip", "~0123456789abcdef").to_bytes() == elsewhere_bytes
    # The ATM forgets the person's transactions, live and in the snapshot, and keeps the rest.
    others = {f"t-t-B-{i}" for i in range(4)}
    assert _terminal_transactions(live.get("terminal", "B1-1")) == others
    restored = MemoryProfileStore()
    restored.restore(store)
    assert _terminal_transactions(restored.get("terminal", "B1-1")) == others
    # Running it again finds nothing more to do.
    again = forget(store, GONE, profiles=live)
    assert sum(again.deleted.values()) == 0 == sum(again.pseudonymised.values())


def test_forget_rolls_back_everything_when_a_step_fails(store: Store, make) -> None:
    live = _bank(store, make)
    before = store.counts()

    class Broken(MemoryProfileStore):
        def delete(self, keys):  # the live store is unreachable
            raise ConnectionError("profiles: store unreachable")

    with pytest.raises(ConnectionError):
        forget(store, GONE, profiles=Broken())
    assert store.counts() == before
    assert store.load_reference().users[GONE].email == "gone@example.com"
    assert forget(store, GONE, profiles=live).deleted["transactions"] == 4


def test_forget_needs_a_user() -> None:
    with pytest.raises(ValueError, match="user_id"):
        forget(Store("sqlite://"), " ")


def test_purge_applies_the_retention_policy(store: Store, make) -> None:
    now = T0 + timedelta(days=400)
    events, decisions = [], []
    for age in (10, 100, 200, 380):
        at = now - timedelta(days=age)
        tx, login = make.tx(f"t{age}", at=at), make.login(f"l{age}", at=at)
        events += [tx, login]
        decisions += [
            make.decision(tx, 0.95, "block", "velocity"),
            make.decision(login, 0.0, "allow"),
        ]
    store.record(events, decisions)
    store.insert_feedback(
        [
            Feedback(
                event_id=f"f{age}",
                target_event_id=f"t{age}",
                label="fraud",
                timestamp=now - timedelta(days=age),
            )
            for age in (10, 380)
        ]
    )
    before = table_dump(store)
    dry = purge(store, RetentionPolicy(), now, dry_run=True)
    assert table_dump(store) == before  # a dry run changes nothing
    counts = purge(store, RetentionPolicy(), now)
    assert counts == dry
    assert counts == {
        "logins": 3,
        "transactions": 1,
        "feedback": 1,
        "decisions": 3,
        "risk_events": 0,
    }
    with store.engine.connect() as conn:
        logins = set(conn.execute(select(store.tables.logins.c.event_id)).scalars())
        txs = set(conn.execute(select(store.tables.transactions.c.event_id)).scalars())
    assert logins == {"l10"} and txs == {"t10", "t100", "t200"}
    # Risk events are kept, and the decisions they rest on with them; the chain still holds.
    assert store.counts()["risk_events"] == 4 and store.get_decision("t380") is not None
    assert store.get_decision("l100") is None and store.get_decision("l10") is not None
    assert _verify(store).ok
    assert purge(store, RetentionPolicy(), now) == dict.fromkeys(counts, 0)

    short = RetentionPolicy(logins_days=None, transactions_days=None, risk_events_days=150)
    assert purge(store, short, now)["risk_events"] == 2
    report = _verify(store)
    assert report.ok and report.checked == 2


def test_retention_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"privacy\.retention\.logins_days: 0"):
        RetentionPolicy(logins_days=0)
    with pytest.raises(ValueError, match="now: naive"):
        purge(Store("sqlite://"), RetentionPolicy(), T0.replace(tzinfo=None))


CARD_NUMBER = "4111 1111 1111 1111"


def test_forget_leaves_no_card_token_shadow_hit_score_or_note_of_the_person(
    store: Store, make
) -> None:
    """Issue 18: card tokens stayed in decision rows and a rule_shadow_hits row stayed."""
    from vigil.domain import Reason
    from vigil.storage import cases

    p = store.privacy.pseudonyms
    token = p.card(CARD_NUMBER)  # the card number arrives as the card id: stored as its token
    tx = make.tx("t-1", user_id=GONE, card_id=CARD_NUMBER)
    login = make.login("l-1", user_id=GONE, ip="10.0.0.1")
    night = Reason(code="rule:night", score=0.4, detail="night withdrawal of 90,000")
    flagged = make.decision(tx, 0.95, "block", "amount_anomaly").model_copy(
        update={"shadow": [night]}
    )
    store.record([tx, login], [flagged, make.decision(login, 0.0, "allow")])
    [risk_event] = store.list_risk_events()
    cases.apply(store, risk_event["risk_event_id"], cases.Change(note="called Ada Obi"),
                cases.Actor("k", "ann"))  # fmt: skip
    assert token in table_dump(store) and store.rule_shadow_hits()

    report = forget(store, GONE)

    dump = table_dump(store)
    assert GONE not in dump and "Ada Obi" not in dump
    # Neither the risk event nor the decision kept beside it carries the token any longer:
    # both hold its erased pseudonym, which the chain commits to.
    assert token not in dump
    [kept] = store.list_risk_events()
    assert kept["card_id"] == store.get_decision("t-1").card_id == p.erased(token)
    assert kept["user_id"] == p.erased(GONE)
    assert store.rule_shadow_hits() == []
    assert report.deleted["rule_shadow_hits"] == 1
    assert report.pseudonymised["case_journal"] == 1
    assert _verify(store).ok


def test_every_table_is_covered_by_erasure(store: Store) -> None:
    """A new table must say what erasure does with it, or this fails."""
    from sqlalchemy import inspect

    from vigil.privacy.erasure import COVERAGE

    schema = store.tables.metadata.schema
    in_database = set(inspect(store.engine).get_table_names(schema=schema))
    assert set(store.tables.metadata.tables) | in_database == set(COVERAGE)
    assert all(COVERAGE.values())


def test_forgetting_someone_unknown_says_so_and_fails(tmp_path) -> None:
    from typer.testing import CliRunner

    from vigil.cli import app

    database = f"sqlite:///{tmp_path / 'vigil.db'}"
    result = CliRunner().invoke(app, ["forget", "nobody-here", "--database", database])
    assert result.exit_code == 2, result.output
    assert "nobody-here" in result.output and "no data" in result.output
