"""The Redis profile store against the real Redis (VIGIL_TEST_REDIS_URL, default
redis://127.0.0.1:6379/0), each test under a key prefix of its own, removed afterwards.
Unreachable Redis skips, except under CI=true where it fails."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis
from tests.conftest import REDIS_URL

from vigil.config import ProfilesConfig, Settings
from vigil.engine import Engine, EventInProgress
from vigil.profiles import MemoryProfileStore, Profile
from vigil.profiles.redis_store import RedisProfileStore
from vigil.profiles.store import open_profile_store
from vigil.recorder import Recorder
from vigil.storage.reference import ReferenceData

T0 = datetime(2022, 1, 3, 8, tzinfo=UTC)


@pytest.fixture
def client(redis_client: redis.Redis) -> redis.Redis:
    return redis_client


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    name = f"vigil-test:{uuid.uuid4().hex[:12]}:"
    yield name
    RedisProfileStore(client, prefix=name).clear()


def _store(client: redis.Redis, prefix: str, **config) -> RedisProfileStore:
    return RedisProfileStore(client, ProfilesConfig(**config), prefix=prefix)


def _profile(n: int) -> Profile:
    p = Profile()
    for i in range(n):
        p.record_transaction(
            i * 60.0, i * 60.0 + 30, 0, 1000 * (i + 1), place=None, latitude=None, longitude=None
        )
    return p


def test_profiles_round_trip_in_one_read_and_one_write(client, prefix) -> None:
    store = _store(client, prefix)
    keys = [("card", "c-1"), ("user", "u-1"), ("device", "~abc")]
    read = store.read(keys)
    assert read.versions == (0, 0, 0) and all(p.n == 0 for p in read.profiles)
    written = [_profile(1), _profile(2), _profile(3)]
    assert store.write(read, written)
    again = store.read(keys)
    assert again.versions == (1, 1, 1)
    assert [p.to_bytes() for p in again.profiles] == [p.to_bytes() for p in written]
    assert len(store) == 3 and sorted(k for k, _, _ in store.items()) == ["card", "device", "user"]
    assert store.get("user", "u-1").n == 2


def test_a_stale_write_is_refused_and_writes_nothing(client, prefix) -> None:
    a, b = _store(client, prefix), _store(client, prefix)
    keys = [("card", "c-1"), ("user", "u-1")]
    seen_by_a = a.read(keys)
    seen_by_b = b.read(keys)
    assert b.write(seen_by_b, [_profile(1), _profile(1)])
    assert not a.write(seen_by_a, [_profile(5), _profile(5)])  # b got there first
    assert [p.n for p in a.read(keys).profiles] == [1, 1]
    # Only one key moved: still nothing of the stale write lands.
    c = _store(client, prefix)
    fresh = c.read(keys)
    b.put("user", "u-1", _profile(2))
    assert not c.write(fresh, [_profile(9), _profile(9)])
    assert [p.n for p in c.read(keys).profiles] == [1, 2]


def test_idle_profiles_expire(client, prefix) -> None:
    store = _store(client, prefix, idle_ttl_seconds=0.3)
    assert store.write(store.read([("card", "c-1")]), [_profile(1)])
    ttl = client.pttl(f"{prefix}card:c-1".encode())
    assert 0 < ttl <= 300
    time.sleep(0.5)
    assert store.read([("card", "c-1")]).versions == (0,) and len(store) == 0


def test_delete_removes_profiles(client, prefix) -> None:
    store = _store(client, prefix)
    store.write(store.read([("card", "c-1"), ("user", "u-1")]), [_profile(1), _profile(1)])
    assert store.delete([("card", "c-1"), ("card", "nope")]) == 1
    assert [k for k, _, _ in store.items()] == ["user"]


def _events(n: int) -> list[dict]:
    events = []
    for i in range(n):
        at = T0 + timedelta(minutes=17 * i)
        if i % 3 == 0:
            events.append(
                {
                    "kind": "login",
                    "event_id": f"l{i}",
                    "user_id": f"u-{i % 2}",
                    "timestamp": at.isoformat(),
                    "ip": f"102.89.{i % 4}.{i}",
                    "device_id": f"dev-{i % 2}",
                    "country": "NG",
                }
            )
        else:
            events.append(
                {
                    "kind": "transaction",
                    "event_id": f"t{i}",
                    "transaction_id": f"tx{i}",
                    "type": "withdrawal",
                    "amount": f"{(i % 7 + 1) * 1000}.00",
                    "card_id": f"c-{i % 2}",
                    "user_id": f"u-{i % 2}",
                    "account_id": f"a-{i % 2}",
                    "terminal_id": f"ATM-{i % 3}",
                    "timestamp": at.isoformat(),
                }
            )
    return events


def _engine(profiles) -> Engine:
    return Engine(ReferenceData(), profiles, Recorder(None), settings=Settings())


def test_two_engines_sharing_redis_build_the_profiles_one_engine_builds(client, prefix) -> None:
    events = _events(60)
    alone = _engine(MemoryProfileStore())
    one = [alone.process(e) for e in events]
    shared = [_engine(_store(client, prefix)), _engine(_store(client, prefix))]
    two = [shared[i % 2].process(e) for i, e in enumerate(events)]
    assert [(d.action, d.score, d.reasons) for d in one] == [
        (d.action, d.score, d.reasons) for d in two
    ]
    expected = {(k, key): p.to_bytes() for k, key, p in alone.profiles.items()}
    got = {(k, key): p.to_bytes() for k, key, p in _store(client, prefix).items()}
    assert got == expected and len(got) >= 10


def test_concurrent_engines_lose_no_update(client, prefix) -> None:
    n, workers = 40, 4
    errors: list[BaseException] = []

    def run(w: int) -> None:
        engine = _engine(_store(client, prefix))
        try:
            for i in range(n):
                engine.process(
                    {
                        "kind": "transaction",
                        "event_id": f"w{w}-{i}",
                        "transaction_id": f"w{w}-{i}",
                        "type": "balance_inquiry",
                        "card_id": "c-hot",  # every worker updates the same card
                        "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
                    }
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = _store(client, prefix)
    card = store.read([("card", "c-hot")])
    assert card.profiles[0].n == n * workers
    assert card.versions[0] == n * workers  # one successful write per event


def test_concurrent_transfers_keep_the_shared_peer_group_exact(client, prefix) -> None:
    # Every worker's account reports to one peer group profile (holder unknown: "*"), the
    # hottest key there is; a compare-and-set clash must re-apply the contribution change.
    n, workers = 30, 4
    errors: list[BaseException] = []

    def run(w: int) -> None:
        engine = _engine(_store(client, prefix))
        try:
            for i in range(n):
                engine.process(
                    {
                        "kind": "transaction",
                        "event_id": f"w{w}-{i}",
                        "transaction_id": f"w{w}-{i}",
                        "type": "transfer",
                        "channel": "online",
                        "amount": f"{(w + 1) * 100 + i}.00",
                        "account_id": f"a-{w}",
                        "counterparty_country": "GB",
                        "timestamp": (T0 + timedelta(seconds=i)).isoformat(),
                    }
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = _store(client, prefix)
    peers = store.get("peer", "*").peers.flow("GB", "debit")
    assert peers.members == workers and peers.count.quantile(0.5) == pytest.approx(n, rel=0.01)
    for w in range(workers):
        flow = store.get("account", f"a-{w}").genome.flow("GB", "debit")
        assert flow.n == n and flow.volume == sum((w + 1) * 100 + i for i in range(n))


def test_settings_choose_the_store(client, prefix, monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_PROFILES_URL", REDIS_URL)
    store = open_profile_store(Settings())
    assert isinstance(store, RedisProfileStore) and store.ttl_ms == 100 * 86400 * 1000
    monkeypatch.delenv("VIGIL_PROFILES_URL")
    assert isinstance(open_profile_store(Settings()), MemoryProfileStore)
    with pytest.raises(ValueError, match="profiles_url: 'mongodb://x'"):
        open_profile_store(Settings(profiles_url="mongodb://x"))


def test_forget_removes_the_persons_profiles_from_redis(client, prefix, tmp_path) -> None:
    from vigil.privacy.erasure import forget
    from vigil.storage import Store

    db = Store(f"sqlite:///{tmp_path / 'v.db'}")
    db.init_schema()
    profiles = _store(client, prefix)
    engine = Engine(ReferenceData(), profiles, Recorder(db), settings=Settings())
    for event in _events(12):
        engine.process(event)
    engine.recorder.flush()
    before = {(k, key) for k, key, _ in profiles.items()}
    report = forget(db, "u-0", profiles=profiles)
    after = {(k, key) for k, key, _ in profiles.items()}
    p = db.privacy.pseudonyms
    gone = {("user", "u-0"), ("card", "c-0"), ("account", "a-0"), ("device", p.device("dev-0"))}
    assert gone <= before and not gone & after and report.deleted["profiles"] == 4
    assert ("user", "u-1") in after
    assert all(not prof.has_seen("user", "u-0") for k, _, prof in profiles.items() if k == "ip")
    # The decisions the store kept for repeats reaching another process go too (u-0's: 6).
    assert report.deleted["claims"] == 6
    assert profiles.claim("t2") is None and profiles.claim("t1") is not None


def test_a_repeat_reaching_another_engine_gets_the_first_decision_applied_once(
    client, prefix
) -> None:
    first, second = _engine(_store(client, prefix)), _engine(_store(client, prefix))
    event = _events(2)[1]
    decided = first.process(event)
    again = second.process({**event, "amount": "999999.00"})  # same id: not decided afresh
    assert again == decided
    assert _store(client, prefix).get("card", event["card_id"]).n == 1


def _commands(store: RedisProfileStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The commands ``store`` sends to Redis from now on, as they go."""
    sent: list[str] = []
    real = store.client.execute_command

    def counted(*args, **options):
        sent.append(str(args[0]))
        return real(*args, **options)

    monkeypatch.setattr(store.client, "execute_command", counted)
    return sent


