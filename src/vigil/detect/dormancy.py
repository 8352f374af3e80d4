"""A dormant account suddenly active: the customer acts again after months of silence.

Dormant means the event's own profiles (card, account, user — not the terminal, device or
network it used) hold no act of the customer for ``dormant_days``, and together at least
``min_history`` events, so a new customer is never dormant. Only what the customer initiates
wakes an account up: a successful login or a debit. Money arriving (an incoming transfer) or a
failed password is not the customer acting, and does not keep the account awake either; that
is read from the longest window (90 days), so a ``dormant_days`` beyond it is judged from the
last event of any kind. The score grows with the silence, from ``low_score`` at
``dormant_days`` to ``high_score`` at ``full_days``.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Login
>>> from vigil.profiles import Profile
>>> t0 = datetime(2022, 1, 1, tzinfo=UTC).timestamp()
>>> user = Profile()
>>> for day in range(20):
...     user.record_login(t0 + day * 86400.0, True, latitude=None, longitude=None, place=None)
>>> at = datetime(2022, 8, 1, tzinfo=UTC)
>>> user.advance(at.timestamp())   # the engine reads profiles as of the event's time
>>> ctx = Context(Login(event_id="l", user_id="u", timestamp=at), at.timestamp(),
...               at.timestamp(), 5, None, profiles={"user": user})
>>> [r.detail for r in DormantReactivation().detect(ctx)]
['first activity of the customer in 193 days (last 2022-01-20, 20 events before)']
"""

from __future__ import annotations

from datetime import UTC, datetime

from vigil.config import DormancyConfig
from vigil.detect.base import strength
from vigil.detect.context import Context
from vigil.domain import Direction, Login, Phase, Reason
from vigil.profiles.windows import CATEGORY_INDEX, N_CATEGORIES, N_WINDOWS, WINDOWS

_DAY = 86400.0
_OWN = ("card", "account", "user")
# Money arriving and failed passwords are not the customer acting (the second may be the
# attacker), so they neither keep an account awake nor end its dormancy.
_PASSIVE = (CATEGORY_INDEX["transfer_in"], CATEGORY_INDEX["login_failed"])
_ACTIVE = tuple(c for c in range(N_CATEGORIES) if c not in _PASSIVE)
_LONGEST = N_WINDOWS - 1
_LONGEST_DAYS = WINDOWS[_LONGEST][1] / _DAY


class DormantReactivation:
    codes = ("dormant_reactivated",)

    def __init__(self, config: DormancyConfig | None = None) -> None:
        self.config = config or DormancyConfig()

    def detect(self, ctx: Context) -> list[Reason]:
        event = ctx.event
        if isinstance(event, Login):
            if not event.success:
                return []
        elif event.direction is not Direction.DEBIT or event.phase is Phase.END:
            return []  # an end event's start already had its say
        cfg = self.config
        last: float | None = None
        events = 0
        for kind in _OWN:
            profile = ctx.profiles.get(kind)
            if profile is None or profile.first_time is None:
                continue
            if ctx.start - profile.first_time < cfg.dormant_days * _DAY:
                return []  # younger than the dormancy period: cannot have slept through it
            counts = profile.windows.count
            if any(counts(_LONGEST, category) for category in _ACTIVE):
                return []
            events = max(events, profile.n)
            seen = profile.last_time or profile.first_time
            last = seen if last is None else max(last, seen)
        if last is None or events < cfg.min_history:
            return []
        idle = (ctx.start - last) / _DAY
        if idle < _LONGEST_DAYS:
            # Only passive events lately: the customer's own last act is older than the
            # longest window, which is all the windows can say.
            idle = _LONGEST_DAYS
            since = f"over {idle:.0f} days (since then only money in or failed logins)"
        else:
            when = datetime.fromtimestamp(last, UTC).date().isoformat()
            since = f"{idle:.0f} days (last {when}, {events} events before)"
        if idle < cfg.dormant_days:
            return []
        span = max(cfg.full_days - cfg.dormant_days, 1.0)
        return [
            Reason(
                code="dormant_reactivated",
                score=strength(
                    (idle - cfg.dormant_days) / span,
                    low=cfg.low_score,
                    high=cfg.high_score,
                ),
                detail=f"first activity of the customer in {since}",
                entity="user" if "user" in ctx.profiles else "account",
            )
        ]
