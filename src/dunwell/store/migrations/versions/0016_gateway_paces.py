"""gateway_paces: one pace for a gateway's requests, shared by every worker

Stripe limits an account's requests a second, whoever sends them. Each
worker spaced its own charges, so four workers at the default pace asked
four times what one account may, and their charges came back rate-limited.
The workers now take their turns from one row per gateway.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-24 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from dunwell.store.types import Id, UTCDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_paces",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("gateway", sa.String(length=40), nullable=False),
        sa.Column("next_start_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gateway_paces")),
        sa.UniqueConstraint("gateway", name=op.f("uq_gateway_paces_gateway")),
    )


def downgrade() -> None:
    op.drop_table("gateway_paces")
