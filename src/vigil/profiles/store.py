"""Where profiles live between events: the protocol, and the in-process default.

The in-process store keeps every profile in a dict and snapshots them to the SQL store, so a
restart resumes where it stopped. Production backends (Redis) implement the same protocol.

>>> store = MemoryProfileStore()
>>> p = store.get("card", "c-1")
>>> p.n, len(store)
(0, 0)
>>> store.put("card", "c-1", p); len(store)
1
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from vigil.config import ProfilesConfig
from vigil.profiles.profile import Profile

if TYPE_CHECKING:
    from vigil.storage import Store

ENTITY_KINDS = ("card", "user", "account", "terminal", "device")


class ProfileStore(Protocol):
    def get(self, kind: str, key: str) -> Profile:
        """The entity's profile, or a new empty one (not stored until :meth:`put`)."""
        ...

    def put(self, kind: str, key: str, profile: Profile) -> None: ...

    def items(self) -> Iterator[tuple[str, str, Profile]]: ...

    def __len__(self) -> int: ...


class MemoryProfileStore:
    """Profiles in a dict keyed by (kind, key); snapshot and restore through the SQL store."""

    def __init__(self, config: ProfilesConfig | None = None) -> None:
        self.config = config or ProfilesConfig()
        self._profiles: dict[tuple[str, str], Profile] = {}

    def __len__(self) -> int:
        return len(self._profiles)

    def get(self, kind: str, key: str) -> Profile:
        profile = self._profiles.get((kind, key))
        if profile is None:
            c = self.config
            profile = Profile(
                top_k=c.top_k, recent_window=c.recent_window_seconds, recent_max=c.recent_max_events
            )
        return profile

    def put(self, kind: str, key: str, profile: Profile) -> None:
        self._profiles[(kind, key)] = profile

    def items(self) -> Iterator[tuple[str, str, Profile]]:
        for (kind, key), profile in self._profiles.items():
            yield kind, key, profile

    def snapshot(self, store: Store, state: dict | None = None) -> int:
        """Write every profile to the SQL store in one transaction; returns how many."""
        rows = ((kind, key, p.to_bytes()) for kind, key, p in self.items())
        return store.save_profiles(rows, state)

    def restore(self, store: Store) -> dict | None:
        """Load the last snapshot; returns the state saved with it (e.g. the watermark)."""
        self._profiles = {
            (kind, key): Profile.from_bytes(data) for kind, key, data in store.load_profiles()
        }
        return store.load_profile_state()
