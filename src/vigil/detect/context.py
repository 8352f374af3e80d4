"""What a detector sees: the event, its reference data, and the profiles as they were before it.

Built once per event by :mod:`vigil.enrich`; detectors only read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.domain import Card, Login, Terminal, Transaction, User
from vigil.profiles import Profile


@dataclass(slots=True)
class Context:
    """One event as the detectors see it. :class:`vigil.enrich.Enricher` builds it; by hand:

    >>> from datetime import datetime, UTC
    >>> from vigil.domain import Card
    >>> tx = Transaction(event_id="e", transaction_id="t", card_id="c", type="withdrawal",
    ...                  phase="end", amount="20.00", timestamp=datetime(2024, 1, 1, tzinfo=UTC))
    >>> ctx = Context(tx, 0.0, 30.0, 0, 2_000, card=Card(card_id="c", user_id="u"))
    >>> ctx.amount, ctx.user_id, ctx.begins
    (20.0, 'u', False)
    """

    event: Transaction | Login
    # Event time in epoch seconds: ``start`` when it began, ``end`` when it completed (equal
    # for single events and logins; for an end event ``start`` comes from its start event).
    start: float
    end: float
    # Transaction category index (see profiles.windows.CATEGORIES), or the login categories.
    category: int
    # Amount in minor units; None for start events (the amount arrives with the end).
    amount_cents: int | None
    latitude: float | None = None
    longitude: float | None = None
    place: str | None = None
    card: Card | None = None
    terminal: Terminal | None = None
    user: User | None = None
    # Profiles by entity kind ("card", "user", "account", "terminal", "device").
    profiles: dict[str, Profile] = field(default_factory=dict)
    # Reason codes found while enriching (unknown card, unknown terminal).
    notes: list[str] = field(default_factory=list)
    # True when the card itself was at the event's place (ATM, POS): only such events say where
    # the card is. An online payment's geolocation is the customer's, not the card's.
    card_present: bool = False
    # Distance in km from the card's home to a card-present event's place, when both are known.
    home_km: float | None = None

    @property
    def amount(self) -> float | None:
        return None if self.amount_cents is None else self.amount_cents / 100

    @property
    def user_id(self) -> str | None:
        """The event's user: its own ``user_id``, else the card's owner in the reference data
        (a card payment file names the card, the bank knows whose it is)."""
        user_id = self.event.user_id
        if user_id is None and self.card is not None:
            return self.card.user_id
        return user_id

    @property
    def begins(self) -> bool:
        """True when this event begins a transaction (single or start), or is a login."""
        phase = self.event.__dict__.get("phase")  # none on a login
        return phase is None or phase != "end"
