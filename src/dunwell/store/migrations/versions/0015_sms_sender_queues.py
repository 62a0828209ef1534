"""sms_sender_queues: how long texts already handed over wait at the provider

A carrier takes one segment a second from a US long code, and Twilio
queues what comes faster, for up to ten hours. The send window was
checked only when a text was handed to Twilio, so after a large dunning
run a text handed over at 19:00 could reach the customer at midnight.
Each site now keeps when its sender's queue is expected to be empty, and
a text that would leave it after the customer's window waits for the
next one.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-24 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dunwell.store.types import Id, UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sms_sender_queues",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("site_id", Id, nullable=False),
        sa.Column("clears_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_sms_sender_queues_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sms_sender_queues")),
        sa.UniqueConstraint("site_id", name=op.f("uq_sms_sender_queues_site_id")),
    )


def downgrade() -> None:
    op.drop_table("sms_sender_queues")
