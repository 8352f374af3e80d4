"""Impossible travel and card cloning: two places too far apart for the time between them.

For a card, the previous transaction's place and end time are compared with this
transaction's place and start time; a card that begins a transaction far away while another
of its transactions is still open is the strongest sign of a cloned card. For a user's logins
the previous known location is used, with a larger minimum distance because IP geolocation is
coarse. Only card-present transactions (ATM, POS) place the card.

A cloned card used far away moves the card's last place there, and the genuine card's next
transaction back home would look impossible in turn. So before a card is flagged, the places
it was at just before (its recent events) are looked at: when this transaction is consistent
with where the card was before a run of out-of-place transactions (the card's own side of a
jump too fast to travel), the card is back, not travelling. It is
not flagged; a ``travel_return`` reason of no weight names the out-of-place transactions as
the evidence (their case, not this one's).

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
from vigil.profiles.recent import RecentEvent


class ImpossibleTravel:
    codes = ("impossible_travel", "overlapping_transactions", "travel_return")

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
            if entity == "card":
                back = _returned(ctx, profile, min_km, max_speed)
                if back is not None:
                    return [back]
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
        seconds = ctx.start - profile.last_located
        speed = _speed(km, seconds)
        if km < min_km or speed <= max_speed:
            return None
        excess = math.log10(speed / max_speed) if math.isfinite(speed) else 1.0
        place = profile.last_place
        where = f"{place} → {ctx.place}" if place and ctx.place else "two places"
        return Reason(
            code="impossible_travel",
            score=strength(excess, low=0.8, high=0.99),
            detail=f"{where}: {km:,.0f} km in {max(seconds, 0) / 60:,.0f} min "
            f"({_pace(speed)}, limit {max_speed:,.0f} km/h)",
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


def _returned(ctx: Context, card: Profile, min_km: float, max_speed: float) -> Reason | None:
    """The card back where it was before a run of out-of-place transactions, or None.

    The run is the card's newest located transactions at the last place (within ``min_km``
    of it), which this event could not have come from; the transaction before it is where
    the card was before. This event must be reachable from there, the run must have begun
    with a jump from there too fast to travel, and that place must be the card's own side of
    the jump (:func:`_own_side`): otherwise the card may really have gone to the run's
    place, and this event is the odd one out.
    """
    located = [e for e in card.recent.events if e.latitude is not None]
    if not located:
        return None
    last = located[-1]
    run: list[RecentEvent] = []
    while located and _near(located[-1], last, min_km):
        run.append(located.pop())
    if not located:
        return None
    before, first = located[-1], run[-1]
    if (
        before.place is None
        or not _own_side(ctx, card, before, last)
        or not _reachable(before, ctx.latitude, ctx.longitude, ctx.start, min_km, max_speed)
        or _reachable(before, first.latitude, first.longitude, first.start, min_km, max_speed)
    ):
        return None
    run.reverse()
    places = ", ".join(dict.fromkeys(str(e.place) for e in run))
    return Reason(
        code="travel_return",
        score=0.0,
        detail=f"back at {ctx.place}, consistent with {before.place} before {len(run)} "
        f"out-of-place transaction(s) at {places}: those are the case",
        entity="card",
        evidence=tuple(e.transaction_id for e in run if e.transaction_id is not None),
    )


def _near(event: RecentEvent, place: RecentEvent, min_km: float) -> bool:
    return haversine_km(event.latitude, event.longitude, place.latitude, place.longitude) < min_km


def _own_side(ctx: Context, card: Profile, before: RecentEvent, away: RecentEvent) -> bool:
    """Whether ``before`` is the card's own side of the jump to ``away``: a terminal the card
    knew before it was there, or a place nearer the card's home (reference data) than
    ``away``. A clone's place is neither, so a clone used after the card's return is not
    taken for the card coming back."""
    terminals = card.seen.get("terminal")
    first = terminals.first_seen(before.place) if terminals is not None else None
    if first is not None and first < before.end:
        return True
    home = ctx.card
    if home is None or home.latitude is None or home.longitude is None:
        return False
    return haversine_km(
        home.latitude, home.longitude, before.latitude, before.longitude
    ) < haversine_km(home.latitude, home.longitude, away.latitude, away.longitude)


def _reachable(
    origin: RecentEvent,
    latitude: float | None,
    longitude: float | None,
    at: float,
    min_km: float,
    max_speed: float,
) -> bool:
    """Whether the card could be at (latitude, longitude) at ``at`` after ``origin`` ended."""
    km = haversine_km(origin.latitude, origin.longitude, latitude, longitude)
    return km < min_km or _speed(km, at - origin.end) <= max_speed


def _speed(km: float, seconds: float) -> float:
    """km/h over ``seconds``; infinite when the two overlap in time."""
    return math.inf if seconds <= 0 else km / (seconds / 3600)


def _pace(speed: float) -> str:
    return "overlapping in time" if math.isinf(speed) else f"{speed:,.0f} km/h"
