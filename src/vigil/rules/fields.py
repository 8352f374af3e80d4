"""The fields a rule may read: a typed name for everything the engine knows at decision time.

Every field is a name (``amount``, ``terminal.internal``, ``card.withdrawal.p95``), a type
(``number``, ``string`` or ``bool``; a string may list its allowed values) and a getter that
reads it from the :class:`~vigil.detect.Context` the detectors see. Profiles are read through
:class:`~vigil.profiles.Profile`'s own API (``windows.count``, ``amount_stats``,
``amount_quantile``, ``seen_count``), as they were before the event.

**Missing values.** A getter returns ``None`` when the value does not exist for this event: no
such entity on the event (``account.*`` for a card-only withdrawal), no amounts yet (``mean``,
``std``, ``min``, ``max``, ``p50``/``p95``/``p99`` of a category with ``n == 0``), no amount
(a start event, a login), no reference row (``card.extract_limit`` of an unknown card). Counts
and sums of an entity that is on the event are never missing: a new card has ``count_1d == 0``.

>>> spec = FIELDS["card.withdrawal.p95"]
>>> spec.type, spec.doc
('number', "95th percentile of the card's withdrawal amounts; missing until it has one")
>>> FIELDS["channel"].values
('atm', 'pos', 'online', 'mobile')
>>> len([name for name in FIELDS if name.startswith("card.")]) > 100
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from vigil.detect.context import Context
from vigil.domain.entities import CardBehaviour, TerminalKind
from vigil.domain.events import Channel, Direction, Phase, TransactionType
from vigil.geo import haversine_km
from vigil.profiles.windows import CATEGORIES, WINDOWS

Type = Literal["number", "string", "bool"]
# A getter reads one value from the event's context; ``codes`` (the reason codes the detectors
# found) is passed alongside so every compiled node has the same signature.
Getter = Callable[[Context, frozenset[str]], Any]

ENTITIES = ("card", "user", "account", "terminal", "device")
# Seen-value dimensions a profile remembers (vigil.profiles.update) and the event field each
# is compared with for the ``new_*`` fields.
_SEEN = {
    "country": "country",
    "device": "device_id",
    "terminal": "terminal_id",
    "counterparty": "counterparty_account",
    "counterparty_country": "counterparty_country",
}
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Field:
    """One readable value: its name, type, getter, allowed values (strings) and meaning."""

    name: str
    type: Type
    get: Getter
    doc: str
    values: tuple[str, ...] | None = None


def _event_attr(attr: str, enum: bool = False) -> Getter:
    # Enum members hash by name, not value: rules get the plain value so ``in`` sets match.
    if enum:

        def get_value(ctx: Context, codes: frozenset[str]) -> Any:
            value = ctx.event.__dict__.get(attr)
            return None if value is None else value.value

        return get_value

    # An event's fields live in its __dict__; a field its kind lacks (a login's amount) is
    # None there, where getattr with a default would first raise inside pydantic.
    def get(ctx: Context, codes: frozenset[str]) -> Any:
        return ctx.event.__dict__.get(attr)

    return get


def _ref_attr(entity: str, attr: str, enum: bool = False) -> Getter:
    def get(ctx: Context, codes: frozenset[str]) -> Any:
        row = getattr(ctx, entity)
        value = None if row is None else getattr(row, attr)
        return value.value if enum and value is not None else value

    return get


def _behaviour(attr: str) -> Getter:
    def get(ctx: Context, codes: frozenset[str]) -> float | None:
        card = ctx.card
        behaviour = None if card is None else card.behaviour
        return None if behaviour is None else getattr(behaviour, attr)

    return get


def _count(kind: str, window: int, category: int) -> Getter:
    def get(ctx: Context, codes: frozenset[str]) -> int | None:
        profile = ctx.profiles.get(kind)
        return None if profile is None else profile.windows.count(window, category)

    return get


def _sum(kind: str, window: int, category: int) -> Getter:
    def get(ctx: Context, codes: frozenset[str]) -> float | None:
        profile = ctx.profiles.get(kind)
        return None if profile is None else profile.windows.total(window, category) / 100

    return get


def _stat(kind: str, category: int, attr: str) -> Getter:
    def get(ctx: Context, codes: frozenset[str]) -> float | None:
        profile = ctx.profiles.get(kind)
        if profile is None:
            return None
        stats = profile.amount_stats(category)
        return getattr(stats, attr) if stats.n else None

    return get


def _n(kind: str, category: int) -> Getter:
    def get(ctx: Context, codes: frozenset[str]) -> int | None:
        profile = ctx.profiles.get(kind)
        return None if profile is None else profile.amount_stats(category).n

    return get


def _quantile(kind: str, category: int, q: float) -> Getter:
    def get(ctx: Context, codes: frozenset[str]) -> float | None:
        profile = ctx.profiles.get(kind)
        if profile is None:
            return None
        value = profile.amount_quantile(category, q)
        return None if math.isnan(value) else value

    return get


def _events(kind: str) -> Getter:
    def get(ctx: Context, codes: frozenset[str]) -> int | None:
        profile = ctx.profiles.get(kind)
        return None if profile is None else profile.n

    return get


def _since_last(kind: str) -> Getter:
    def get(ctx: Context, codes: frozenset[str]) -> float | None:
        profile = ctx.profiles.get(kind)
        last = None if profile is None else profile.last_time
        return None if last is None else ctx.start - last

    return get


def _age_days(kind: str) -> Getter:
    def get(ctx: Context, codes: frozenset[str]) -> float | None:
        profile = ctx.profiles.get(kind)
        first = None if profile is None else profile.first_time
        return None if first is None else (ctx.start - first) / _DAY

    return get


def _distance(kind: str) -> Getter:
    def get(ctx: Context, codes: frozenset[str]) -> float | None:
        profile = ctx.profiles.get(kind)
        if profile is None or profile.last_latitude is None or ctx.latitude is None:
            return None
        return haversine_km(
            profile.last_latitude, profile.last_longitude, ctx.latitude, ctx.longitude
        )

    return get


def _seen_count(kind: str, dimension: str) -> Getter:
    def get(ctx: Context, codes: frozenset[str]) -> int | None:
        profile = ctx.profiles.get(kind)
        return None if profile is None else profile.seen_count(dimension)

    return get


def _is_new(kind: str, dimension: str, attr: str) -> Getter:
    def get(ctx: Context, codes: frozenset[str]) -> bool | None:
        profile = ctx.profiles.get(kind)
        value = ctx.event.__dict__.get(attr)
        if profile is None or value is None:
            return None
        return not profile.has_seen(dimension, value)

    return get


def _farthest(ctx: Context, codes: frozenset[str]) -> float | None:
    profile = ctx.profiles.get("card")
    return None if profile is None or not profile.n else profile.farthest


def _user_age_days(ctx: Context, codes: frozenset[str]) -> float | None:
    created = None if ctx.user is None else ctx.user.created_at
    return None if created is None else (ctx.start - created.timestamp()) / _DAY


def _values(enum: type) -> tuple[str, ...]:
    return tuple(member.value for member in enum)


def _event_fields() -> list[Field]:
    def attr(name: str, type_: Type, doc: str, values: tuple[str, ...] | None = None) -> Field:
        return Field(name, type_, _event_attr(name, values is not None), doc, values)

    return [
        Field(
            "kind", "string", _event_attr("kind"), "transaction or login", ("transaction", "login")
        ),
        Field(
            "amount",
            "number",
            lambda ctx, codes: ctx.amount,
            "the amount (major units); missing on start events and logins",
        ),
        Field(
            "category",
            "string",
            lambda ctx, codes: CATEGORIES[ctx.category],
            "profile category: the type, transfer_in for incoming transfers, or login(_failed)",
            CATEGORIES,
        ),
        attr("type", "string", "transaction type; missing on logins", _values(TransactionType)),
        attr("channel", "string", "atm, pos, online or mobile", _values(Channel)),
        attr("phase", "string", "start, end or single", _values(Phase)),
        attr("direction", "string", "debit or credit", _values(Direction)),
        attr("standin", "bool", "authorised in StandIn (the issuer unreachable)"),
        attr("currency", "string", "ISO currency code"),
        attr("country", "string", "country of the event (ISO code), when the source gives it"),
        attr("counterparty_country", "string", "country of the transfer's counterparty"),
        attr("counterparty_account", "string", "the transfer's counterparty account"),
        attr("success", "bool", "the login succeeded; missing on transactions"),
        attr("session_seconds", "number", "login session length"),
        Field(
            "hour",
            "number",
            lambda ctx, codes: int(ctx.start // 3600) % 24,
            "hour of day (UTC) the event began, 0-23",
        ),
        Field(
            "weekday",
            "number",
            lambda ctx, codes: (int(ctx.start // _DAY) + 3) % 7,
            "day of the week (UTC) the event began, 0 = Monday",
        ),
        Field(
            "duration_seconds",
            "number",
            lambda ctx, codes: ctx.end - ctx.start,
            "seconds from the transaction's start to this event (0 for single events)",
        ),
        Field(
            "card_present",
            "bool",
            lambda ctx, codes: ctx.card_present,
            "the card itself was at the event's place (ATM, POS)",
        ),
    ]


def _reference_fields() -> list[Field]:
    fields = [
        Field(
            "terminal.kind",
            "string",
            _ref_attr("terminal", "kind", enum=True),
            "atm or pos",
            _values(TerminalKind),
        ),
        Field(
            "terminal.internal",
            "bool",
            _ref_attr("terminal", "internal"),
            "the card's own bank owns the terminal; missing without a known terminal",
        ),
        Field("terminal.city", "string", _ref_attr("terminal", "city"), "terminal's city"),
        Field("terminal.country", "string", _ref_attr("terminal", "country"), "terminal's country"),
        Field(
            "terminal.bank_code",
            "string",
            _ref_attr("terminal", "bank_code"),
            "bank owning the terminal",
        ),
        Field(
            "card.extract_limit",
            "number",
            _ref_attr("card", "extract_limit"),
            "the card's daily withdrawal limit",
        ),
        Field("card.bank_code", "string", _ref_attr("card", "bank_code"), "the card's bank"),
        Field(
            "card.home_km",
            "number",
            lambda ctx, codes: ctx.home_km,
            "km from the card's home to a card-present event's place",
        ),
        Field(
            "card.farthest_km",
            "number",
            _farthest,
            "the farthest from home (km) the card has been seen before",
        ),
        Field("user.country", "string", _ref_attr("user", "country"), "the user's country"),
        Field(
            "user.customer_days", "number", _user_age_days, "days since the user became a customer"
        ),
    ]
    for attr in CardBehaviour.model_fields:
        fields.append(
            Field(
                f"card.behaviour.{attr}",
                "number",
                _behaviour(attr),
                f"the card's behaviour parameter {attr} (reference data)",
            )
        )
    return fields


def _profile_fields(kind: str) -> list[Field]:
    fields = [
        Field(f"{kind}.n", "number", _events(kind), f"events in the {kind}'s profile"),
        Field(
            f"{kind}.seconds_since_last",
            "number",
            _since_last(kind),
            f"seconds since the {kind}'s previous event began",
        ),
        Field(
            f"{kind}.age_days", "number", _age_days(kind), f"days since the {kind}'s first event"
        ),
        Field(
            f"{kind}.distance_km",
            "number",
            _distance(kind),
            f"km from the {kind}'s last known place to this event's place",
        ),
    ]
    for dimension, attr in _SEEN.items():
        fields.append(
            Field(
                f"{kind}.seen_{dimension}",
                "number",
                _seen_count(kind, dimension),
                f"distinct {dimension.replace('_', ' ')} values the {kind} has used",
            )
        )
        fields.append(
            Field(
                f"{kind}.new_{dimension}",
                "bool",
                _is_new(kind, dimension, attr),
                f"the event's {attr} is not among the {kind}'s known ones",
            )
        )
    for c, category in enumerate(CATEGORIES):
        prefix = f"{kind}.{category}"
        what = f"the {kind}'s {category.replace('_', ' ')}"
        for w, (window, _) in enumerate(WINDOWS):
            fields.append(
                Field(
                    f"{prefix}.count_{window}",
                    "number",
                    _count(kind, w, c),
                    f"number of {what} events in the last {window}",
                )
            )
            fields.append(
                Field(
                    f"{prefix}.sum_{window}",
                    "number",
                    _sum(kind, w, c),
                    f"total amount of {what} events in the last {window}",
                )
            )
        fields.append(Field(f"{prefix}.n", "number", _n(kind, c), f"amounts in {what} statistics"))
        for attr in ("mean", "std", "min", "max"):
            fields.append(
                Field(
                    f"{prefix}.{attr}",
                    "number",
                    _stat(kind, c, attr),
                    f"{attr} of {what} amounts; missing until it has one",
                )
            )
        for q in (50, 95, 99):
            fields.append(
                Field(
                    f"{prefix}.p{q}",
                    "number",
                    _quantile(kind, c, q / 100),
                    f"{q}th percentile of {what} amounts; missing until it has one",
                )
            )
    return fields


def _build() -> dict[str, Field]:
    fields = _event_fields() + _reference_fields()
    for kind in ENTITIES:
        fields += _profile_fields(kind)
    by_name: dict[str, Field] = {}
    for f in fields:
        # card.* and user.* mix reference and profile fields: a clash would be a silent shadow.
        if f.name in by_name:
            raise RuntimeError(f"rules.fields: {f.name} defined twice")
        by_name[f.name] = f
    return by_name


#: Every field a rule may read, by name.
FIELDS: dict[str, Field] = _build()
