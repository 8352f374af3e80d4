"""The risk-event hash chain, and what both audit chains are built from: the link hash, a
chain's head and the writers' lock (:mod:`vigil.storage.audit.seals` chains the decision links
with them).

``hash = sha256(previous hash ‖ canonical content)``, where the content is what the audit trail
asserts and nothing an analyst may later change: sequence number, decision and event ids, event
time, score, action, reason codes, and the user and card *as erasure leaves them*. The analyst's
status, label, action taken and ``updated_at`` are workflow fields outside the chain. Two link
formats exist (``risk_events.link_format``):

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

**Writers** append under a lock, once per committed batch: SQLite holds its one write lock from
a batch's first insert; PostgreSQL takes a transaction-level advisory lock after the batch's rows
are written (seals are computed before it), so it is held for two appends and the commit, and two
``serve`` processes never fork either chain.

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
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, Table, select, text

from vigil.privacy.pseudonyms import Pseudonymiser

GENESIS = "0" * 64
#: The risk-event link format new rows are chained in (see the module docstring).
LINK_FORMAT = 2
#: Bits of ``risk_events.erased``: the column holds the committed (erased) value already.
ERASED_USER, ERASED_CARD = 1, 2
# Any fixed 64-bit number works; this one spells "vigil" so it is recognisable in pg_locks.
_ADVISORY_LOCK = 0x766967696C


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
