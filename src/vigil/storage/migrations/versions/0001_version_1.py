"""Version 1: the tables of vigil's first schema.

As they were then (never through build_tables, which holds only the newest shape): no hash
chain on risk_events, no log position on decisions, contact columns typed for plain text.
On PostgreSQL transactions and logins are range-partitioned by month on their timestamp; the
partitions themselves are created as events arrive (vigil.storage.partitions), never here.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op
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
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import BYTEA, JSONB

from vigil.storage.columns import Money, UtcDateTime
from vigil.storage.migrations import mark_version, no_downgrade

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_ID = 128
_EventId = String(_ID).with_variant(String(_ID, collation="C"), "postgresql")
_Json = JSON().with_variant(JSONB(), "postgresql")
_Blob = LargeBinary().with_variant(BYTEA(), "postgresql")
_Serial = BigInteger().with_variant(Integer(), "sqlite")
_ACTIONS = "'allow', 'step_up', 'review', 'block'"


def upgrade() -> None:
    bind = op.get_bind()
    tables(bind.dialect.name).create_all(bind)
    mark_version(bind, 1)


def downgrade() -> None:
    no_downgrade()


def tables(dialect: str) -> MetaData:
    """The version 1 schema for ``dialect``."""
    partitioned = dialect == "postgresql"
    partition_kw = {"postgresql_partition_by": 'RANGE ("timestamp")'} if partitioned else {}
    md = MetaData()

    def event_key() -> tuple[Column, Column]:
        return (
            Column("event_id", _EventId, primary_key=True),
            Column("timestamp", UtcDateTime(), primary_key=partitioned, nullable=False),
        )

    Table(
        "banks",
        md,
        Column("code", String(_ID), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("latitude", Float),
        Column("longitude", Float),
    )
    Table(
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
    Table(
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
    Table(
        "users",
        md,
        Column("user_id", String(_ID), primary_key=True),
        Column("created_at", UtcDateTime()),
        Column("country", String(3)),
        Column("latitude", Float),
        Column("longitude", Float),
        Column("email", String(320)),
        Column("phone", String(40)),
        Column("address", String(500)),
    )
    Table(
        "transactions",
        md,
        *event_key(),
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
        Index("ix_transactions_user_time", "user_id", "timestamp"),
        Index("ix_transactions_card_time", "card_id", "timestamp"),
        Index("ix_transactions_account_time", "account_id", "timestamp"),
        Index("ix_transactions_transaction_id", "transaction_id"),
        **partition_kw,
    )
    Table(
        "logins",
        md,
        *event_key(),
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
    Table(
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
    Table(
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
        CheckConstraint("score >= 0 AND score <= 1", name="ck_decisions_score"),
        CheckConstraint(f"action IN ({_ACTIONS})", name="ck_decisions_action"),
        Index("ix_decisions_user_time", "user_id", "event_time"),
        Index("ix_decisions_card_time", "card_id", "event_time"),
        Index("ix_decisions_action", "action"),
    )
    Table(
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
        Index("ix_risk_events_user_time", "user_id", "event_time"),
        Index("ix_risk_events_card_time", "card_id", "event_time"),
        Index("ix_risk_events_time", "event_time"),
    )
    Table(
        "profiles",
        md,
        Column("kind", String(32), primary_key=True),
        Column("key", String(256), primary_key=True),
        Column("data", _Blob, nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    )
    Table(
        "profile_state",
        md,
        Column("name", String(64), primary_key=True),
        Column("value", _Json, nullable=False),
        Column("updated_at", UtcDateTime(), nullable=False),
    )
    Table(
        "schema_version",
        md,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("applied_at", UtcDateTime(), nullable=False),
    )
    return md
