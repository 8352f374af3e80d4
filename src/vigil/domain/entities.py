"""Reference data: banks, terminals (ATMs and POS), cards and users; changes rarely.

A card's CVC is not a field here on purpose: payment-card rules forbid storing it.

>>> Card(card_id="c-1", user_id="u-1", extract_limit=50000).extract_limit
50000.0
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from vigil.domain.types import CountryCode, Identifier, Latitude, Longitude, UtcDatetime

_REF = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Bank(BaseModel):
    model_config = _REF

    code: Identifier
    name: Annotated[str, Field(min_length=1, max_length=200)]
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class TerminalKind(StrEnum):
    ATM = "atm"
    POS = "pos"


class Terminal(BaseModel):
    """An ATM or POS terminal; ``internal`` when the card's own bank owns it."""

    model_config = _REF

    terminal_id: Identifier
    latitude: Latitude
    longitude: Longitude
    kind: TerminalKind = TerminalKind.ATM
    city: Annotated[str, Field(max_length=100)] | None = None
    country: Annotated[str, Field(max_length=100)] | None = None
    bank_code: Identifier | None = None
    internal: bool = True


class CardBehaviour(BaseModel):
    """The card's usual behaviour, known before its first event: seeds the profile's priors."""

    model_config = _REF

    amount_avg_withdrawal: NonNegative = 0.0
    amount_std_withdrawal: NonNegative = 0.0
    withdrawal_day: NonNegative = 0.0
    amount_avg_deposit: NonNegative = 0.0
    amount_std_deposit: NonNegative = 0.0
    deposit_day: NonNegative = 0.0
    inquiry_day: NonNegative = 0.0
    amount_avg_transfer: NonNegative = 0.0
    amount_std_transfer: NonNegative = 0.0
    transfer_day: NonNegative = 0.0


class Card(BaseModel):
    model_config = _REF

    card_id: Identifier
    user_id: Identifier | None = None
    bank_code: Identifier | None = None
    expiration: date | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    extract_limit: NonNegative | None = None
    behaviour: CardBehaviour | None = None


class User(BaseModel):
    model_config = _REF

    user_id: Identifier
    created_at: UtcDatetime | None = None
    country: CountryCode | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    email: Annotated[str, Field(max_length=320)] | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    address: Annotated[str, Field(max_length=500)] | None = None
