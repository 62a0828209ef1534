"""Partial indexes of the leased rows, so a stopping worker finds its own at once

A worker that stops gives back the leases it still holds. It found them by
reading every row of the five leased tables, the outbox with its rendered
bodies included: half a second for 400,000 messages on SQLite, so a worker
with years of history could outlast its shutdown grace period. Each
table now has an index holding only the rows under a lease, a handful at
any moment.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-23 12:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

#: As LEASED in dunwell/store/tables.py, fixed here as it was written.
LEASED = "lease_owner IS NOT NULL"
TABLES = ("inbound_messages", "outbox", "webhook_deliveries", "escalations", "dunning_cycles")


def upgrade() -> None:
    for table in TABLES:
        op.create_index(
            f"ix_{table}_leased",
            table,
            ["lease_owner"],
            unique=False,
            sqlite_where=sa.text(LEASED),
            postgresql_where=sa.text(LEASED),
        )


def downgrade() -> None:
    for table in TABLES:
        op.drop_index(f"ix_{table}_leased", table_name=table)
