"""The tamper-evident risk-event log: every risk event is chained to the one before by hash.

``hash = sha256(previous hash ‖ canonical content)``, where the content is what the audit trail
asserts and nothing an analyst may later change: sequence number, decision and event ids,
event time, score, action, reason codes, and the user and card *as pseudonyms* (HMAC under the
privacy key). Because the chain commits to the pseudonyms rather than the raw ids, erasing a
person (which replaces their ids in ``risk_events`` with exactly those pseudonyms) leaves every
hash valid, while changing one id into another breaks it. The analyst's status, label, action
taken and ``updated_at`` are workflow fields outside the chain.

Writers append under a lock: SQLite holds its one write lock from a batch's first insert;
PostgreSQL takes a transaction-level advisory lock, so two ``serve`` processes never fork the
chain. The chain cannot show the *newest* rows being deleted (nothing follows them); the head
(``seq``, ``hash``) that :func:`verify_chain` reports is what to anchor elsewhere, and
``expect_head`` checks such an anchor later (:mod:`vigil.storage.anchor` keeps it signed).

A flagged decision is held to its risk event: the decision row it rests on must still exist and
carry the event, score, action and reason codes the chain committed to, so changing or deleting
it in ``decisions`` is caught too (decisions that flagged nothing are not chained).

>>> from datetime import datetime, UTC
>>> from vigil.privacy.pseudonyms import Pseudonymiser

if TYPE_CHECKING:
    from vigil.storage import Store
>>> p = Pseudonymiser(b"k")
>>> row = {"decision_id": "d1", "event_id": "e1", "event_time": datetime(2022, 1, 1, tzinfo=UTC),
...        "user_id": "u-1", "card_id": None, "score": 0.95, "action": "block",
...        "reason_codes": "amount_outlier"}
>>> link(row, 1, GENESIS, p) == link({**row, "user_id": p.subject("u-1")}, 1, GENESIS, p)
True
>>> link(row, 1, GENESIS, p) == link({**row, "user_id": "u-2"}, 1, GENESIS, p)
False
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, select, text

from vigil.privacy.pseudonyms import Pseudonymiser

if TYPE_CHECKING:
    from vigil.storage import Store

GENESIS = "0" * 64
# Any fixed 64-bit number works; this one spells "vigil" so it is recognisable in pg_locks.
_ADVISORY_LOCK = 0x766967696C
_PAGE = 5_000


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def link(row: Mapping[str, Any], seq: int, previous: str, pseudonyms: Pseudonymiser) -> str:
    """The hash of the risk event ``row`` at position ``seq`` after the one hashed ``previous``."""
    user, card = row["user_id"], row["card_id"]
    content = [
        seq,
        row["decision_id"],
        row["event_id"],
        _instant(row["event_time"]),
        None if user is None else pseudonyms.subject(user),
        None if card is None else pseudonyms.subject(card),
        repr(float(row["score"])),
        row["action"],
        row["reason_codes"],
    ]
    data = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{previous}\n{data}".encode()).hexdigest()


def chain(
    conn: Connection, table: Table, rows: list[dict[str, Any]], pseudonyms: Pseudonymiser
) -> None:
    """Give ``rows`` (about to be inserted, in order) their ``seq``, ``prev_hash`` and ``hash``,
    continuing the chain stored in ``table``. Call inside the inserting transaction, after it
    has written something (SQLite) — the lock it takes (PostgreSQL) lasts until commit."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
    head = conn.execute(
        select(table.c.seq, table.c.hash)
        .where(table.c.seq.is_not(None))
        .order_by(table.c.seq.desc())
        .limit(1)
    ).first()
    seq, previous = (head.seq, head.hash) if head is not None else (0, GENESIS)
    for row in rows:
        seq += 1
        row["seq"] = seq
        row["prev_hash"] = previous
        row["hash"] = previous = link(row, seq, previous, pseudonyms)