def test_deciding_an_event_takes_two_round_trips(client, prefix, monkeypatch) -> None:
    store = _store(client, prefix)
    engine = _engine(store)
    first, event = _events(3)[1:]
    engine.process(first)  # Redis has the scripts from now on
    sent = _commands(store, monkeypatch)
    decided = engine.process(event)
    assert sent == ["EVALSHA", "EVALSHA"]  # claim + read, then write + settle
    # and the claim holds the decision, for a repeat at another process
    assert store.claim(event["event_id"]) == decided.model_dump_json().encode()


def test_a_batch_takes_one_round_trip_an_event(client, prefix, monkeypatch) -> None:
    store = _store(client, prefix)
    engine = _engine(store)
    first, *events = _events(8)
    engine.process(first)  # Redis has the scripts from now on
    sent = _commands(store, monkeypatch)
    with store.batched():
        decided = [engine.process(e) for e in events]
        assert sent == ["EVALSHA"] * len(events)  # each event's read carries the last write
    assert sent == ["EVALSHA"] * (len(events) + 1)  # the last write, sent on leaving
    monkeypatch.undo()
    alone = _engine(MemoryProfileStore())
    assert [(d.action, d.score, d.reasons) for d in decided] == [
        (d.action, d.score, d.reasons) for d in (alone.process(e) for e in [first, *events])
    ][1:]
    expected = {(k, key): p.to_bytes() for k, key, p in alone.profiles.items()}
    assert {(k, key): p.to_bytes() for k, key, p in _store(client, prefix).items()} == expected
    for event, decision in zip(events, decided, strict=True):  # each claim settled
        assert store.claim(event["event_id"]) == decision.model_dump_json().encode()


