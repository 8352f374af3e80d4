"""Erasing one person: ``forget(store, user_id)`` (``vigil forget USER``).

In one database transaction it deletes the person's transactions (theirs and their cards'),
logins, the feedback on those events, their user and card rows (contact data included) and the
profile snapshots of their user, cards, accounts and devices; the live profile store loses the
same profiles, the networks they logged in from forget them as a user, and the terminals they
used forget their transactions (the recent-event rings and open two-phase starts that name
them), as the last step before commit (so a failure anywhere leaves everything as it was, and
running it again finishes the job). A shared (Redis) store also drops the decisions it keeps
under the person's event ids for repeats.

The audit trail stays, with the person pseudonymised: their user and card ids in
``risk_events`` become HMAC pseudonyms — the very values the hash chain commits to, so
``vigil audit verify`` still passes (:mod:`vigil.storage.audit`). A card number's token is
pseudonymised too (:meth:`~vigil.privacy.Pseudonymiser.erased`: it stands for the card
everywhere else), except in risk events chained before link format 2, whose links commit to the
token itself. A decision a risk event rests on is kept the same way: ids pseudonymised,
transaction id dropped, reasons reduced to code, score and entity (their sentences and evidence
can name amounts, places and other transactions). Every other decision about the person is
deleted, and so are their shadow-rule hits, StandIn inferences, batch scores and daily
aggregates; the notes in the case journal of their risk events are cleared. The batches of
decisions it changed or deleted are sealed again, so the decision log verifies too.
:data:`COVERAGE` says, table by table, what erasure does, and a test fails when a table is
missing from it.

Not reached: an event of the person arriving while the erasure runs (it starts a new profile).

>>> from vigil.storage import Store
>>> store = Store("sqlite://"); store.init_schema()
>>> forget(store, "u-1").deleted["transactions"]
0
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, delete, func, or_, select, tuple_, update

from vigil.profiles.profile import Profile
from vigil.profiles.update import ip_prefix
from vigil.storage.audit import ERASED_CARD, ERASED_USER, reseal

if TYPE_CHECKING:
    from vigil.profiles.store import Key, ProfileStore
    from vigil.storage import Store

_IN = 500

#: What :func:`forget` does with each table (tests/storage/test_erasure.py checks every table
#: of the schema is here: a new table must decide).
COVERAGE: dict[str, str] = {
    "banks": "no personal data (banks)",
    "terminals": "no personal data (ATMs and terminals)",
    "cards": "deleted: the person's cards",
    "users": "deleted: the person, contact data included",
    "transactions": "deleted: theirs and their cards'",
    "logins": "deleted",
    "feedback": "deleted: the feedback on their events",
    "decisions": "deleted, except those a risk event rests on: pseudonymised, details dropped",
    "risk_events": "pseudonymised: user and card ids (the audit trail; the chain still holds)",
    "case_journal": "notes of their risk events cleared (workflow rows kept with the trail)",
    "profiles": "deleted: their profile snapshots; shared ones (networks, ATMs) scrubbed",
    "profile_state": "no personal data (checkpoint positions)",
    "schema_version": "no personal data",
    "user_profile_scores": "deleted: the person's batch score",
    "card_profile_scores": "deleted: their cards' batch scores",
    "standin_inferences": "deleted: theirs and their cards'",
    "api_keys": "no personal data (keys of systems and staff)",
    "rule_versions": "no personal data (rule files)",
    "rule_shadow_hits": "deleted: the hits on their events",
    "user_aggregated_features": "deleted: the person's daily aggregates",
    "card_aggregated_features": "deleted: their cards' daily aggregates",
    "alembic_version": "no personal data (schema revision)",
    "decision_links": "no personal data (batch numbers and seals); the batches it touched are "
    "sealed again",
}


@dataclass(frozen=True, slots=True)
class ErasureReport:
    """What :func:`forget` erased and pseudonymised.

    >>> ErasureReport("u-1", "~ab").as_dict()["pseudonym"]
    '~ab'
    """

    user_id: str
    pseudonym: str
    deleted: dict[str, int] = field(default_factory=dict)
    pseudonymised: dict[str, int] = field(default_factory=dict)

    @property
    def found(self) -> bool:
        """Whether anything of the person was held (False: unknown, or forgotten already)."""
        return any(self.deleted.values()) or any(self.pseudonymised.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "pseudonym": self.pseudonym,
            "deleted": self.deleted,
            "pseudonymised": self.pseudonymised,
        }


def forget(store: Store, user_id: str, *, profiles: ProfileStore | None = None) -> ErasureReport:
    """Erase ``user_id``'s events, decisions, profiles and personal data; pseudonymise them in
    the audit trail. ``profiles`` is the live profile store (in-process or Redis), if any."""
    if not user_id or not user_id.strip():
        raise ValueError("user_id: give the user to forget")
    t = store.tables
    pseudonym = store.privacy.pseudonyms.subject
    deleted: dict[str, int] = {}
    done: dict[str, int] = {}
    with store.transaction() as conn:
        cards = _column(conn, t.cards.c.card_id, t.cards.c.user_id == user_id)
        cards |= _column(conn, t.transactions.c.card_id, t.transactions.c.user_id == user_id)
        cards.discard(None)
        tx_mine = _mine(t.transactions, user_id, cards)
        accounts = _column(conn, t.transactions.c.account_id, tx_mine) - {None}
        devices = (
            _column(conn, t.transactions.c.device_id, tx_mine)
            | _column(conn, t.logins.c.device_id, t.logins.c.user_id == user_id)
        ) - {None}
        ips = _column(conn, t.logins.c.ip, t.logins.c.user_id == user_id) - {None}
        transactions = _column(conn, t.transactions.c.transaction_id, tx_mine) - {None}
        terminals = _column(conn, t.transactions.c.terminal_id, tx_mine) - {None}
        events = _column(conn, t.transactions.c.event_id, tx_mine)
        events |= _column(conn, t.logins.c.event_id, t.logins.c.user_id == user_id)
        decided = _mine(t.decisions, user_id, cards)
        events |= _column(conn, t.decisions.c.event_id, decided)

        deleted["feedback"] = _delete_in(conn, t.feedback, t.feedback.c.target_event_id, events)
        deleted["transactions"] = conn.execute(delete(t.transactions).where(tx_mine)).rowcount
        deleted["logins"] = conn.execute(
            delete(t.logins).where(t.logins.c.user_id == user_id)
        ).rowcount

        batches = _column(conn, t.decisions.c.batch, decided)
        audited = select(t.risk_events.c.decision_id).scalar_subquery()
        kept = [
            dict(r)
            for r in conn.execute(
                select(t.decisions).where(decided, t.decisions.c.decision_id.in_(audited))
            ).mappings()
        ]
        erased = store.privacy.pseudonyms.erased
        for row in kept:
            conn.execute(
                update(t.decisions)
                .where(t.decisions.c.decision_id == row["decision_id"])
                .values(
                    user_id=_pseudonym(row["user_id"], erased),
                    card_id=_pseudonym(row["card_id"], erased),
                    transaction_id=None,
                    reasons=[
                        {"code": r["code"], "score": r["score"], "entity": r.get("entity")}
                        for r in row["reasons"]
                    ],
                )
            )
        done["decisions"] = len(kept)
        deleted["decisions"] = conn.execute(
            delete(t.decisions).where(decided, t.decisions.c.decision_id.not_in(audited))
        ).rowcount

        deleted["rule_shadow_hits"] = _delete_in(
            conn, t.rule_shadow_hits, t.rule_shadow_hits.c.event_id, events
        )
        deleted["standin_inferences"] = conn.execute(
            delete(t.standin_inferences).where(_mine(t.standin_inferences, user_id, cards))
        ).rowcount
        deleted["scores"] = conn.execute(
            delete(t.user_profile_scores).where(t.user_profile_scores.c.user_id == user_id)
        ).rowcount + _delete_in(conn, t.card_profile_scores, t.card_profile_scores.c.card_id, cards)
        deleted["aggregates"] = conn.execute(
            delete(t.user_aggregated_features).where(
                t.user_aggregated_features.c.user_id == user_id
            )
        ).rowcount + _delete_in(
            conn, t.card_aggregated_features, t.card_aggregated_features.c.card_id, cards
        )

        r = t.risk_events
        theirs = select(r.c.risk_event_id).where(_mine(r, user_id, cards)).scalar_subquery()
        j = t.case_journal
        done["case_journal"] = conn.execute(
            update(j).where(j.c.risk_event_id.in_(theirs), j.c.note.is_not(None)).values(note=None)
        ).rowcount
        done["risk_events"] = conn.execute(
            select(func.count()).select_from(r).where(_mine(r, user_id, cards))
        ).scalar_one()
        # Format 1 links commit to subject(), which keeps a card token; format 2 ones to
        # erased(), which the row then holds, its bit in ``erased`` saying so.
        old_format = r.c.link_format.is_(None)
        for column, bit, values in (
            (r.c.user_id, ERASED_USER, [user_id]),
            (r.c.card_id, ERASED_CARD, sorted(cards)),
        ):
            for value in values:
                mine = column == value
                conn.execute(update(r).where(mine, old_format).values({column: pseudonym(value)}))
                conn.execute(
                    update(r)
                    .where(mine, ~old_format)
                    .values({column: erased(value), r.c.erased: r.c.erased.op("|")(bit)})
                )
        reseal(conn, t, batches, store.privacy.pseudonyms)

        deleted["cards"] = _delete_in(conn, t.cards, t.cards.c.card_id, cards)
        deleted["users"] = conn.execute(
            delete(t.users).where(t.users.c.user_id == user_id)
        ).rowcount

        owned = _profile_keys(user_id, cards, accounts, devices)
        shared = [("ip", n) for n in sorted({ip_prefix(ip) for ip in ips})]
        shared += [("terminal", terminal) for terminal in sorted(terminals)]
        scrub = _Scrub(user_id, transactions)
        deleted["profile_snapshots"] = _delete_snapshots(conn, t.profiles, owned)
        done["profile_snapshots"] = _scrub_snapshots(conn, t.profiles, shared, scrub)
        # Last, so a failure here rolls the database back and a rerun finds everything again.
        if profiles is not None:
            deleted["profiles"] = profiles.delete(owned)
            deleted["claims"] = profiles.release(events)  # decisions a shared store holds
            done["profiles"] = _scrub_live(profiles, shared, scrub)
    return ErasureReport(user_id, pseudonym(user_id), deleted, done)


def _mine(table: Table, user_id: str, cards: set[str]) -> Any:
    condition = table.c.user_id == user_id
    if cards:
        condition = or_(condition, table.c.card_id.in_(sorted(cards)))
    return condition


def _column(conn: Connection, column: Any, where: Any) -> set[Any]:
    return set(conn.execute(select(column).where(where).distinct()).scalars())


def _delete_in(conn: Connection, table: Table, column: Any, values: Iterable[str]) -> int:
    values = sorted(values)
    return sum(
        conn.execute(delete(table).where(column.in_(values[i : i + _IN]))).rowcount
        for i in range(0, len(values), _IN)
    )


def _pseudonym(value: str | None, pseudonym: Any) -> str | None:
    return None if value is None else pseudonym(value)


def _profile_keys(
    user_id: str, cards: set[str], accounts: set[str], devices: set[str]
) -> list[Key]:
    keys: list[Key] = [("user", user_id)]
    for kind, values in (("card", cards), ("account", accounts), ("device", devices)):
        keys.extend((kind, v) for v in sorted(values))
    return keys


def _delete_snapshots(conn: Connection, table: Table, keys: list[Key]) -> int:
    return sum(
        conn.execute(
            delete(table).where(tuple_(table.c.kind, table.c.key).in_(keys[i : i + _IN]))
        ).rowcount
        for i in range(0, len(keys), _IN)
    )


@dataclass(frozen=True)
class _Scrub:
    """What of one person a profile shared with others may hold: the person among an IP
    network's users, their transactions in a terminal's recent events and open starts."""

    user_id: str
    transactions: set[str]

    def __call__(self, profile: Profile) -> bool:
        """Remove the person from ``profile``; True if anything was there."""
        users = profile.seen.get("user")
        found = users is not None and users.values.pop(self.user_id, None) is not None
        ring = profile.recent.events
        kept = [e for e in ring if e.transaction_id not in self.transactions]
        opened = [t for t in profile.open if t in self.transactions]
        for transaction_id in opened:
            del profile.open[transaction_id]
        if len(kept) < len(ring) or opened:
            profile.recent.events = kept
            found = True
        return found


def _scrub_snapshots(conn: Connection, table: Table, keys: list[Key], scrub: _Scrub) -> int:
    """Scrub the person from the stored profiles of ``keys``: the current one and the one a
    checkpoint under way wrote beside it (vigil.storage.checkpoints)."""
    scrubbed = 0
    for kind, key in keys:
        where = (table.c.kind == kind) & (table.c.key == key)
        stored = conn.execute(select(table.c.data, table.c.pending).where(where)).one_or_none()
        if stored is None:
            continue
        for column, data in zip(("data", "pending"), stored, strict=True):
            if data is None:
                continue
            profile = Profile.from_bytes(bytes(data))
            if scrub(profile):
                conn.execute(update(table).where(where).values({column: profile.to_bytes()}))
                scrubbed += 1
    return scrubbed


def _scrub_live(profiles: ProfileStore, keys: list[Key], scrub: _Scrub, attempts: int = 8) -> int:
    scrubbed = 0
    for key in keys:
        for _ in range(attempts):
            read = profiles.read([key])
            profile = read.profiles[0]
            if not scrub(profile):
                break
            if profiles.write(read, [profile]):
                scrubbed += 1
                break
        else:
            raise RuntimeError(f"profiles: {key} kept changing; could not remove {scrub.user_id!r}")
    return scrubbed
