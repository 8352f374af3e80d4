"""Reference data: banks, terminals, cards and users, stored as tables and held in memory by id
for enrichment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from vigil.domain.entities import Bank, Card, Terminal, User
from vigil.storage import rows as R
from vigil.storage.database import Database, need


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


class ReferenceStore(Database):
    """The ``banks``, ``terminals``, ``cards`` and ``users`` tables: upserted by id, read back
    whole. Card numbers are stored as their tokens and users' contact data sealed.

    >>> from vigil.storage import Store
    >>> store = Store("sqlite://"); store.init_schema()
    >>> store.upsert_terminals([Terminal(terminal_id="T1", latitude=52.2, longitude=21.0)])
    1
    >>> sorted(store.load_reference().terminals)
    ['T1']
    """

    def upsert_banks(self, banks: Iterable[Bank], conn: Connection | None = None) -> int:
        rows = [R.bank_row(b) for b in need(banks, Bank, "banks")]
        with self._joined(conn) as c:
            return self._upsert(c, self.tables.banks, rows)

    def upsert_terminals(
        self, terminals: Iterable[Terminal], conn: Connection | None = None
    ) -> int:
        rows = [R.terminal_row(t) for t in need(terminals, Terminal, "terminals")]
        with self._joined(conn) as c:
            return self._upsert(c, self.tables.terminals, rows)

    def upsert_cards(self, cards: Iterable[Card], conn: Connection | None = None) -> int:
        rows = self._pseudonymised(R.card_row(card) for card in need(cards, Card, "cards"))
        with self._joined(conn) as c:
            return self._upsert(c, self.tables.cards, rows)

    def upsert_users(self, users: Iterable[User], conn: Connection | None = None) -> int:
        seal = self.privacy.cipher.seal_user
        rows = [seal(R.user_row(u)) for u in need(users, User, "users")]
        with self._joined(conn) as c:
            return self._upsert(c, self.tables.users, rows)

    def load_reference(self) -> ReferenceData:
        """Every bank, terminal, card and user, keyed by id."""
        t = self.tables
        with self.engine.connect() as conn:
            return ReferenceData(
                banks={r.code: R.bank_from_row(r._mapping) for r in conn.execute(select(t.banks))},
                terminals={
                    r.terminal_id: R.terminal_from_row(r._mapping)
                    for r in conn.execute(select(t.terminals))
                },
                cards={
                    r.card_id: R.card_from_row(r._mapping) for r in conn.execute(select(t.cards))
                },
                users={
                    r.user_id: R.user_from_row(self.privacy.cipher.open_user(r._mapping))
                    for r in conn.execute(select(t.users))
                },
            )
