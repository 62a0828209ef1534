"""subscriptions.paused_by: who paused a subscription, dunning or the merchant

Paying a subscription's debt made it active again, however it had been
paused, so a subscription the merchant paused through the API or the
dashboard came back to be billed. The payment now resumes only what a
final action paused. Rows paused before this have no value and keep the
old behaviour.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-25 01:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("subscriptions", sa.Column("paused_by", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("paused_by")
