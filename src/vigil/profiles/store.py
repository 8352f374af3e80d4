"""Where profiles live between events: the protocol, and the in-process default.

The in-process store keeps every profile in a dict and snapshots them to the SQL store, so a
restart resumes where it stopped. Production backends (Redis) implement the same protocol.

>>> store = MemoryProfileStore()
>>> p = store.get("card", "c-1")
>>> p.n, len(store)
(0, 0)
>>> store.put("card", "c-1", p); len(store)
1
>>> read = store.read([("card", "c-1"), ("user", "u-1")])
>>> read.profiles[0] is p, store.write(read, read.profiles), len(store)
(True, True, 2)
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from vigil.config import ProfilesConfig, Settings
from vigil.profiles.fraud import REACH
from vigil.profiles.profile import Profile

if TYPE_CHECKING:
    from vigil.domain import Decision
    from vigil.storage import Store

ENTITY_KINDS = ("card", "user", "account", "terminal", "device", "ip")

Key = tuple[str, str]
# What a claim on an event id holds while the process that made it is still deciding.
PENDING = b"pending"
# Counted labels an in-process store remembers before it forgets those too old to count.
_LABELLED_MIN = 4096


@dataclass(frozen=True, slots=True)
class ProfileRead:
    """The profiles of one event's entities as read together, with the version each had
    (empty when the store needs none): a write succeeds only if they still have them.

    ``earlier`` is set, and nothing read, when the read claimed its event and found another
    process's claim: what that claim holds (:data:`PENDING`, or the decision's JSON).

    >>> ProfileRead((("card", "c-1"),), (Profile(),)).versions
    ()
    """

    keys: tuple[Key, ...]
    profiles: tuple[Profile, ...]
    versions: tuple[int, ...] = ()
    earlier: bytes | None = None


class ProfileStore(Protocol):
    def get(self, kind: str, key: str) -> Profile:
        """The entity's profile, or a new empty one (not stored until :meth:`put`)."""
        ...

    def put(self, kind: str, key: str, profile: Profile) -> None: ...

    # Several processes sharing a store must agree on which one decides a repeated event id,
    # or both would decide it (and apply it to the profiles twice): the process that reads
    # with a claim first decides, and leaves its decision with its write.
    def read(self, keys: Sequence[Key], claim: str | None = None) -> ProfileRead:
        """Every profile of one event at once (one round trip to a shared store); with
        ``claim`` (the event id), the same round trip claims the event for the caller, or
        answers with the earlier claim in ``earlier``."""
        ...

    def write(
        self,
        read: ProfileRead,
        profiles: Sequence[Profile],
        settle: Decision | None = None,
        redo: Callable[[], None] | None = None,
    ) -> bool:
        """Store ``profiles`` under ``read.keys``, all or none; False, writing nothing, when
        another writer changed one of them since ``read`` (the caller re-reads and retries).
        With ``settle``, the decision on the claimed event is left with them, for a repeat
        that reaches another process. Inside :meth:`batched`, a write with ``redo`` may be
        held back and sent later: it answers True, and should it then lose a race, ``redo``
        (which re-reads and retries) is called."""
        ...

    def batched(self) -> AbstractContextManager[None]:
        """A batch of events decided one after another: a shared store may hold each write
        back to send it with the next read; every write has been sent on leaving."""
        ...

    def delete(self, keys: Iterable[Key]) -> int:
        """Remove these profiles (erasure); returns how many existed."""
        ...

    def claim(self, event_id: str) -> bytes | None:
        """Claim the event alone (a repeat waiting on another process): None when the caller
        may now decide it; else what the claim holds, as in :attr:`ProfileRead.earlier`."""
        ...

    def committed(self, event_ids: Iterable[str]) -> None:
        """These events' decisions are committed: their claims may now lapse after
        ``profiles.claim_ttl_seconds`` (until then they last as long as the profiles, which
        already count the events, should the decision never be committed)."""
        ...

    def release(self, event_ids: Iterable[str]) -> int:
        """Forget these claims (deciding failed, so a retry may decide; or the person is
        erased); returns how many there were."""
        ...

    # A label reaches one process, which may not be the one that decided its transaction: the
    # store counts it in the terminal's shared profile, so every process reads it.
    def count_fraud(self, terminal_id: str, event_id: str, when: float) -> bool:
        """A fraud label on the completed transaction ``event_id`` at ``when`` (epoch
        seconds) at the terminal: counted in the terminal profile's fraud tiles
        (:mod:`vigil.profiles.fraud`), once per transaction whichever process sharing the
        store applies it, and whatever other writer it races. False when it counted
        nothing: counted before, or too old for any read to reach."""
        ...

    def forget_labels(self) -> None:
        """Forget which transactions' labels were counted, and every fraud count (before
        they are counted again from the log: :mod:`vigil.profiles.recovery`)."""
        ...

    def items(self) -> Iterator[tuple[str, str, Profile]]: ...

    def __len__(self) -> int: ...


