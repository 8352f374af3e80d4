"""Version 5: every decision sealed in its batch, the batches chained; risk events in link
format 2, which erasure can pseudonymise card tokens under (vigil.storage.audit).

``decisions`` gains ``batch`` (indexed: erasure and retention seal the batches they touch
again), ``risk_events`` gains ``link_format`` (NULL: format 1, as every stored row stays) and
``erased``, and ``decision_links`` holds one link per batch. Decisions stored before are sealed
here, in batches of up to 5,000, under the privacy key of the store being upgraded
(vigil.storage.audit.seal_existing).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
)
from sqlalchemy.dialects.postgresql import JSONB

from vigil.storage import audit
from vigil.storage.columns import UtcDateTime
from vigil.storage.migrations import mark_version, no_downgrade, pseudonyms

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_ID = 128
_Json = JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("decisions", Column("batch", BigInteger))
    op.create_index("ix_decisions_batch", "decisions", ["batch"])
    op.add_column("risk_events", Column("link_format", SmallInteger))
    op.add_column("risk_events", Column("erased", SmallInteger, nullable=False, server_default="0"))
    md = MetaData()
    links = decision_links(md)
    links.create(bind, checkfirst=True)
    audit.seal_existing(bind, decisions(md), links, pseudonyms())
    mark_version(bind, 5)


def downgrade() -> None:
    no_downgrade()


def decisions(md: MetaData) -> Table:
    """decisions as version 5 has it: what sealing the stored rows reads and writes."""
    return Table(
        "decisions",
        md,
        Column("decision_id", String(_ID), primary_key=True),
        Column("event_id", String(_ID), nullable=False),
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
        Column("seq", BigInteger),
        Column("batch", BigInteger),
    )


def decision_links(md: MetaData) -> Table:
    """decision_links as version 5 creates it."""
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
