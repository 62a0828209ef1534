"""events, outbox, inbound_messages, conversations: index on (site_id, customer_id)

A customer's timeline, messages, texts and conversations were found by
reading every row of the site: these tables had no index on the customer.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 02:40:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXES = {
    "ix_events_site_customer": "events",
    "ix_outbox_site_customer": "outbox",
    "ix_inbound_messages_site_customer": "inbound_messages",
    "ix_conversations_site_customer": "conversations",
}


def upgrade() -> None:
    for name, table in INDEXES.items():
        op.create_index(name, table, ["site_id", "customer_id"], unique=False)


def downgrade() -> None:
    for name, table in INDEXES.items():
        op.drop_index(name, table_name=table)
