"""twilio_catch_up: how far each site's Twilio inbox has been read back; ix_outbox_unreported

Twilio does not send an inbound text's webhook, or a status callback,
again after an error or a timeout unless the number is configured to. The
worker now reads each site's received texts from Twilio's API and stores
any that never arrived; the new table keeps where each site's reading has
got to. Texts sent with no delivery report at all are asked about too,
found through a partial index that holds only them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 09:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dunwell.store.types import Id, UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: As UNREPORTED_SMS in dunwell/store/tables.py, fixed here as it was written.
UNREPORTED = (
    "provider = 'twilio' AND status = 'sent' "
    "AND provider_status IN ('queued', 'accepted', 'scheduled', 'sending')"
)


def upgrade() -> None:
    op.create_table(
        "twilio_catch_up",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("site_id", Id, nullable=False),
        sa.Column("synced_until", UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_check_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_twilio_catch_up_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_twilio_catch_up")),
        sa.UniqueConstraint("site_id", name=op.f("uq_twilio_catch_up_site_id")),
    )
    op.create_index(
        "ix_outbox_unreported",
        "outbox",
        ["site_id", "sent_at"],
        unique=False,
        sqlite_where=sa.text(UNREPORTED),
        postgresql_where=sa.text(UNREPORTED),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_unreported", table_name="outbox")
    op.drop_table("twilio_catch_up")
