"""The tamper-evident audit trail: the risk events chained one by one, every decision sealed
in the batch it was committed with, the batches chained.

**Risk events.** ``hash = sha256(previous hash ‖ canonical content)``, where the content is what
the audit trail asserts and nothing an analyst may later change: sequence number, decision and
event ids, event time, score, action, reason codes, and the user and card *as erasure leaves
them*. The analyst's status, label, action taken and ``updated_at`` are workflow fields outside
the chain. Two link formats exist (``risk_events.link_format``):

* format 1 (rows chained before schema version 5, ``link_format`` NULL) commits to
  :meth:`~vigil.privacy.Pseudonymiser.subject` of the user and card, which passes ``~…`` values
  through: a card number's token is committed as itself, so erasure had to leave it in the row;
* format 2 (every row since) commits to :meth:`~vigil.privacy.Pseudonymiser.erased` of each,
  which pseudonymises a token too. Erasure writes exactly that value into the row and sets the
  column's bit in ``risk_events.erased`` (outside the hash), so the link is computed from the
  stored value as it is. Setting a bit cannot hide an edit: the value would have to be the
  keyed pseudonym of the original, which only the privacy key makes; clearing one breaks the
  link.

Changing one id into another breaks the link either way.

**Decisions.** Every decision, flagged or not, belongs to the batch it was committed with
(``decisions.batch``, the batch's first log position). Each committed batch appends one link to
``decision_links``: its place in a second hash chain (link ``seq``, batch, size, time of
commit) and a *seal*, an HMAC under a key derived from the privacy HMAC key over every column
of the batch's decision rows as they are. Changing, adding or deleting a decision row breaks its
batch's seal, and nobody without the key can make a new one; deleting a link breaks the chain.
vigil's own erasure and retention change and delete decisions too: they hold the key, and seal
the batches they touched again (:func:`reseal`), which the chain permits because it commits to
the batch and its size at commit, not to the seal.

**Writers** append under a lock, once per committed batch: SQLite holds its one write lock from
a batch's first insert; PostgreSQL takes a transaction-level advisory lock after the batch's rows
are written (seals are computed before it), so it is held for two appends and the commit, and two
``serve`` processes never fork either chain. A chain cannot show its *newest* links being deleted
(nothing follows them); the heads :func:`verify` reports are what to anchor elsewhere, and
``expect_head`` / ``expect_links`` check such an anchor later (:mod:`vigil.storage.anchor` keeps
them signed).

A flagged decision is also held to its risk event: the decision row it rests on must still
carry the event, score, action and reason codes the risk chain committed to.

>>> from datetime import datetime, UTC
>>> from vigil.privacy.pseudonyms import Pseudonymiser
>>> p = Pseudonymiser(b"k")
>>> token = p.card("4111 1111 1111 1111")
>>> row = {"decision_id": "d1", "event_id": "e1", "event_time": datetime(2022, 1, 1, tzinfo=UTC),
...        "user_id": "u-1", "card_id": token, "score": 0.95, "action": "block",
...        "reason_codes": "amount_outlier", "link_format": 2, "erased": 0}
>>> erased = {**row, "user_id": p.erased("u-1"), "card_id": p.erased(token),
...           "erased": ERASED_USER | ERASED_CARD}
>>> link(row, 1, GENESIS, p) == link(erased, 1, GENESIS, p), p.erased(token) != token
(True, True)
>>> link(row, 1, GENESIS, p) == link({**row, "user_id": "u-2"}, 1, GENESIS, p)
False
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Select, Table, select, text

from vigil.privacy.pseudonyms import Pseudonymiser

if TYPE_CHECKING:
    from vigil.storage import Store
    from vigil.storage.schema import Tables

GENESIS = "0" * 64
#: The risk-event link format new rows are chained in (see the module docstring).
LINK_FORMAT = 2
#: Bits of ``risk_events.erased``: the column holds the committed (erased) value already.
ERASED_USER, ERASED_CARD = 1, 2
# Any fixed 64-bit number works; this one spells "vigil" so it is recognisable in pg_locks.
_ADVISORY_LOCK = 0x766967696C
_PAGE = 5_000
_SEAL_PURPOSE = b"vigil decision seal v1"
#: The decision columns a batch's seal covers: all of them but the batch itself.
SEALED_COLUMNS = (
    "decision_id",
    "event_id",
    "event_kind",
    "transaction_id",
    "event_time",
    "user_id",
    "card_id",
    "terminal_id",
    "score",
    "action",
    "reasons",
    "model_versions",
    "latency_us",
    "created_at",
    "seq",
)


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def _hash(previous: str, content: list[Any]) -> str:
    data = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{previous}\n{data}".encode()).hexdigest()


def committed(value: str | None, erased: bool, pseudonyms: Pseudonymiser) -> str | None:
    """What a format-2 link commits to for a user or card id: its erased pseudonym, which is
    the stored value itself once erasure has written it there (``erased``)."""
    if value is None or erased:
        return value
    return pseudonyms.erased(value)


def link(row: Mapping[str, Any], seq: int, previous: str, pseudonyms: Pseudonymiser) -> str:
    """The hash of the risk event ``row`` at position ``seq`` after the one hashed ``previous``,
    in the row's link format."""
    user, card = row["user_id"], row["card_id"]
    if row.get("link_format") is None:  # format 1
        subjects = [
            None if user is None else pseudonyms.subject(user),
            None if card is None else pseudonyms.subject(card),
        ]
        head: list[Any] = [seq]
    else:
        erased = row.get("erased") or 0
        subjects = [
            committed(user, bool(erased & ERASED_USER), pseudonyms),
            committed(card, bool(erased & ERASED_CARD), pseudonyms),
        ]
        head = [row["link_format"], seq]
    content = [
        *head,
        row["decision_id"],
        row["event_id"],
        _instant(row["event_time"]),
        *subjects,
        repr(float(row["score"])),
        row["action"],
        row["reason_codes"],
    ]
    return _hash(previous, content)


