"""Verification of the audit trail, as ``vigil audit verify`` runs it: the risk-event chain
(:mod:`vigil.storage.audit.risk_chain`), then the decision links and every batch's seal
(:mod:`vigil.storage.audit.seals`), each walk naming the first link that does not hold.

A chain cannot show its *newest* links being deleted (nothing follows them); the heads
:func:`verify` reports are what to anchor elsewhere, and ``expect_head`` / ``expect_links`` check
such an anchor later (:mod:`vigil.storage.anchor` keeps them signed).

A flagged decision is also held to its risk event: the decision row it rests on must still
carry the event, score, action and reason codes the risk chain committed to.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, select

from vigil.privacy.pseudonyms import Pseudonymiser
from vigil.storage.audit.risk_chain import GENESIS, _hash, link
from vigil.storage.audit.seals import _PAGE, link_content, seal

if TYPE_CHECKING:
    from vigil.storage import Store
    from vigil.storage.schema import Tables


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What :func:`verify_chain` (risk events) and :func:`verify` (with the decisions) found;
    ``problem`` names the first bad link: ``broken_seq`` / ``broken_risk_event_id`` in the
    risk-event chain, ``broken_link_seq`` in the decision links.

    >>> ChainReport(checked=3, head_seq=3, head_hash="ab").ok
    True
    """

    checked: int
    head_seq: int | None
    head_hash: str | None
    broken_seq: int | None = None
    broken_risk_event_id: int | None = None
    problem: str | None = None
    decisions_checked: int = 0
    links_head_seq: int | None = None
    links_head_hash: str | None = None
    broken_link_seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


@dataclass(frozen=True, slots=True)
class _Walk:
    """Where a walk along one chain got: links checked, the last good one, the first bad."""

    checked: int = 0
    seq: int | None = None
    previous: str | None = None
    broken: Mapping[str, Any] | None = None
    problem: str | None = None


def _walk(
    rows: Iterable[Mapping[str, Any]],
    hash_of: Callable[[Mapping[str, Any]], str],
    name: Callable[[Mapping[str, Any]], str],
    expect_head: tuple[int, str] | None,
    also: Callable[[Mapping[str, Any]], str | None] = lambda row: None,
    link_name: str = "seq",
) -> _Walk:
    """Walk one chain in ``seq`` order. The first stored link is trusted to start it (at seq 1
    from the genesis hash, or later if retention removed older ones); ``expect_head``, a
    ``(seq, hash)`` reported by an earlier walk, must still be in it."""
    checked = 0
    seq = previous = None
    anchored = expect_head is None
    for row in rows:
        problem = None
        if row["seq"] is None or row["hash"] is None:
            problem = f"{name(row)} is not chained"
        elif seq is None:
            if row["seq"] == 1 and row["prev_hash"] != GENESIS:
                problem = "the first link does not start at genesis"
        elif row["seq"] != seq + 1:
            problem = f"seq {seq + 1} to {row['seq'] - 1} missing (deleted?)"
        elif row["prev_hash"] != previous:
            problem = "prev_hash is not the previous link's hash"
        if problem is None and hash_of(row) != row["hash"]:
            problem = f"{name(row)} (seq {row['seq']}) was altered: its hash does not match"
        if problem is None:
            problem = also(row)
        if problem is not None:
            return _Walk(checked, seq, previous, row, problem)
        seq, previous = row["seq"], row["hash"]
        checked += 1
        if expect_head is not None and seq == expect_head[0]:
            if previous != expect_head[1]:
                problem = f"{link_name} {seq} no longer has the anchored hash"
                return _Walk(checked, seq, previous, row, problem)
            anchored = True
    if not anchored:
        assert expect_head is not None
        gone = f"anchored {link_name} {expect_head[0]} is gone"
        return _Walk(checked, seq, previous, {"seq": expect_head[0]}, gone)
    return _Walk(checked, seq, previous)


