"""The facts vigil decides on: transactions, logins, and later feedback on them.

Events are immutable. A two-phase transaction arrives as a ``start`` event (no amount) and an
``end`` event (with the amount and completion time), paired by ``transaction_id``; most
sources send one ``single`` event instead.

>>> from datetime import datetime, UTC
>>> tx = Transaction(event_id="e1", transaction_id="t1", card_id="c-1", type="withdrawal",
...                  timestamp=datetime(2022, 1, 3, 10, tzinfo=UTC), amount="2500.00")
>>> tx.phase, tx.channel, tx.amount
(<Phase.SINGLE: 'single'>, <Channel.ATM: 'atm'>, Decimal('2500.00'))
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from vigil.domain.types import (
    ZERO_DECIMAL_CURRENCIES,
    Amount,
    CountryCode,
    CurrencyCode,
    FreeText,
    Identifier,
    Latitude,
    Longitude,
    Printable,
    UtcDatetime,
    decimals,
)


class TransactionType(StrEnum):
    WITHDRAWAL = "withdrawal"
    DEPOSIT = "deposit"
    TRANSFER = "transfer"
    PAYMENT = "payment"
    BALANCE_INQUIRY = "balance_inquiry"


class Channel(StrEnum):
    ATM = "atm"
    POS = "pos"
    ONLINE = "online"
    MOBILE = "mobile"


class Phase(StrEnum):
    START = "start"
    END = "end"
    SINGLE = "single"


class Direction(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class FeedbackLabel(StrEnum):
    FRAUD = "fraud"
    LEGITIMATE = "legitimate"
    DISPUTE = "dispute"
    STANDIN_RECOVERED = "standin_recovered"
    STANDIN_LOSS = "standin_loss"


_FROZEN = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


def _given(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


# "latitude/longitude: give both or neither", in the schema too: what a client (or a fuzzer)
# reads in the OpenAPI document is what the validator accepts.
_BOTH_OR_NEITHER = {
    "allOf": [
        {"if": _given("latitude"), "then": _given("longitude")},
        {"if": _given("longitude"), "then": _given("latitude")},
    ]
}
_PLACED = ConfigDict(**_FROZEN, json_schema_extra=_BOTH_OR_NEITHER)

# Deposits credit the account; every other type debits it unless the source says otherwise.
_DEFAULT_DIRECTION = {TransactionType.DEPOSIT: Direction.CREDIT}


class Transaction(BaseModel):
    """A withdrawal, deposit, transfer, payment or balance inquiry, or one phase of it.

    ``timestamp`` is when this event happened: the start for ``start`` and ``single`` events,
    the completion for ``end`` events (whose ``started_at`` may repeat the start).
    """

    model_config = _PLACED

    kind: Literal["transaction"] = "transaction"
    event_id: Identifier
    transaction_id: Identifier
    timestamp: UtcDatetime
    type: TransactionType
    phase: Phase = Phase.SINGLE
    channel: Channel = Channel.ATM
    started_at: UtcDatetime | None = None
    amount: Amount | None = None
    currency: CurrencyCode = "NGN"
    card_id: Identifier | None = None
    account_id: Identifier | None = None
    user_id: Identifier | None = None
    terminal_id: Identifier | None = None
    counterparty_account: Identifier | None = None
    counterparty_country: CountryCode | None = None
    direction: Direction | None = None
    ip: Annotated[str, Field(max_length=64), *Printable] | None = None
    device_id: Identifier | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    country: CountryCode | None = None
    standin: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Transaction:
        if self.phase is Phase.START:
            if self.amount is not None and self.type is not TransactionType.BALANCE_INQUIRY:
                raise ValueError("amount: a start event carries no amount (the end event does)")
        elif self.amount is None:
            if self.type is TransactionType.BALANCE_INQUIRY:
                object.__setattr__(self, "amount", Decimal(0))
            else:
                raise ValueError(f"amount: required on a {self.phase.value} {self.type.value}")
        if (
            self.amount
            and self.currency in ZERO_DECIMAL_CURRENCIES
            and decimals(Decimal(self.amount))
        ):
            raise ValueError(f"amount: {self.currency} has no minor unit; got {self.amount}")
        if self.card_id is None and self.account_id is None and self.user_id is None:
            raise ValueError("card_id: a transaction needs a card_id, account_id or user_id")
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude/longitude: give both or neither")
        if self.started_at is not None and self.started_at > self.timestamp:
            raise ValueError("started_at: after the event's timestamp")
        if self.direction is None:
            direction = _DEFAULT_DIRECTION.get(self.type, Direction.DEBIT)
            object.__setattr__(self, "direction", direction)
        return self


class Login(BaseModel):
    """One login attempt to internet or mobile banking."""

    model_config = _PLACED

    kind: Literal["login"] = "login"
    event_id: Identifier
    user_id: Identifier
    timestamp: UtcDatetime
    success: bool = True
    ip: Annotated[str, Field(max_length=64), *Printable] | None = None
    device_id: Identifier | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    country: CountryCode | None = None
    session_seconds: Annotated[float, Field(ge=0, le=7 * 86400)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Login:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude/longitude: give both or neither")
        return self


class Feedback(BaseModel):
    """A later label on an earlier event, from an analyst, the customer or a settlement file."""

    model_config = _FROZEN

    kind: Literal["feedback"] = "feedback"
    event_id: Identifier
    target_event_id: Identifier
    label: FeedbackLabel
    timestamp: UtcDatetime
    source: Annotated[str, Field(max_length=64)] = "analyst"
    pattern: Annotated[str, Field(max_length=64)] | None = None
    note: Annotated[str, Field(max_length=2000), *FreeText] | None = None


Event = Annotated[Transaction | Login | Feedback, Field(discriminator="kind")]
_EVENT_ADAPTER: TypeAdapter[Transaction | Login | Feedback] = TypeAdapter(Event)


def parse_event(data: dict | str | bytes) -> Transaction | Login | Feedback:
    """Validate one event from a dict or a JSON document; raises ``pydantic.ValidationError``."""
    if isinstance(data, str | bytes):
        return _EVENT_ADAPTER.validate_json(data)
    return _EVENT_ADAPTER.validate_python(data)
