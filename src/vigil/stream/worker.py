"""A ``vigil consume`` worker: decides events from NATS JetStream, exactly once in effect.

For each partition it owns (:mod:`vigil.stream.leases`) the worker reads each kind of event
from a durable pull consumer of its own (``vigil-<kind>-<partition>``), a batch at a time and
in order, and for each batch:

1. validates every message: one that fails goes to ``vigil.events.rejected`` with the error
   naming the field, and is acknowledged, so it never blocks its partition;
2. decides the events with the same engine and service as ``vigil serve``
   (:class:`vigil.api.service.DecisionService`);
3. waits until the decisions are committed (group commit), then publishes each to
   ``vigil.decisions.<kind>`` (deduplicated by event id in the stream), then acknowledges.

A message redelivered after a crash (its ack never came) is decided again: it is a repeat, so
it gets its first decision, changes nothing, and its decision, published again, is dropped as
a duplicate. A message that cannot be decided now (a dead worker's claim on its event has not
lapsed yet, or its commit failed) holds up its partition: it and every later message of the
batch are tried again, in place, before anything else is fetched; a ``nak`` would let later
messages of the same card overtake it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import nats
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import NotFoundError
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    start_http_server,
)
from pydantic import ValidationError

from vigil.api import collector
from vigil.api.metrics import ApiMetrics
from vigil.api.problems import from_validation_error
from vigil.api.schemas import FeedbackIn
from vigil.api.service import DecisionService, NotCommitted
from vigil.domain import Decision, Login, Transaction
from vigil.engine import EventConflict, EventInProgress
from vigil.stream.leases import Leases, lease_bucket
from vigil.stream.subjects import (
    DECISIONS_STREAM,
    DEDUP_SECONDS,
    EVENTS_STREAM,
    KINDS,
    REJECTED,
    decisions_subject,
    subject,
)

if TYPE_CHECKING:
    from nats.aio.msg import Msg

    from vigil.config import Settings
    from vigil.config import StreamConfig as StreamSettings
    from vigil.storage import Store

log = logging.getLogger(__name__)

_MODELS: dict[str, type[Transaction | Login]] = {"transactions": Transaction, "logins": Login}
# A message refused: the message, the error, and the errors naming each field.
_Refused = tuple["Msg", str, list[Any]]
Item = TypeVar("Item", Transaction, Login, FeedbackIn)


def _parse(model: type[Item], message: Msg, refused: list[_Refused]) -> Item | None:
    """The message's body as ``model``, or None with the message added to ``refused``,
    its error naming each field."""
    try:
        return model.model_validate_json(message.data)
    except ValidationError as exc:
        problem = from_validation_error(exc)
        refused.append((message, problem.detail, [e.model_dump() for e in problem.errors or []]))
        return None


# How long a starting worker tries to reach NATS before it gives up with one line (exit 1), so
# an operator reads why at once and the container's restart policy or the service manager
# starts it again; nats-py alone would try for two minutes, logging a traceback per attempt.
CONNECT_SECONDS = 10.0


# What nats-py raises while its connection is down.
_DISCONNECTED = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
)
# nats-py's pause between two attempts to reconnect.
_RECONNECT_WAIT = 2.0


async def connect(
    url: str, *, name: str, seconds: float | None = None, reconnect_seconds: float = 120.0
) -> nats.NATS:
    """A connection to NATS at ``url``, or ConnectionError naming it and the last error after
    ``seconds`` (:data:`CONNECT_SECONDS`). Once connected, a lost connection is tried again for
    ``reconnect_seconds``, then closed for good; each failed attempt, then as now, is one
    warning line without a traceback."""
    last: list[Exception] = []

    async def failed(exc: Exception) -> None:
        last[:] = [exc]
        log.warning("nats: %s", _described(exc))

    try:
        return await asyncio.wait_for(
            nats.connect(
                url,
                name=name,
                error_cb=failed,
                reconnect_time_wait=_RECONNECT_WAIT,
                max_reconnect_attempts=max(1, round(reconnect_seconds / _RECONNECT_WAIT)),
            ),
            CONNECT_SECONDS if seconds is None else seconds,
        )
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        cause = _described(last[0] if last else exc)
        raise ConnectionError(f"NATS at {url} is unreachable: {cause}") from exc


def _described(exc: Exception) -> str:
    """An error of nats-py's in a few words: some of them carry no message."""
    return str(exc) or type(exc).__name__


