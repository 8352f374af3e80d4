"""Decisions: what the engine decided on each event, stored with the event it decided, in
the decision log's order, sealed batch by batch; a risk event for each flagged one, and the
hits of shadow rules (:mod:`vigil.storage.audit` chains and seals them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, select

from vigil.domain.decisions import Decision
from vigil.domain.events import Login, Transaction
from vigil.storage import audit
from vigil.storage import log as event_log
from vigil.storage import rows as R
from vigil.storage.database import CHUNK, IN_CHUNK, batched, need
from vigil.storage.events import EventStore

if TYPE_CHECKING:
    import polars as pl

# decision_frame columns derived from the stored reasons rather than read as they are.
_DECISION_COLUMNS: dict[str, Callable[[Any, str], Any]] = {
    "reason_codes": lambda row, _: R.reason_codes(row.reasons),
    "evidence": lambda row, _: R.reason_evidence(row.reasons),
}


def _shadow_rows(decision: Decision) -> list[dict[str, Any]]:
    """Rows of ``rule_shadow_hits`` for a decision's shadow-rule hits (vigil.rules)."""
    return [
        {
            "decision_id": decision.decision_id,
            "event_id": decision.event_id,
            "event_time": decision.event_time,
            "rule": hit.code,
            "score": hit.score,
            "detail": hit.detail,
            "action": decision.action.value,
        }
        for hit in decision.shadow
    ]


