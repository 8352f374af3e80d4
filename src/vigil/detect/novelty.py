"""A login or payment from a country or device the user has never used.

"New" means little for a user with three events; the score grows with how settled the
profile is (its number of events, up to ``settled_after``). A new country alone stays below
the step-up threshold by default (people travel), a new device alone too (people change
phones); both at once is how an account takeover looks. The user's registered home country
is never new.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Login
>>> from vigil.profiles import Profile
>>> user = Profile()
>>> for t in range(10):
...     user.record_login(t * 86400.0, True, latitude=None, longitude=None, place="NG",
...                       attributes=(("country", "NG"), ("device", "d-1")))
>>> login = Login(event_id="l", user_id="u", timestamp=datetime(2022, 2, 1, tzinfo=UTC),
...               country="GB", device_id="d-9")
>>> ctx = Context(login, 0, 0, 5, None, profiles={"user": user})
>>> sorted(r.code for r in UnfamiliarCountryOrDevice().detect(ctx))
['new_country', 'new_device']
"""

from __future__ import annotations

from vigil.config import NoveltyConfig
from vigil.detect.context import Context
from vigil.domain import Reason


class UnfamiliarCountryOrDevice:
    codes = ("new_country", "new_device")

    def __init__(self, config: NoveltyConfig | None = None) -> None:
        self.config = config or NoveltyConfig()

    def detect(self, ctx: Context) -> list[Reason]:
        event = ctx.event
        if not ctx.begins or getattr(event, "success", True) is False:
            return []
        user = ctx.profiles.get("user")
        if user is None or user.n == 0:
            return []
        settled = min(1.0, user.n / self.config.settled_after)
        reasons = []
        country = event.country
        home = ctx.user.country if ctx.user is not None else None
        if (
            country is not None
            and country != home
            and user.seen_count("country")
            and not user.has_seen("country", country)
        ):
            usual = ", ".join(v for v, _ in user.seen["country"].most_common(3))
            reasons.append(
                Reason(
                    code="new_country",
                    score=self.config.new_country_score * settled,
                    detail=f"first activity from {country} (usual: {usual})",
                    entity="user",
                )
            )
        device = event.device_id
        if device is not None and user.seen_count("device") and not user.has_seen("device", device):
            reasons.append(
                Reason(
                    code="new_device",
                    score=self.config.new_device_score * settled,
                    detail=f"first use of device {device[:12]} after {user.n} events "
                    f"on {user.seen_count('device')} known device(s)",
                    entity="user",
                )
            )
        return reasons
