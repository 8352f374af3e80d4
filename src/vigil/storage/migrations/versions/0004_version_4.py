"""Version 4: the analyst's case workflow (vigil.storage.cases).

``risk_events`` gains ``assignee`` and ``closed_at`` (workflow fields, outside the hash chain
like ``status`` and ``analyst_label``) and an index on ``(status, event_time)`` for the review
queue; the append-only ``case_journal`` records each analyst action on a risk event.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from vigil.storage.columns import UtcDateTime
from vigil.storage.migrations import mark_version, no_downgrade

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("risk_events", Column("assignee", String(200)))
    op.add_column("risk_events", Column("closed_at", UtcDateTime()))
    op.create_index("ix_risk_events_status_time", "risk_events", ["status", "event_time"])
    case_journal().create(bind, checkfirst=True)
    mark_version(bind, 4)


def downgrade() -> None:
    no_downgrade()


_ID = 128
_Serial = BigInteger().with_variant(Integer(), "sqlite")


def case_journal() -> Table:
    """case_journal as version 4 creates it (beside a stub of the risk_events it refers to)."""
    md = MetaData()
    Table("risk_events", md, Column("risk_event_id", _Serial, primary_key=True))
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
