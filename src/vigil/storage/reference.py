"""Reference data held in memory for enrichment: banks, terminals, cards and users by id."""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil.domain.entities import Bank, Card, Terminal, User


@dataclass(slots=True)
class ReferenceData:
    """Every bank, terminal, card and user, each a dict from its id to the domain model.

    >>> ref = ReferenceData(banks={"B1": Bank(code="B1", name="First Bank")})
    >>> ref.banks["B1"].name, len(ref.cards)
    ('First Bank', 0)
    """

    banks: dict[str, Bank] = field(default_factory=dict)
    terminals: dict[str, Terminal] = field(default_factory=dict)
    cards: dict[str, Card] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
