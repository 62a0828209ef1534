"""Reading the outbox and acting on one message: list, show with attempts, resend."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update

from dunwell.services.errors import Conflict, NotFound
from dunwell.services.message_render import MessageRenderer
from dunwell.store.tables import message_attempts, outbox, sandbox_messages

LIST_COLUMNS = (
    "id",
    "channel",
    "status",
    "template",
    "recipient",
    "locale",
    "subject",
    "segments",
    "encoding",
    "customer_id",
    "invoice_id",
    "attempts",
    "next_attempt_at",
    "held_reason",
    "provider",
    "provider_id",
    "provider_status",
    "error_code",
    "last_error",
    "created_at",
    "sent_at",
    "delivered_at",
    "kind",
)
STATUSES = ("pending", "sending", "sent", "delivered", "failed", "skipped", "blocked", "canceled")


def list_messages(
    conn: Connection,
    site_id: int,
    *,
    status: str | None = None,
    channel: str | None = None,
    customer_id: int | None = None,
    after_id: int = 0,
    before_id: int | None = None,
    limit: int = 100,
    newest_first: bool = False,
) -> list[dict[str, Any]]:
    """Messages oldest first (pages follow ``after_id``), or the latest ``limit`` newest
    first (pages go back with ``before_id``)."""
    o = outbox
    query = (
        select(*(o.c[name] for name in LIST_COLUMNS))
        .where(o.c.site_id == site_id, o.c.id > after_id)
        .order_by(o.c.id.desc() if newest_first else o.c.id)
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(o.c.id < before_id)
    if status:
        query = query.where(o.c.status == status)
    if channel:
        query = query.where(o.c.channel == channel)
    if customer_id:
        query = query.where(o.c.customer_id == customer_id)
    return [dict(row._mapping) for row in conn.execute(query)]


def count_failed(conn: Connection, site_id: int) -> int:
    """Messages of the site that failed for good (from ``ix_outbox_not_sent`` alone)."""
    o = outbox
    query = select(func.count()).where(o.c.site_id == site_id, o.c.status == "failed")
    return int(conn.execute(query).scalar_one())


def get_message(conn: Connection, site_id: int, message_id: int) -> dict[str, Any]:
    """One message with its full text and every delivery attempt."""
    row = conn.execute(
        select(outbox).where(outbox.c.site_id == site_id, outbox.c.id == message_id)
    ).first()
    if row is None:
        raise NotFound(f"no message {message_id} in this site")
    data = {k: v for k, v in row._mapping.items() if k not in ("lease_owner", "lease_until")}
    a = message_attempts
    data["delivery_attempts"] = [
        dict(r._mapping)
        for r in conn.execute(
            select(
                a.c.attempt_no,
                a.c.provider,
                a.c.started_at,
                a.c.finished_at,
                a.c.outcome,
                a.c.error_code,
                a.c.error,
                a.c.provider_id,
            )
            .where(a.c.outbox_id == message_id, a.c.site_id == site_id)
            .order_by(a.c.attempt_no)
        )
    ]
    return data


def resend_message(
    conn: Connection, site_id: int, message_id: int, renderer: MessageRenderer, now: datetime
) -> dict[str, Any]:
    """Queue a failed message again; one that failed to render is rendered anew.

    Only failed messages can be resent: a message that went out is never
    sent again by this, and a blocked one (opt-out, no consent) stays blocked.
    """
    row = conn.execute(
        select(outbox).where(outbox.c.site_id == site_id, outbox.c.id == message_id)
    ).first()
    if row is None:
        raise NotFound(f"no message {message_id} in this site")
    if row.status != "failed":
        raise Conflict(f"message {message_id} is {row.status}; only failed messages can be resent")
    values: dict[str, Any] = {
        "status": "pending",
        "next_attempt_at": now,
        "last_error": None,
        "error_code": None,
        "attempts": 0,
        "updated_at": now,
    }
    if row.body_text is None and row.template:
        fresh = dict(row._mapping) | {"status": "pending", "recipient": None, "last_error": None}
        renderer.render_rows(conn, [fresh])
        if fresh["status"] != "pending":
            raise Conflict(f"message {message_id} still cannot be rendered: {fresh['last_error']}")
        for key in (
            "recipient",
            "locale",
            "subject",
            "body_text",
            "body_html",
            "segments",
            "encoding",
        ):
            values[key] = fresh[key]
    conn.execute(update(outbox).where(outbox.c.id == message_id).values(values))
    return get_message(conn, site_id, message_id)


def sandbox_inbox(
    conn: Connection,
    site_id: int,
    channel: str,
    *,
    to: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """What the sandbox mailbox or phone holds, oldest first."""
    t = sandbox_messages
    query = (
        select(
            t.c.id,
            t.c.direction,
            t.c.to_addr,
            t.c.from_addr,
            t.c.subject,
            t.c.body_text,
            t.c.body_html,
            t.c.message_id,
            t.c.created_at,
        )
        .where(t.c.site_id == site_id, t.c.channel == channel, t.c.id > after_id)
        .order_by(t.c.id)
        .limit(limit)
    )
    if to:
        query = query.where((t.c.to_addr == to) | (t.c.from_addr == to))
    return [dict(r._mapping) for r in conn.execute(query)]
