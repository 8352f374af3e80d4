"""Profiles in Redis, shared by several ``serve`` processes (``VIGIL_PROFILES_URL=redis://…``).

Each profile is one string key, ``<prefix><kind>:<key>``, holding an 8-byte version followed
by :meth:`Profile.to_bytes`. An event's work is one Lua script: it claims the event id and
reads every profile the event touches; its write stores them all — atomically, and only if
each still has the version that was read (compare-and-set) — and leaves the decision under
the claim. Alone, the write is a second round trip; in a batch (:meth:`RedisProfileStore.
batched`, how ``vigil consume`` and batch requests decide) it is held back and sent in the
same script as the next event's claim and read, so an event costs one round trip, and the last
write is sent before the batch is committed. When another process got there first
the script writes nothing and the engine re-reads and applies the event again on top of the
newer state (:meth:`vigil.engine.Engine.decide`): the decision stands, no update is lost.
Every write renews the key's time to live, so profiles idle longer than
``profiles.idle_ttl_seconds`` expire on their own.

Which process decides an event id is settled here too: before deciding, a process claims the
id (``SET NX``, answered with the earlier claim if there is one, and then nothing is read);
with its write, it leaves the decision under the claim, so a repeat that reaches another
process gets the same decision, and the event is applied to the profiles once. The claim lasts
as long as the profiles until the decision is committed (:meth:`RedisProfileStore.committed`),
then ``profiles.claim_ttl_seconds``: should the process die before its commit, a repeat however
late records the decision that the profiles already count.

A fraud label is counted in the terminal profile of its transaction by whichever process
receives it (:meth:`RedisProfileStore.count_fraud`): a compare-and-set write like an event's,
which also leaves a marker, ``<prefix>labelled:<event id>``, so the transaction's label counts
once whichever processes receive labels on it; the marker lives as long as a label can change
a read (:data:`vigil.profiles.fraud.REACH`). Labels are not on the event path: they cost two
round trips each (read, then write), and no event pays for them.

All of an event's keys must live on one Redis (no cluster slots): a single server or a
primary with replicas.

>>> store = RedisProfileStore.from_url("redis://127.0.0.1:6379/0", prefix="doctest:")
>>> store.prefix
'doctest:'
"""

from __future__ import annotations

import collections
import contextlib
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from vigil.config import ProfilesConfig
from vigil.profiles.fraud import REACH
from vigil.profiles.profile import Profile
from vigil.profiles.store import PENDING, Key, MemoryProfileStore, ProfileRead

if TYPE_CHECKING:
    from vigil.domain import Decision

_VERSION = struct.Struct(">Q")
_SCAN = 1000
# A claim whose process dies mid-decision lapses this soon, and a retry may decide.
_PENDING_TTL_MS = 10_000

# One script does all of an event's work, so that it costs one round trip: first the write held
# back from the event before (compare-and-set: every profile must still have the version it was
# read with, else nothing is written and {-1} returned), with the decision it settles; then the
# claims of events now committed are cut to their time to live; then this event's claim
# (answered {1, what the earlier claim holds} if there is one, nothing read); then its
# profiles, {0, each value}. KEYS: the held profiles (n), the settled claim (s = 0 or 1), the
# committed claims (m), this event's claim (c = 0 or 1), the profiles to read. ARGV[1 .. 8]:
# the profiles' time to live (ms), n, s, c, how long a committed claim is kept (ms), how long a
# pending one lasts (ms), what a pending claim holds, m; then the held versions (8 bytes, or ""
# if it did not exist, n), the new values (n), and the decision (s). A settled claim lives as
# long as the profiles until its decision is known to be committed: should its process die
# before the commit, a repeat however late finds the decision its profiles already count.
_WRITE_THEN_READ = """
local n, s, c, m = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[8])
for i = 1, n do
  if redis.call('GETRANGE', KEYS[i], 0, 7) ~= ARGV[8 + i] then
    return {-1}
  end
end
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[8 + n + i], 'PX', ARGV[1])
end
if s == 1 then
  redis.call('SET', KEYS[n + 1], ARGV[9 + 2 * n], 'PX', ARGV[1])
end
for i = n + s + 1, n + s + m do
  redis.call('PEXPIRE', KEYS[i], ARGV[5])
end
local first = n + s + m + 1
if c == 1 then
  local earlier = redis.call('SET', KEYS[first], ARGV[7], 'NX', 'GET', 'PX', ARGV[6])
  if earlier then
    return {1, earlier}
  end
  first = first + 1
end
local values = {0}
if #KEYS >= first then
  for _, value in ipairs(redis.call('MGET', unpack(KEYS, first))) do
    table.insert(values, value)
  end
end
return values
"""


