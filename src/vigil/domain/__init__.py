"""Events, reference entities and decisions: pydantic models with no I/O."""

from vigil.domain.decisions import Action, Decision, Reason
from vigil.domain.entities import Bank, Card, Terminal, TerminalKind, User
from vigil.domain.events import (
    Channel,
    Direction,
    Event,
    Feedback,
    FeedbackLabel,
    Login,
    Phase,
    Transaction,
    TransactionType,
    parse_event,
)

__all__ = [
    "Action",
    "Bank",
    "Card",
    "Channel",
    "Decision",
    "Direction",
    "Event",
    "Feedback",
    "FeedbackLabel",
    "Login",
    "Phase",
    "Reason",
    "Terminal",
    "TerminalKind",
    "Transaction",
    "TransactionType",
    "User",
    "parse_event",
]
