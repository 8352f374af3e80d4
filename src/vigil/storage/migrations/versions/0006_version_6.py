"""Version 6: the indexes of transactions by user and by account hold only the rows that have
one.

A card-payment file names no user and no account: ``ix_transactions_user_time`` and
``ix_transactions_account_time`` held a NULL key for each of its rows, which no query reads
(every lookup is ``user_id = ?`` or ``account_id = ?``), and an import of 1.3 M such rows
sorted and wrote both anyway. Each becomes partial, ``WHERE <column> IS NOT NULL``; on
PostgreSQL the index of the partitioned table is made again on every month's partition.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

from vigil.storage.migrations import mark_version, no_downgrade

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    for name, column in (
        ("ix_transactions_user_time", "user_id"),
        ("ix_transactions_account_time", "account_id"),
    ):
        op.drop_index(name, table_name="transactions")
        present = text(f"{column} IS NOT NULL")
        op.create_index(
            name,
            "transactions",
            [column, "timestamp"],
            sqlite_where=present,
            postgresql_where=present,
        )
    mark_version(op.get_bind(), 6)


def downgrade() -> None:
    no_downgrade()
