"""Terminal risk measured with a label delay: what share of a terminal's transactions were fraud.

A label is only known some time after its transaction (the customer calls, settlement
arrives). With delay ``d`` the risk at time ``t`` over window ``W`` looks at the transactions
of a window of length ``W`` ending one delay ago, and counts those whose fraud label is known
by ``t``: a label that arrives later never leaks into an earlier feature.

The counts live in the terminal's profile (:mod:`vigil.profiles.fraud`), not in a process:
every completed transaction at the terminal is counted there by the profile update, and every
fraud label by whichever process receives it (``Engine.learn``). So every process sharing the
profiles (stream workers, ``serve --workers N``) reads what one process would, and the counts
are recovered from the log with the profiles. Kept in tiles, the window read at ``t`` ends at
``floor((t - d) / h) * h`` for its tile ``h`` (1 hour for 1 d, 6 hours for 7 d, a day for
30 d): a delay at most one tile longer than ``d``, never shorter. Offline,
:func:`vigil.features.transaction_features` applies the same rule, tiles included, to labels
with a ``known_at`` column (and to labels without one as known one delay after the
transaction, the earliest any counts).

A :class:`TerminalRisk` is what reads them: a model's label delay (the gap it was trained with),
applied to a terminal's profile.

>>> from vigil.profiles import Profile
>>> day = 86400.0
>>> atm = Profile()
>>> for d in range(4):
...     atm.fraud_tiles().add(d * day + 60)
>>> atm.fraud.label(1 * day + 60)
True
>>> risk = TerminalRisk(label_delay=7 * day)
>>> risk.counts(atm, 12 * day, 7 * day)  # 7 d ending on day 5: all four, one label known
(4, 1)
>>> risk.rate(atm, 12 * day, 7 * day), risk.rate(None, 12 * day, 7 * day)
(0.25, nan)
"""

from __future__ import annotations

import math

from vigil.profiles.fraud import LABEL_DELAY_MAX, WINDOW_INDEX, WINDOWS
from vigil.profiles.profile import Profile


class TerminalRisk:
    """The terminal-risk reader of a model trained with ``label_delay`` (seconds)."""

    __slots__ = ("label_delay",)

    def __init__(self, label_delay: float) -> None:
        if not label_delay > 0:
            raise ValueError("label_delay: must be positive (a zero delay leaks labels)")
        if label_delay > LABEL_DELAY_MAX:
            raise ValueError(
                f"label_delay: {label_delay / 86400:g} days is longer than the "
                f"{LABEL_DELAY_MAX / 86400:g} days terminal profiles keep transactions for "
                "(vigil.profiles.fraud.LABEL_DELAY_MAX); train with a shorter delay"
            )
        self.label_delay = float(label_delay)

    def counts(self, terminal: Profile | None, now: float, window: float) -> tuple[int, int]:
        """(transactions, known frauds) of the terminal's profile in the window of ``window``
        seconds (1, 7 or 30 days) read at ``now``; (0, 0) without a profile."""
        index = WINDOW_INDEX.get(window)
        if index is None:
            days = ", ".join(f"{w / 86400:g}" for w in WINDOWS)
            raise ValueError(f"window: terminal risk is kept over {days} days, not {window} s")
        fraud = terminal.fraud if terminal is not None else None
        if fraud is None:
            return 0, 0
        return fraud.counts(index, now, self.label_delay)

    def rate(self, terminal: Profile | None, now: float, window: float) -> float:
        """Known-fraud share of the window's transactions; NaN when it holds none."""
        n, frauds = self.counts(terminal, now, window)
        return frauds / n if n else math.nan
