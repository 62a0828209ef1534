"""customers: index on (site_id, phone) for inbound texts

An inbound text is matched to its sender by phone number; without this
index each webhook batch read every customer of the site.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 17:20:00.000000
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_customers_phone", "customers", ["site_id", "phone"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_customers_phone", table_name="customers")
