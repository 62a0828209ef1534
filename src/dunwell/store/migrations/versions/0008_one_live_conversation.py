"""conversations: at most one live (open or escalated) conversation per number

Two workers answering the same sender's texts at once could each open a
conversation on PostgreSQL. The older of any such pairs already stored
are closed as abandoned, the way an idle one is, before the unique index
is built.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 05:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

LIVE = "status IN ('open', 'escalated')"

CLOSE_OLDER_DUPLICATES = f"""
UPDATE conversations
SET status = 'closed', outcome = 'abandoned', closed_at = last_message_at,
    nudge_at = NULL, awaiting = NULL
WHERE {LIVE}
  AND id < (
    SELECT max(newer.id) FROM conversations AS newer
    WHERE newer.site_id = conversations.site_id
      AND newer.phone = conversations.phone
      AND newer.{LIVE}
  )
"""


def upgrade() -> None:
    op.execute(CLOSE_OLDER_DUPLICATES)
    op.create_index(
        "uq_conversations_live_phone",
        "conversations",
        ["site_id", "phone"],
        unique=True,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )


def downgrade() -> None:
    op.drop_index("uq_conversations_live_phone", table_name="conversations")
