"""Enrichment: attach reference data (card, terminal, user) and the event's place and times.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Card, Terminal, Transaction
>>> from vigil.storage.reference import ReferenceData
>>> ref = ReferenceData(terminals={"ATM-1": Terminal(terminal_id="ATM-1", latitude=6.5,
...                                                  longitude=3.4)},
...                     cards={"c-1": Card(card_id="c-1")})
>>> tx = Transaction(event_id="e", transaction_id="t", card_id="c-9", terminal_id="ATM-1",
...                  type="withdrawal", amount="12.34", timestamp=datetime(2022, 1, 1, tzinfo=UTC))
>>> ctx = Enricher(ref).enrich(tx)
>>> ctx.amount_cents, ctx.latitude, ctx.notes
(1234, 6.5, ['unknown_card'])
"""

from __future__ import annotations

from decimal import Decimal

from vigil.detect.context import Context
from vigil.domain import Login, Phase, Transaction
from vigil.domain.events import Channel, Direction, TransactionType
from vigil.geo import haversine_km
from vigil.profiles.windows import CATEGORY_INDEX
from vigil.storage.reference import ReferenceData

_LOGIN = CATEGORY_INDEX["login"]
_LOGIN_FAILED = CATEGORY_INDEX["login_failed"]
_TRANSFER_IN = CATEGORY_INDEX["transfer_in"]
_CARD_PRESENT = frozenset({Channel.ATM, Channel.POS})
_HUNDRED = Decimal(100)


def _category(tx: Transaction) -> int:
    if tx.type is TransactionType.TRANSFER and tx.direction is Direction.CREDIT:
        return _TRANSFER_IN
    return CATEGORY_INDEX[tx.type.value]


class Enricher:
    def __init__(self, reference: ReferenceData) -> None:
        self.reference = reference

    def enrich(self, event: Transaction | Login) -> Context:
        if isinstance(event, Login):
            return self._login(event)
        return self._transaction(event)

    def _transaction(self, tx: Transaction) -> Context:
        ref = self.reference
        end = tx.timestamp.timestamp()
        start = tx.started_at.timestamp() if tx.started_at is not None else end
        amount = None
        if tx.amount is not None and tx.phase is not Phase.START:
            amount = int((tx.amount * _HUNDRED).to_integral_value())
        ctx = Context(tx, start, end, _category(tx), amount)
        notes = ctx.notes
        if tx.card_id is not None:
            ctx.card = ref.cards.get(tx.card_id)
            if ctx.card is None and ref.cards:
                notes.append("unknown_card")
        if tx.user_id is not None:
            ctx.user = ref.users.get(tx.user_id)
        terminal_id = tx.terminal_id
        if terminal_id is not None:
            terminal = ctx.terminal = ref.terminals.get(terminal_id)
            if terminal is not None:
                ctx.latitude, ctx.longitude, ctx.place = (
                    terminal.latitude,
                    terminal.longitude,
                    terminal_id,
                )
            elif ref.terminals:
                notes.append("unknown_terminal")
        if ctx.latitude is None and tx.latitude is not None:
            ctx.latitude, ctx.longitude, ctx.place = tx.latitude, tx.longitude, tx.country
        ctx.card_present = tx.channel in _CARD_PRESENT and tx.card_id is not None
        card = ctx.card
        if (
            ctx.card_present
            and ctx.latitude is not None
            and card is not None
            and card.latitude is not None
            and card.longitude is not None
        ):
            ctx.home_km = haversine_km(card.latitude, card.longitude, ctx.latitude, ctx.longitude)
        return ctx

    def _login(self, login: Login) -> Context:
        when = login.timestamp.timestamp()
        ctx = Context(login, when, when, _LOGIN if login.success else _LOGIN_FAILED, None)
        ctx.user = self.reference.users.get(login.user_id)
        if login.latitude is not None:
            ctx.latitude, ctx.longitude, ctx.place = login.latitude, login.longitude, login.country
        return ctx
