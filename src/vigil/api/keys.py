"""API keys: issued once, stored only as argon2 hashes, checked in microseconds after the first use.

A key reads ``vgl_<key id>_<secret>``. The key id is public (it names the stored row), so
checking a key is one row read and one argon2 verification, never a scan over every hash.
Argon2 is slow on purpose (tens of milliseconds), so a verified key is remembered in memory,
keyed by the SHA-256 of the whole key, for ``ttl`` seconds; after that its row is read again
(no argon2: the stored hash is compared with the one verified) so a revocation made by another
process takes effect within ``ttl``. A revocation through this ring takes effect at once.

Checks are not serialised: concurrent requests with the same key wait for one verification
(its verdict is theirs), requests with different keys never wait for one another, and failed
checks are limited per key id and per client address (:mod:`vigil.api.attempts`), so wrong
secrets sent by one client neither stall other keys nor buy unlimited guesses. Verdicts on
wrong keys are remembered apart from verified ones: flooding the first never evicts the second.

>>> from argon2 import PasswordHasher
>>> from vigil.storage import Store
>>> store = Store("sqlite://"); store.init_schema()
>>> ring = KeyRing(store, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
>>> key, info = ring.create("teller", [Role.INGEST])
>>> key.startswith(f"vgl_{info.key_id}_"), info.roles
(True, [<Role.INGEST: 'ingest'>])
>>> ring.verify(key).roles == frozenset({Role.INGEST}), ring.verify(key + "x")
(True, None)
>>> ring.revoke(info.key_id), ring.verify(key)
(True, None)
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict

from vigil.api.attempts import FailureLimit
from vigil.storage.rows import utc_now

if TYPE_CHECKING:
    from vigil.storage import Store

PREFIX = "vgl"
_KEY = re.compile(r"^vgl_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})$")
# Unknown or wrong keys are remembered too (an attacker repeating one costs no argon2), apart
# from verified ones; past this many entries either cache starts afresh rather than growing.
_CACHE_LIMIT = 10_000


class Role(StrEnum):
    """What a key may do. Roles do not imply one another: a key holds each role it needs."""

    INGEST = "ingest"  # send transactions and logins for decisions
    ANALYST = "analyst"  # read decisions, risk events and profiles; give feedback
    ADMIN = "admin"  # manage keys, rules and models


class ApiKey(BaseModel):
    """A key as listed: never its secret, which only its creator saw, once.

    >>> ApiKey(key_id="0" * 16, name="n", roles=["admin"], created_at="2024-01-01T00:00:00Z").roles
    [<Role.ADMIN: 'admin'>]
    """

    model_config = ConfigDict(frozen=True)

    key_id: str
    name: str
    roles: list[Role]
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the verified key's id, name and roles.

    >>> Principal("k", "teller", frozenset({Role.INGEST})).may(Role.ADMIN)
    False
    """

    key_id: str
    name: str
    roles: frozenset[Role]

    def may(self, role: Role) -> bool:
        return role in self.roles


@dataclass(slots=True)
class _Entry:
    principal: Principal | None
    secret_hash: str | None
    checked_at: float


