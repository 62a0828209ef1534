"""The merchant's SMS inbox: conversations, a customer's history, replying by hand.

Every query is scoped to one site. Search matches the customer's name,
email or phone (the phone also as typed: digits are compared without
formatting). A merchant's reply is a text like any other: it goes through
the outbox and every compliance check, and is recorded as a turn by
``merchant``. Replying to a conversation the concierge still holds hands
it to the person replying (``escalated``), so the concierge does not answer
over them; closing it gives the number back to the concierge.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from dunwell.services.conversations import (
    IDLE,
    close_conversation,
    load_conversation,
    mark_escalated,
    queue_text,
)
from dunwell.services.errors import Conflict, InvalidInput, NotFound
from dunwell.store.people_search import person_matches
from dunwell.store.tables import conversation_turns, conversations, customers

MAX_REPLY = 1600  # ten segments: Twilio's own limit for one message body
TURN_COLUMNS = (
    "id",
    "direction",
    "author",
    "body",
    "intent",
    "slots",
    "understood_by",
    "action",
    "action_status",
    "action_result",
    "outbox_id",
    "created_at",
)


def list_conversations(
    conn: Connection,
    site_id: int,
    *,
    query: str | None = None,
    status: str | None = None,
    customer_id: int | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    c, p = conversations, customers
    stmt = (
        select(
            c.c.id,
            c.c.customer_id,
            c.c.phone,
            c.c.status,
            c.c.outcome,
            c.c.awaiting,
            c.c.started_at,
            c.c.last_message_at,
            c.c.closed_at,
            p.c.first_name,
            p.c.last_name,
            p.c.email,
        )
        .outerjoin(p, p.c.id == c.c.customer_id)
        .where(c.c.site_id == site_id, c.c.id > after_id)
        .order_by(c.c.id)
        .limit(limit)
    )
    if status:
        stmt = stmt.where(c.c.status == status)
    if customer_id:
        stmt = stmt.where(c.c.customer_id == customer_id)
    if query and query.strip():
        stmt = stmt.where(
            person_matches(
                query.strip(),
                customers.c.first_name,
                customers.c.last_name,
                customers.c.email,
                conversations.c.phone,
            )
        )
    rows = [dict(row._mapping) for row in conn.execute(stmt)]
    _attach_last_turns(conn, rows)
    return rows


def get_conversation(conn: Connection, site_id: int, conversation_id: int) -> dict[str, Any]:
    row = conn.execute(
        select(conversations).where(
            conversations.c.site_id == site_id, conversations.c.id == conversation_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no conversation {conversation_id}")
    found = dict(row._mapping)
    found["turns"] = _turns(conn, [conversation_id])
    return found


def customer_history(conn: Connection, site_id: int, customer_id: int) -> dict[str, Any]:
    """Every conversation a customer had, oldest first, each with its turns."""
    exists = conn.execute(
        select(customers.c.id).where(customers.c.site_id == site_id, customers.c.id == customer_id)
    ).first()
    if exists is None:
        raise NotFound(f"no customer {customer_id}")
    rows = conn.execute(
        select(conversations)
        .where(conversations.c.site_id == site_id, conversations.c.customer_id == customer_id)
        .order_by(conversations.c.id)
    ).all()
    turns = _turns(conn, [row.id for row in rows])
    history = []
    for row in rows:
        item = dict(row._mapping)
        item["turns"] = [t for t in turns if t["conversation_id"] == row.id]
        history.append(item)
    return {"customer_id": customer_id, "conversations": history}


def reply_by_hand(
    conn: Connection, site_id: int, conversation_id: int, body: str, now: datetime
) -> dict[str, Any]:
    text = body.strip()
    if not text:
        raise InvalidInput("body", "a reply cannot be empty")
    if len(text) > MAX_REPLY:
        raise InvalidInput("body", f"keep a reply under {MAX_REPLY} characters")
    conversation = load_conversation(conn, site_id, conversation_id)
    if conversation is None:
        raise NotFound(f"no conversation {conversation_id}")
    if conversation.status == "closed":
        raise Conflict("this conversation is closed; the customer's next text starts a new one")
    if conversation.status == "open":
        mark_escalated(conn, conversation.id, now)
    kind = "reply" if _customer_wrote_since(conn, conversation.id, now - IDLE) else "transactional"
    outbox_id = queue_text(conn, conversation, text, now, author="merchant", kind=kind)
    return {"conversation_id": conversation.id, "message_id": outbox_id}


def _customer_wrote_since(conn: Connection, conversation_id: int, since: datetime) -> bool:
    """A reply within a day of the customer's text answers them; later, it is a new message
    and waits for the send window like any other."""
    t = conversation_turns
    found = conn.execute(
        select(t.c.id)
        .where(t.c.conversation_id == conversation_id, t.c.direction == "inbound")
        .where(t.c.created_at >= since)
        .limit(1)
    ).first()
    return found is not None


def close_by_hand(conn: Connection, site_id: int, conversation_id: int, now: datetime) -> None:
    conversation = load_conversation(conn, site_id, conversation_id)
    if conversation is None:
        raise NotFound(f"no conversation {conversation_id}")
    if conversation.status == "closed":
        raise Conflict("this conversation is already closed")
    close_conversation(conn, conversation.id, _outcome_when_closed(conn, conversation_id), now)


def _outcome_when_closed(conn: Connection, conversation_id: int) -> str:
    current = conn.execute(
        select(conversations.c.outcome).where(conversations.c.id == conversation_id)
    ).scalar()
    return str(current or "answered")


def _turns(conn: Connection, conversation_ids: list[int]) -> list[dict[str, Any]]:
    if not conversation_ids:
        return []
    t = conversation_turns
    rows = conn.execute(
        select(t.c.conversation_id, *(t.c[name] for name in TURN_COLUMNS))
        .where(t.c.conversation_id.in_(conversation_ids))
        .order_by(t.c.id)
    )
    return [dict(row._mapping) for row in rows]


def _attach_last_turns(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Each listed conversation's latest turn, for the inbox's one-line preview."""
    if not rows:
        return
    t = conversation_turns
    ids = [row["id"] for row in rows]
    latest = (
        select(func.max(t.c.id)).where(t.c.conversation_id.in_(ids)).group_by(t.c.conversation_id)
    )
    found = {
        r.conversation_id: r
        for r in conn.execute(
            select(t.c.conversation_id, t.c.author, t.c.body, t.c.created_at).where(
                t.c.id.in_(latest)
            )
        )
    }
    for row in rows:
        last = found.get(row["id"])
        row["last_turn"] = (
            None
            if last is None
            else {"author": last.author, "body": last.body, "at": last.created_at}
        )
