"""A partial index of the messages that ended without going out

A page of one site's failed (or skipped, blocked, canceled) messages walked
every message of the site in id order to find the few in that state: 40 to
55 ms for 200,000 messages on SQLite, growing with the site's history. The
new index holds only those rows, by site, status and id, so the page reads
them and nothing else. Sent and delivered messages, the bulk, never enter
it; the status is in it because skipped texts (no number) can be many.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-23 16:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

#: As NOT_SENT in dunwell/store/tables.py, fixed here as it was written.
NOT_SENT = "status = 'failed' OR status = 'skipped' OR status = 'blocked' OR status = 'canceled'"


def upgrade() -> None:
    op.create_index(
        "ix_outbox_not_sent",
        "outbox",
        ["site_id", "status", "id"],
        unique=False,
        sqlite_where=sa.text(NOT_SENT),
        postgresql_where=sa.text(NOT_SENT),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_not_sent", table_name="outbox")
