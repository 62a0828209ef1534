"""concierge: conversations, turns, escalations, settings, inbound queue, one-time items

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 07:49:06.163172
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dunwell.store.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "concierge_settings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("site_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("helpdesk_secret", sa.Text(), nullable=True),
        sa.Column("updated_at", dunwell.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_concierge_settings_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_concierge_settings")),
        sa.UniqueConstraint("site_id", name=op.f("uq_concierge_settings_site_id")),
    )
    op.create_table(
        "conversations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("site_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("awaiting", sa.String(length=32), nullable=True),
        sa.Column("nudge_at", dunwell.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", dunwell.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "last_message_at", dunwell.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("closed_at", dunwell.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'escalated', 'closed')", name=op.f("ck_conversations_status")
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_conversations_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_conversations_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index("ix_conversations_nudge", ["nudge_at"], unique=False)
        batch_op.create_index(
            "ix_conversations_phone", ["site_id", "phone", "status"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_conversations_site_id"), ["site_id"], unique=False)

    op.create_table(
        "conversation_turns",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("site_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("author", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(length=32), nullable=True),
        sa.Column("slots", sa.JSON(), nullable=True),
        sa.Column("understood_by", sa.String(length=8), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=True),
        sa.Column("action_status", sa.String(length=16), nullable=True),
        sa.Column("action_result", sa.JSON(), nullable=True),
        sa.Column(
            "inbound_message_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("outbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("created_at", dunwell.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "direction IN ('inbound', 'outbound')", name=op.f("ck_conversation_turns_direction")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_turns_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["inbound_message_id"],
            ["inbound_messages.id"],
            name=op.f("fk_conversation_turns_inbound_message_id_inbound_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"], ["outbox.id"], name=op.f("fk_conversation_turns_outbox_id_outbox")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_conversation_turns_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_turns")),
    )
    with op.batch_alter_table("conversation_turns", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversation_turns_action", ["site_id", "action", "action_status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_conversation_turns_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_conversation_turns_site_id"), ["site_id"], unique=False
        )

    op.create_table(
        "escalations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("site_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "conversation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "customer_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("ticket_id", sa.String(length=64), nullable=True),
        sa.Column(
            "email_outbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at", dunwell.store.types.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", dunwell.store.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", dunwell.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", dunwell.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_escalations_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["email_outbox_id"], ["outbox.id"], name=op.f("fk_escalations_email_outbox_id_outbox")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_escalations_site_id_sites")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_escalations")),
    )
    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_escalations_conversation_id"), ["conversation_id"], unique=False
        )
        batch_op.create_index("ix_escalations_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_escalations_site_id"), ["site_id"], unique=False)

    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("answered_at", dunwell.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("concierge_attempts", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("concierge_error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("lease_until", dunwell.store.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            "ix_inbound_messages_unanswered", ["answered_at", "received_at"], unique=False
        )
    # Texts that arrived before the concierge existed are not its to answer.
    op.execute("UPDATE inbound_messages SET answered_at = received_at")

    with op.batch_alter_table("subscription_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("one_time_period", sa.Integer(), nullable=True))

    # The concierge's scans for the messages it starts.
    op.create_index("ix_subscriptions_created_at", "subscriptions", ["created_at"])
    op.create_index("ix_subscriptions_canceled_at", "subscriptions", ["canceled_at"])
    op.create_index("ix_invoices_paid_at", "invoices", ["paid_at"])
    op.create_index("ix_outbox_channel_created", "outbox", ["channel", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_channel_created", table_name="outbox")
    op.drop_index("ix_invoices_paid_at", table_name="invoices")
    op.drop_index("ix_subscriptions_canceled_at", table_name="subscriptions")
    op.drop_index("ix_subscriptions_created_at", table_name="subscriptions")
    with op.batch_alter_table("subscription_items", schema=None) as batch_op:
        batch_op.drop_column("one_time_period")

    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_messages_unanswered")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("lease_owner")
        batch_op.drop_column("concierge_error")
        batch_op.drop_column("concierge_attempts")
        batch_op.drop_column("answered_at")

    with op.batch_alter_table("escalations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_escalations_site_id"))
        batch_op.drop_index("ix_escalations_due")
        batch_op.drop_index(batch_op.f("ix_escalations_conversation_id"))

    op.drop_table("escalations")
    with op.batch_alter_table("conversation_turns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_turns_site_id"))
        batch_op.drop_index(batch_op.f("ix_conversation_turns_conversation_id"))
        batch_op.drop_index("ix_conversation_turns_action")

    op.drop_table("conversation_turns")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversations_site_id"))
        batch_op.drop_index("ix_conversations_phone")
        batch_op.drop_index("ix_conversations_nudge")

    op.drop_table("conversations")
    op.drop_table("concierge_settings")
