"""Impossible travel and card cloning: two places too far apart for the time between them.

For a card, the previous transaction's place and end time are compared with this
transaction's place and start time; a card that begins a transaction far away while another
of its transactions is still open is the strongest sign of a cloned card. For a user's logins
the previous known location is used, with a larger minimum distance because IP geolocation is
coarse. Only card-present transactions (ATM, POS) place the card.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Transaction
>>> from vigil.profiles import Profile
>>> card = Profile()
>>> card.record_transaction(0, 300, 0, 10000, place="LAG-1", latitude=6.45, longitude=3.39)
>>> tx = Transaction(event_id="e2", transaction_id="t2", card_id="c", type="withdrawal",
...                  amount=100, timestamp=datetime(2022, 1, 1, tzinfo=UTC))
>>> ctx = Context(tx, 1200, 1200, 0, 10000, latitude=9.06, longitude=7.49, place="ABJ-1",
...               profiles={"card": card}, card_present=True)
>>> [r.code for r in ImpossibleTravel().detect(ctx)]   # Lagos → Abuja in 15 minutes
['impossible_travel']
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from vigil.config import ImpossibleTravelConfig
from vigil.detect.base import strength
from vigil.detect.context import Context
from vigil.domain import Login, Reason
from vigil.geo import haversine_km
from vigil.profiles import Profile


class ImpossibleTravel:
    codes = ("impossible_travel", "overlapping_transactions")

    def __init__(self, config: ImpossibleTravelConfig | None = None) -> None:
        self.config = config or ImpossibleTravelConfig()

    def detect(self, ctx: Context) -> list[Reason]:
        if ctx.latitude is None or not ctx.begins:
            return []
        cfg = self.config
        if isinstance(ctx.event, Login):
            entity, min_km, max_speed = "user", cfg.login_min_distance_km, cfg.login_max_speed_kmh
        elif ctx.card_present:
            entity, min_km, max_speed = "card", cfg.min_distance_km, cfg.max_speed_kmh
        else:
            # Card not present (online, mobile): its geolocation is the customer's, not the
            # card's; stolen card details used online are for other detectors.
            return []
        profile = ctx.profiles.get(entity)
        if profile is None:
            return []
        reason = self._leg(ctx, profile, entity, min_km, max_speed)
        if reason is not None:
            return [reason]
        if entity == "card":
            return self._overlaps(ctx, profile.open.items(), min_km)
        return []

    @staticmethod
    def _leg(
        ctx: Context, profile: Profile, entity: str, min_km: float, max_speed: float
    ) -> Reason | None:
        """The leg from the profile's last known place (as of when it was there) to this event."""
        if profile.last_latitude is None or profile.last_located is None:
            return None
        km = haversine_km(
            profile.last_latitude, profile.last_longitude, ctx.latitude, ctx.longitude
        )
        if km < min_km:
            return None
        seconds = ctx.start - profile.last_located
        speed = math.inf if seconds <= 0 else km / (seconds / 3600)
        if speed <= max_speed:
            return None
        excess = math.log10(speed / max_speed) if math.isfinite(speed) else 1.0
        place = profile.last_place
        where = f"{place} → {ctx.place}" if place and ctx.place else "two places"
        return Reason(
            code="impossible_travel",
            score=strength(excess, low=0.8, high=0.99),
            detail=f"{where}: {km:,.0f} km in {max(seconds, 0) / 60:,.0f} min "
            f"({_speed(speed)}, limit {max_speed:,.0f} km/h)",
            entity=entity,
        )

    def _overlaps(
        self, ctx: Context, open_starts: Iterable[tuple[str, list]], min_km: float
    ) -> list[Reason]:
        """A start at one place while a transaction begun elsewhere has not yet ended."""
        tx_id = getattr(ctx.event, "transaction_id", None)
        for t_id, (start, place, lat, lon) in open_starts:
            if t_id == tx_id or lat is None or start > ctx.start:
                continue
            # Abandoned starts (no end for an hour) are stale, not evidence.
            if ctx.start - start > 3600:
                continue
            km = haversine_km(lat, lon, ctx.latitude, ctx.longitude)
            if km >= min_km:
                return [
                    Reason(
                        code="overlapping_transactions",
                        score=0.95,
                        detail=f"began at {ctx.place} while transaction {t_id} at {place} "
                        f"({km:,.0f} km away) was still open",
                        entity="card",
                    )
                ]
        return []


def _speed(speed: float) -> str:
    return "overlapping in time" if math.isinf(speed) else f"{speed:,.0f} km/h"