def chain_existing(conn: Connection, table: Table, pseudonyms: Pseudonymiser) -> int:
    """Chain rows stored before the chain existed (``seq`` NULL), in id order; returns how many.
    A schema upgrade calls it once."""
    pending = [
        dict(r)
        for r in conn.execute(
            select(table).where(table.c.seq.is_(None)).order_by(table.c.risk_event_id)
        ).mappings()
    ]
    chain(conn, table, pending, pseudonyms)
    for row in pending:
        conn.execute(
            table.update()
            .where(table.c.risk_event_id == row["risk_event_id"])
            .values(seq=row["seq"], prev_hash=row["prev_hash"], hash=row["hash"])
        )
    return len(pending)


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What :func:`verify_chain` found; ``broken_seq`` and ``problem`` name the first bad link.

    >>> ChainReport(checked=3, head_seq=3, head_hash="ab").ok
    True
    """

    checked: int
    head_seq: int | None
    head_hash: str | None
    broken_seq: int | None = None
    broken_risk_event_id: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def verify_chain(
    conn: Connection,
    table: Table,
    pseudonyms: Pseudonymiser,
    *,
    expect_head: tuple[int, str] | None = None,
    decisions: Table | None = None,
) -> ChainReport:
    """Walk the chain in ``seq`` order and report the first link that does not hold.

    The first stored row is trusted to start the chain (at seq 1 from the genesis hash, or
    later if retention removed older risk events). ``expect_head``, a ``(seq, hash)`` reported
    by an earlier verification, must still be in the chain. With ``decisions``, each risk
    event's decision row must agree with it (see the module docstring).
    """
    checked = 0
    seq = previous = None
    anchored = expect_head is None
    for row in _rows(conn, table, decisions):
        rid = row["risk_event_id"]
        if row["seq"] is None or row["hash"] is None:
            return _broken(checked, seq, previous, row, f"risk event {rid} is not chained")
        if seq is None:
            if row["seq"] == 1 and row["prev_hash"] != GENESIS:
                return _broken(
                    checked, seq, previous, row, "the first link does not start at genesis"
                )
        elif row["seq"] != seq + 1:
            problem = f"seq {seq + 1} to {row['seq'] - 1} missing (deleted?)"
            return _broken(checked, seq, previous, row, problem)
        elif row["prev_hash"] != previous:
            return _broken(checked, seq, previous, row, "prev_hash is not the previous link's hash")
        expected = link(row, row["seq"], row["prev_hash"], pseudonyms)
        if expected != row["hash"]:
            problem = f"risk event {rid} (seq {row['seq']}) was altered: its hash does not match"
            return _broken(checked, seq, previous, row, problem)
        if decisions is not None and (problem := _decision_disagrees(row)) is not None:
            return _broken(checked, seq, previous, row, problem)
        seq, previous = row["seq"], row["hash"]
        checked += 1
        if expect_head is not None and seq == expect_head[0]:
            if previous != expect_head[1]:
                return _broken(
                    checked, seq, previous, row, f"seq {seq} no longer has the anchored hash"
                )
            anchored = True
    if not anchored:
        assert expect_head is not None
        return ChainReport(
            checked, seq, previous, expect_head[0], None, f"anchored seq {expect_head[0]} is gone"
        )
    return ChainReport(checked, seq, previous)


def verify(store: Store, *, expect_head: tuple[int, str] | None = None) -> ChainReport:
    """:func:`verify_chain` over a store's risk events, under its privacy key."""
    with store.engine.connect() as conn:
        return verify_chain(
            conn,
            store.tables.risk_events,
            store.privacy.pseudonyms,
            expect_head=expect_head,
            decisions=store.tables.decisions,
        )


def _broken(
    checked: int, seq: int | None, previous: str | None, row: Mapping[str, Any], problem: str
) -> ChainReport:
    return ChainReport(checked, seq, previous, row["seq"], row["risk_event_id"], problem)


def _rows(
    conn: Connection, table: Table, decisions: Table | None = None
) -> Iterator[Mapping[str, Any]]:
    # Unchained rows (seq NULL) sort first on both backends, so they are reported first.
    query = select(table)
    if decisions is not None:
        d = decisions
        query = select(
            table,
            d.c.decision_id.label("d_decision_id"),
            d.c.event_id.label("d_event_id"),
            d.c.score.label("d_score"),
            d.c.action.label("d_action"),
            d.c.reasons.label("d_reasons"),
        ).select_from(table.outerjoin(d, d.c.decision_id == table.c.decision_id))
    query = query.order_by(table.c.seq.asc().nulls_first(), table.c.risk_event_id)
    yield from conn.execute(query.execution_options(yield_per=_PAGE)).mappings()


def _decision_disagrees(row: Mapping[str, Any]) -> str | None:
    """Why the decision a risk event rests on no longer matches it; None when it does."""
    rid, decision = row["risk_event_id"], row["decision_id"]
    if row["d_decision_id"] is None:
        return f"decision {decision} of risk event {rid} is gone"
    codes = ",".join(dict.fromkeys(r["code"] for r in row["d_reasons"] or ()))
    stored = (row["d_event_id"], float(row["d_score"]), row["d_action"], codes)
    chained = (row["event_id"], float(row["score"]), row["action"], row["reason_codes"])
    if stored != chained:
        return f"decision {decision} of risk event {rid} was altered: it no longer matches"
    return None
