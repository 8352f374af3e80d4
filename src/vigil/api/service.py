"""The one engine behind the API, and the only code that touches it.

**Why one thread.** The engine is single-threaded by design: deciding on an event reads the
profiles of its card, user, terminal and device, and the last stage writes them back. Two events
of one card decided at once would both read the old profile and one update would be lost; the
recorder's buffer is not synchronised either. So every engine call runs on the event loop's
thread, from ``async`` routes that do not ``await`` between reading the profiles and writing
them: the loop *is* the lock, and costs nothing per request (a ``threading.Lock`` plus a worker
thread per request would add a thread hop to every decision). One engine call takes tens of
microseconds, short enough to run inline. Database commits, the slow part, happen in the
recorder's writer process (:mod:`vigil.api.recording`).

The engine is built the way ``vigil replay`` builds it: reference data loaded from the store,
profiles from ``profiles_url`` (Redis) or, by default, in process, recovered from the log
(the newest checkpoint, then every stored event after it) and checkpointed as it runs.

**Acknowledged means committed.** A route decides its events, then awaits :meth:`commit`:
the answer leaves only once the batch holding its decisions is committed. Batches are group
commits: while the writer commits one, the next gathers every decision taken meanwhile. A
decision that could not be committed fails its request (:class:`NotCommitted`, a 503 the
client retries); in-process profiles, which already include it, are then rebuilt from the
log, so a retry is applied exactly once.

>>> import asyncio
>>> from vigil.storage import Store
>>> import tempfile
>>> store = Store(f"sqlite:///{tempfile.mkdtemp()}/v.db"); store.init_schema()
>>> service = DecisionService(Settings(), store)
>>> [d.action.value for d in service.decide([Login(event_id="l-1", user_id="u-1",
...      timestamp="2022-01-01T09:00:00Z")])]
['allow']
>>> asyncio.run(service.commit(["l-1"])); store.get_decision("l-1").action.value
'allow'
>>> service.close()["unrecorded"]
0
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from vigil.api.metrics import ApiMetrics
from vigil.api.recording import BackgroundRecorder
from vigil.api.schemas import FeedbackIn, FeedbackOut
from vigil.api.writer import Landed, running_loop
from vigil.config import Settings
from vigil.domain import Decision, Feedback, Login, Transaction
from vigil.engine import Engine
from vigil.privacy.erasure import ErasureReport, forget
from vigil.privacy.retention import RetentionPolicy, purge
from vigil.profiles import MemoryProfileStore, ProfileStore, holder
from vigil.profiles.profile import Profile
from vigil.profiles.recovery import Checkpoint, Cut, Recovery, recover
from vigil.profiles.store import open_profile_store
from vigil.storage.log import stored_events

if TYPE_CHECKING:
    from vigil.storage import Store

log = logging.getLogger(__name__)

Event = Transaction | Login
# Batches the writer holds at once: one it commits, one waiting its turn.
_IN_FLIGHT = 2
# Profiles a checkpoint serialises at each turn of the event loop (about 40 µs each), writes
# in each part (a transaction of 3-9 ms), and the seconds between two parts, in which the
# writer commits the decisions' batches: 10,000 profiles take 5 s.
_TAKE_AT_ONCE = 25
_PART = 100
_PART_GAP = 0.05
# With shared profiles, the ids other processes commit are read this often at most.
_FOLLOW_SECONDS = 5.0


class NotCommitted(RuntimeError):
    """Decisions whose commit failed: the request gets a 503 and may be sent again."""

    def __init__(self, event_ids: list[str]) -> None:
        shown = ", ".join(repr(i) for i in event_ids[:5])
        super().__init__(f"event_id: {shown} not recorded (the database refused or failed)")
        self.event_ids = event_ids


class _Batch:
    """A batch of the group commit, from its first decision to its landing.

    Each request waits on a future of its own: one cancelled (its client went away) must not
    cancel the others', as a shared future would. The group commit's own waits (room at the
    writer, a drain) are on ``landed``.
    """

    __slots__ = ("_loop", "_requests", "landed")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._requests: list[asyncio.Future[Landed]] = []
        self.landed: asyncio.Future[Landed] = loop.create_future()

    def join(self) -> asyncio.Future[Landed]:
        """A future of the batch's outcome, for one request."""
        request = self._loop.create_future()
        self._requests.append(request)
        return request

    def land(self, landed: Landed) -> None:
        self.landed.set_result(landed)
        for request in self._requests:
            if not request.done():
                request.set_result(landed)

    def fail(self, error: Exception) -> None:
        """Never handed over: its requests get ``error``."""
        for request in self._requests:
            if not request.done():
                request.set_exception(error)