class MemoryProfileStore:
    """Profiles in a dict keyed by (kind, key); snapshot and restore through the SQL store.

    A checkpoint (:mod:`vigil.profiles.recovery`) saves the profiles changed since the last
    one as they were at one instant, its cut. Serialising thousands of them at once would stop
    a server for the better part of a second, so they can be taken a few at a time instead
    (:meth:`begin_checkpoint`, :meth:`take`): a profile still to be taken is taken first
    whenever it is about to change, so each is saved as it was at the cut. They go to the
    database in parts as they are taken (:meth:`checkpoint_part`, then the rest with
    :meth:`checkpoint_rows`); the checkpoint ends when its last part is written
    (:meth:`checkpoint_done`), or is given up and its profiles go to the next one
    (:meth:`abandon_checkpoint`).

    >>> store = MemoryProfileStore()
    >>> store.put("card", "c-1", store.get("card", "c-1"))
    >>> store.begin_checkpoint()
    >>> read = store.read([("card", "c-1")])  # about to change: taken now, as at the cut
    >>> store.write(read, read.profiles), store.take(10)
    (True, True)
    >>> [(kind, key) for kind, key, _ in store.checkpoint_rows()], sorted(store._changed)
    ([('card', 'c-1')], [('card', 'c-1')])
    """

    def __init__(self, config: ProfilesConfig | None = None) -> None:
        self.config = config or ProfilesConfig()
        self._profiles: dict[tuple[str, str], Profile] = {}
        # Written since the last checkpoint (vigil.profiles.recovery): what the next one saves.
        self._changed: set[Key] = set()
        # The checkpoint being taken, if any: the profiles changed before its cut that are
        # still to be serialised, those serialised already, and those handed out in its parts
        # (until its last part is written: given up, they go to the next checkpoint).
        self._to_take: dict[Key, None] | None = None
        self._taken: dict[Key, bytes] = {}
        self._handed: set[Key] = set()
        # The transactions whose fraud label was counted (count_fraud), with their times, and
        # how many may be kept before those too old to count again are forgotten.
        self._labelled: dict[str, float] = {}
        self._labelled_limit = _LABELLED_MIN

    def __len__(self) -> int:
        return len(self._profiles)

    # Every profile handed out may be changed in place by its caller: one still to be taken
    # into the checkpoint under way is taken first.
    def get(self, kind: str, key: str) -> Profile:
        if self._to_take is not None:
            self._take_now((kind, key))
        profile = self._profiles.get((kind, key))
        return self.new_profile() if profile is None else profile

    def put(self, kind: str, key: str, profile: Profile) -> None:
        if self._to_take is not None:
            self._take_now((kind, key))
        self._profiles[(kind, key)] = profile
        self._changed.add((kind, key))

    # One process owns this store: nobody else can have written in between, and its recorder
    # alone knows which events it decided (so claims are not kept).
    def read(self, keys: Sequence[Key], claim: str | None = None) -> ProfileRead:
        return ProfileRead(tuple(keys), tuple(self.get(kind, key) for kind, key in keys))

    def write(
        self,
        read: ProfileRead,
        profiles: Sequence[Profile],
        settle: Decision | None = None,
        redo: Callable[[], None] | None = None,
    ) -> bool:
        for key, profile in zip(read.keys, profiles, strict=True):
            self._profiles[key] = profile
        self._changed.update(read.keys)
        return True

    def batched(self) -> AbstractContextManager[None]:
        return contextlib.nullcontext()  # nothing to save: every write is in memory

    def delete(self, keys: Iterable[Key]) -> int:
        keys = list(keys)
        self._changed.difference_update(keys)
        for key in keys:  # an erased person is not written back by the checkpoint under way
            self._taken.pop(key, None)
            self._handed.discard(key)
            if self._to_take is not None:
                self._to_take.pop(key, None)
        return sum(self._profiles.pop(key, None) is not None for key in keys)

    def claim(self, event_id: str) -> bytes | None:
        return None

    def committed(self, event_ids: Iterable[str]) -> None:
        pass

    def release(self, event_ids: Iterable[str]) -> int:
        return 0

    def count_fraud(self, terminal_id: str, event_id: str, when: float) -> bool:
        if event_id in self._labelled:
            return False
        if self._to_take is not None:
            self._take_now(("terminal", terminal_id))
        profile = self._profiles.get(("terminal", terminal_id))
        if profile is None or not profile.fraud_tiles().label(when):
            return False
        self._changed.add(("terminal", terminal_id))
        labelled = self._labelled
        labelled[event_id] = when
        if len(labelled) > self._labelled_limit:
            # Bounded by the labels a read can still reach: older ones count nothing anyway.
            edge = max(labelled.values()) - REACH
            self._labelled = {e: t for e, t in labelled.items() if t >= edge}
            self._labelled_limit = max(_LABELLED_MIN, 2 * len(self._labelled))
        return True

    def forget_labels(self) -> None:
        self._labelled = {}
        for key, profile in self._profiles.items():
            if profile.fraud is not None:
                if self._to_take is not None:
                    self._take_now(key)
                profile.fraud.forget_labels()
                self._changed.add(key)

    def items(self) -> Iterator[tuple[str, str, Profile]]:
        for (kind, key), profile in self._profiles.items():
            yield kind, key, profile

    def new_profile(self) -> Profile:
        c = self.config
        return Profile(
            top_k=c.top_k, recent_window=c.recent_window_seconds, recent_max=c.recent_max_events
        )

    def changed(self) -> list[tuple[str, str, bytes]]:
        """The profiles written since the last call, serialised, for a checkpoint cut now.

        >>> store = MemoryProfileStore(); store.put("card", "c-1", store.get("card", "c-1"))
        >>> [(kind, key) for kind, key, _ in store.changed()], store.changed()
        ([('card', 'c-1')], [])
        """
        changed = len(self._changed)
        self.begin_checkpoint()
        self.take(changed)
        rows = self.checkpoint_rows()
        self.checkpoint_done()  # the caller writes them at once; failing, it stops
        return rows

    @property
    def taking(self) -> bool:
        """Whether a checkpoint is being taken (cut, and not yet given its rows)."""
        return self._to_take is not None

    def begin_checkpoint(self) -> None:
        """Cut a checkpoint now: the profiles written since the last one are saved as they are
        at this instant, taken by :meth:`take` (or as they are about to change)."""
        if self._to_take is not None:
            raise RuntimeError("a checkpoint is already being taken")
        self._to_take = dict.fromkeys(self._changed)
        self._taken, self._handed = {}, set()
        self._changed = set()

    def take(self, n: int) -> bool:
        """Serialise up to ``n`` more profiles of the checkpoint under way; True when it holds
        them all (then :meth:`checkpoint_rows`)."""
        if self._to_take is None:
            raise RuntimeError("no checkpoint is being taken")
        for key in list(itertools.islice(self._to_take, n)):
            self._take_now(key)
        return not self._to_take

    @property
    def taken(self) -> int:
        """Profiles of the checkpoint under way taken and not yet handed out."""
        return len(self._taken)

    def checkpoint_part(self, n: int | None = None) -> list[tuple[str, str, bytes]]:
        """Up to ``n`` (default all) of the profiles taken so far, handed out as a part of the
        checkpoint under way."""
        if self._to_take is None:
            raise RuntimeError("no checkpoint is being taken")
        keys = list(itertools.islice(self._taken, n))
        rows = [(kind, key, self._taken.pop((kind, key))) for kind, key in keys]
        self._handed.update(keys)
        return rows

    def checkpoint_rows(self) -> list[tuple[str, str, bytes]]:
        """The rest of the checkpoint, once :meth:`take` said it holds every profile: its last
        part. Taking ends; the checkpoint ends once that part is written."""
        if self._to_take:
            raise RuntimeError("the checkpoint still has profiles to take")
        rows = self.checkpoint_part()
        self._to_take = None
        return rows

    def checkpoint_done(self) -> None:
        """The checkpoint's last part is written: its profiles are saved."""
        self._handed = set()

    def abandon_checkpoint(self) -> None:
        """Give up the checkpoint under way (if any), parts handed out included: its profiles
        go to the next one."""
        if self._to_take is not None:
            self._changed.update(self._to_take)
        self._changed.update(self._taken)
        self._changed.update(self._handed)
        self._to_take, self._taken, self._handed = None, {}, set()

    def _take_now(self, key: Key) -> None:
        """Serialise this profile into the checkpoint under way (callers check there is
        one), if it is still to take."""
        to_take = self._to_take
        assert to_take is not None
        if key in to_take:
            del to_take[key]
            profile = self._profiles.get(key)
            if profile is not None:
                self._taken[key] = profile.to_bytes()

    def snapshot(self, store: Store) -> int:
        """Checkpoint every profile (vigil.profiles.recovery.save_checkpoint), not only the
        changed ones: at a clean stop, once every decision is committed. Returns how many."""
        from vigil.profiles.recovery import save_checkpoint

        self.abandon_checkpoint()
        self._changed = set()
        return save_checkpoint(store, ((k, key, p.to_bytes()) for k, key, p in self.items()))

    def restore(self, store: Store) -> dict | None:
        """Load the newest checkpoint; returns the state saved with it (its log position)."""
        self._profiles = {
            (kind, key): Profile.from_bytes(data) for kind, key, data in store.load_profiles()
        }
        self._changed = set()
        self._to_take, self._taken, self._handed = None, {}, set()
        return store.load_profile_state()


def open_profile_store(settings: Settings) -> ProfileStore:
    """The store ``settings.profiles_url`` names: Redis for ``redis://…``, else in process."""
    url = settings.profiles_url
    if url is None or url in ("", "memory", "memory://"):
        return MemoryProfileStore(settings.profiles)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from vigil.profiles.redis_store import RedisProfileStore

        return RedisProfileStore.from_url(url, settings.profiles)
    raise ValueError(f"profiles_url: {url!r} is not redis://… (or unset for in-process profiles)")
