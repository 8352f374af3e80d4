"""The record stage for a server: batches are committed by a writer thread, off the event loop.

:class:`~vigil.recorder.Recorder` writes a batch in the caller's thread. A server that did that
on its event loop would stall every request behind each commit; here the loop only swaps the
buffer out and a single writer thread commits it, in order. Until its commit lands a batch's
decisions stay in memory ("in flight"), so a repeated event id still finds its first decision
in the gap between the buffer and the database.

A batch that cannot be written is retried a few times (the database may be restarting), then
counted as unrecorded through ``on_error`` and dropped: the client already has its decision,
and a retry of the same event will be decided afresh because no record of it exists. A batch
the database refuses for one of its decisions is split until only that one is dropped.

>>> from datetime import datetime, UTC
>>> from vigil.domain import Decision, Login
>>> from vigil.storage import Store
>>> import tempfile
>>> store = Store(f"sqlite:///{tempfile.mkdtemp()}/v.db"); store.init_schema()
>>> rec = BackgroundRecorder(store)
>>> login = Login(event_id="l-1", user_id="u-1", timestamp=datetime(2022, 1, 1, tzinfo=UTC))
>>> rec.add(login, Decision(decision_id="d-1", event_id="l-1", event_kind="login", score=0,
...                         action="allow"))
>>> rec.flush(), rec.decided(login).decision_id
(1, 'd-1')
>>> rec.drain(); rec.close(); store.get_decision("l-1").decision_id
'd-1'
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from vigil.domain import Decision, Login, Transaction
from vigil.recorder import Recorder

if TYPE_CHECKING:
    from vigil.storage import Store

log = logging.getLogger(__name__)

_ATTEMPTS = 5


class BackgroundRecorder(Recorder):
    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = 5000,
        on_error: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(store, batch_size=batch_size)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigil-recorder")
        # Written by the loop thread, emptied by the writer: single dict operations, atomic
        # under the GIL, so no lock is needed.
        self._inflight: dict[str, Decision] = {}
        self._last: Future[None] | None = None
        self._on_error = on_error
        self.unrecorded = 0

    @property
    def buffered(self) -> int:
        """Decisions not yet committed (buffered or being written)."""
        return len(self._pending) + len(self._inflight)

    def decided(self, event: Transaction | Login) -> Decision | None:
        found = self._inflight.get(event.event_id)
        return found if found is not None else super().decided(event)

    def flush(self) -> int:
        """Hand the buffered batch to the writer thread; returns how many decisions it holds."""
        n = len(self._pending)
        if not n:
            return 0
        events, pending, standin = self._events, self._pending, self._standin
        self._events, self._pending, self._standin = [], {}, []
        self._inflight.update(pending)
        self._last = self._writer.submit(self._write, events, pending, standin)
        return n

    def committed(self) -> Future[None] | None:
        """The future of the last batch handed over: once it is done, every earlier one is."""
        return self._last

    def drain(self) -> None:
        """Flush and wait until everything handed over is committed (or given up)."""
        self.flush()
        if self._last is not None:
            self._last.result()

    def close(self) -> None:
        self.drain()
        self._writer.shutdown(wait=True)

    def _write(
        self,
        events: list[Transaction | Login],
        pending: dict[str, Decision],
        standin: list[dict[str, Any]],
    ) -> None:
        try:
            self._record(events, list(pending.values()))
            if standin:
                self._log_standin(standin)
        finally:
            for event_id in pending:
                self._inflight.pop(event_id, None)

    def _log_standin(self, rows: list[dict[str, Any]]) -> None:
        """StandIn inferences of a committed batch (their decisions stand without them)."""
        assert self.store is not None
        try:
            self.store.log_standin(rows)
        except Exception:
            log.exception("giving up on %d StandIn inferences", len(rows))

    def _record(self, events: list[Transaction | Login], decisions: list[Decision]) -> None:
        """Commit a batch; retry what may pass later, isolate what never will.

        A decision the database refuses outright (an integrity error: say an event id decided
        before a restart, re-sent with a later timestamp, so the recorder did not look it up)
        must not take the rest of its batch down with it: the batch is split in halves until
        the refused decision stands alone, and only it is given up.
        """
        assert self.store is not None
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                self.store.record(events, decisions)
                return
            except IntegrityError:
                if len(decisions) > 1:
                    half = len(decisions) // 2
                    self._record(events[:half], decisions[:half])
                    self._record(events[half:], decisions[half:])
                    return
                break
            except Exception:
                if attempt == _ATTEMPTS:
                    break
                log.warning("writing %d decisions failed; retrying", len(decisions))
                time.sleep(0.05 * 2**attempt)
        log.exception("giving up on %d decisions", len(decisions))
        self.unrecorded += len(decisions)
        if self._on_error is not None:
            self._on_error(len(decisions))
