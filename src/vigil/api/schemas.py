"""What the API accepts and answers, beyond the domain models it uses as they are.

Transactions, logins and decisions travel as the domain models (:mod:`vigil.domain`); this
module holds the shapes that exist only at the API: feedback as a client sends it, a page of
risk events, the JSON view of a profile, keys, health.

>>> FeedbackIn(target_event_id="e-1", label="fraud").source
'analyst'
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vigil.api.keys import Role
from vigil.domain import Action, FeedbackLabel
from vigil.domain.types import FreeText, Identifier, Printable, UtcDatetime
from vigil.profiles.profile import Profile
from vigil.profiles.windows import CATEGORIES, N_CATEGORIES, WINDOWS
from vigil.storage.cases import Status as CaseStatus

_IN = ConfigDict(extra="forbid", str_strip_whitespace=True)


_NOT_NULL = {"not": {"type": "null"}}


def _given(name: str) -> dict[str, Any]:
    """JSON Schema: ``name`` is given, and not as null."""
    return {"required": [name], "properties": {name: _NOT_NULL}}


def _one_of(first: str, second: str) -> list[dict[str, Any]]:
    """JSON Schema: exactly one of two fields is given (the other absent or null), as the
    model's validator demands, so the document describes what the API accepts."""
    return [
        {"required": [a], "properties": {a: _NOT_NULL, b: {"type": "null"}}}
        for a, b in ((first, second), (second, first))
    ]


class FeedbackIn(BaseModel):
    """A label on an earlier event, named by its event id or by the decision id vigil returned."""

    model_config = ConfigDict(
        **_IN,
        json_schema_extra={
            "oneOf": _one_of("target_event_id", "decision_id"),
            "examples": [
                {
                    "target_event_id": "tx-20240501-000123",
                    "label": "fraud",
                    "note": "customer confirmed the card was stolen",
                }
            ],
        },
    )

    event_id: Identifier | None = Field(
        None, description="This feedback's own id (idempotency key); generated when absent"
    )
    target_event_id: Identifier | None = None
    decision_id: Identifier | None = None
    label: FeedbackLabel
    timestamp: UtcDatetime | None = Field(None, description="When it was learnt; default now")
    source: Annotated[str, Field(min_length=1, max_length=64), *Printable] = "analyst"
    pattern: Annotated[str, Field(max_length=64), *Printable] | None = None
    note: Annotated[str, Field(max_length=2000), *FreeText] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> FeedbackIn:
        if (self.target_event_id is None) == (self.decision_id is None):
            raise ValueError("target_event_id: give target_event_id or decision_id (one)")
        return self


class FeedbackOut(BaseModel):
    event_id: str
    target_event_id: str
    decision_id: str
    label: FeedbackLabel
    created: bool = Field(description="False when feedback with this event_id was stored before")


class RiskEvent(BaseModel):
    """A flagged decision in the risk-event log, with the analyst's follow-up."""

    model_config = ConfigDict(extra="ignore")

    risk_event_id: int
    decision_id: str
    event_id: str
    event_time: datetime | None
    user_id: str | None
    card_id: str | None
    score: float
    action: Action
    reason_codes: list[str]
    status: CaseStatus
    analyst_label: str | None = None
    action_taken: str | None = None
    assignee: str | None = None
    closed_at: datetime | None = None
    updated_at: datetime


class CaseJournalEntry(BaseModel):
    """One analyst action on a risk event, as the append-only case journal keeps it."""

    model_config = ConfigDict(extra="ignore")

    entry_id: int
    at: datetime
    actor: str = Field(description="The name of the API key that acted")
    actor_key_id: str
    action: str = Field(description="label, status, assign or note")
    status: CaseStatus | None = None
    assignee: str | None = None
    label: str | None = None
    feedback_event_id: str | None = Field(
        None, description="The feedback a label stored (as POST /v1/feedback does)"
    )
    note: str | None = None


class RiskEventDetail(RiskEvent):
    """A risk event with its case journal, oldest entry first."""

    journal: list[CaseJournalEntry]


class RiskEventPatch(BaseModel):
    """An analyst's action on a risk event: any of status, assignee, label and note.

    A label (fraud, legitimate, dispute, ...) is stored as feedback on the event, which teaches
    the engine exactly as ``POST /v1/feedback`` does, and closes the case unless ``status`` is
    given too. ``assignee: ""`` unassigns. Every action is appended to the case journal.
    """

    model_config = ConfigDict(
        **_IN,
        json_schema_extra={
            # At least one of them, not null (the validator's rule, in the document).
            "anyOf": [_given(name) for name in ("status", "assignee", "label", "note")],
            "examples": [
                {"label": "fraud", "note": "customer confirmed the card was stolen"},
                {"status": "in_review", "assignee": "ann"},
            ],
        },
    )

    status: CaseStatus | None = None
    assignee: Annotated[str, Field(max_length=200), *Printable] | None = None
    label: FeedbackLabel | None = None
    note: Annotated[str, Field(max_length=2000), *FreeText] | None = None

    @model_validator(mode="after")
    def _something(self) -> RiskEventPatch:
        if all(v is None for v in (self.status, self.assignee, self.label, self.note)):
            raise ValueError("status, assignee, label or note: give at least one")
        return self


class RiskEventPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "risk_event_id": 1812,
                            "decision_id": "5f0c2b9e8d7a4c1b9e2f3a4b5c6d7e8f",
                            "event_id": "tx-20240501-000123",
                            "event_time": "2024-05-01T10:15:00Z",
                            "user_id": "u-0042",
                            "card_id": "c-0042",
                            "score": 0.91,
                            "action": "block",
                            "reason_codes": ["impossible_travel", "new_country"],
                            "status": "open",
                            "updated_at": "2024-05-01T10:15:00.021Z",
                        }
                    ],
                    "limit": 50,
                    "offset": 0,
                    "next_offset": 50,
                }
            ]
        }
    )

    items: list[RiskEvent]
    limit: int
    offset: int
    next_offset: int | None = Field(description="Pass as offset for the next page; null at end")


class WindowCounts(BaseModel):
    count: int
    amount: float = Field(description="Sum of amounts in major units (0 for logins)")


class AmountStats(BaseModel):
    n: int
    mean: float
    std: float
    min: float
    max: float
    p95: float | None
    p99: float | None


class SeenValue(BaseModel):
    value: str
    count: int
    first_seen: datetime
    last_seen: datetime


class LastLocation(BaseModel):
    place: str | None
    latitude: float
    longitude: float
    at: datetime | None


class ProfileView(BaseModel):
    """A profile as it stood after the entity's latest event (windows end at that event)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "entity": "card",
                    "id": "c-0042",
                    "events": 214,
                    "first_seen": "2024-01-03T08:12:00Z",
                    "last_seen": "2024-05-01T10:15:00Z",
                    "windows": {
                        "1d": {"withdrawal": {"count": 2, "amount": 45000.0}},
                        "30d": {
                            "withdrawal": {"count": 41, "amount": 812500.0},
                            "balance_inquiry": {"count": 9, "amount": 0.0},
                        },
                    },
                    "amounts": {
                        "withdrawal": {
                            "n": 180,
                            "mean": 19850.0,
                            "std": 7420.5,
                            "min": 1000.0,
                            "max": 60000.0,
                            "p95": 35120.0,
                            "p99": 49800.0,
                        }
                    },
                    "seen": {
                        "terminal": [
                            {
                                "value": "ATM-LAG-07",
                                "count": 122,
                                "first_seen": "2024-01-03T08:12:00Z",
                                "last_seen": "2024-05-01T10:15:00Z",
                            }
                        ]
                    },
                    "last_location": {
                        "place": "ATM-LAG-07",
                        "latitude": 6.4541,
                        "longitude": 3.3947,
                        "at": "2024-05-01T10:15:00Z",
                    },
                    "hours": [0] * 8 + [20, 31, 28, 22, 19, 18, 17, 16, 15, 12, 8] + [0] * 5,
                }
            ]
        }
    )

    entity: str
    id: str
    events: int
    first_seen: datetime | None
    last_seen: datetime | None
    windows: dict[str, dict[str, WindowCounts]] = Field(
        description="window (1h, 1d, ...) → category (withdrawal, login, ...) → count and sum"
    )
    amounts: dict[str, AmountStats] = Field(description="category → amount statistics")
    seen: dict[str, list[SeenValue]] = Field(
        description="dimension (country, device, terminal, ...) → values, most used first"
    )
    last_location: LastLocation | None
    hours: list[int] = Field(description="events per hour of day (UTC), 0 to 23")

    @classmethod
    def of(cls, entity: str, key: str, profile: Profile) -> ProfileView:
        """The JSON view of ``profile`` (read-only: the profile is not changed)."""
        windows: dict[str, dict[str, WindowCounts]] = {}
        for w, (name, _) in enumerate(WINDOWS):
            cells = {}
            for c in range(N_CATEGORIES):
                n = profile.windows.count(w, c)
                if n:
                    cells[CATEGORIES[c]] = WindowCounts(
                        count=n, amount=profile.windows.total(w, c) / 100
                    )
            windows[name] = cells
        amounts = {}
        for c, stats in sorted(profile.stats.items()):
            if stats.n:
                amounts[CATEGORIES[c]] = AmountStats(
                    n=stats.n,
                    mean=stats.mean,
                    std=stats.std,
                    min=stats.min,
                    max=stats.max,
                    p95=_finite(profile.amount_quantile(c, 0.95)),
                    p99=_finite(profile.amount_quantile(c, 0.99)),
                )
        seen = {
            dimension: [
                SeenValue(
                    value=value,
                    count=count,
                    first_seen=_time(values.values[value][1]),
                    last_seen=_time(values.values[value][2]),
                )
                for value, count in values.most_common()
            ]
            for dimension, values in sorted(profile.seen.items())
        }
        located = None
        if profile.last_latitude is not None and profile.last_longitude is not None:
            located = LastLocation(
                place=profile.last_place,
                latitude=profile.last_latitude,
                longitude=profile.last_longitude,
                at=_maybe_time(profile.last_located),
            )
        return cls(
            entity=entity,
            id=key,
            events=profile.n,
            first_seen=_maybe_time(profile.first_time),
            last_seen=_maybe_time(profile.last_time),
            windows=windows,
            amounts=amounts,
            seen=seen,
            last_location=located,
            hours=list(profile.hours),
        )


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _maybe_time(seconds: float | None) -> datetime | None:
    return None if seconds is None else _time(seconds)


class KeyCreate(BaseModel):
    model_config = ConfigDict(
        **_IN, json_schema_extra={"examples": [{"name": "core-banking", "roles": ["ingest"]}]}
    )

    name: Annotated[str, Field(min_length=1, max_length=200), *Printable]
    roles: Annotated[list[Role], Field(min_length=1, max_length=3)]


class KeyCreated(BaseModel):
    key: str = Field(description="The key itself: shown this once, never stored")
    key_id: str
    name: str
    roles: list[Role]
    created_at: datetime


class Health(BaseModel):
    status: str
    database: str
    buffered_decisions: int
    profiles: int | None = Field(description="Profiles held in process; null for a shared store")
