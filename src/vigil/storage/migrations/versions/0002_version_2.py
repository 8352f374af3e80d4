"""Version 2: the risk-event hash chain, contact columns wide enough for ciphertext, and the
tables of API keys, model scores, StandIn inferences, rule versions and shadow hits, and daily
aggregates.

Risk events stored before the chain existed are chained here, in id order, under the privacy key
of the store being upgraded (vigil.storage.audit.chain_existing). Contact columns widen on
PostgreSQL only: SQLite does not enforce a declared length, and widening there would mean
rebuilding the users table.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

from vigil.storage import audit
from vigil.storage.columns import UtcDateTime
from vigil.storage.migrations import mark_version, no_downgrade, pseudonyms

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_ID = 128
_Json = JSON().with_variant(JSONB(), "postgresql")
_Serial = BigInteger().with_variant(Integer(), "sqlite")


def upgrade() -> None:
    bind = op.get_bind()
    # Created where missing: a database that says version 1 may already hold some of them (the
    # version-1 look-alike the audit tests make from a current database does).
    new_tables().create_all(bind, checkfirst=True)
    op.add_column("risk_events", Column("seq", BigInteger))
    op.add_column("risk_events", Column("prev_hash", String(64)))
    op.add_column("risk_events", Column("hash", String(64)))
    if bind.dialect.name == "postgresql":
        for name in ("email", "phone", "address"):
            op.alter_column("users", name, type_=Text())
    audit.chain_existing(bind, risk_events(), pseudonyms())
    op.create_index("ux_risk_events_seq", "risk_events", ["seq"], unique=True)
    mark_version(bind, 2)


def downgrade() -> None:
    no_downgrade()


def risk_events() -> Table:
    """risk_events as version 2 has it: what chaining the stored rows reads and writes."""
    return Table(
        "risk_events",
        MetaData(),
        Column("risk_event_id", _Serial, primary_key=True),
        Column("decision_id", String(_ID), nullable=False),
        Column("event_id", String(_ID), nullable=False),
        Column("event_time", UtcDateTime()),
        Column("user_id", String(_ID)),
        Column("card_id", String(_ID)),
        Column("score", Float, nullable=False),
        Column("action", String(16), nullable=False),
        Column("reason_codes", Text, nullable=False),
        Column("status", String(16), nullable=False),
        Column("analyst_label", String(32)),
        Column("action_taken", String(64)),
        Column("updated_at", UtcDateTime(), nullable=False),
        Column("seq", BigInteger),
        Column("prev_hash", String(64)),
        Column("hash", String(64)),
    )


def new_tables() -> MetaData:
    """The tables version 2 added, as they were then."""
    md = MetaData()
    Table(
        "api_keys",
        md,
        Column("key_id", String(32), primary_key=True),
        Column("name", String(200), nullable=False),
        Column("roles", String(64), nullable=False),
        Column("secret_hash", String(256), nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("revoked_at", UtcDateTime()),
    )
    for kind in ("user", "card"):
        Table(
            f"{kind}_profile_scores",
            md,
            Column(f"{kind}_id", String(_ID), primary_key=True),
            Column("score", Float, nullable=False),
            Column("model_version", String(64), nullable=False),
            Column("score_timestamp", UtcDateTime(), nullable=False),
            CheckConstraint("score >= 0 AND score <= 1", name=f"ck_{kind}_profile_scores_score"),
        )
    Table(
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
    Table(
        "rule_versions",
        md,
        Column("version", Integer, primary_key=True, autoincrement=False),
        Column("sha256", String(64), nullable=False),
        Column("content", Text, nullable=False),
        Column("path", String(1000)),
        Column("source", String(200), nullable=False),
        Column("activated_at", UtcDateTime(), nullable=False),
    )
    Table(
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
    Table(
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
    Table(
        "card_aggregated_features",
        md,
        Column("card_id", String(_ID), primary_key=True),
        Column("agg_reference_date", Date, primary_key=True),
        Column("card_txn_count_30d", Integer, nullable=False),
        Column("card_avg_txn_amount_30d", Float),
        Column("card_standin_success_90d", Float),
        Column("card_age_days", Float),
    )
    return md