def _lock(conn: Connection) -> None:
    # Held to commit: the next writer reads the heads this transaction leaves.
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})


def _head(conn: Connection, table: Table) -> tuple[int, str]:
    head = conn.execute(_head_query(table)).first()
    return (head.seq, head.hash) if head is not None else (0, GENESIS)


@functools.cache
def _head_query(table: Table) -> Select[tuple[int, str]]:
    # Built once: every commit asks, and building the statement cost more than running it.
    return (
        select(table.c.seq, table.c.hash)
        .where(table.c.seq.is_not(None))
        .order_by(table.c.seq.desc())
        .limit(1)
    )


def chain(
    conn: Connection, table: Table, rows: list[dict[str, Any]], pseudonyms: Pseudonymiser
) -> None:
    """Give ``rows`` (about to be inserted, in order) their ``seq``, ``prev_hash`` and ``hash``,
    continuing the chain stored in ``table``, in the newest link format ``table`` has. Call
    inside the inserting transaction, after it has written something (SQLite) — the lock it
    takes (PostgreSQL) lasts until commit."""
    if not rows:
        return
    newest = "link_format" in table.c
    _lock(conn)
    seq, previous = _head(conn, table)
    for row in rows:
        seq += 1
        if newest:
            row["link_format"], row["erased"] = LINK_FORMAT, 0
        row["seq"] = seq
        row["prev_hash"] = previous
        row["hash"] = previous = link(row, seq, previous, pseudonyms)


def chain_existing(conn: Connection, table: Table, pseudonyms: Pseudonymiser) -> int:
    """Chain rows stored before the chain existed (``seq`` NULL), in id order; returns how many.
    A schema upgrade calls it once, with ``table`` as that version has it."""
    pending = [
        dict(r)
        for r in conn.execute(
            select(table).where(table.c.seq.is_(None)).order_by(table.c.risk_event_id)
        ).mappings()
    ]
    chain(conn, table, pending, pseudonyms)
    names = [n for n in ("seq", "prev_hash", "hash", "link_format", "erased") if n in table.c]
    for row in pending:
        conn.execute(
            table.update()
            .where(table.c.risk_event_id == row["risk_event_id"])
            .values({n: row[n] for n in names})
        )
    return len(pending)


# -- the decision log: batches sealed, links chained ------------------------------------------


def _seal_key(pseudonyms: Pseudonymiser) -> bytes:
    return pseudonyms.derived_key(_SEAL_PURPOSE)


