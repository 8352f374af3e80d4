"""What vigil answers: a score in [0, 1], an action, and every reason that contributed.

>>> d = Decision(decision_id="d1", event_id="e1", event_kind="transaction", score=0.97,
...              action="block", reasons=[Reason(code="impossible_travel", score=0.97,
...              detail="1,040 km in 20 min (3,120 km/h)")])
>>> d.flagged
True
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class Action(StrEnum):
    ALLOW = "allow"
    STEP_UP = "step_up"
    REVIEW = "review"
    BLOCK = "block"


class Reason(BaseModel):
    """One detector's or rule's contribution: a stable code, its strength, and a sentence.

    ``evidence`` names the earlier transactions (or logins) the reason rests on, such as the
    other operations of a burst: an analyst opening the alert sees the whole case, and the
    evaluation credits the alert with them.
    """

    model_config = ConfigDict(frozen=True)

    code: str
    score: Annotated[float, Field(ge=0, le=1)]
    detail: str = ""
    entity: str | None = None
    evidence: tuple[str, ...] = ()


# One decision as the API answers it (the OpenAPI document's example).
DECISION_EXAMPLE = {
    "decision_id": "5f0c2b9e8d7a4c1b9e2f3a4b5c6d7e8f",
    "event_id": "tx-20240501-000123",
    "event_kind": "transaction",
    "score": 0.62,
    "action": "step_up",
    "reasons": [
        {
            "code": "new_country",
            "score": 0.45,
            "detail": "first use from GH",
            "entity": "user",
            "evidence": [],
        }
    ],
    "event_time": "2024-05-01T10:15:00Z",
    "user_id": "u-0042",
    "card_id": "c-0042",
    "model_versions": {"transaction": "lgbm-20240430-1"},
    "latency_us": 84.2,
    "shadow": [],
}


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True, json_schema_extra={"examples": [DECISION_EXAMPLE]})

    decision_id: str
    event_id: str
    event_kind: str
    score: Annotated[float, Field(ge=0, le=1)]
    action: Action
    reasons: list[Reason] = Field(default_factory=list)
    event_time: datetime | None = None
    user_id: str | None = None
    card_id: str | None = None
    model_versions: dict[str, str] = Field(default_factory=dict)
    latency_us: float = 0.0
    # Hits of shadow rules (vigil.rules): evaluated and recorded, no part of score or action.
    shadow: list[Reason] = Field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return self.action is not Action.ALLOW
