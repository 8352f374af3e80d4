"""The path of one event: validate → enrich → read profiles → detect → decide → record → update.

Detection reads the profiles as they were *before* the event; the update comes last, so every
decision is reproducible from the event and the state it saw. The HTTP API, stream workers and
``vigil replay`` all call :meth:`Engine.process`.

With OpenTelemetry tracing set up (a tracer provider installed before the engine is built),
each event is a span, ``vigil.event``, holding one span per stage in the order above
(``vigil.validate`` … ``vigil.update``; pseudonymising is part of ``vigil.enrich``), each
with the event id (``vigil.event_id``); the event's span also has its kind, action, score and
decision id, and whether it was a repeat. Without tracing, the engine creates no span, and
pays one ``is None`` test per stage.

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

import functools
import os
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace

from vigil import __version__
from vigil.config import Settings
from vigil.detect import Context, Detector, Policy, default_detectors
from vigil.domain import (
    Action,
    Decision,
    Feedback,
    FeedbackLabel,
    Login,
    Phase,
    Reason,
    Transaction,
    parse_event,
)
from vigil.enrich import Enricher
from vigil.models.combiner import NAME, served_combiner
from vigil.models.scorer import ModelScorer, model_detectors, model_versions, terminal_risk
from vigil.models.standin import standin_detectors
from vigil.privacy.keys import PrivacyKeys
from vigil.profiles import MemoryProfileStore, ProfileStore
from vigil.profiles.store import PENDING, Key, ProfileRead
from vigil.profiles.update import entity_keys, fraud_label_at, update_profiles
from vigil.recorder import Recorder
from vigil.rules.live import Rules, engine_rules
from vigil.storage.reference import ReferenceData

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer, TracerProvider


Event = Transaction | Login
# Writes of one event's profiles that may meet another process's concurrent update in a row.
_WRITE_ATTEMPTS = 16
# How long a repeat waits for another process to finish deciding its event, and how often
# it looks.
_CLAIM_WAIT_SECONDS = 1.0
_CLAIM_POLL_SECONDS = 0.002
# The random part of decision ids, without a system call for each: a generator of our own,
# seeded from the OS and again in every forked child (so processes never repeat ids), which
# code seeding the module's global generator (tests, notebooks) cannot make repeat.
_DECISION_IDS = random.Random()
os.register_at_fork(after_in_child=_DECISION_IDS.seed)


def new_decision_id() -> str:
    """32 hex digits: the time in milliseconds (48 bits), then 80 random bits, in the order a
    UUIDv7 has them. Ids that grow with time are appended to the primary-key index of
    ``decisions`` instead of each landing on a random page of it, so a commit of 20 decisions
    writes a third less to SQLite's log and costs the writer 10-17 % less
    (``bench/commits.py``); 80 random bits a millisecond still never repeat.

    >>> a, b = new_decision_id(), new_decision_id()
    >>> len(a), a != b, a[:8] <= b[:8]
    (32, True, True)
    """
    return f"{time.time_ns() // 1_000_000:012x}{_DECISION_IDS.getrandbits(80):020x}"


# The stages, as their spans are named (vigil.<stage>), in the order an event goes through them.
STAGES = ("validate", "enrich", "read", "detect", "decide", "record", "update")
# Span attributes.
EVENT_ID = "vigil.event_id"


def tracing_configured(provider: TracerProvider | None = None) -> bool:
    """Whether ``provider`` (the global tracer provider by default) records spans: set up by
    an SDK or a vendor's distribution, rather than the API's placeholder (no provider set yet)
    or its no-op one."""
    provider = provider if provider is not None else trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


class EventInProgress(RuntimeError):
    """Another process sharing the profiles is still deciding this event id."""

    def __init__(self, event_id: str) -> None:
        super().__init__(f"event_id: {event_id!r} is being decided by another process")
        self.event_id = event_id


class EventConflict(ValueError):
    """An event id already decided, sent again with a different event."""

    def __init__(self, event_id: str) -> None:
        super().__init__(
            f"event_id: {event_id!r} was already decided for a different event; "
            "an event id may be sent again only with the same event"
        )
        self.event_id = event_id


class Engine:
    def __init__(
        self,
        reference: ReferenceData,
        profiles: ProfileStore,
        recorder: Recorder,
        *,
        settings: Settings | None = None,
        detectors: list[Detector] | None = None,
        rules: Rules | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.pseudonyms = PrivacyKeys.from_config(self.settings.privacy).pseudonyms
        self.enricher = Enricher(reference)
        self.profiles = profiles
        self.recorder = recorder
        self.detectors = (
            detectors
            if detectors is not None
            else default_detectors(self.settings.detectors)
            + model_detectors(self.settings)
            + standin_detectors(self.settings, recorder)
        )
        self.model_versions = model_versions(self.detectors)
        # The terminal-risk reader a model uses (its label delay), None when none reads it;
        # what it reads is in the terminal profiles, shared (see learn).
        self.terminal_risk = terminal_risk(self.detectors)
        # Events answered with the decision an earlier one with their id got (here or in
        # another process sharing the profiles), since this engine started.
        self.repeats = 0
        # Analysts' rules (vigil.rules), following their file; a backtest passes its own.
        self.rules = (
            rules
            if rules is not None
            else engine_rules(self.settings.rules, self.detectors, recorder.store)
        )
        # The decision score: the reasons' noisy-OR, or with a combiner stacked on the served
        # model, its calibrated probability of the model's and the reasons' evidence. The
        # model is then asked apart, for its probability whatever it is.
        self._assess: Callable[[Context], tuple[float | None, list[Reason]]] | None = None
        scorer = next((d for d in self.detectors if isinstance(d, ModelScorer)), None)
        combiner = None
        if scorer is not None:
            combiner = served_combiner(self.settings, scorer.model.version)
        if combiner is not None:
            self.detectors = [d for d in self.detectors if d is not scorer]
            self._assess = scorer.assess
            self.model_versions = {**self.model_versions, NAME: str(combiner.model_.version)}
        self.policy = Policy(self.settings.policy, combiner=combiner)
        # Tracing is looked at once, here: with a provider that records (``tracer_provider``,
        # else the global one), process and decide are answered by their traced versions;
        # without, the untraced path runs as it always did, creating no span, its only cost
        # an ``is None`` test per stage (``_stages``: the spans of the event in hand).
        self._stages: _Stages | None = None
        provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        self._tracer: Tracer | None = None
        if tracing_configured(provider):
            self._tracer = provider.get_tracer(__name__, __version__)
            self.process = self._process_traced  # type: ignore[method-assign]
            self.decide = self._decide_traced  # type: ignore[method-assign]

    @classmethod
    def in_memory(cls, reference: ReferenceData | None = None, **kwargs: Any) -> Engine:
        """An engine that keeps everything in process (tests, notebooks, examples)."""
        return cls(reference or ReferenceData(), MemoryProfileStore(), Recorder(None), **kwargs)

    def process(self, raw: Event | Mapping[str, Any] | str | bytes) -> Decision:
        """Validate and decide; a repeated event id returns its first decision, unchanged,
        whichever process sharing the profiles took it."""
        started = time.perf_counter_ns()
        # validate
        stages = self._stages
        if stages is not None:
            stages.enter("validate")
        event = raw if isinstance(raw, Transaction | Login) else parse_event(raw)
        if not isinstance(event, Transaction | Login):
            raise TypeError(f"kind: {event.kind} events are feedback, not decided on")
        if stages is not None:
            stages.identify(event.event_id)
        known = self.recorder.decided(event)
        if known is not None:
            self._check_same(event)
            self.repeats += 1
            return known
        return self.decide(event, started, claim=True)

    def _check_same(self, event: Event) -> None:
        """A repeat gets the first decision only if it is the same event (as pseudonymised
        and stored): never another client's decision under a reused id."""
        first = self.recorder.first_event(event.event_id)
        if first is not None and first != self.pseudonyms.event(event):
            raise EventConflict(event.event_id)

    def decide(self, event: Event, started: int | None = None, *, claim: bool = False) -> Decision:
        """Decide on a validated event this process has not decided before.

        With ``claim``, the read of the profiles also claims the event id in their store, so
        that of several processes sharing it only the first decides and the others return its
        decision (a replay, the store's only user, does without). ``started`` (a
        ``perf_counter_ns`` reading) lets the latency include validation.
        """
        if started is None:
            started = time.perf_counter_ns()
        stages = self._stages
        if stages is not None:
            stages.enter("enrich")
        # pseudonymise: no raw IP or device fingerprint goes further (profiles, storage)
        event = self.pseudonyms.event(event)
        # enrich
        ctx = self.enricher.enrich(event)
        # read profiles, as of the event's time
        keys = entity_keys(event, ctx.user)
        if stages is not None:
            stages.enter("read")
        read = self.profiles.read(keys, claim=event.event_id if claim else None)
        if read.earlier is not None:
            if (earlier := self._decided_elsewhere(event.event_id, read.earlier)) is not None:
                self.repeats += 1
                return self._adopt(event, earlier)
            read = self.profiles.read(keys)  # the other claim lapsed undecided: ours now
        try:
            return self._decide(ctx, keys, read, started, settle=claim)
        except BaseException:
            if claim:  # so that a retry may decide
                self.profiles.release([event.event_id])
            raise

    def _adopt(self, event: Event, claimed: Decision) -> Decision:
        """The answer to an event another process claimed and decided. The claim is a hint;
        the database is the answer: the stored decision if there is one, else the claimed
        decision is recorded now with this event (the process that took it died before its
        commit, after applying it to the shared profiles, so it is applied exactly once)."""
        if self.recorder.store is not None:
            stored = self.recorder.store.get_decision(event.event_id)
            if stored is not None:
                self._check_same(event)
                return stored
        # The claim keeps the decision, not the event: what the decision names must match.
        if (claimed.event_kind, claimed.event_time) != (event.kind, event.timestamp):
            raise EventConflict(event.event_id)
        if self.recorder.store is not None:
            self.recorder.add(event, claimed)
        return claimed

    def _decided_elsewhere(self, event_id: str, earlier: bytes) -> Decision | None:
        """The decision another process took on an event it claimed, waiting while it decides;
        None when its claim lapsed undecided and this process now holds the claim."""
        deadline = time.monotonic() + _CLAIM_WAIT_SECONDS
        while earlier == PENDING:
            if time.monotonic() > deadline:
                raise EventInProgress(event_id)
            time.sleep(_CLAIM_POLL_SECONDS)
            if (claimed := self.profiles.claim(event_id)) is None:
                return None
            earlier = claimed
        return Decision.model_validate_json(earlier)

    def _decide(
        self,
        ctx: Context,
        keys: list[Key],
        read: ProfileRead,
        started: int,
        *,
        settle: bool,
    ) -> Decision:
        event = ctx.event
        stages = self._stages
        if stages is not None:
            stages.enter("detect")
        _use(ctx, read)
        _pair_with_start(ctx)
        # detect
        reasons = [reason for detector in self.detectors for reason in detector.detect(ctx)]
        probability = None
        if self._assess is not None:
            probability, found = self._assess(ctx)
            reasons += found
        ruled = self.rules.judge(ctx, reasons)
        # decide
        if stages is not None:
            stages.enter("decide")
        score, action, reasons = self.policy.decide(ruled.reasons, ruled.action, probability)
        # Built from the engine's own checked values: constructed, not validated again.
        decision = Decision.model_construct(
            decision_id=new_decision_id(),
            event_id=event.event_id,
            event_kind=event.kind,
            score=score,
            action=action,
            reasons=reasons,
            event_time=event.timestamp,
            user_id=ctx.user_id,
            card_id=event.__dict__.get("card_id"),
            model_versions=self.model_versions,
            latency_us=(time.perf_counter_ns() - started) / 1000,
            shadow=ruled.shadow,
        )
        # record
        if stages is not None:
            stages.enter("record")
        self.recorder.add(event, decision)
        # update profiles
        if stages is not None:
            stages.enter("update")
        self._update(ctx, keys, read, action, decision if settle else None)
        return decision

    # -- traced (only with a recording tracer provider: see __init__) -----------------------

    def _process_traced(self, raw: Event | Mapping[str, Any] | str | bytes) -> Decision:
        return self._traced(Engine.process, raw)

    def _decide_traced(
        self, event: Event, started: int | None = None, *, claim: bool = False
    ) -> Decision:
        if self._stages is None:  # called on its own (vigil replay): the event's span is here
            return self._traced(Engine.decide, event, started, claim=claim, event_id=event.event_id)
        return Engine.decide(self, event, started, claim=claim)

    def _traced(
        self, call: Any, *args: Any, event_id: str | None = None, **kwargs: Any
    ) -> Decision:
        """``call`` (the untraced method) inside the event's span, its stages in theirs."""
        assert self._tracer is not None
        stages = self._stages = _Stages(self._tracer)
        if event_id is not None:
            stages.identify(event_id)
        repeats = self.repeats
        error: BaseException | None = None
        try:
            decision = call(self, *args, **kwargs)
            stages.decided(decision, repeat=self.repeats != repeats)
            return decision
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._stages = None
            stages.end(error)

    def apply(self, event: Event, action: Action) -> None:
        """The update stage alone, for an event decided earlier with ``action``: how recovery
        re-applies the stored log to the profiles (:mod:`vigil.profiles.recovery`). The event
        is as stored (already pseudonymised); nothing is detected, decided or recorded."""
        ctx = self.enricher.enrich(event)
        keys = entity_keys(event, ctx.user)
        read = self.profiles.read(keys)
        _use(ctx, read)
        _pair_with_start(ctx)
        self._update(ctx, keys, read, action, None)

    def _update(
        self,
        ctx: Context,
        keys: list[Key],
        read: ProfileRead,
        action: Action,
        settled: Decision | None,
    ) -> None:
        familiar, declined = action is Action.ALLOW, action is Action.BLOCK
        update_profiles(ctx, keys, familiar=familiar, declined=declined)
        profiles = [ctx.profiles[kind] for kind, _ in keys]
        redo = functools.partial(self._update_again, ctx, keys, action, settled)
        if not self.profiles.write(read, profiles, settled, redo=redo):
            redo()

    def _update_again(
        self, ctx: Context, keys: list[Key], action: Action, settled: Decision | None
    ) -> None:
        """Another process sharing the store updated one of these profiles since we read
        them. The decision stands (taken on the state as read, and already recorded); the
        event is applied again on top of the newer state, so no update is lost. The writer we
        clashed with has finished, so the first retry goes at once; after that a random pause,
        growing with each clash, lets writers of one hot entity pass (it holds this process's
        event loop, so it stays short)."""
        familiar, declined = action is Action.ALLOW, action is Action.BLOCK
        for attempt in range(1, _WRITE_ATTEMPTS):
            if attempt > 1:
                time.sleep(random.uniform(0, 0.0005 * 2 ** min(attempt - 2, 6)))
            read = self.profiles.read(keys)
            _use(ctx, read)
            update_profiles(ctx, keys, familiar=familiar, declined=declined)
            if self.profiles.write(read, [ctx.profiles[kind] for kind, _ in keys], settled):
                return
        raise RuntimeError(
            f"profiles: {keys} changed under {_WRITE_ATTEMPTS} attempts to update them "
            f"for event {ctx.event.event_id}"
        )

    def learn(self, feedback: Feedback, event: Event | None = None) -> bool:
        """A later label on an event decided earlier, as it arrives (the API's and the
        stream's feedback, feedback in a replayed stream): a ``fraud`` label on a completed
        transaction at a terminal is counted in that terminal's profile, which terminal risk
        reads, whichever process decided the transaction, once per transaction. ``event`` is
        the labelled event as stored, when the caller has it (else it is looked up). True
        when it counted."""
        if feedback.label is not FeedbackLabel.FRAUD:
            return False
        if event is None:
            event = self.recorder.first_event(feedback.target_event_id)
        at = fraud_label_at(event) if event is not None else None
        if at is None:
            return False
        terminal, when = at
        return self.profiles.count_fraud(terminal, feedback.target_event_id, when)