def parse_key(presented: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed key, else None.

    >>> parse_key("vgl_0123456789abcdef_" + "s" * 43)[0], parse_key("Bearer nonsense")
    ('0123456789abcdef', None)
    """
    match = _KEY.match(presented)
    return (match.group(1), match.group(2)) if match else None


def _roles(values: Iterable[Role | str]) -> list[Role]:
    roles: list[Role] = []
    for value in values:
        try:
            role = Role(value)
        except ValueError:
            valid = ", ".join(r.value for r in Role)
            raise ValueError(f"roles: {value!r} is not one of {valid}") from None
        if role not in roles:
            roles.append(role)
    if not roles:
        raise ValueError("roles: give at least one role")
    return sorted(roles, key=list(Role).index)


def _api_key(row: dict[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        name=row["name"],
        roles=[Role(r) for r in row["roles"].split(",")],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class KeyRing:
    """Create, list, revoke and verify API keys on a :class:`~vigil.storage.Store`.

    Thread-safe: verification may run in a worker thread while the event loop reads the cache.

    >>> from vigil.storage import Store
    >>> store = Store("sqlite://"); store.init_schema()
    >>> ring = KeyRing(store, hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    >>> ring.cached("vgl_0123456789abcdef_" + "s" * 43) is None   # never seen: not cached
    True
    """

    def __init__(
        self,
        store: Store,
        *,
        ttl: float = 30.0,
        hasher: PasswordHasher | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_failures: int = 10,
        failure_window: float = 60.0,
    ) -> None:
        self.store = store
        self.ttl = ttl
        self.hasher = hasher or PasswordHasher()
        self.failures = FailureLimit(max_failures, failure_window, clock)
        self._clock = clock
        self._cache: dict[bytes, _Entry] = {}  # verified keys
        self._wrong: dict[bytes, _Entry] = {}  # unknown, malformed, revoked or wrong keys
        self._lock = threading.Lock()
        self._checks: dict[bytes, tuple[threading.Lock, int]] = {}  # digest -> (lock, waiters)

    # -- administration ----------------------------------------------------------------------

    def create(self, name: str, roles: Iterable[Role | str]) -> tuple[str, ApiKey]:
        """A new key and its listing; the returned key string is the only copy there will be."""
        name = name.strip()
        if not 0 < len(name) <= 200:
            raise ValueError("name: must be 1 to 200 characters")
        checked = _roles(roles)
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        row = {
            "key_id": key_id,
            "name": name,
            "roles": ",".join(r.value for r in checked),
            "secret_hash": self.hasher.hash(secret),
            "created_at": utc_now(),
            "revoked_at": None,
        }
        self.store.insert_api_key(row)
        return f"{PREFIX}_{key_id}_{secret}", _api_key(row)

    def list(self) -> list[ApiKey]:
        return [_api_key(row) for row in self.store.list_api_keys()]

    def revoke(self, key_id: str) -> bool:
        """Revoke a key now; False if no such key is active."""
        revoked = self.store.revoke_api_key(key_id)
        with self._lock:
            for digest, entry in list(self._cache.items()):
                if entry.principal is not None and entry.principal.key_id == key_id:
                    del self._cache[digest]
        return revoked

    # -- verification --------------------------------------------------------------------------

    def cached(self, presented: str) -> _Entry | None:
        """The remembered verdict on this key while it is fresh; no I/O (the hot path)."""
        digest = hashlib.sha256(presented.encode()).digest()
        entry = self._cache.get(digest) or self._wrong.get(digest)
        if entry is not None and self._clock() - entry.checked_at < self.ttl:
            return entry
        return None

    def verify(self, presented: str, client: str | None = None) -> Principal | None:
        """The key's principal, or None for an unknown, wrong or revoked key.

        Costs one argon2 verification the first time a key is seen; later calls within ``ttl``
        answer from memory, and after it from one row read. Raises
        :class:`~vigil.api.attempts.KeyThrottled` when the key id or ``client`` (the caller's
        address) failed too often lately, unless this ring verified the key before (its re-check
        needs no argon2).
        """
        entry = self.cached(presented)
        if entry is not None:
            return entry.principal
        digest = hashlib.sha256(presented.encode()).digest()
        stale = self._cache.get(digest) or self._wrong.get(digest)
        parsed = parse_key(presented)
        names = [f"client {client}"] if client else []
        if parsed is not None:
            names.insert(0, f"key {parsed[0]}")
        if stale is None or stale.principal is None:
            self.failures.check(*names)
        with self._checking(digest):
            # Many connections opening with one new key: the first computes argon2, the
            # others find its verdict here.
            entry = self.cached(presented)
            if entry is not None:
                return entry.principal
            entry = self._check(presented, stale)
            with self._lock:
                kept = self._cache if entry.principal is not None else self._wrong
                if len(kept) >= _CACHE_LIMIT:
                    kept.clear()
                kept[digest] = entry
                (self._wrong if kept is self._cache else self._cache).pop(digest, None)
        if entry.principal is None:
            self.failures.failed(*names)
        return entry.principal

    @contextmanager
    def _checking(self, digest: bytes) -> Iterator[None]:
        """Hold the lock of one presented key (made on first use, dropped by its last user)."""
        with self._lock:
            lock, waiters = self._checks.get(digest, (threading.Lock(), 0))
            self._checks[digest] = (lock, waiters + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, waiters = self._checks[digest]
                if waiters == 1:
                    del self._checks[digest]
                else:
                    self._checks[digest] = (lock, waiters - 1)

    def _check(self, presented: str, stale: _Entry | None) -> _Entry:
        now = self._clock()
        parsed = parse_key(presented)
        if parsed is None:
            return _Entry(None, None, now)
        key_id, secret = parsed
        row = self.store.get_api_key(key_id)
        if row is None or row["revoked_at"] is not None:
            return _Entry(None, None, now)
        secret_hash = row["secret_hash"]
        if stale is None or stale.secret_hash != secret_hash:
            try:
                self.hasher.verify(secret_hash, secret)
            except (VerificationError, InvalidHashError):
                return _Entry(None, secret_hash, now)
        elif stale.principal is None:
            # The same wrong secret against the same stored hash: still wrong, no argon2 needed.
            return _Entry(None, secret_hash, now)
        principal = Principal(key_id, row["name"], frozenset(_api_key(row).roles))
        return _Entry(principal, secret_hash, now)