def verify_chain(
    conn: Connection,
    table: Table,
    pseudonyms: Pseudonymiser,
    *,
    expect_head: tuple[int, str] | None = None,
    decisions: Table | None = None,
) -> ChainReport:
    """Walk the risk-event chain in ``seq`` order and report the first link that does not
    hold. With ``decisions``, each risk event's decision row must agree with it."""
    walk = _walk(
        _rows(conn, table, decisions),
        lambda row: link(row, row["seq"], row["prev_hash"], pseudonyms),
        lambda row: f"risk event {row['risk_event_id']}",
        expect_head,
        _decision_disagrees if decisions is not None else lambda row: None,
    )
    broken = walk.broken or {}
    return ChainReport(
        walk.checked,
        walk.seq,
        walk.previous,
        broken.get("seq"),
        broken.get("risk_event_id"),
        walk.problem,
    )


def verify_decisions(
    conn: Connection,
    tables: Tables,
    pseudonyms: Pseudonymiser,
    *,
    expect_head: tuple[int, str] | None = None,
) -> ChainReport:
    """Walk the decision links in ``seq`` order, then hold every batch to its seal; the
    report's ``decisions_checked``, ``links_head_*`` and ``broken_link_seq`` say what was found
    (its risk-event fields are left empty)."""
    links = tables.decision_links
    walk = _walk(
        conn.execute(
            select(links).order_by(links.c.seq).execution_options(yield_per=_PAGE)
        ).mappings(),
        lambda row: _hash(row["prev_hash"], link_content(row)),
        lambda row: f"decision link {row['seq']}",
        expect_head,
        link_name="decision link",
    )
    report = ChainReport(0, None, None, links_head_seq=walk.seq, links_head_hash=walk.previous)
    if walk.problem is not None:
        return replace(report, problem=walk.problem, broken_link_seq=(walk.broken or {}).get("seq"))
    checked, problem, broken = _check_seals(conn, tables, pseudonyms)
    return replace(report, decisions_checked=checked, problem=problem, broken_link_seq=broken)


def _check_seals(
    conn: Connection, tables: Tables, pseudonyms: Pseudonymiser
) -> tuple[int, str | None, int | None]:
    """Every decision row in a batch whose seal still holds: (rows checked, problem, link)."""
    d, links = tables.decisions, tables.decision_links
    sealed = conn.execute(
        select(links.c.seq, links.c.batch, links.c.seal)
        .order_by(links.c.batch)
        .execution_options(yield_per=_PAGE)
    )
    rows = conn.execute(
        select(d).order_by(d.c.batch.asc().nulls_first()).execution_options(yield_per=_PAGE)
    ).mappings()
    pending = next(rows, None)
    checked = 0
    for seq, batch, digest in sealed:
        if pending is not None and (pending["batch"] is None or pending["batch"] < batch):
            return checked, f"decision {pending['decision_id']} is not chained", None
        members = []
        while pending is not None and pending["batch"] == batch:
            members.append(pending)
            pending = next(rows, None)
        if not hmac.compare_digest(seal(batch, members, pseudonyms), digest):
            problem = (
                f"decisions of batch {batch} (link seq {seq}) were changed, added or deleted "
                "outside vigil: its seal does not match"
            )
            return checked, problem, seq
        checked += len(members)
    if pending is not None:
        return checked, f"decision {pending['decision_id']} is not chained", None
    return checked, None, None


def verify(
    store: Store,
    *,
    expect_head: tuple[int, str] | None = None,
    expect_links: tuple[int, str] | None = None,
) -> ChainReport:
    """The whole audit trail of a store, under its privacy key: the risk-event chain (each risk
    event held to its decision), then the decision links and their batches' seals."""
    t = store.tables
    with store.engine.connect() as conn:
        risk = verify_chain(
            conn,
            t.risk_events,
            store.privacy.pseudonyms,
            expect_head=expect_head,
            decisions=t.decisions,
        )
        if not risk.ok:
            return risk
        found = verify_decisions(conn, t, store.privacy.pseudonyms, expect_head=expect_links)
    return replace(found, checked=risk.checked, head_seq=risk.head_seq, head_hash=risk.head_hash)


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
