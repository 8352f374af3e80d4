"""The tables vigil keeps, built for one dialect.

The shape is the same on both backends except for the event tables: on PostgreSQL
``transactions`` and ``logins`` are range-partitioned by month on ``timestamp``, and a partitioned
table's primary key must contain the partition key, so theirs is ``(event_id, timestamp)``.
On SQLite ``event_id`` alone is the key.

A card's CVC has no column anywhere: payment-card rules forbid storing it.

>>> tables = build_tables("sqlite")
>>> [c.name for c in tables.transactions.primary_key]
['event_id']
>>> [c.name for c in build_tables("postgresql").transactions.primary_key]
['event_id', 'timestamp']
>>> any("cvc" in c.name.lower() for t in tables.metadata.tables.values() for c in t.columns)
False
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Sequence,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import BYTEA, JSONB

from vigil.domain.decisions import Action
from vigil.storage.columns import Money, UtcDateTime

# The newest Alembic revision's number (vigil.storage.migrations): a new revision raises it.
SCHEMA_VERSION = 7
PARTITIONED_TABLES = ("transactions", "logins")
DECISION_SEQUENCE = "decisions_seq"

DIALECTS = ("sqlite", "postgresql")

_ID = 128
# Byte-order collation on PostgreSQL so event ids sort the way SQLite and Python sort them.
_EventId = String(_ID).with_variant(String(_ID, collation="C"), "postgresql")
_Json = JSON().with_variant(JSONB(), "postgresql")
_Blob = LargeBinary().with_variant(BYTEA(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL wants 64 bits for an audit log.
_Serial = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True, slots=True)
class Tables:
    """Every table of one dialect's schema, by name, plus the ``MetaData`` that holds them.

    >>> {"banks", "cards", "decisions"} <= set(build_tables("sqlite").metadata.tables)
    True
    """

    metadata: MetaData
    dialect: str
    banks: Table
    terminals: Table
    cards: Table
    users: Table
    transactions: Table
    logins: Table
    feedback: Table
    decisions: Table
    risk_events: Table
    profiles: Table
    profile_state: Table
    schema_version: Table
    user_profile_scores: Table
    card_profile_scores: Table
    standin_inferences: Table
    api_keys: Table
    rule_versions: Table
    rule_shadow_hits: Table
    user_aggregated_features: Table
    card_aggregated_features: Table
    case_journal: Table
    decision_links: Table


def _event_key(partitioned: bool) -> tuple[Column, Column]:
    # iter_events reads in (timestamp, event_id) order, hence the ix_*_time indexes below.
    return (
        Column("event_id", _EventId, primary_key=True),
        Column("timestamp", UtcDateTime(), primary_key=partitioned, nullable=False),
    )


def _by_time_where_present(name: str, column: str) -> Index:
    """An index on ``(column, timestamp)`` of the rows that have ``column``: every lookup is
    ``column = ?``, and an event without one (a card payment names no user) costs it nothing."""
    present = text(f"{column} IS NOT NULL")
    return Index(name, column, "timestamp", sqlite_where=present, postgresql_where=present)


def build_tables(dialect: str) -> Tables:
    """Build the schema for ``dialect`` ("sqlite" or "postgresql") in a fresh ``MetaData``."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect: {dialect!r} is not one of {', '.join(DIALECTS)}")
    partitioned = dialect == "postgresql"
    partition_kw = {"postgresql_partition_by": 'RANGE ("timestamp")'} if partitioned else {}
    md = MetaData()

    banks = Table(
        "banks",
        md,
        Column("code", String(_ID), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("latitude", Float),
        Column("longitude", Float),
    )
    terminals = Table(
        "terminals",
        md,
        Column("terminal_id", String(_ID), primary_key=True),
        Column("latitude", Float, nullable=False),
        Column("longitude", Float, nullable=False),
        Column("kind", String(8), nullable=False),
        Column("city", String(100)),
        Column("country", String(100)),
        Column("bank_code", String(_ID), index=True),
        Column("internal", Boolean, nullable=False),
    )
    cards = Table(
        "cards",
        md,
        Column("card_id", String(_ID), primary_key=True),
        Column("user_id", String(_ID), index=True),
        Column("bank_code", String(_ID)),
        Column("expiration", Date),
        Column("latitude", Float),
        Column("longitude", Float),
        Column("extract_limit", Float),
        Column("behaviour", _Json),
    )
    users = Table(
        "users",
        md,
        Column("user_id", String(_ID), primary_key=True),
        Column("created_at", UtcDateTime()),
        Column("country", String(3)),
        Column("latitude", Float),
        Column("longitude", Float),
        # Contact data is stored AES-GCM encrypted (vigil.privacy.contact), longer than typed.
        Column("email", Text),
        Column("phone", Text),
        Column("address", Text),
    )
    transactions = Table(
        "transactions",
        md,
        *_event_key(partitioned),
        Column("transaction_id", String(_ID), nullable=False),
        Column("type", String(16), nullable=False),
        Column("phase", String(8), nullable=False),
        Column("channel", String(8), nullable=False),
        Column("started_at", UtcDateTime()),
        Column("amount", Money()),
        Column("currency", String(3), nullable=False),
        Column("card_id", String(_ID)),
        Column("account_id", String(_ID)),
        Column("user_id", String(_ID)),
        Column("terminal_id", String(_ID)),
        Column("counterparty_account", String(_ID)),
        Column("counterparty_country", String(3)),
        Column("direction", String(8)),
        Column("ip", String(64)),
        Column("device_id", String(_ID)),
        Column("latitude", Float),
        Column("longitude", Float),
        Column("country", String(3)),
        Column("standin", Boolean, nullable=False),
        Index("ix_transactions_time", "timestamp", "event_id"),
        _by_time_where_present("ix_transactions_user_time", "user_id"),
        Index("ix_transactions_card_time", "card_id", "timestamp"),
        _by_time_where_present("ix_transactions_account_time", "account_id"),
        Index("ix_transactions_transaction_id", "transaction_id"),
        **partition_kw,
    )
    logins = Table(
        "logins",
        md,
        *_event_key(partitioned),
        Column("user_id", String(_ID), nullable=False),
        Column("success", Boolean, nullable=False),
        Column("ip", String(64)),
        Column("device_id", String(_ID)),
        Column("latitude", Float),
        Column("longitude", Float),
        Column("country", String(3)),
        Column("session_seconds", Float),
        Index("ix_logins_time", "timestamp", "event_id"),
        Index("ix_logins_user_time", "user_id", "timestamp"),
        **partition_kw,
    )
    feedback = Table(
        "feedback",
        md,
        Column("event_id", String(_ID), primary_key=True),
        Column("target_event_id", String(_ID), nullable=False, index=True),
        Column("label", String(32), nullable=False),
        Column("timestamp", UtcDateTime(), nullable=False),
        Column("source", String(64), nullable=False),
        Column("pattern", String(64)),
        Column("note", String(2000)),
    )
    actions = ", ".join(f"'{a.value}'" for a in Action)
    decisions = Table(
        "decisions",
        md,
        Column("decision_id", String(_ID), primary_key=True),
        Column("event_id", String(_ID), nullable=False, unique=True),
        Column("event_kind", String(16), nullable=False),
        Column("transaction_id", String(_ID)),
        Column("event_time", UtcDateTime()),
        Column("user_id", String(_ID)),
        Column("card_id", String(_ID)),
        Column("terminal_id", String(_ID)),
        Column("score", Float, nullable=False),
        Column("action", String(16), nullable=False),
        Column("reasons", _Json, nullable=False),
        Column("model_versions", _Json, nullable=False),
        Column("latency_us", Float, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        # The log position: decisions numbered in the order their events were decided and
        # applied to the profiles; a profile checkpoint records the last one it includes.
        # NULL only on rows from before it existed.
        Column("seq", BigInteger),
        # The batch it was committed and sealed with (vigil.storage.audit): the batch's first
        # log position. NULL only on rows from before batches were sealed.
        Column("batch", BigInteger),
        CheckConstraint("score >= 0 AND score <= 1", name="ck_decisions_score"),
        CheckConstraint(f"action IN ({actions})", name="ck_decisions_action"),
        Index("ix_decisions_user_time", "user_id", "event_time"),
        Index("ix_decisions_card_time", "card_id", "event_time"),
        Index("ix_decisions_action", "action"),
        Index("ux_decisions_seq", "seq", unique=True),
        Index("ix_decisions_batch", "batch"),
    )
    if dialect == "postgresql":
        # Several processes may number decisions at once (Store.record takes a batch's numbers
        # from it); on SQLite the writer holds the database's write lock and counts on.
        Sequence(DECISION_SEQUENCE, metadata=md)
    risk_events = Table(
        "risk_events",
        md,
        Column("risk_event_id", _Serial, primary_key=True, autoincrement=True),
        Column(
            "decision_id",
            String(_ID),
            ForeignKey("decisions.decision_id", name="fk_risk_events_decision"),
            nullable=False,
            unique=True,
        ),
        Column("event_id", String(_ID), nullable=False),
        Column("event_time", UtcDateTime()),
        Column("user_id", String(_ID)),
        Column("card_id", String(_ID)),
        Column("score", Float, nullable=False),
        Column("action", String(16), nullable=False),
        Column("reason_codes", Text, nullable=False),
        Column("status", String(16), nullable=False, server_default="open"),
        Column("analyst_label", String(32)),
        Column("action_taken", String(64)),
        Column("updated_at", UtcDateTime(), nullable=False),
        # The hash chain (vigil.storage.audit); NULL only on rows from before it existed.
        Column("seq", BigInteger),
        Column("prev_hash", String(64)),
        Column("hash", String(64)),
        # NULL: link format 1; which stored ids are their erased pseudonyms (vigil.storage.audit).
        Column("link_format", SmallInteger),
        Column("erased", SmallInteger, nullable=False, server_default="0"),
        # The case workflow (vigil.storage.cases), outside the chain like status and label.
        Column("assignee", String(200)),
        Column("closed_at", UtcDateTime()),
        Index("ux_risk_events_seq", "seq", unique=True),
        Index("ix_risk_events_user_time", "user_id", "event_time"),
        Index("ix_risk_events_card_time", "card_id", "event_time"),
        Index("ix_risk_events_time", "event_time"),
        Index("ix_risk_events_status_time", "status", "event_time"),
    )
    case_journal = case_journal_table(md)
    decision_links = decision_links_table(md)
    profiles = Table(
        "profiles",
        md,
        Column("kind", String(32), primary_key=True),
        Column("key", String(256), primary_key=True),
        # As of the newest complete checkpoint that included it; beside it, the profile a
        # checkpoint at pending_position wrote, current once that one is complete
        # (vigil.storage.checkpoints).
        Column("data", _Blob),
        Column("updated_at", UtcDateTime(), nullable=False),
        Column("pending", _Blob),
        Column("pending_position", BigInteger),
        # Those a checkpoint given up wrote are found by it when the next one completes.
        Index("ix_profiles_pending_position", "pending_position"),
    )
    profile_state = Table(
        "profile_state",
        md,
        Column("name", String(64), primary_key=True),
        Column("value", _Json, nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    )
    schema_version = Table(
        "schema_version",
        md,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("applied_at", UtcDateTime(), nullable=False),
    )
    # API keys: only the argon2 hash of the secret is kept; key_id is the key's public prefix.
    api_keys = Table(
        "api_keys",
        md,
        Column("key_id", String(32), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("roles", String(64), nullable=False),
        Column("secret_hash", String(256), nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("revoked_at", UtcDateTime()),
    )
    # Batch scores of the user and card models (models/score.py): the latest per entity.
    user_profile_scores, card_profile_scores = (
        Table(
            f"{kind}_profile_scores",
            md,
            Column(f"{kind}_id", String(_ID), primary_key=True),
            Column("score", Float, nullable=False),
            Column("model_version", String(64), nullable=False),
            Column("score_timestamp", UtcDateTime(), nullable=False),
            CheckConstraint("score >= 0 AND score <= 1", name=f"ck_{kind}_profile_scores_score"),
        )
        for kind in ("user", "card")
    )
    # Every real-time StandIn decision (models/standin.py), with what it saw.
    standin_inferences = Table(
        "standin_inferences",
        md,
        Column("inference_id", _Serial, primary_key=True, autoincrement=True),
        Column("event_id", String(_ID), index=True),
        Column("event_time", UtcDateTime()),
        Column("user_id", String(_ID)),
        Column("card_id", String(_ID)),
        Column("amount", Float, nullable=False),
        Column("user_score", Float),
        Column("card_score", Float),
        Column("risk", Float, nullable=False),
        Column("decision", String(8), nullable=False),
        Column("model_versions", _Json, nullable=False),
        Column("decided_at", UtcDateTime(), nullable=False),
        Index("ix_standin_inferences_time", "event_time"),
    )
    # Every rule file put in force (vigil.rules): what it held and who activated it, when.
    rule_versions = Table(
        "rule_versions",
        md,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("sha256", String(64), nullable=False),
        Column("content", Text, nullable=False),
        Column("path", String(1000)),
        Column("source", String(200), nullable=False),
        Column("activated_at", UtcDateTime(), nullable=False),
    )
    # Hits of shadow rules: evaluated and kept for review, never part of the decision.
    rule_shadow_hits = Table(
        "rule_shadow_hits",
        md,
        Column("hit_id", _Serial, primary_key=True, autoincrement=True),
        Column("decision_id", String(_ID), nullable=False, index=True),
        Column("event_id", String(_ID), nullable=False),
        Column("event_time", UtcDateTime()),
        Column("rule", String(200), nullable=False),
        Column("score", Float, nullable=False),
        Column("detail", Text, nullable=False),
        Column("action", String(16), nullable=False),
        Index("ix_rule_shadow_hits_rule_time", "rule", "event_time"),
    )
    # Daily aggregates per user and card (vigil.features.snapshots): one row per entity and
    # reference date, read just before that date began. NULL: undefined (no history yet).
    user_aggregated_features = Table(
        "user_aggregated_features",
        md,
        Column("user_id", String(_ID), primary_key=True),
        Column("agg_reference_date", Date, primary_key=True),
        Column("txn_count_30d", Integer, nullable=False),
        Column("avg_txn_amount_30d", Float),
        Column("standin_success_rate_90d", Float),
        Column("dispute_rate_90d", Float),
        Column("account_age_days", Float),
    )
    card_aggregated_features = Table(
        "card_aggregated_features",
        md,
        Column("card_id", String(_ID), primary_key=True),
        Column("agg_reference_date", Date, primary_key=True),
        Column("card_txn_count_30d", Integer, nullable=False),
        Column("card_avg_txn_amount_30d", Float),
        Column("card_standin_success_90d", Float),
        Column("card_age_days", Float),
    )
    return Tables(
        metadata=md,
        dialect=dialect,
        banks=banks,
        terminals=terminals,
        cards=cards,
        users=users,
        transactions=transactions,
        logins=logins,
        feedback=feedback,
        decisions=decisions,
        risk_events=risk_events,
        profiles=profiles,
        profile_state=profile_state,
        schema_version=schema_version,
        user_profile_scores=user_profile_scores,
        card_profile_scores=card_profile_scores,
        standin_inferences=standin_inferences,
        api_keys=api_keys,
        rule_versions=rule_versions,
        rule_shadow_hits=rule_shadow_hits,
        user_aggregated_features=user_aggregated_features,
        card_aggregated_features=card_aggregated_features,
        case_journal=case_journal,
        decision_links=decision_links,
    )


def case_journal_table(md: MetaData) -> Table:
    """The append-only case journal: one row per analyst action on a risk event (who, when,
    and what they set: status, assignee, label, note). Rows are only ever inserted."""
    return Table(
        "case_journal",
        md,
        Column("entry_id", _Serial, primary_key=True, autoincrement=True),
        Column(
            "risk_event_id",
            _Serial,
            # A risk event deleted by the retention policy takes its journal with it.
            ForeignKey(
                "risk_events.risk_event_id",
                name="fk_case_journal_risk_event",
                ondelete="CASCADE",
            ),
            nullable=False,
        ),
        Column("at", UtcDateTime(), nullable=False),
        Column("actor_key_id", String(_ID), nullable=False),
        Column("actor", String(200), nullable=False),
        Column("action", String(32), nullable=False),
        Column("status", String(16)),
        Column("assignee", String(200)),
        Column("label", String(32)),
        Column("feedback_event_id", String(_ID)),
        Column("note", Text),
        Index("ix_case_journal_risk_event", "risk_event_id", "entry_id"),
    )


def decision_links_table(md: MetaData) -> Table:
    """One link per committed batch of decisions (vigil.storage.audit): its place in the chain
    (``seq``, ``prev_hash``, ``hash`` over batch, size and time of commit) and the seal over its
    decision rows as they are now, renewed by erasure and retention (``sealed_at``)."""
    return Table(
        "decision_links",
        md,
        Column("seq", BigInteger, primary_key=True, autoincrement=False),
        Column("batch", BigInteger, nullable=False, unique=True),
        Column("size", Integer, nullable=False),
        Column("committed_at", UtcDateTime(), nullable=False),
        Column("prev_hash", String(64), nullable=False),
        Column("hash", String(64), nullable=False),
        Column("seal", String(64), nullable=False),
        Column("sealed_at", UtcDateTime(), nullable=False),
    )
