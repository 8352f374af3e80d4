"""The decision log's seals: every decision, flagged or not, sealed with the batch it was
committed in, and the batches chained.

Every decision belongs to the batch it was committed with (``decisions.batch``, the batch's first
log position). Each committed batch appends one link to ``decision_links``: its place in a
second hash chain (link ``seq``, batch, size, time of commit) and a *seal*, an HMAC under a key
derived from the privacy HMAC key over every column of the batch's decision rows as they are.
Changing, adding or deleting a decision row breaks its batch's seal, and nobody without the key
can make a new one; deleting a link breaks the chain. vigil's own erasure and retention change
and delete decisions too: they hold the key, and seal the batches they touched again
(:func:`reseal`), which the chain permits because it commits to the batch and its size at
commit, not to the seal.

The links are hashed, and appended under the lock, as the risk events are
(:mod:`vigil.storage.audit.risk_chain`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, select

from vigil.privacy.pseudonyms import Pseudonymiser
from vigil.storage.audit.risk_chain import _hash, _head, _instant, _lock

if TYPE_CHECKING:
    from vigil.storage.schema import Tables

# Decisions an upgrade seals per batch, and rows a verifying walk fetches at a time.
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
