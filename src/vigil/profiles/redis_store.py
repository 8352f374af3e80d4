"""Profiles in Redis, shared by several ``serve`` processes (``VIGIL_PROFILES_URL=redis://…``).

Each profile is one string key, ``<prefix><kind>:<key>``, holding an 8-byte version followed
by :meth:`Profile.to_bytes`. Per event there are two round trips, each one Lua script: the
first claims the event id and reads every profile the event touches, the second writes them
all — atomically, and only if each still has the version that was read (compare-and-set) —
and leaves the decision under the claim. When another process got there first
the script writes nothing and the engine re-reads and applies the event again on top of the
newer state (:meth:`vigil.engine.Engine.decide`): the decision stands, no update is lost.
Every write renews the key's time to live, so profiles idle longer than
``profiles.idle_ttl_seconds`` expire on their own.

Which process decides an event id is settled here too: before deciding, a process claims the
id (``SET NX``, answered with the earlier claim if there is one, and then nothing is read);
with its write, it leaves the decision under the claim for ``profiles.claim_ttl_seconds``, so
a repeat that reaches another process gets the same decision, and the event is applied to the
profiles once.

The processes also tell each other of new labels (:meth:`RedisProfileStore.publish_label`,
a Redis channel): the label-fed state a model reads (terminal risk) is each process's own, and
only the process that decided the labelled event can count its label.

All of an event's keys must live on one Redis (no cluster slots): a single server or a
primary with replicas.

>>> store = RedisProfileStore.from_url("redis://127.0.0.1:6379/0", prefix="doctest:")
>>> store.prefix
'doctest:'
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import redis

from vigil.config import ProfilesConfig
from vigil.profiles.profile import Profile
from vigil.profiles.store import PENDING, Key, MemoryProfileStore, ProfileRead

if TYPE_CHECKING:
    from vigil.domain import Decision

_VERSION = struct.Struct(">Q")
_SCAN = 1000
# A claim whose process dies mid-decision lapses this soon, and a retry may decide.
_PENDING_TTL_MS = 10_000

# KEYS[1]: the event's claim; KEYS[2 ..]: the profiles. ARGV[1]: what a claim holds while its
# event is decided; ARGV[2]: how long that lasts (ms). Returns {1, what the earlier claim
# holds} (nothing read), or {0, each profile's value}.
_CLAIM_AND_READ = """
local earlier = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'GET', 'PX', ARGV[2])
if earlier then
  return {1, earlier}
end
local values = {0}
if #KEYS > 1 then
  for _, value in ipairs(redis.call('MGET', unpack(KEYS, 2))) do
    table.insert(values, value)
  end
end
return values
"""

# KEYS[1 .. n]: the profiles, then optionally the event's claim. ARGV[1]: time to live (ms);
# ARGV[2]: n; ARGV[3 .. n+2]: the version each had when read (8 bytes, or "" if it did not
# exist); ARGV[n+3 .. 2n+2]: the new values; then, with the claim, the decision and how long
# it is kept (ms). Returns 0 when written, else the 1-based index of the first key whose
# version moved (nothing written).
_COMPARE_AND_SET = """
local n = tonumber(ARGV[2])
for i = 1, n do
  if redis.call('GETRANGE', KEYS[i], 0, 7) ~= ARGV[i + 2] then
    return i
  end
end
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[n + 2 + i], 'PX', ARGV[1])
end
if #KEYS > n then
  redis.call('SET', KEYS[n + 1], ARGV[2 * n + 3], 'PX', ARGV[2 * n + 4])