def test_a_held_write_that_loses_a_race_is_applied_again_before_the_next_read(
    client, prefix
) -> None:
    batched, other = _engine(_store(client, prefix)), _engine(_store(client, prefix))
    events = [e for e in _events(12) if e.get("card_id") == "c-1"][:3]
    with batched.profiles.batched():
        batched.process(events[0])  # its write is held back...
        other.process(events[1])  # ...so another process writes the card first
        seen = batched.profiles.read([("card", "c-1")]).profiles[0].n
    assert seen == 2  # the held write was applied again, on top of the other's, before
    batched.process(events[2])
    card = _store(client, prefix).read([("card", "c-1")])
    assert card.profiles[0].n == 3 and card.versions[0] == 3  # each event once


def test_a_repeat_waits_while_another_engine_decides_then_gets_its_decision(client, prefix) -> None:
    shared = _store(client, prefix)
    event = _events(2)[1]
    assert shared.claim(event["event_id"]) is None  # another process is deciding it
    other = _engine(_store(client, prefix))
    with pytest.raises(EventInProgress, match="event_id"):
        other.process(event)  # gives up after a second of waiting
    decider = _engine(MemoryProfileStore())
    decision = decider.process(event)

    def settle() -> None:  # as the deciding process does with its write
        time.sleep(0.2)
        assert shared.write(shared.read([]), [], decision)

    threading.Thread(target=settle).start()
    assert other.process(event) == decision
    assert shared.get("card", event["card_id"]).n == 0  # the other process applied nothing


def test_a_failed_decision_releases_its_claim(client, prefix, monkeypatch) -> None:
    engine = _engine(_store(client, prefix))
    event = _events(2)[1]

    def broken(ctx):
        raise RuntimeError("detector bug")

    monkeypatch.setattr(engine.detectors[0], "detect", broken)
    with pytest.raises(RuntimeError, match="detector bug"):
        engine.process(event)
    monkeypatch.undo()
    assert engine.process(event).event_id == event["event_id"]  # decided on the retry
