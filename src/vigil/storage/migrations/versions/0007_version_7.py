"""Version 7: a profile checkpoint is written a few hundred profiles at a time.

A server's checkpoint of 10,000 changed profiles took its writer 200 ms in one transaction, and
every decision waiting for a commit waited that long. Now each part of a checkpoint goes in a
transaction of its own, between the decisions' commits, and the checkpoint counts only once its
last part is written with its log position. So each row of ``profiles`` keeps, beside the
profile as of the newest complete checkpoint (``data``, NULL until one included it), the one a
checkpoint at log position ``pending_position`` wrote (``pending``); a load reads ``pending``
where that checkpoint is complete (vigil.storage.checkpoints).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import BigInteger, Column, LargeBinary
from sqlalchemy.dialects.postgresql import BYTEA

from vigil.storage.migrations import mark_version, no_downgrade

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_Blob = LargeBinary().with_variant(BYTEA(), "postgresql")


def upgrade() -> None:
    op.add_column("profiles", Column("pending", _Blob))
    op.add_column("profiles", Column("pending_position", BigInteger))
    op.create_index("ix_profiles_pending_position", "profiles", ["pending_position"])
    with op.batch_alter_table("profiles") as table:  # SQLite: the table is made again
        table.alter_column("data", existing_type=_Blob, nullable=True)
    mark_version(op.get_bind(), 7)


def downgrade() -> None:
    no_downgrade()
