"""Version 3: the log position on decisions (vigil.storage.log).

``decisions.seq`` with a unique index, and on PostgreSQL the sequence ``decisions_seq`` that
several processes take positions from at once. Decisions stored before stay unnumbered (NULL):
the profile snapshot taken with them already includes them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Column

from vigil.storage.migrations import mark_version, no_downgrade

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("decisions", Column("seq", BigInteger))
    if bind.dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE IF NOT EXISTS decisions_seq")
    op.create_index("ux_decisions_seq", "decisions", ["seq"], unique=True)
    mark_version(bind, 3)


def downgrade() -> None:
    no_downgrade()
