"""Domain models to table rows and back: plain dicts, enums as their values, nothing lost.

Writing reads attributes directly rather than through ``model_dump`` because the recorder
converts tens of thousands of events per batch; reading validates through the models, so a
row edited by hand into something invalid fails loudly instead of flowing into a decision.

>>> from datetime import datetime, UTC
>>> tx = Transaction(event_id="e1", transaction_id="t1", card_id="c-1", type="withdrawal",
...                  timestamp=datetime(2022, 1, 3, 10, tzinfo=UTC), amount="2500.00")
>>> row = transaction_row(tx)
>>> row["type"], row["amount"]
('withdrawal', Decimal('2500.00'))
>>> transaction_from_row(row) == tx
True
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, get_args

from pydantic import BaseModel

from vigil.domain.decisions import Decision, Reason
from vigil.domain.entities import Bank, Card, Terminal, User
from vigil.domain.events import Feedback, Login, Transaction
from vigil.storage.columns import CENT

TRANSACTION_FIELDS = tuple(f for f in Transaction.model_fields if f != "kind")
LOGIN_FIELDS = tuple(f for f in Login.model_fields if f != "kind")
FEEDBACK_FIELDS = tuple(f for f in Feedback.model_fields if f != "kind")


def _enum_fields(model: type[BaseModel]) -> tuple[str, ...]:
    names = []
    for name, info in model.model_fields.items():
        args = get_args(info.annotation) or (info.annotation,)
        if any(isinstance(a, type) and issubclass(a, Enum) for a in args):
            names.append(name)
    return tuple(names)


_ENUMS = {m: _enum_fields(m) for m in (Transaction, Login, Feedback)}


def _row(model: BaseModel, fields: tuple[str, ...]) -> dict[str, Any]:
    # Pydantic keeps field values in __dict__; reading it directly is the recorder's hot loop.
    values = model.__dict__
    row = {f: values[f] for f in fields}
    for f in _ENUMS[type(model)]:
        if row[f] is not None:
            row[f] = row[f].value
    return row


def _fields(row: Mapping[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    # Optional columns left NULL take the model's default (e.g. a derived direction).
    return {f: row[f] for f in fields if row.get(f) is not None}


def transaction_row(tx: Transaction) -> dict[str, Any]:
    row = _row(tx, TRANSACTION_FIELDS)
    amount = row["amount"]
    if amount is None:
        return row
    # A balance inquiry's amount is defaulted to the int 0 by the model, not a Decimal.
    amount = row["amount"] = Decimal(amount)
    if amount != amount.quantize(CENT):
        raise ValueError(
            f"amount: {amount} on event {tx.event_id} has more than 2 decimal places; "
            "the transactions table stores NUMERIC(18, 2)"
        )
    return row


def transaction_from_row(row: Mapping[str, Any]) -> Transaction:
    return Transaction.model_validate(_fields(row, TRANSACTION_FIELDS))


def login_row(login: Login) -> dict[str, Any]:
    return _row(login, LOGIN_FIELDS)


def login_from_row(row: Mapping[str, Any]) -> Login:
    return Login.model_validate(_fields(row, LOGIN_FIELDS))


def feedback_row(item: Feedback) -> dict[str, Any]:
    return _row(item, FEEDBACK_FIELDS)


def feedback_from_row(row: Mapping[str, Any]) -> Feedback:
    return Feedback.model_validate(_fields(row, FEEDBACK_FIELDS))


def bank_row(bank: Bank) -> dict[str, Any]:
    return bank.model_dump()


def terminal_row(terminal: Terminal) -> dict[str, Any]:
    return terminal.model_dump(mode="json")


def card_row(card: Card) -> dict[str, Any]:
    row = card.model_dump(exclude={"behaviour"})
    row["behaviour"] = None if card.behaviour is None else card.behaviour.model_dump()
    return row


def user_row(user: User) -> dict[str, Any]:
    return user.model_dump()


def bank_from_row(row: Mapping[str, Any]) -> Bank:
    return Bank.model_validate(_fields(row, tuple(Bank.model_fields)))


def terminal_from_row(row: Mapping[str, Any]) -> Terminal:
    return Terminal.model_validate(_fields(row, tuple(Terminal.model_fields)))


def card_from_row(row: Mapping[str, Any]) -> Card:
    return Card.model_validate(_fields(row, tuple(Card.model_fields)))


def user_from_row(row: Mapping[str, Any]) -> User:
    return User.model_validate(_fields(row, tuple(User.model_fields)))


# Column widths of the decisions table; Decision itself does not bound its strings.
_DECISION_WIDTHS = {
    "decision_id": 128,
    "event_id": 128,
    "event_kind": 16,
    "user_id": 128,
    "card_id": 128,
}


def decision_row(
    decision: Decision,
    *,
    transaction_id: str | None,
    terminal_id: str | None,
    created_at: datetime,
) -> dict[str, Any]:
    for name, width in _DECISION_WIDTHS.items():
        value = getattr(decision, name)
        if value is not None and not 0 < len(value) <= width:
            raise ValueError(
                f"{name}: {value[:40]!r} on decision {decision.decision_id[:40]!r} "
                f"must be 1 to {width} characters"
            )
    return {
        "decision_id": decision.decision_id,
        "event_id": decision.event_id,
        "event_kind": decision.event_kind,
        "transaction_id": transaction_id,
        "event_time": decision.event_time,
        "user_id": decision.user_id,
        "card_id": decision.card_id,
        "terminal_id": terminal_id,
        "score": decision.score,
        "action": decision.action.value,
        "reasons": [r.model_dump() for r in decision.reasons],
        "model_versions": dict(decision.model_versions),
        "latency_us": decision.latency_us,
        "created_at": created_at,
    }


def decision_from_row(row: Mapping[str, Any]) -> Decision:
    return Decision(
        decision_id=row["decision_id"],
        event_id=row["event_id"],
        event_kind=row["event_kind"],
        score=row["score"],
        action=row["action"],
        reasons=[Reason.model_validate(r) for r in row["reasons"]],
        event_time=row["event_time"],
        user_id=row["user_id"],
        card_id=row["card_id"],
        model_versions=row["model_versions"],
        latency_us=row["latency_us"],
    )


def reason_codes(reasons: list[Reason] | list[dict[str, Any]]) -> list[str]:
    """Reason codes in the order the decision lists them, without repeats."""
    codes = (r.code if isinstance(r, Reason) else r["code"] for r in reasons)
    return list(dict.fromkeys(codes))


def reason_evidence(reasons: list[dict[str, Any]]) -> list[str]:
    """The earlier transactions or logins the stored reasons name as evidence, without repeats."""
    return list(dict.fromkeys(e for r in reasons for e in r.get("evidence") or ()))


def risk_event_row(decision: Decision, *, updated_at: datetime) -> dict[str, Any]:
    codes = reason_codes(decision.reasons)
    return {
        "decision_id": decision.decision_id,
        "event_id": decision.event_id,
        "event_time": decision.event_time,
        "user_id": decision.user_id,
        "card_id": decision.card_id,
        "score": decision.score,
        "action": decision.action.value,
        # Commas delimit codes, so a code with a comma would split into two; refuse it here.
        "reason_codes": ",".join(_checked_code(c, decision) for c in codes),
        "status": "open",
        "updated_at": updated_at,
    }


def _checked_code(code: str, decision: Decision) -> str:
    if "," in code:
        raise ValueError(f"reasons.code: {code!r} on decision {decision.decision_id} has a comma")
    return code


def utc_now() -> datetime:
    return datetime.now(UTC)