class WorkerMetrics:
    """What ``/metrics`` of a worker shows: the stream's own counters beside what ``vigil
    serve`` counts of its decisions (by action, reason code and rule, shadow hits included;
    the engine's latency) and the process collectors, all in one registry."""

    def __init__(self) -> None:
        # The decision service of this worker counts into these: a worker decides as serve
        # does, so the dashboard's reasons and rule panels read workers and servers alike.
        self.decisions = ApiMetrics()
        self.registry: CollectorRegistry = self.decisions.registry
        self.decided = Counter(
            "vigil_stream_decided",
            "Events decided and acknowledged",
            ["kind"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "vigil_stream_rejected",
            "Messages refused (sent to vigil.events.rejected)",
            ["kind"],
            registry=self.registry,
        )
        self.redelivered = Counter(
            "vigil_stream_redelivered",
            "Messages delivered more than once",
            ["kind"],
            registry=self.registry,
        )
        self.lag = Gauge(
            "vigil_stream_lag",
            "Messages of owned partitions not yet delivered",
            registry=self.registry,
        )
        self.partitions = Gauge(
            "vigil_stream_partitions", "Partitions this worker owns", registry=self.registry
        )


@dataclass
class Worker:
    """One worker process; :meth:`run` until ``stop`` is set, then drains and returns."""

    settings: Settings
    store: Store
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    service: DecisionService | None = None
    #: For a worker process, not a test: the collector set for a long-lived heap once the
    #: engine is loaded, as ``vigil serve`` does (:func:`~vigil.api.collector.tune_gc`).
    tune_gc: bool = False
    decided: int = 0
    rejected: int = 0
    # Per (kind, partition) consumed here: messages not yet delivered, as the last delivery
    # said (free with each message; asking the server costs it a scan of the stream per
    # filtered consumer on NATS 2.9, which took more of its CPU than the deliveries).
    pending: dict[tuple[str, int], int] = field(default_factory=dict)

    async def run(self, stop: asyncio.Event) -> dict[str, Any]:
        config = self.settings.stream
        if config.metrics_port:
            start_http_server(config.metrics_port, registry=self.metrics.registry)
        nc = await connect(
            config.nats_url,
            name=f"vigil-consume {self.owner}",
            reconnect_seconds=config.reconnect_seconds,
        )
        js = nc.jetstream()
        await ensure_streams(js, config.retain_hours)
        leases = Leases(await lease_bucket(js, config.lease_seconds), self.owner)
        owned: dict[int, tuple[asyncio.Event, list[asyncio.Task[None]]]] = {}
        keeper = asyncio.create_task(self._keep(leases, owned, stop), name="vigil-leases")
        try:
            while not stop.is_set():
                if nc.is_closed:
                    raise ConnectionError(
                        f"NATS at {config.nats_url}: the connection was lost and not back "
                        f"within stream.reconnect_seconds ({config.reconnect_seconds:g} s)"
                    )
                if nc.is_connected:
                    try:
                        await self._take(js, leases, owned)
                    except (*_DISCONNECTED, OSError) as exc:  # lost meanwhile: next round
                        log.warning("taking partitions failed: %s", _described(exc))
                self.metrics.partitions.set(len(owned))
                self.metrics.lag.set(sum(self.pending.values()))
                await _sleep(stop, config.lease_seconds / 3)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            for partition in list(owned):
                await _stop(owned.pop(partition))
            if self.service is not None:
                self.service.close()
            if nc.is_connected:  # else the leases lapse on their own
                await leases.release()
                await nc.drain()
            else:
                await nc.close()
        return {"owner": self.owner, "decided": self.decided, "rejected": self.rejected}

    async def _take(
        self,
        js: JetStreamContext,
        leases: Leases,
        owned: dict[int, tuple[asyncio.Event, list[asyncio.Task[None]]]],
    ) -> None:
        """Take every partition nobody holds, and start deciding it."""
        for partition in range(self.settings.stream.partitions):
            if partition not in leases.held and await leases.take(partition):
                owned[partition] = await self._own(js, partition)
                if partition not in leases.held:  # lost while taking it over
                    await _stop(owned.pop(partition))

    async def _keep(
        self,
        leases: Leases,
        owned: dict[int, tuple[asyncio.Event, list[asyncio.Task[None]]]],
        stop: asyncio.Event,
    ) -> None:
        """Renew the leases, in a task of its own so that taking a partition over (which may
        recover profiles for seconds) never delays a renewal; stop deciding a lost one.

        A renewal that fails (NATS unreachable) is tried again; once half a lease has passed
        since the last one that succeeded, every partition is stopped and given up here, for
        its lease may lapse and another worker take it over: two owners of a partition would
        decide a card's events out of order. They are taken again when NATS is back."""
        seconds = self.settings.stream.lease_seconds
        renewed = time.monotonic()
        while not stop.is_set():
            try:
                # Bounded: a request to an unreachable server waits its whole timeout.
                lost = await asyncio.wait_for(leases.renew(), seconds / 3)
                renewed = time.monotonic()
            except Exception as exc:  # whatever the client raises while NATS is away
                log.warning("renewing the partition leases failed: %s", _described(exc))
                lost = leases.abandon() if time.monotonic() - renewed >= seconds / 2 else []
            for partition in lost:
                if partition in owned:
                    await _stop(owned.pop(partition))
            await _sleep(stop, seconds / 3)

    async def _own(
        self, js: JetStreamContext, partition: int
    ) -> tuple[asyncio.Event, list[asyncio.Task[None]]]:
        """Start deciding a partition just taken: one task per kind of event."""
        if self.service is None:
            # Made once this worker owns a partition: in-process profiles are then recovered
            # from the log as it stands when the previous owner stopped writing to it. In a
            # thread: loading and recovering take seconds, and the leases are renewed meanwhile.
            self.service = await asyncio.to_thread(self.decision_service)
            if self.tune_gc:
                collector.tune_gc()
            self.service.start()
        leaving = asyncio.Event()
        tasks = [
            asyncio.create_task(
                self._consume(js, kind, partition, leaving), name=f"{kind}-{partition}"
            )
            for kind in KINDS
        ]
        return leaving, tasks

    def decision_service(self) -> DecisionService:
        """The engine and group commit this worker decides with, counting into its metrics."""
        return DecisionService(self.settings, self.store, self.metrics.decisions)

    async def _consume(
        self, js: JetStreamContext, kind: str, partition: int, leaving: asyncio.Event
    ) -> None:
        config = self.settings.stream
        durable = f"vigil-{kind}-{partition}"
        sub = await js.pull_subscribe(
            subject(kind, partition, config.partitions),
            durable=durable,
            stream=EVENTS_STREAM,
            config=await _resume_from_ack_floor(js, durable, config),
        )
        waiting: list[Msg] = []  # not decided yet: they go first, before anything later
        while not leaving.is_set():
            if waiting:
                # In place, not nak'd: a nak'd message comes back behind later ones of its card.
                await asyncio.gather(*(m.in_progress() for m in waiting), return_exceptions=True)
                await asyncio.sleep(config.retry_seconds)
                messages, waiting = waiting, []
            else:
                messages = await _fetch(sub, config.batch)
                if not messages:
                    self.pending[kind, partition] = 0
                    continue
                self.pending[kind, partition] = messages[-1].metadata.num_pending
            try:
                waiting = await self._handle(js, kind, messages)
            except Exception:  # decided again, in place; the worker goes on
                log.exception("a batch of %s failed; it will be decided again", kind)
                waiting = messages
        # What was fetched and not acknowledged goes to the next owner, from the ack floor.
        await sub.unsubscribe()
        self.pending.pop((kind, partition), None)

    async def _handle(self, js: JetStreamContext, kind: str, messages: list[Msg]) -> list[Msg]:
        """Decide, commit, publish and acknowledge a batch in order; returns the messages from
        the first one that could not be decided or committed now, to be tried again first."""
        assert self.service is not None
        service = self.service
        for message in messages:
            if message.metadata.num_delivered > 1:
                self.metrics.redelivered.labels(kind).inc()
        if kind == "feedback":
            decided, refused, later = await self._label(messages)
        else:
            decided, refused, later = self._decide(kind, messages)
        for message, error, errors in refused:
            await self._reject(js, kind, message, error, errors)
        try:
            await service.commit([d.event_id for _, d in decided if d is not None])
        except NotCommitted as exc:
            failed = set(exc.event_ids)
            first = next(i for i, (_, d) in enumerate(decided) if d and d.event_id in failed)
            later = [m for m, _ in decided[first:]] + later
            decided = decided[:first]
        await asyncio.gather(
            *(
                js.publish(
                    decisions_subject(kind),
                    decision.model_dump_json().encode(),
                    stream=DECISIONS_STREAM,
                    headers={"Nats-Msg-Id": f"{kind}:{decision.event_id}"},
                )
                for _, decision in decided
                if decision is not None
            )
        )
        await asyncio.gather(*(message.ack() for message, _ in decided))
        self.decided += len(decided)
        self.metrics.decided.labels(kind).inc(len(decided))
        return later

    def _decide(
        self, kind: str, messages: list[Msg]
    ) -> tuple[list[tuple[Msg, Decision | None]], list[_Refused], list[Msg]]:
        """Decide a batch of events in one go, nothing awaited: their profiles are written as
        a batch (on Redis one round trip an event, every write sent before the batch is
        committed). Returns what was decided, what is refused, and what must wait."""
        assert self.service is not None
        service = self.service
        model = _MODELS[kind]
        decided: list[tuple[Msg, Decision | None]] = []
        refused: list[_Refused] = []
        with service.profiles.batched():
            for i, message in enumerate(messages):
                item = _parse(model, message, refused)
                if item is None:
                    continue
                try:
                    decision = service.decide([item])[0]
                except EventConflict as exc:
                    refused.append((message, str(exc), [{"field": "event_id"}]))
                    continue
                except EventInProgress:  # a dead worker's claim, lapsing: later, in order
                    return decided, refused, messages[i:]
                decided.append((message, decision))
        return decided, refused, []

    async def _label(
        self, messages: list[Msg]
    ) -> tuple[list[tuple[Msg, Decision | None]], list[_Refused], list[Msg]]:
        """Store and learn a batch of labels, in order."""
        assert self.service is not None
        labelled: list[tuple[Msg, Decision | None]] = []
        refused: list[_Refused] = []
        for message in messages:
            item = _parse(FeedbackIn, message, refused)
            if item is None:
                continue
            try:
                await self.service.label(item)
            except LookupError as exc:
                refused.append((message, str(exc), []))
                continue
            labelled.append((message, None))
        return labelled, refused, []

    async def _reject(
        self, js: JetStreamContext, kind: str, message: Msg, error: str, errors: list[Any]
    ) -> None:
        sequence = message.metadata.sequence.stream
        body = {
            "subject": message.subject,
            "stream_sequence": sequence,
            "error": error,
            "errors": errors,
            "data": message.data.decode("utf-8", errors="replace"),
        }
        await js.publish(
            REJECTED,
            json.dumps(body).encode(),
            stream=EVENTS_STREAM,
            headers={"Nats-Msg-Id": f"rejected:{sequence}"},
        )
        await message.ack()
        self.rejected += 1
        self.metrics.rejected.labels(kind).inc()


async def _fetch(sub: JetStreamContext.PullSubscription, batch: int) -> list[Msg]:
    """The next messages, or none within half a second. A fetch that fails otherwise (the
    client also ends an empty fetch with a bare TimeoutError, or with no messages; the server
    may be restarting) is logged and tried again: a partition's task must never end while its
    lease is held, or the partition would stall with nobody deciding it."""
    try:
        return await sub.fetch(batch, timeout=0.5)
    except TimeoutError:  # nats' own timeout is one too
        return []
    except _DISCONNECTED as exc:  # the connection is being restored (or given up): one line
        log.warning("fetching messages failed: %s; trying again", _described(exc))
        await asyncio.sleep(0.5)
        return []
    except Exception:
        log.exception("fetching messages failed; trying again")
        await asyncio.sleep(0.5)
        return []


async def _resume_from_ack_floor(
    js: JetStreamContext, durable: str, config: StreamSettings
) -> ConsumerConfig:
    """The partition consumer's settings for its new owner: from the first message not yet
    acknowledged. What the last owner fetched but never acknowledged would otherwise come back
    only after the ack wait, behind later messages of the same card; so the consumer is made
    afresh at its acknowledgement floor, and every message after it comes in order (those
    already decided as repeats)."""
    start = None
    try:
        info = await js.consumer_info(EVENTS_STREAM, durable)
        start = info.ack_floor.stream_seq + 1 if info.ack_floor else None
        await js.delete_consumer(EVENTS_STREAM, durable)
    except NotFoundError:
        pass
    return ConsumerConfig(
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start else DeliverPolicy.ALL,
        opt_start_seq=start,
        ack_wait=config.ack_wait_seconds,
        max_ack_pending=config.batch * 2,
    )


async def ensure_streams(js: JetStreamContext, retain_hours: float = 168.0) -> None:
    """The events and decisions streams, created if missing, keeping messages ``retain_hours``
    (``stream.retain_hours``): raw events carry personal data in clear, and both are copies
    of what the database keeps (and erases), so they are not kept for ever."""
    for name, subjects in (
        (EVENTS_STREAM, ["vigil.events.>"]),
        (DECISIONS_STREAM, ["vigil.decisions.>"]),
    ):
        try:
            await js.stream_info(name)
        except NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=name,
                    subjects=subjects,
                    duplicate_window=DEDUP_SECONDS,
                    max_age=retain_hours * 3600,
                )
            )


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, waking early when the worker is told to stop."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _stop(owned: tuple[asyncio.Event, list[asyncio.Task[None]]]) -> None:
    """Let a partition's tasks finish their batch, then end them."""
    leaving, tasks = owned
    leaving.set()
    await asyncio.gather(*tasks, return_exceptions=True)


def check_profiles(settings: Settings) -> None:
    """In-process profiles serve one partition's owner: several partitions need shared ones."""
    if settings.stream.partitions > 1 and settings.profiles_url is None:
        raise ValueError(
            "stream.partitions: more than one partition needs shared profiles (profiles_url, "
            "Redis): a card's terminal and device are seen from every partition"
        )
