"""A partial index of the messages on their way (pending or sending)

The dashboard's Messages page filtered on "pending" or "sending", newest
first, walked every message of the site in id order to find the few in that
state: 41 ms for 200,000 messages on SQLite, and over a second for 2,000,000
with their rendered bodies, growing with the site's history. The new index
holds only the messages not yet sent, by site, status and id, as
``ix_outbox_not_sent`` (0013) does for those that ended without going out.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-23 20:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

#: As IN_FLIGHT in dunwell/store/tables.py, fixed here as it was written.
IN_FLIGHT = "status = 'pending' OR status = 'sending'"


def upgrade() -> None:
    op.create_index(
        "ix_outbox_in_flight",
        "outbox",
        ["site_id", "status", "id"],
        unique=False,
        sqlite_where=sa.text(IN_FLIGHT),
        postgresql_where=sa.text(IN_FLIGHT),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_in_flight", table_name="outbox")
