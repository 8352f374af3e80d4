"""Profiles are a cache of the event log: checkpoints, and recovery after a crash.

The stored events and their decisions are the truth (:mod:`vigil.storage.log`). An in-process
profile store is checkpointed to the database now and then: the profiles changed since the
last checkpoint, written with the log position they include. On start, :func:`recover` loads
the newest checkpoint and re-applies every stored event after that position, in log order,
with the action its stored decision took (nothing is decided again). So a ``kill -9``, an
interrupted replay or a lost Redis end in the state an uninterrupted run reaches.

Fraud labels are in the profiles too (terminal risk: :mod:`vigil.profiles.fraud`), and the log
does not number them; but their counts commute, so a store brought up to the log has its
labels counted again from scratch: every stored fraud label a read can still reach
(:data:`~vigil.profiles.fraud.REACH` before the newest decision), once per transaction. A
shared store that was not rebuilt keeps its counts: a label is counted there before it is
stored (:meth:`vigil.api.service.DecisionService.label`), so it holds every stored one.

A checkpoint only ever includes committed events: the recorder's writer commits a batch before
the checkpoint taken after it, and leaves the checkpoint out when any of the batch failed.

>>> import tempfile
>>> from vigil.engine import Engine
>>> from vigil.recorder import Recorder
>>> from vigil.storage import Store
>>> store = Store(f"sqlite:///{tempfile.mkdtemp()}/v.db"); store.init_schema()
>>> live = Engine(store.load_reference(), MemoryProfileStore(), Recorder(store))
>>> _ = live.process({"kind": "login", "event_id": "l-1", "user_id": "u-1",
...                   "timestamp": "2022-01-01T09:00:00Z", "country": "NG"})
>>> live.recorder.flush()  # committed, never checkpointed: then the process dies
1
>>> fresh = Engine(store.load_reference(), MemoryProfileStore(), Recorder(store))
>>> recover(fresh, store)
Recovery(checkpoint=0, reapplied=1, rebuilt=False)
>>> fresh.profiles.get("user", "u-1").n
1
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from vigil.domain import FeedbackLabel, Phase
from vigil.profiles.fraud import REACH
from vigil.profiles.store import MemoryProfileStore, ProfileStore
from vigil.storage import log

if TYPE_CHECKING:
    from vigil.engine import Engine
    from vigil.storage import Store

Rows = list[tuple[str, str, bytes]]


@dataclass(frozen=True)
class Recovery:
    """What :func:`recover` did: the checkpoint's log position, how many stored events it
    re-applied after it, and whether a shared store was rebuilt from the whole log."""

    checkpoint: int
    reapplied: int
    rebuilt: bool


@dataclass(frozen=True)
class Checkpoint:
    """Profiles to save (``rows``) with the log position they include: ``position`` None is
    the newest, for profiles taken at once right after the batch holding their last event; a
    number is the position a :class:`Cut` reported, for profiles taken a few at a time since
    (:meth:`~vigil.profiles.store.MemoryProfileStore.take`). Those go in parts, each with a
    batch of its own; the last part is ``complete``, and the checkpoint counts from then."""

    rows: Rows
    position: int | None = None
    complete: bool = True

    def save(self, store: Store) -> int:
        """Write it (:func:`save_checkpoint`); returns how many profiles."""
        return save_checkpoint(store, self.rows, self.position, complete=self.complete)


@dataclass(frozen=True)
class Cut:
    """Handed over with the batch at which a checkpoint is cut: the writer reports the log
    position after that batch (if all of it was committed), which the profiles, taken a few
    at a time, are saved with later."""


def save_checkpoint(
    store: Store,
    rows: Iterable[tuple[str, str, bytes]],
    position: int | None = None,
    *,
    complete: bool = True,
) -> int:
    """Write changed profiles with the log position they include, in one transaction: the
    whole checkpoint, or with ``complete`` False a part of it, which counts only once its
    last part is written (:meth:`~vigil.storage.checkpoints.CheckpointStore.save_checkpoint_part`).

    Called after the batch holding every event they include has been committed (by the one
    writer that numbers this store's decisions); without ``position``, the newest is theirs.
    """
    if position is None and not complete:
        raise ValueError("position: a part of a checkpoint needs the position of its cut")
    with store.transaction() as conn:
        if position is None:
            position = log.position(conn, store)
        return store.save_checkpoint_part(rows, position, complete=complete, conn=conn)


def recover(engine: Engine, store: Store) -> Recovery:
    """Bring the engine's profiles up to the log: in process, the newest checkpoint plus every
    event after it; a shared store (Redis) found empty while the log is not is rebuilt from
    the whole log (:func:`rebuild`). Run before the engine decides anything."""
    profiles = engine.profiles
    if isinstance(profiles, MemoryProfileStore):
        state = profiles.restore(store) or {}
        # A snapshot from before log positions existed includes everything stored then.
        after = int(state.get("position", 0))
        reapplied = _reapply(engine, store, after)
        recount_labels(profiles, store)
        return Recovery(after, reapplied, rebuilt=False)
    if len(profiles) == 0:
        reapplied = _reapply(engine, store, 0)
        if reapplied:
            recount_labels(profiles, store)
        return Recovery(0, reapplied, rebuilt=reapplied > 0)
    return Recovery(0, 0, rebuilt=False)


def rebuild(engine: Engine, store: Store) -> Recovery:
    """Every profile recomputed from the whole log (``vigil profiles rebuild``): the shared
    store is emptied first, then each stored event re-applied in log order."""
    profiles = engine.profiles
    profiles.delete([(kind, key) for kind, key, _ in list(profiles.items())])
    reapplied = _reapply(engine, store, 0)
    recount_labels(profiles, store)
    return Recovery(0, reapplied, rebuilt=True)


def recount_labels(profiles: ProfileStore, store: Store) -> int:
    """Count every stored fraud label again in the terminal profiles (those already counted
    are forgotten first), as the engine counts one that arrives (:meth:`vigil.engine.Engine.
    learn`): on a completed transaction at a terminal, once per transaction, if a read can
    still reach it. Returns how many counted."""
    profiles.forget_labels()
    latest = store.latest_decision_time()
    if latest is None:
        return 0
    tx, fb = store.tables.transactions, store.tables.feedback
    # The transactions fraud_label_at counts, labelled fraud, within reach (a join on the
    # labels: far fewer than the transactions).
    query = (
        select(tx.c.event_id, tx.c.terminal_id, tx.c.timestamp)
        .join(fb, fb.c.target_event_id == tx.c.event_id)
        .where(fb.c.label == FeedbackLabel.FRAUD.value, tx.c.terminal_id.is_not(None))
        .where(tx.c.phase != Phase.START.value)
        .where(tx.c.timestamp >= latest - timedelta(seconds=REACH))
        .distinct()
    )
    with store.engine.connect() as conn:
        rows = conn.execute(query).all()
    return sum(
        profiles.count_fraud(terminal, event_id, when.timestamp())
        for event_id, terminal, when in rows
    )


def _reapply(engine: Engine, store: Store, after: int) -> int:
    n = 0
    for _, event, action in log.decided_since(store, after):
        engine.apply(event, action)
        n += 1
    return n
