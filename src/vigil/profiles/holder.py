"""Which running server holds a store's profiles in process.

In-process profiles live inside ``vigil serve``; a command that changes the store behind its
back (``vigil forget``, ``vigil replay``) would be undone by the server's next checkpoint, which
writes its own profiles back. So a server registers itself as the holder and renews the
registration as it runs, and such commands refuse while a holder is alive, saying what to do
instead. A holder killed outright stops renewing: after three missed renewals it no longer
counts.

>>> import tempfile
>>> from vigil.storage import Store
>>> store = Store(f"sqlite:///{tempfile.mkdtemp()}/v.db"); store.init_schema()
>>> holder = register(store, every_seconds=30)
>>> live_holder(store)["pid"] == os.getpid()
True
>>> release(store); live_holder(store) is None
True
"""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vigil.storage import Store

_NAME = "holder"
_MISSED = 3


class HeldByServer(RuntimeError):
    """A command refused because a running server holds the profiles in process."""

    def __init__(self, holder: dict[str, Any], what: str) -> None:
        super().__init__(
            f"database: a running vigil serve (pid {holder['pid']} on {holder['host']}) keeps "
            f"this store's profiles in process; {what}"
        )


def register(store: Store, *, every_seconds: float) -> dict[str, Any]:
    """Record this process as the holder, renewed every ``every_seconds``."""
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "every_seconds": every_seconds,
        "renewed": time.time(),
    }
    store.save_profile_state(_NAME, holder)
    return holder


def renew(store: Store, holder: dict[str, Any]) -> None:
    holder["renewed"] = time.time()
    store.save_profile_state(_NAME, holder)


def release(store: Store) -> None:
    store.save_profile_state(_NAME, None)


def live_holder(store: Store) -> dict[str, Any] | None:
    """The registered holder, if it renewed its registration recently enough."""
    holder = store.load_profile_state(_NAME)
    if holder is None:
        return None
    missed = (time.time() - holder["renewed"]) / holder["every_seconds"]
    return holder if missed < _MISSED else None


def refuse_if_held(store: Store, what: str) -> None:
    """Raise :class:`HeldByServer` when a live server holds the profiles."""
    holder = live_holder(store)
    if holder is not None:
        raise HeldByServer(holder, what)
