"""The subjects and streams of vigil's events and decisions, and how events are partitioned.

With one partition (the default) events are published to ``vigil.events.<kind>``. With ``P``
partitions, to ``vigil.events.<kind>.<p>``, ``p = partition_of(key, P)`` of the event's key (a
transaction's card, else its account or user; a login's user): one entity's events then stay in
one partition, whose one owner decides them in the order they were published.

>>> subject("transactions", 0, 1), subject("logins", 3, 8)
('vigil.events.transactions', 'vigil.events.logins.3')
>>> partition_of("c-0042", 8) == partition_of("c-0042", 8), partition_of("c-0042", 1)
(True, 0)
"""

from __future__ import annotations

import hashlib
from typing import Any

EVENTS_STREAM = "VIGIL_EVENTS"
DECISIONS_STREAM = "VIGIL_DECISIONS"
KINDS = ("transactions", "logins", "feedback")
REJECTED = "vigil.events.rejected"
# Published decisions are deduplicated by event within this window (a redelivered event's
# decision, published again, is dropped by the stream).
DEDUP_SECONDS = 600


def subject(kind: str, partition: int, partitions: int) -> str:
    """Where events of ``kind`` in ``partition`` are published."""
    if kind not in KINDS:
        raise ValueError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    return f"vigil.events.{kind}" if partitions == 1 else f"vigil.events.{kind}.{partition}"


def decisions_subject(kind: str) -> str:
    return f"vigil.decisions.{kind}"


def partition_of(key: str, partitions: int) -> int:
    """The partition of an entity key: stable across processes and languages (the first 8
    bytes of its SHA-256, big-endian, modulo ``partitions``), so any publisher can compute it."""
    if partitions == 1:
        return 0
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % partitions


def key_of(kind: str, body: dict[str, Any]) -> str:
    """The key an event is partitioned by: the entity whose events must stay in order.

    >>> key_of("transactions", {"card_id": "c-1", "user_id": "u-1"})
    'c-1'
    """
    if kind == "logins":
        return str(body["user_id"])
    if kind == "feedback":
        return str(body.get("target_event_id", ""))
    for field in ("card_id", "account_id", "user_id"):
        if body.get(field):
            return str(body[field])
    return ""