class _Stages:
    """The spans of the event being decided: its own (``vigil.event``, current meanwhile) and
    the stage now running (``vigil.<stage>``, its child, current in turn), which ends as the
    next begins. Each stage span is current while it runs, so what a stage calls that is
    traced itself (a database or Redis client) shows inside it."""

    __slots__ = ("_root", "_root_token", "_span", "_token", "_tracer", "event_id")

    def __init__(self, tracer: Tracer) -> None:
        self._tracer = tracer
        self._root = tracer.start_span("vigil.event")
        self._root_token = otel_context.attach(trace.set_span_in_context(self._root))
        self._span: Span | None = None
        self._token: object = None
        self.event_id: str | None = None

    def enter(self, stage: str) -> None:
        self._leave(None)
        span = self._span = self._tracer.start_span(f"vigil.{stage}")
        if self.event_id is not None:
            span.set_attribute(EVENT_ID, self.event_id)
        self._token = otel_context.attach(trace.set_span_in_context(span))

    def identify(self, event_id: str) -> None:
        """The event's id, once known: on its span, the running stage's and the next ones'."""
        self.event_id = event_id
        self._root.set_attribute(EVENT_ID, event_id)
        if self._span is not None:
            self._span.set_attribute(EVENT_ID, event_id)

    def decided(self, decision: Decision, *, repeat: bool) -> None:
        self._root.set_attributes(
            {
                "vigil.event_kind": decision.event_kind,
                "vigil.decision_id": decision.decision_id,
                "vigil.action": decision.action.value,
                "vigil.score": decision.score,
                "vigil.repeat": repeat,
            }
        )

    def end(self, error: BaseException | None) -> None:
        self._leave(error)
        otel_context.detach(self._root_token)
        if error is not None:
            _failed(self._root, error)
        self._root.end()

    def _leave(self, error: BaseException | None) -> None:
        span = self._span
        if span is None:
            return
        otel_context.detach(self._token)  # type: ignore[arg-type]
        if error is not None:
            _failed(span, error)
        span.end()
        self._span = None


def _failed(span: Span, error: BaseException) -> None:
    span.record_exception(error)
    span.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(error).__name__}: {error}"))


def _use(ctx: Context, read: ProfileRead) -> None:
    """Put the profiles read into the context, advanced to the event's time."""
    for (kind, _key), profile in zip(read.keys, read.profiles, strict=True):
        profile.advance(ctx.end)
        ctx.profiles[kind] = profile


def _pair_with_start(ctx: Context) -> None:
    """An end event that does not repeat its start time takes it from the card's open start."""
    event = ctx.event
    if isinstance(event, Transaction) and event.phase is Phase.END and event.started_at is None:
        card = ctx.profiles.get("card")
        opened = card.open.get(event.transaction_id) if card is not None else None
        if opened is not None:
            ctx.start = opened[0]
