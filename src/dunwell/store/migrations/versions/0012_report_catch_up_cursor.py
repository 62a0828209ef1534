"""twilio_catch_up: where the next ask about missing delivery reports starts

Each check asked Twilio about a site's oldest texts with no report, a
hundred at most. When Twilio keeps more than that queued (a long code
sends about one text a second, so a dunning run can wait in Twilio's queue
for hours), the same hundred were asked about at every check and a newer
text whose report was really lost waited until the old ones aged out. The
check now goes on after the last text it asked about, and starts again
from the oldest once it reaches the end.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-23 13:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dunwell.store.types import Id, UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("twilio_catch_up") as batch:
        batch.add_column(sa.Column("reports_after", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("reports_after_id", Id, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("twilio_catch_up") as batch:
        batch.drop_column("reports_after_id")
        batch.drop_column("reports_after")