def _canonical(row: Mapping[str, Any]) -> str:
    values = []
    for name in SEALED_COLUMNS:
        value = row[name]
        if isinstance(value, datetime):
            value = _instant(value)
        elif name in ("score", "latency_us"):
            value = repr(float(value))
        values.append(value)
    # sort_keys: PostgreSQL's JSONB gives an object's keys back in an order of its own.
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def seal(batch: int, rows: Iterable[Mapping[str, Any]], pseudonyms: Pseudonymiser) -> str:
    """The seal of the decision rows of ``batch`` (in any order)."""
    mac = hmac.new(_seal_key(pseudonyms), f"batch {batch}".encode(), hashlib.sha256)
    for data in sorted(_canonical(row) for row in rows):
        mac.update(b"\n" + data.encode())
    return mac.hexdigest()


def link_content(row: Mapping[str, Any]) -> list[Any]:
    """What a decision link commits to (never its seal: erasure and retention renew that)."""
    return [row["seq"], row["batch"], row["size"], _instant(row["committed_at"])]


def prepare_batch(
    rows: Sequence[dict[str, Any]], pseudonyms: Pseudonymiser, batch: int | None = None
) -> dict[str, Any]:
    """Make the decision ``rows`` one batch (by default numbered by their first log position,
    ``seq`` set already) and return its link, sealed but not yet chained: computed before
    :func:`append_link` takes the lock."""
    if batch is None:
        batch = min(row["seq"] for row in rows)
    for row in rows:
        row["batch"] = batch
    now = datetime.now(UTC)
    digest = seal(batch, rows, pseudonyms)
    return {
        "batch": batch,
        "size": len(rows),
        "committed_at": now,
        "seal": digest,
        "sealed_at": now,
    }


def append_link(conn: Connection, table: Table, link_row: dict[str, Any]) -> None:
    """Chain and insert a batch's link (from :func:`prepare_batch`), in the transaction that
    inserted its decisions, as its last write (PostgreSQL: the lock lasts until commit)."""
    _lock(conn)
    seq, previous = _head(conn, table)
    link_row["seq"] = seq + 1
    link_row["prev_hash"] = previous
    link_row["hash"] = _hash(previous, link_content(link_row))
    conn.execute(table.insert(), link_row)


def reseal(
    conn: Connection, tables: Tables, batches: Iterable[int], pseudonyms: Pseudonymiser
) -> int:
    """Seal ``batches`` again over the decision rows they hold now: vigil's erasure and retention
    call it, in their transaction, after changing or deleting decisions. Returns how many."""
    d, links = tables.decisions, tables.decision_links
    done = 0
    for batch in sorted(set(batches) - {None}):
        rows = conn.execute(select(d).where(d.c.batch == batch)).mappings()
        done += conn.execute(
            links.update()
            .where(links.c.batch == batch)
            .values(seal=seal(batch, rows, pseudonyms), sealed_at=datetime.now(UTC))
        ).rowcount
    return done


def seal_existing(
    conn: Connection, decisions: Table, links: Table, pseudonyms: Pseudonymiser
) -> int:
    """Put decisions stored before batches were sealed (``batch`` NULL) into sealed, chained
    batches of up to 5,000: numbered ones by log position, unnumbered ones (from before log
    positions, ``seq`` NULL) by id under negative batch numbers. A schema upgrade calls it."""
    d = decisions
    done = 0
    for numbered in (True, False):
        condition = d.c.seq.is_not(None) if numbered else d.c.seq.is_(None)
        order = d.c.seq if numbered else d.c.decision_id
        query = select(d).where(d.c.batch.is_(None), condition).order_by(order)
        pending = [dict(r) for r in conn.execute(query).mappings()]
        for i in range(0, len(pending), _PAGE):
            rows = pending[i : i + _PAGE]
            link_row = prepare_batch(rows, pseudonyms, None if numbered else -(i // _PAGE + 1))
            ids = [row["decision_id"] for row in rows]
            for j in range(0, len(ids), 500):
                chunk = d.c.decision_id.in_(ids[j : j + 500])
                conn.execute(d.update().where(chunk).values(batch=link_row["batch"]))
            append_link(conn, links, link_row)
            done += len(rows)
    return done


# -- verification --------------------------------------------------------------------------


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