class DecisionStore(EventStore):
    """The ``decisions`` table, with ``risk_events``, ``rule_shadow_hits`` and
    ``decision_links`` as :meth:`record` writes them. It builds on :class:`EventStore`
    because a batch's events are stored in the same transaction as its decisions.

    >>> from datetime import datetime, UTC
    >>> from vigil.storage import Store
    >>> store = Store("sqlite://"); store.init_schema()
    >>> login = Login(event_id="l-1", user_id="u-1", timestamp=datetime(2022, 1, 1, tzinfo=UTC))
    >>> store.record([login], [Decision(decision_id="d-1", event_id="l-1", event_kind="login",
    ...                                 score=0.1, action="allow", user_id="u-1")])
    >>> store.get_decision_by_id("d-1").event_id, list(store.get_decisions(["l-1", "l-2"]))
    ('l-1', ['l-1'])
    """

    def record(
        self,
        events: Sequence[Transaction | Login],
        decisions: Sequence[Decision],
        conn: Connection | None = None,
    ) -> None:
        """Store a processed batch in one transaction: its events (already stored ones are
        skipped), its decisions, sealed as one batch, and a risk event for every flagged
        decision (:mod:`vigil.storage.audit`)."""
        txs: list[Transaction] = []
        logins: list[Login] = []
        context: dict[str, tuple[str | None, str | None]] = {}
        for i, ev in enumerate(events):
            if isinstance(ev, Transaction):
                txs.append(ev)
                context[ev.event_id] = (ev.transaction_id, ev.terminal_id)
            elif isinstance(ev, Login):
                logins.append(ev)
                context[ev.event_id] = (None, None)
            else:
                got = type(ev).__name__
                raise TypeError(f"events[{i}]: expected Transaction or Login, got {got}")
        now = R.utc_now()
        decision_rows = []
        risk_rows = []
        shadow_rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for i, d in enumerate(need(decisions, Decision, "decisions")):
            if d.event_id in seen:
                raise ValueError(f"decisions[{i}].event_id: {d.event_id!r} decided twice in batch")
            seen.add(d.event_id)
            transaction_id, terminal_id = context.get(d.event_id, (None, None))
            decision_rows.append(
                R.decision_row(
                    d, transaction_id=transaction_id, terminal_id=terminal_id, created_at=now
                )
            )
            if d.flagged:
                risk_rows.append(R.risk_event_row(d, updated_at=now))
            shadow_rows.extend(_shadow_rows(d))
        # The engine's decisions carry a token already; any other caller's are made to.
        self._pseudonymised(decision_rows)
        self._pseudonymised(risk_rows)
        pseudonyms = self.privacy.pseudonyms
        with self._joined(conn) as c:
            self.insert_transactions(txs, c)
            self.insert_logins(logins, c)
            positions = event_log.next_positions(c, self, len(decision_rows))
            for row, seq in zip(decision_rows, positions, strict=True):
                row["seq"] = seq
            sealed = audit.prepare_batch(decision_rows, pseudonyms) if decision_rows else None
            self._insert_all(c, self.tables.decisions, decision_rows)
            self._insert_all(c, self.tables.rule_shadow_hits, shadow_rows)
            # The audit appends come last: on PostgreSQL their lock is held until commit.
            audit.chain(c, self.tables.risk_events, risk_rows, pseudonyms)
            self._insert_all(c, self.tables.risk_events, risk_rows)
            if sealed is not None:
                audit.append_link(c, self.tables.decision_links, sealed)

    def get_decision(self, event_id: str) -> Decision | None:
        return self.get_decisions([event_id]).get(event_id)

    def get_decision_by_id(self, decision_id: str) -> Decision | None:
        """The decision with this decision id (the id the API returns), if any."""
        t = self.tables.decisions
        with self.engine.connect() as conn:
            row = conn.execute(select(t).where(t.c.decision_id == decision_id)).first()
        return None if row is None else R.decision_from_row(row._mapping)

    def get_decisions(self, event_ids: Sequence[str]) -> dict[str, Decision]:
        """Decisions on these events, by event id; events never decided are absent."""
        t = self.tables.decisions
        out: dict[str, Decision] = {}
        with self.engine.connect() as conn:
            for chunk in batched(dict.fromkeys(event_ids), IN_CHUNK):
                for r in conn.execute(select(t).where(t.c.event_id.in_(chunk))):
                    out[r.event_id] = R.decision_from_row(r._mapping)
        return out

    def latest_decision_time(self) -> datetime | None:
        """The latest event time among recorded decisions (None when there are none)."""
        t = self.tables.decisions
        with self.engine.connect() as conn:
            return conn.execute(select(func.max(t.c.event_time))).scalar_one_or_none()

    def decision_frame(self) -> pl.DataFrame:
        """Every decision as a Polars frame in (event_time, event_id) order, for evaluation.

        ``unit_id`` is the evaluation unit: the transaction id when there is one, else the
        event id; ``reason_codes`` lists the codes of the decision's reasons.
        """
        import polars as pl

        t = self.tables.decisions
        names = [
            "event_id",
            "transaction_id",
            "unit_id",
            "event_kind",
            "event_time",
            "score",
            "action",
            "reason_codes",
            "evidence",
            "user_id",
            "card_id",
            "terminal_id",
            "latency_us",
        ]
        query = select(
            t.c.event_id,
            t.c.transaction_id,
            func.coalesce(t.c.transaction_id, t.c.event_id).label("unit_id"),
            t.c.event_kind,
            t.c.event_time,
            t.c.score,
            t.c.action,
            t.c.reasons,
            t.c.user_id,
            t.c.card_id,
            t.c.terminal_id,
            t.c.latency_us,
        ).order_by(t.c.event_time, t.c.event_id)
        columns: dict[str, list[Any]] = {n: [] for n in names}
        with self.engine.connect() as conn:
            for r in conn.execute(query.execution_options(yield_per=CHUNK)):
                for n in names:
                    columns[n].append(_DECISION_COLUMNS.get(n, getattr)(r, n))
        schema = {
            "event_id": pl.String,
            "transaction_id": pl.String,
            "unit_id": pl.String,
            "event_kind": pl.String,
            "event_time": pl.Datetime("us", "UTC"),
            "score": pl.Float64,
            "action": pl.String,
            "reason_codes": pl.List(pl.String),
            "evidence": pl.List(pl.String),
            "user_id": pl.String,
            "card_id": pl.String,
            "terminal_id": pl.String,
            "latency_us": pl.Float64,
        }
        return pl.DataFrame(columns, schema=schema)
