"""Profiles: how each card, user, account, terminal and device usually behaves.

One concept per module: sliding windows (``windows``), running moments (``running``), a
quantile sketch (``sketch``), bounded seen-values (``seen``), the recent-events ring
(``recent``), the per-entity record (``profile``), how an event updates the records
(``update``) and where records live (``store``).
"""

from vigil.profiles.profile import Profile
from vigil.profiles.store import ENTITY_KINDS, MemoryProfileStore, ProfileStore

__all__ = ["ENTITY_KINDS", "MemoryProfileStore", "Profile", "ProfileStore"]
