"""The path of one event: validate → enrich → read profiles → detect → decide → record → update.

Detection reads the profiles as they were *before* the event; the update comes last, so every
decision is reproducible from the event and the state it saw. The HTTP API, stream workers and
``vigil replay`` all call :meth:`Engine.process`.

>>> from datetime import datetime, UTC
>>> engine = Engine.in_memory()
>>> d = engine.process({"kind": "login", "event_id": "l-1", "user_id": "u-1",
...                     "timestamp": "2022-01-01T09:00:00Z", "country": "NG"})
>>> d.action, d.score
(<Action.ALLOW: 'allow'>, 0.0)
>>> engine.process({"kind": "login", "event_id": "l-1", "user_id": "u-1",
...                 "timestamp": "2022-01-01T09:00:00Z", "country": "NG"}) is d
True
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from vigil.config import Settings
from vigil.detect import Context, Detector, Policy, default_detectors
from vigil.domain import Action, Decision, Login, Phase, Transaction, parse_event
from vigil.enrich import Enricher
from vigil.profiles import MemoryProfileStore, ProfileStore
from vigil.profiles.update import entity_keys, update_profiles
from vigil.recorder import Recorder
from vigil.storage.reference import ReferenceData

Event = Transaction | Login


class Engine:
    def __init__(
        self,
        reference: ReferenceData,
        profiles: ProfileStore,
        recorder: Recorder,
        *,
        settings: Settings | None = None,
        detectors: list[Detector] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.enricher = Enricher(reference)
        self.profiles = profiles
        self.recorder = recorder
        self.detectors = (
            detectors if detectors is not None else default_detectors(self.settings.detectors)
        )
        self.policy = Policy(self.settings.policy)

    @classmethod
    def in_memory(cls, reference: ReferenceData | None = None, **kwargs: Any) -> Engine:
        """An engine that keeps everything in process (tests, notebooks, examples)."""
        return cls(reference or ReferenceData(), MemoryProfileStore(), Recorder(None), **kwargs)

    def process(self, raw: Event | Mapping[str, Any] | str | bytes) -> Decision:
        """Validate and decide; a repeated event id returns its first decision, unchanged."""
        started = time.perf_counter_ns()
        # validate
        event = raw if isinstance(raw, Transaction | Login) else parse_event(raw)
        if not isinstance(event, Transaction | Login):
            raise TypeError(f"kind: {event.kind} events are feedback, not decided on")
        known = self.recorder.decided(event)
        if known is not None:
            return known
        return self.decide(event, started)

    def decide(self, event: Event, started: int | None = None) -> Decision:
        """Decide on a validated event not decided before (callers that checked already).

        ``started`` (a ``perf_counter_ns`` reading) lets the latency include validation.
        """
        if started is None:
            started = time.perf_counter_ns()
        # enrich
        ctx = self.enricher.enrich(event)
        # read profiles, as of the event's time
        keys = entity_keys(event)
        for kind, key in keys:
            profile = self.profiles.get(kind, key)
            profile.advance(ctx.end)
            ctx.profiles[kind] = profile
        _pair_with_start(ctx)
        # detect
        reasons = [reason for detector in self.detectors for reason in detector.detect(ctx)]
        # decide
        score, action, reasons = self.policy.decide(reasons)
        decision = Decision(
            decision_id=uuid.uuid4().hex,
            event_id=event.event_id,
            event_kind=event.kind,
            score=score,
            action=action,
            reasons=reasons,
            event_time=event.timestamp,
            user_id=event.user_id,
            card_id=getattr(event, "card_id", None),
            latency_us=(time.perf_counter_ns() - started) / 1000,
        )
        # record
        self.recorder.add(event, decision)
        # update profiles
        update_profiles(ctx, keys, familiar=action is Action.ALLOW, declined=action is Action.BLOCK)
        for kind, key in keys:
            self.profiles.put(kind, key, ctx.profiles[kind])
        return decision


def _pair_with_start(ctx: Context) -> None:
    """An end event that does not repeat its start time takes it from the card's open start."""
    event = ctx.event
    if isinstance(event, Transaction) and event.phase is Phase.END and event.started_at is None:
        card = ctx.profiles.get("card")
        opened = card.open.get(event.transaction_id) if card is not None else None
        if opened is not None:
            ctx.start = opened[0]