# A fraud label (count_fraud): nothing if the transaction's label was counted already (0),
# nothing if the terminal's profile changed since it was read (-1, read again), else the
# profile written with the label counted and the marker left (1). KEYS: the profile, the
# marker. ARGV: the version read (8 bytes, or "" if it did not exist), the new value, the
# profile's time to live (ms), the marker's (ms).
_COUNT_FRAUD = """
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
if redis.call('GETRANGE', KEYS[1], 0, 7) ~= ARGV[1] then
  return -1
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
return 1
"""
# Labels on one terminal that may meet another writer of its profile in a row.
_LABEL_ATTEMPTS = 16
_REACH_MS = int(REACH * 1000)


@dataclass(frozen=True, slots=True)
class _Write:
    """A compare-and-set write of one event's profiles, with the decision it settles, ready to
    send; ``redo`` applies the event again on newer profiles when it loses a race."""

    names: list[bytes]
    expected: list[bytes]
    values: list[bytes]
    settle: tuple[bytes, str] | None
    redo: Callable[[], None] | None


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
        self._script = client.register_script(_WRITE_THEN_READ)
        self._count_fraud = client.register_script(_COUNT_FRAUD)
        # Inside batched(): the last event's write, sent with the next event's read.
        self._batched = 0
        self._held: _Write | None = None
        # The claims of decisions committed since the last round trip, to cut with the next
        # (added by whichever thread learns of the commit).
        self._committed: collections.deque[bytes] = collections.deque()

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
        held, self._held = self._held, None
        answer = self._send(held, claim, names)
        if answer[0] == -1:  # the held write lost a race (nothing else was done)
            assert held is not None and held.redo is not None
            held.redo()
            answer = self._send(None, claim, names)
        if answer[0] == 1:
            return ProfileRead(tuple(keys), (), earlier=answer[1])
        decoded = [self._decode(v) for v in answer[1:]]
        return ProfileRead(tuple(keys), tuple(p for _, p in decoded), tuple(v for v, _ in decoded))

    def write(
        self,
        read: ProfileRead,
        profiles: Sequence[Profile],
        settle: Decision | None = None,
        redo: Callable[[], None] | None = None,
    ) -> bool:
        if len(profiles) != len(read.keys):
            raise ValueError(f"profiles: {len(profiles)} given for {len(read.keys)} keys")
        if not profiles and settle is None:
            return True
        settled = None
        if settle is not None:
            settled = (self._claim_name(settle.event_id), settle.model_dump_json())
        write = _Write(
            [self._name(kind, key) for kind, key in read.keys],
            [_VERSION.pack(v) if v else b"" for v in read.versions],
            [
                _VERSION.pack(v + 1) + p.to_bytes()
                for v, p in zip(read.versions, profiles, strict=True)
            ],
            settled,
            redo,
        )
        self.flush()
        if self._batched and redo is not None:
            self._held = write
            return True
        return self._send(write, None, [])[0] == 0

    @contextlib.contextmanager
    def batched(self) -> Iterator[None]:
        """Within, each event's write is held back and sent with the next event's read, so
        that an event costs one round trip; the last is sent on leaving. A held write that
        lost a race is applied again (its ``redo``) before anything else is read."""
        self._batched += 1
        try:
            yield
        finally:
            self._batched -= 1
            if not self._batched:
                self.flush()

    def flush(self) -> None:
        """Send the held write, if any (applying its event again if it lost a race)."""
        held, self._held = self._held, None
        if held is not None and self._send(held, None, [])[0] == -1:
            assert held.redo is not None
            held.redo()

    def _send(self, write: _Write | None, claim: str | None, names: list[bytes]) -> list:
        """One round trip: ``write``, then the claim on event ``claim``, then ``names`` read."""
        keys: list[bytes] = []
        args: list[bytes | int | str] = [
            self.ttl_ms,
            0,
            0,
            0,
            self.claim_ttl_ms,
            _PENDING_TTL_MS,
            PENDING,
        ]
        # Taken one by one: a writer thread may add more meanwhile (deque ends are atomic).
        committed = [self._committed.popleft() for _ in range(len(self._committed))]
        args.append(len(committed))
        if write is not None:
            keys += write.names
            args[1] = len(write.names)
            args += write.expected
            args += write.values
            if write.settle is not None:
                keys.append(write.settle[0])
                args[2] = 1
                args.append(write.settle[1])
        keys += committed
        if claim is not None:
            keys.append(self._claim_name(claim))
            args[3] = 1
        keys += names
        try:
            answer = self._script(keys=keys, args=args)
        except BaseException:
            self._committed.extend(committed)
            raise
        if answer[0] == -1:  # nothing was done: they go with the next
            self._committed.extend(committed)
        return answer

    def _claim_name(self, event_id: str) -> bytes:
        return f"{self.prefix}claim:{event_id}".encode()

    def claim(self, event_id: str) -> bytes | None:
        self.flush()
        name = self._claim_name(event_id)
        return self.client.set(name, PENDING, nx=True, get=True, px=_PENDING_TTL_MS)

    def committed(self, event_ids: Iterable[str]) -> None:
        # Cut with the next round trip: one more round trip for this alone would cost more
        # than the claims' memory while they wait. A process that stops leaves its last ones
        # long; a repeat finds their decisions in the database first all the same.
        self._committed.extend(self._claim_name(e) for e in event_ids)

    def release(self, event_ids: Iterable[str]) -> int:
        self.flush()
        names = [self._claim_name(e) for e in event_ids]
        return int(self.client.delete(*names)) if names else 0

    # -- fraud labels, counted once by whichever process receives them -------------------------
    def count_fraud(self, terminal_id: str, event_id: str, when: float) -> bool:
        self.flush()  # a held write may be the transaction's own
        name, marker = self._name("terminal", terminal_id), self._label_name(event_id)
        for _ in range(_LABEL_ATTEMPTS):
            value = self.client.get(name)
            version, profile = self._decode(value)
            if not profile.fraud_tiles().label(when):
                return False
            answer = self._count_fraud(
                keys=[name, marker],
                args=[
                    _VERSION.pack(version) if version else b"",
                    _VERSION.pack(version + 1) + profile.to_bytes(),
                    self.ttl_ms,
                    _REACH_MS,
                ],
            )
            if answer != -1:
                return answer == 1
        raise RuntimeError(
            f"profiles: terminal {terminal_id!r} changed under {_LABEL_ATTEMPTS} attempts to "
            f"count the fraud label on {event_id!r}"
        )

    def forget_labels(self) -> None:
        """Forget the markers; the fraud counts go with the profiles, which this store only
        has to recount once rebuilt from the log (emptied first)."""
        self.flush()
        pattern = _glob_escape(f"{self.prefix}labelled:") + "*"
        self._delete_all(self.client.scan_iter(match=pattern, count=_SCAN))

    def _label_name(self, event_id: str) -> bytes:
        return f"{self.prefix}labelled:{event_id}".encode()

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
        self.flush()
        names = [self._name(kind, key) for kind, key in keys]
        return int(self.client.delete(*names)) if names else 0

    def _names(self, *, claims: bool = False) -> Iterator[bytes]:
        """Every profile's key (and with ``claims``, every claim's and label marker's)."""
        self.flush()
        pattern = _glob_escape(self.prefix) + "*"
        others = (f"{self.prefix}claim:".encode(), f"{self.prefix}labelled:".encode())
        for name in self.client.scan_iter(match=pattern, count=_SCAN):
            if claims or not name.startswith(others):
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
        """Delete every profile (and claim, and label marker) under this prefix; returns how
        many keys."""
        return self._delete_all(self._names(claims=True))

    def _delete_all(self, names: Iterable[bytes]) -> int:
        """Delete these keys, a SCAN page at a time; returns how many existed."""
        removed = 0
        batch: list[bytes] = []
        for name in names:
            batch.append(name)
            if len(batch) >= _SCAN:
                removed += int(self.client.delete(*batch))
                batch = []
        if batch:
            removed += int(self.client.delete(*batch))
        return removed


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