def _log_decision(what: str, decision: Decision) -> None:
    log.debug(
        what,
        extra={
            "decision_id": decision.decision_id,
            "event_id": decision.event_id,
            "event_kind": decision.event_kind,
            "action": decision.action.value,
            "score": decision.score,
            "latency_us": decision.latency_us,
        },
    )


class DecisionService:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        metrics: ApiMetrics | None = None,
        *,
        profiles: ProfileStore | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics or ApiMetrics()
        # ``is not None``: a store with no profiles yet has a length of 0, so is falsy.
        self.profiles: ProfileStore = (
            profiles if profiles is not None else open_profile_store(settings)
        )
        self.recorder = BackgroundRecorder(
            store,
            on_error=self.metrics.unrecorded.inc,
            on_committed=self.profiles.committed,
            writer=settings.api.writer,
        )
        self.engine = Engine(
            store.load_reference(), self.profiles, self.recorder, settings=settings
        )
        # Profiles are a cache of the log: brought up to it before the first decision.
        self.recovery: Recovery = recover(self.engine, store)
        # In-process profiles: checkpointed, and rebuilt after a failed commit.
        self._memory = self.profiles if isinstance(self.profiles, MemoryProfileStore) else None
        self._checkpoint_due = time.monotonic() + settings.profiles.checkpoint_seconds
        # A checkpoint cut and not yet handed over: its profiles being taken a few at a time
        # (the task), and its parts ready to go to the writer with the log position of its
        # cut, one with each batch; and how many checkpoints were given up so far.
        self._taking: asyncio.Task[None] | None = None
        self._parts: collections.deque[Checkpoint] = collections.deque()
        self._abandoned = 0
        # Group commit (event-loop thread only): the batch now gathering, and the signal that
        # it holds something to commit. Made on the loop, at the first commit.
        self._gathering: _Batch | None = None
        # When the first decision joined the batch now gathering (time.monotonic()).
        self._gathering_since: float | None = None
        self._wanted: asyncio.Event | None = None
        # Event ids whose decisions were given up, until decided again: a repeat that found
        # one in flight must not be answered as committed.
        self._lost: set[str] = set()
        # In-process profiles that count events the log lacks (a commit failed): rebuilt
        # before anything else is committed, and never checkpointed meanwhile.
        self._stale = False
        # Batches handed to the writer and not yet landed (event-loop thread only).
        self._in_flight: set[asyncio.Future[Landed]] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False
        # What the last scheduled retention purge deleted, per table (None before the first).
        self.last_purge: dict[str, int] | None = None

    # -- deciding (event-loop thread only) --------------------------------------------------

    def decide(self, events: Sequence[Event]) -> list[Decision]:
        """Decide on validated events in order; a repeated event id gets its first decision.
        Their profiles are written as a batch (:meth:`ProfileStore.batched`): on Redis, one
        round trip an event, and every write sent before this returns.

        Each is counted (:class:`ApiMetrics`: by action, its reasons, its rules' hits) and, at
        debug level only, logged: one line per decision, ``decided`` or ``repeated``, with its
        ids, kind, action, score and the engine's latency."""
        engine = self.engine
        process = engine.process
        metrics = self.metrics
        decided, repeated, explained = metrics.decided, metrics.repeated, metrics.explained
        debug = log.isEnabledFor(logging.DEBUG)  # the hot path: off, a line costs nothing
        out = []
        with self.profiles.batched():
            for event in events:
                repeats = engine.repeats
                decision = process(event)
                if engine.repeats == repeats:
                    decided(decision.event_kind, decision.action.value, decision.latency_us / 1e6)
                    explained(decision.reasons, decision.shadow)
                    if self._lost:
                        self._lost.discard(decision.event_id)
                    if debug:
                        _log_decision("decided", decision)
                else:  # its latency is the first decision's, already observed
                    repeated(decision.event_kind)
                    if debug:
                        _log_decision("repeated", decision)
                out.append(decision)
        return out

    async def label(self, body: FeedbackIn) -> FeedbackOut:
        """Store a label on an earlier event (named by its event id or decision id) and teach
        the engine with it: ``POST /v1/feedback`` and the stream's feedback subject alike.
        Idempotent by the label's own event id (``created`` is False the second time);
        :class:`LookupError` naming the field when no decision matches."""
        await self.sync()
        store = self.store

        def find() -> tuple[Decision | None, Event | None]:
            if body.decision_id is not None:
                decision = store.get_decision_by_id(body.decision_id)
            else:
                assert body.target_event_id is not None
                decision = store.get_decision(body.target_event_id)
            if decision is None:
                return None, None
            # The labelled event as stored: a fraud label counts at its terminal and time.
            return decision, stored_events(store, [decision.event_id]).get(decision.event_id)

        decision, event = await asyncio.to_thread(find)
        if decision is None:
            named = "decision_id" if body.decision_id is not None else "target_event_id"
            raise LookupError(
                f"{named}: no decision on {body.decision_id or body.target_event_id!r}"
            )
        item = Feedback(
            event_id=body.event_id or f"fb-{uuid.uuid4().hex}",
            target_event_id=decision.event_id,
            label=body.label,
            timestamp=body.timestamp or datetime.now(UTC),
            source=body.source,
            pattern=body.pattern,
            note=body.note,
        )
        # Counted in the shared profiles before it is committed, as an event is: a label
        # stored but never counted (a crash in between) would stay uncounted, while one
        # counted and not stored is sent again by its client and counted once (learn is
        # idempotent per labelled transaction).
        self.learn(item, event)  # on the loop thread, the engine's only thread
        created = await asyncio.to_thread(store.insert_feedback, [item]) == 1
        return FeedbackOut(
            event_id=item.event_id,
            target_event_id=item.target_event_id,
            decision_id=decision.decision_id,
            label=item.label,
            created=created,
        )

    def learn(self, feedback: Feedback, event: Event | None = None) -> bool:
        """A new label, counted by the engine in the shared profiles (terminal risk), whichever
        process decided the labelled event (:meth:`Engine.learn`)."""
        return self.engine.learn(feedback, event)

    def profile(self, kind: str, key: str) -> Profile | None:
        """The entity's current profile, or None when it has never been seen.

        Devices are profiled under their pseudonym, and cards given by their number under its
        token; a raw value is pseudonymised first (a pseudonym passes unchanged), so an analyst
        may ask with either.
        """
        if kind == "device":
            key = self.engine.pseudonyms.device(key)
        elif kind == "card":
            key = self.engine.pseudonyms.card(key)
        profile = self.profiles.get(kind, key)
        return profile if profile.n else None

    # -- recording ---------------------------------------------------------------------------

    async def commit(self, event_ids: Sequence[str]) -> None:
        """Return once every decision taken so far is committed; raise :class:`NotCommitted`
        naming those of ``event_ids`` that were given up instead."""
        if self._wanted is None:
            self._start_group_commit()
        assert self._gathering is not None and self._wanted is not None
        landing = self._gathering.join()
        now = time.monotonic()
        if self._gathering_since is None:
            self._gathering_since = now
        if self._due_in_burst(now):
            self._send(None)
        else:
            self._wanted.set()
        landed = await landing
        lost = self._lost
        failed = [i for i in event_ids if i in landed.failed or i in lost]
        if failed:
            raise NotCommitted(failed)

    async def sync(self) -> None:
        """Commit every decision taken so far, so reads that follow see them."""
        await self.commit(())

    def _start_group_commit(self) -> None:
        loop = asyncio.get_running_loop()
        self._gathering = _Batch(loop)
        self._wanted = asyncio.Event()
        self._tasks.append(loop.create_task(self._group_commit(), name="vigil-group-commit"))

    async def _group_commit(self) -> None:
        """Hand each gathered batch to the writer as soon as it has room, and settle each as
        it lands (in order: the writer commits one batch after another).

        The writer holds at most ``_IN_FLIGHT`` batches: one being committed, the next waiting
        its turn, so a batch's decisions wait for little more than their own commit. While
        both places are taken, decisions gather: the busier the server, the larger the
        batches, the cheaper each decision's share of a commit."""
        assert self._wanted is not None
        wait = self.settings.api.group_commit_ms / 1000
        while True:
            await self._wanted.wait()
            if wait and not self._stale:
                await asyncio.sleep(wait)  # let the decisions of the next moments join
            while len(self._in_flight) >= _IN_FLIGHT:
                await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
            self._wanted.clear()
            if self._stale:
                await self._recover()
            try:
                await self._hand_over()
            except Exception:  # never leave a request waiting for ever
                log.exception("handing a batch to the writer failed")

    def _due_in_burst(self, now: float) -> bool:
        """Whether the gathered batch goes to the writer now, from the request that joined it.

        Requests that arrive together are decided one after another in one turn of the loop,
        and the group commit task runs only after them all: left to it, the writer would sit
        idle while the loop decides, and the loop while the writer commits. So once a batch
        has gathered for ``api.group_commit_ms`` and the writer has room (what it holds is
        counted as it finishes, not when the loop later settles it), the request in hand sends
        it, and the writer commits it while the loop goes on deciding. While the writer is
        full, decisions keep gathering: small batches queued behind a busy writer would each
        pay a commit's whole cost. Checkpoints and recovery stay the task's."""
        since = self._gathering_since
        return (
            since is not None
            and now - since >= self.settings.api.group_commit_ms / 1000
            and self._writer_has_room()
        )

    def _writer_has_room(self) -> bool:
        """Whether a gathered batch may go to the writer from a request or a landing (the
        group commit task's own hand-overs also bring checkpoints and recovery)."""
        return (
            self.recorder.at_writer < _IN_FLIGHT
            and not self._stale
            and not self._checkpoint_is_due()
            and not self._parts
        )

    async def _hand_over(self) -> None:
        """The gathered batch to the writer, with the cut of a checkpoint when one is due, or
        with the next part of the checkpoint taken since its cut."""
        checkpoint: Checkpoint | Cut | None = None
        if self._parts:
            checkpoint = self._parts.popleft()
            if checkpoint.complete:  # it completes the checkpoint: each part before it landed
                abandoned = self._abandoned
                await self._drain()
                if self._abandoned != abandoned:  # a part failed; its profiles go to the next
                    checkpoint = None
        elif self._checkpoint_is_due():
            await self._drain()  # a checkpoint must not include a batch still in doubt
            if self._checkpoint_is_due():  # no batch failed meanwhile
                assert self._memory is not None
                self._checkpoint_due = time.monotonic() + self.settings.profiles.checkpoint_seconds
                self._memory.begin_checkpoint()
                checkpoint = Cut()
        self._send(checkpoint)

    async def _take_checkpoint(self, position: int) -> None:
        """Serialise the profiles of the checkpoint cut at ``position`` a few at each turn of
        the loop (at once they would hold every request for the better part of a second),
        and queue them in parts of ``_PART``, one every ``_PART_GAP`` seconds, for the group
        commit to hand over with its next batch: a part written in one transaction holds the
        commits behind it only so long, and only so often."""
        memory, wanted = self._memory, self._wanted
        assert memory is not None and wanted is not None
        while True:
            # Profiles about to change are taken meanwhile too: parts are cut to _PART.
            done = memory.take(0 if memory.taken >= _PART else _TAKE_AT_ONCE)
            if done and memory.taken <= _PART:
                break
            if memory.taken >= _PART:
                part = memory.checkpoint_part(_PART)
                self._parts.append(Checkpoint(part, position, complete=False))
                wanted.set()
                await asyncio.sleep(_PART_GAP)
            else:
                await asyncio.sleep(0)
        self._parts.append(Checkpoint(memory.checkpoint_rows(), position))
        self._taking = None
        wanted.set()

    def _abandon_checkpoint(self) -> None:
        """Give up the checkpoint under way, parts not yet handed over included: its profiles
        go to the next one."""
        if self._taking is not None:
            self._taking.cancel()
            self._taking = None
        self._parts.clear()
        self._abandoned += 1
        if self._memory is not None:
            self._memory.abandon_checkpoint()

    def _send(self, checkpoint: Checkpoint | Cut | None) -> None:
        """The gathered batch, and ``checkpoint`` if given, to the writer; settled as it lands."""
        loop = asyncio.get_running_loop()
        self._gathering_since = None
        batch, self._gathering = self._gathering, _Batch(loop)
        assert batch is not None
        try:
            n = self.recorder.flush(checkpoint)
        except Exception as exc:
            batch.fail(exc)
            raise
        if n:
            self.metrics.commit_batch.observe(n)
        handed = self.recorder.committed()
        if (not n and checkpoint is None) or handed is None:
            batch.land(Landed(frozenset(), checkpointed=False))
            return
        self._in_flight.add(batch.landed)

        def settle(_: concurrent.futures.Future[Landed]) -> None:
            # The loop reads the writer's answers itself: a batch is settled as its answer is
            # read, and its requests resume at the loop's next turn. Each turn in between (a
            # task awaiting the answer, a shield per request, a call_soon) waited behind every
            # request that arrived meanwhile: at an open 2,000/s, up to 29 ms (p99) for one.
            if running_loop() is loop:
                self._settle(handed, batch, checkpoint)
            else:  # read by a thread waiting for it, or written by a writer thread
                loop.call_soon_threadsafe(self._settle, handed, batch, checkpoint)

        handed.add_done_callback(settle)

    def _settle(
        self,
        handed: concurrent.futures.Future[Landed],
        batch: _Batch,
        checkpoint: Checkpoint | Cut | None,
    ) -> None:
        landed = handed.result()  # the recorder gives up a batch it could not write: no error
        self._in_flight.discard(batch.landed)
        if isinstance(checkpoint, Cut):
            if landed.position is None:  # the batch at the cut failed: no checkpoint there
                self._abandon_checkpoint()
            elif self._memory is not None and self._memory.taking:
                self._taking = asyncio.get_running_loop().create_task(
                    self._take_checkpoint(landed.position), name="vigil-checkpoint-take"
                )
        elif checkpoint is not None and not landed.checkpointed:
            self._abandon_checkpoint()  # not completed without this part
        elif checkpoint is not None and checkpoint.complete:
            assert self._memory is not None
            self._memory.checkpoint_done()
        self._lost.update(landed.failed)
        batch.land(landed)
        self.metrics.buffered.set(self.recorder.buffered)
        if landed.failed and self._memory is not None:
            self._stale = True
            assert self._wanted is not None
            self._wanted.set()  # rebuild the profiles before anything more is committed
        if self._gathering_since is not None and self._writer_has_room():
            # Decisions gathered while the writer was full: they have waited long enough.
            self._send(None)

    async def _drain(self) -> None:
        """Wait until every batch handed over has landed."""
        while self._in_flight:
            await asyncio.wait(self._in_flight)

    def _checkpoint_is_due(self) -> bool:
        """Whether to cut a checkpoint of the in-process profiles (none is under way)."""
        return (
            self._memory is not None
            and not self._stale
            and not self._memory.taking
            and not self._parts
            and time.monotonic() >= self._checkpoint_due
        )

    async def _checkpoint_every(self, seconds: float, registered: dict) -> None:
        """Checkpoint even when no decisions come (a quiet server's last ones included), and
        renew this server's registration as the profiles' holder."""
        assert self._wanted is not None
        while True:
            await asyncio.sleep(seconds)
            self._wanted.set()  # the group commit writes the checkpoint that is now due
            try:
                await asyncio.to_thread(holder.renew, self.store, registered)
            except Exception:  # the next renewal tries again
                log.exception("renewing the profile holder registration failed")

    async def _recover(self) -> None:
        """In-process profiles include the events whose decisions were given up: commit what
        was decided since, then rebuild the profiles from the log (the newest checkpoint and
        every stored event after it). Decisions wait meanwhile; failures are rare. While the
        database cannot be read the profiles stay stale (never checkpointed), and recovery is
        tried again after the next batch."""
        try:
            await self._drain()
            await self._hand_over()  # what was decided since, on the stale profiles
            await self._drain()
        except Exception:
            log.exception("committing before rebuilding the profiles failed; trying again later")
            return
        self._rebuild_now()

    def _rebuild_now(self) -> None:
        self._abandon_checkpoint()  # its profiles are replaced: the next one takes them
        try:
            self.recovery = recover(self.engine, self.store)
        except Exception:
            log.exception("rebuilding the profiles from the log failed; trying again later")
            return
        self._stale = False
        log.warning("profiles rebuilt from the log after a failed commit: %s", self.recovery)

    # -- privacy ---------------------------------------------------------------------------

    async def forget(self, user_id: str) -> ErasureReport:
        """Erase one person (:func:`vigil.privacy.erasure.forget`) from the database and from
        this service's live profiles, so no later snapshot writes them back.

        Decisions still buffered are committed first, or they would be written after the
        erasure. The erasure itself runs on the event loop's thread: the loop is the lock of
        the profiles (see the module docstring), so no event of the person is decided halfway
        through it; requests wait meanwhile, a cost paid only on an erasure.
        """
        await self.sync()
        return forget(self.store, user_id, profiles=self.profiles)

    async def _purge_every(self, seconds: float) -> None:
        policy = RetentionPolicy.from_config(self.settings.privacy.retention)
        while True:
            await asyncio.sleep(seconds)
            try:
                # In a worker thread: a purge is one database transaction, maybe long.
                self.last_purge = await asyncio.to_thread(
                    purge, self.store, policy, datetime.now(UTC)
                )
                log.info("retention purge: %s", self.last_purge)
            except Exception:  # the next interval tries again; serving goes on meanwhile
                log.exception("retention purge failed")

    async def _follow_log(self) -> None:
        """Learn the ids of the decisions other processes sharing the profiles commit, well
        within the life of their claims: a repeat that reaches this process after its claim
        lapsed then gets its first decision here, from the database (the claim is only a hint),
        instead of being decided and applied to the profiles again."""
        claim = self.settings.profiles.claim_ttl_seconds
        every = min(_FOLLOW_SECONDS, claim / 4)
        while True:
            try:
                # In a worker thread: a query, and hashing what it brings.
                await asyncio.to_thread(self.recorder.follow, claim / 2)
            except Exception:  # known ids are trusted a while: the next poll tries again
                log.exception("reading what other processes committed failed")
            await asyncio.sleep(every)

    def start(self) -> None:
        """Start group commits, checkpoints of in-process profiles (with shared ones, the
        following of what other processes commit), and the retention policy every
        ``privacy.purge_interval_hours`` (0: never). Needs a running loop."""
        loop = asyncio.get_running_loop()
        if self._wanted is None:
            self._start_group_commit()
        if self._memory is not None:
            every = self.settings.profiles.checkpoint_seconds
            registered = holder.register(self.store, every_seconds=every)
            self._tasks.append(
                loop.create_task(self._checkpoint_every(every, registered), name="vigil-checkpoint")
            )
        else:  # shared profiles: other processes decide too
            self._tasks.append(loop.create_task(self._follow_log(), name="vigil-follow"))
        hours = self.settings.privacy.purge_interval_hours
        if hours > 0:
            self._tasks.append(
                loop.create_task(self._purge_every(hours * 3600), name="vigil-purge")
            )

    def close(self) -> dict[str, int | float]:
        """Stop: commit every decision, checkpoint every profile. Returns what was saved."""
        if self._closed:
            return {}
        self._closed = True
        for task in self._tasks:
            task.cancel()
        started = time.perf_counter()
        self.recorder.close()
        if self._memory is not None:
            self._abandon_checkpoint()  # the snapshot below saves every profile
            if self._stale:  # a commit failed and the profiles were not rebuilt yet
                self._rebuild_now()
            # Stale profiles are never saved: the last checkpoint and the log give the right
            # ones at the next start.
            saved = 0 if self._stale else self._memory.snapshot(self.store)
            holder.release(self.store)
        else:
            saved = len(self.profiles)
        return {
            "profiles": saved,
            "unrecorded": self.recorder.unrecorded,
            "seconds": round(time.perf_counter() - started, 3),
        }