end
return 0
"""


class RedisProfileStore:
    """The :class:`~vigil.profiles.store.ProfileStore` protocol on Redis, with versions.

    >>> store = RedisProfileStore(redis.Redis(), prefix="doctest:")
    >>> store.ttl_ms
    8640000000
    """

    def __init__(
        self,
        client: redis.Redis,
        config: ProfilesConfig | None = None,
        *,
        prefix: str = "vigil:profile:",
    ) -> None:
        self.client = client
        self.config = config or ProfilesConfig()
        self.prefix = prefix
        self.ttl_ms = int(self.config.idle_ttl_seconds * 1000)
        if self.ttl_ms <= 0:
            raise ValueError("profiles.idle_ttl_seconds: must be positive")
        self.claim_ttl_ms = int(self.config.claim_ttl_seconds * 1000)
        self._blank = MemoryProfileStore(self.config)
        self._labels_channel = f"{prefix}labels"
        self._claim_and_read = client.register_script(_CLAIM_AND_READ)
        self._compare_and_set = client.register_script(_COMPARE_AND_SET)

    @classmethod
    def from_url(
        cls, url: str, config: ProfilesConfig | None = None, *, prefix: str = "vigil:profile:"
    ) -> RedisProfileStore:
        client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        return cls(client, config, prefix=prefix)

    def _name(self, kind: str, key: str) -> bytes:
        return f"{self.prefix}{kind}:{key}".encode()

    def _decode(self, value: bytes | None) -> tuple[int, Profile]:
        if value is None:
            return 0, self._blank.new_profile()
        return _VERSION.unpack_from(value)[0], Profile.from_bytes(value[_VERSION.size :])

    # -- the per-event path ------------------------------------------------------------------
    def read(self, keys: Sequence[Key], claim: str | None = None) -> ProfileRead:
        names = [self._name(kind, key) for kind, key in keys]
        if claim is None:
            values = self.client.mget(names)
        else:
            answer = self._claim_and_read(
                keys=[self._claim_name(claim), *names], args=[PENDING, _PENDING_TTL_MS]
            )
            if answer[0] == 1:
                return ProfileRead(tuple(keys), (), earlier=answer[1])
            values = answer[1:]
        decoded = [self._decode(v) for v in values]
        return ProfileRead(tuple(keys), tuple(p for _, p in decoded), tuple(v for v, _ in decoded))

    def write(
        self, read: ProfileRead, profiles: Sequence[Profile], settle: Decision | None = None
    ) -> bool:
        if len(profiles) != len(read.keys):
            raise ValueError(f"profiles: {len(profiles)} given for {len(read.keys)} keys")
        if not profiles and settle is None:
            return True
        names = [self._name(kind, key) for kind, key in read.keys]
        expected = [_VERSION.pack(v) if v else b"" for v in read.versions]
        values = [
            _VERSION.pack(v + 1) + p.to_bytes()
            for v, p in zip(read.versions, profiles, strict=True)
        ]
        args = [self.ttl_ms, len(names), *expected, *values]
        if settle is not None:
            names.append(self._claim_name(settle.event_id))
            args += [settle.model_dump_json(), self.claim_ttl_ms]
        return self._compare_and_set(keys=names, args=args) == 0

    def _claim_name(self, event_id: str) -> bytes:
        return f"{self.prefix}claim:{event_id}".encode()

    def claim(self, event_id: str) -> bytes | None:
        name = self._claim_name(event_id)
        return self.client.set(name, PENDING, nx=True, get=True, px=_PENDING_TTL_MS)

    def release(self, event_ids: Iterable[str]) -> int:
        names = [self._claim_name(e) for e in event_ids]
        return int(self.client.delete(*names)) if names else 0

    # -- labels, told to every process sharing the profiles -------------------------------------
    def publish_label(self, feedback_json: str) -> None:
        self.client.publish(self._labels_channel, feedback_json)

    def subscribe_labels(self, handle: Callable[[bytes], None]) -> Callable[[], None]:
        """Call ``handle`` with each label published from now on, in a thread of its own;
        returns the function that stops it."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(**{self._labels_channel: lambda message: handle(message["data"])})
        return pubsub.run_in_thread(sleep_time=0.5, daemon=True).stop

    # -- single profiles, listing, erasure ------------------------------------------------------
    def get(self, kind: str, key: str) -> Profile:
        return self.read([(kind, key)]).profiles[0]

    def put(self, kind: str, key: str, profile: Profile) -> None:
        """Overwrite unconditionally (restores, tests); the event path uses :meth:`write`."""
        current = self.read([(kind, key)]).versions[0]
        self.client.set(
            self._name(kind, key), _VERSION.pack(current + 1) + profile.to_bytes(), px=self.ttl_ms
        )

    def delete(self, keys: Iterable[Key]) -> int:
        names = [self._name(kind, key) for kind, key in keys]
        return int(self.client.delete(*names)) if names else 0

    def _names(self, *, claims: bool = False) -> Iterator[bytes]:
        """Every profile's key (and with ``claims``, every claim's)."""
        pattern = _glob_escape(self.prefix) + "*"
        claim = f"{self.prefix}claim:".encode()
        for name in self.client.scan_iter(match=pattern, count=_SCAN):
            if claims or not name.startswith(claim):
                yield name

    def items(self) -> Iterator[tuple[str, str, Profile]]:
        """Every profile (a SCAN: for administration and exports, not the hot path)."""
        for name in self._names():
            value = self.client.get(name)
            if value is None:  # expired or deleted since the scan saw it
                continue
            kind, _, key = name.decode()[len(self.prefix) :].partition(":")
            yield kind, key, self._decode(value)[1]

    def __len__(self) -> int:
        return sum(1 for _ in self._names())

    def clear(self) -> int:
        """Delete every profile (and claim) under this prefix; returns how many keys."""
        removed = 0
        batch: list[bytes] = []
        for name in self._names(claims=True):
            batch.append(name)
            if len(batch) >= _SCAN:
                removed += int(self.client.delete(*batch))
                batch = []
        if batch:
            removed += int(self.client.delete(*batch))
        return removed


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
