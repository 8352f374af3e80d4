"""Failed API-key checks, limited per key id and per client address.

A wrong secret for a known key id costs an argon2 verification (a third of a second of CPU with
the default parameters). Any client that holds a key knows a key id, so without a limit it can
keep the server's CPUs busy guessing, and guess. :class:`FailureLimit` counts failures per name
(``key <id>``, ``client <address>``) in a fixed window; past ``limit`` failures the name is
refused until its window ends, before any row is read or hash computed.

Only checks that would cost argon2 are refused: a key this server verified before, whose cache
entry merely ran out, is re-read without argon2 and is never held up by others' failures.

>>> now = [0.0]
>>> limit = FailureLimit(limit=2, window=60, clock=lambda: now[0])
>>> limit.failed("key k", "client a"); limit.failed("key k", "client b")
>>> limit.check("client a")
>>> limit.check("client a", "key k")
Traceback (most recent call last):
...
vigil.api.attempts.KeyThrottled: too many failed key checks for key k; try again in 60 s
>>> now[0] = 60.0
>>> limit.check("key k")
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

# Past this many names the expired windows are dropped; then, if still full, all of them
# (memory stays bounded whatever addresses an attacker sends from).
_NAMES_LIMIT = 100_000


class KeyThrottled(Exception):
    """Too many failed key checks for this key id or client address: try after ``retry_after``
    seconds (the API answers 429 with ``Retry-After``)."""

    def __init__(self, name: str, retry_after: float) -> None:
        self.name = name
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(
            f"too many failed key checks for {name}; try again in {self.retry_after} s"
        )


class FailureLimit:
    """At most ``limit`` failures per name in each ``window`` seconds (thread-safe)."""

    def __init__(
        self, limit: int = 10, window: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit: at least 1 failure, in a window of more than 0 s")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # name -> (window start, failures)

    def check(self, *names: str) -> None:
        """Raise :class:`KeyThrottled` naming the first refused name among ``names``."""
        now = self._clock()
        with self._lock:
            for name in names:
                started, failures = self._windows.get(name, (now, 0))
                if failures >= self.limit and now - started < self.window:
                    raise KeyThrottled(name, started + self.window - now)

    def failed(self, *names: str) -> None:
        """Count one failure against each name."""
        now = self._clock()
        with self._lock:
            if len(self._windows) >= _NAMES_LIMIT:
                self._forget_expired(now)
            for name in names:
                started, failures = self._windows.get(name, (now, 0))
                if now - started >= self.window:
                    started, failures = now, 0
                self._windows[name] = (started, failures + 1)

    def _forget_expired(self, now: float) -> None:
        live = {n: w for n, w in self._windows.items() if now - w[0] < self.window}
        self._windows = live if len(live) < _NAMES_LIMIT else {}
