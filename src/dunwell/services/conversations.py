"""Conversations and their turns: the concierge's memory and the merchant's inbox.

A conversation is one exchange with one phone number on one site. It is
*open* while the concierge handles it, *escalated* once a person has it
(the concierge then stays quiet and only records), and *closed* when it
ended. A text more than :data:`IDLE` after the last one starts a new
conversation, so a question from last month never gets a yes today.

Every outgoing text of a conversation goes through the outbox and so
through every compliance check; :func:`queue_text` is the only writer.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from dunwell.services.sms_settings import load_sms_settings
from dunwell.services.sms_text import finish_sms
from dunwell.store.sql import insert_one, insert_skipping_conflicts
from dunwell.store.tables import LIVE_CONVERSATION, conversation_turns, conversations, outbox

#: How long a conversation waits for the customer before it is over.
IDLE = timedelta(hours=24)
#: Every status but closed (see the CHECK on ``conversations.status``).
UNCLOSED = ("open", "escalated")
#: An escalated conversation goes back to the concierge after this long quiet.
ESCALATION_IDLE = timedelta(days=3)


@dataclass(frozen=True)
class Conversation:
    id: int
    site_id: int
    customer_id: int | None
    phone: str
    status: str
    state: dict[str, Any]
    started_at: datetime
    #: No outbound text yet: the first one carries the opt-out line.
    fresh: bool


def current_conversation(
    conn: Connection, site_id: int, phone: str, customer_id: int | None, now: datetime
) -> Conversation:
    """The number's live conversation, or a new one when the last went idle or closed."""
    row = _live_conversation(conn, site_id, phone)
    if row is not None:
        idle = ESCALATION_IDLE if row.status == "escalated" else IDLE
        if now - row.last_message_at <= idle:
            return _conversation(conn, row)
        close_conversation(conn, row.id, "abandoned", now)
    c = conversations
    new_id = conn.execute(
        insert_skipping_conflicts(conn, c, ["site_id", "phone"], where=LIVE_CONVERSATION)
        .values(
            site_id=site_id,
            customer_id=customer_id,
            phone=phone,
            status="open",
            state={},
            started_at=now,
            last_message_at=now,
        )
        .returning(c.c.id)
    ).scalar()
    if new_id is None:
        # Another transaction opened one for the number between the read and
        # the insert (PostgreSQL, two workers with texts from one sender);
        # the insert waited for it to commit, so it is there to read now.
        row = _live_conversation(conn, site_id, phone)
        assert row is not None, "a live conversation collided but cannot be read"
        return _conversation(conn, row)
    return Conversation(int(new_id), site_id, customer_id, phone, "open", {}, now, True)


def _live_conversation(conn: Connection, site_id: int, phone: str) -> Any:
    """The number's one unclosed conversation (``uq_conversations_live_phone``), locked."""
    c = conversations
    query = select(c).where(c.c.site_id == site_id, c.c.phone == phone, c.c.status.in_(UNCLOSED))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return conn.execute(query).first()


def load_conversation(conn: Connection, site_id: int, conversation_id: int) -> Conversation | None:
    row = conn.execute(
        select(conversations).where(
            conversations.c.site_id == site_id, conversations.c.id == conversation_id
        )
    ).first()
    return None if row is None else _conversation(conn, row)


def save_state(
    conn: Connection,
    conversation: Conversation,
    state: dict[str, Any],
    now: datetime,
    *,
    nudge_at: datetime | None = None,
    outcome: str | None = None,
) -> None:
    """Remember the dialogue's state; ``nudge_at`` schedules the one nudge.

    ``outcome`` is how the conversation went so far (completed, declined...),
    kept when a turn decides nothing new.
    """
    values: dict[str, Any] = {
        "state": state,
        "awaiting": state.get("awaiting"),
        "nudge_at": nudge_at,
        "last_message_at": now,
    }
    if outcome is not None:
        values["outcome"] = outcome
    conn.execute(update(conversations).where(conversations.c.id == conversation.id).values(values))


#: The details a topic may carry; a new topic drops the last one's.
TOPIC_DETAILS = ("invoice_id", "subscription_id")


def note_topic(
    conn: Connection, conversation: Conversation, topic: str, **details: int
) -> dict[str, Any]:
    """Record what a message we started is about, so a reply to it is understood.

    Only ``topic`` and its details change: a pending question, its nudge and
    everything else the dialogue keeps stay as they were. Returns the new state.
    """
    kept = {k: v for k, v in conversation.state.items() if k not in TOPIC_DETAILS}
    state = {**kept, "topic": topic, **details}
    conn.execute(
        update(conversations).where(conversations.c.id == conversation.id).values(state=state)
    )
    return state


def peek_state(conn: Connection, site_id: int, phone: str, now: datetime) -> dict[str, Any]:
    """The live conversation's state without creating or locking anything (for reading)."""
    return live_states(conn, {(site_id, phone)}, {site_id: now}).get((site_id, phone), {})


#: Built once: each inbound batch runs it (see :func:`live_states`). No
#: ORDER BY: with one, SQLite's planner walked the site's whole history of
#: conversations in id order instead of looking the numbers up on
#: ``ix_conversations_phone``, so every batch of texts slowed as the site
#: aged (9,400 conversations: 40 % of storing a batch). A number has at most
#: one unclosed conversation (``uq_conversations_live_phone``), so there is
#: no newest to pick.
_OPEN_CONVERSATIONS = select(
    conversations.c.site_id,
    conversations.c.phone,
    conversations.c.state,
    conversations.c.last_message_at,
).where(
    conversations.c.site_id.in_(bindparam("sites", expanding=True)),
    conversations.c.phone.in_(bindparam("phones", expanding=True)),
    conversations.c.status == "open",
)


def live_states(
    conn: Connection, senders: Iterable[tuple[int, str]], now_by_site: Mapping[int, datetime]
) -> dict[tuple[int, str], dict[str, Any]]:
    """Each (site, phone)'s live conversation state, in one query; absent: none live.

    The number's open conversation counts, unless it has been idle for
    longer than :data:`IDLE` at its site's now.
    """
    wanted = set(senders)
    if not wanted:
        return {}
    rows = conn.execute(
        _OPEN_CONVERSATIONS,
        {
            "sites": list({site_id for site_id, _ in wanted}),
            "phones": list({phone for _, phone in wanted}),
        },
    )
    return {
        (row.site_id, row.phone): dict(row.state or {})
        for row in rows
        if (row.site_id, row.phone) in wanted
        and now_by_site[row.site_id] - row.last_message_at <= IDLE
    }


def annotate_last_inbound(
    conn: Connection, conversation: Conversation, action: str, status: str, result: dict[str, Any]
) -> None:
    """Record an action and its result on the customer's latest turn."""
    t = conversation_turns
    latest = (
        select(t.c.id)
        .where(t.c.conversation_id == conversation.id, t.c.direction == "inbound")
        .order_by(t.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    conn.execute(
        update(t)
        .where(t.c.id == latest)
        .values(action=action, action_status=status, action_result=result)
    )


def close_conversation(conn: Connection, conversation_id: int, outcome: str, now: datetime) -> None:
    conn.execute(
        update(conversations)
        .where(conversations.c.id == conversation_id)
        .values(status="closed", outcome=outcome, closed_at=now, nudge_at=None, awaiting=None)
    )


def close_live_conversations(
    conn: Connection, closing: Mapping[tuple[int, str], datetime], outcome: str
) -> None:
    """Close each number's open conversation, if it has one: its pending question is void.

    ``closing`` maps (site id, phone) to when. One statement for them all
    (a batch of inbound texts may hold many STOPs). An escalated
    conversation stays with the person who has it.
    """
    if closing:
        params = [
            {"site": site_id, "number": phone, "why": outcome, "at": at}
            for (site_id, phone), at in closing.items()
        ]
        conn.execute(_CLOSE_LIVE, params)


_CLOSE_LIVE = (
    update(conversations)
    .where(
        conversations.c.site_id == bindparam("site"),
        conversations.c.phone == bindparam("number"),
        conversations.c.status == "open",
    )
    .values(
        status="closed",
        outcome=bindparam("why"),
        closed_at=bindparam("at"),
        nudge_at=None,
        awaiting=None,
    )
)


def mark_escalated(conn: Connection, conversation_id: int, now: datetime) -> None:
    conn.execute(
        update(conversations)
        .where(conversations.c.id == conversation_id)
        .values(
            status="escalated",
            outcome="escalated",
            nudge_at=None,
            awaiting=None,
            last_message_at=now,
        )
    )


def add_turn(
    conn: Connection,
    conversation: Conversation,
    direction: str,
    author: str,
    body: str,
    now: datetime,
    **details: Any,
) -> int:
    """Store one turn; ``details`` are the turn table's optional columns."""
    conn.execute(
        update(conversations)
        .where(conversations.c.id == conversation.id)
        .values(last_message_at=now)
    )
    return insert_one(
        conn,
        conversation_turns,
        site_id=conversation.site_id,
        conversation_id=conversation.id,
        direction=direction,
        author=author,
        body=body,
        created_at=now,
        **details,
    )


def queue_text(
    conn: Connection,
    conversation: Conversation,
    body: str,
    now: datetime,
    *,
    author: str = "concierge",
    kind: str = "reply",
    template: str | None = None,
    dedupe_key: str | None = None,
    opt_out_line: bool | None = None,
) -> int:
    """Write one text to the outbox and record it as a turn; returns the outbox id.

    ``kind="reply"`` answers the customer (see the SMS gate); messages the
    concierge starts are ``transactional``. The opt-out line goes on the
    first text of a conversation and on every message we start.
    """
    settings = load_sms_settings(conn, [conversation.site_id])[conversation.site_id]
    with_line = (conversation.fresh or kind != "reply") if opt_out_line is None else opt_out_line
    finished = finish_sms(body, settings, opt_out_line=with_line)
    outbox_id = insert_one(
        conn,
        outbox,
        site_id=conversation.site_id,
        channel="sms",
        dedupe_key=dedupe_key or f"concierge:{conversation.id}:{secrets.token_hex(8)}",
        customer_id=conversation.customer_id,
        template=template,
        payload={"event": "concierge.text", "conversation_id": conversation.id},
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        kind=kind,
        recipient=conversation.phone,
        body_text=finished.body,
        segments=finished.segments,
        encoding=finished.encoding,
    )
    add_turn(conn, conversation, "outbound", author, finished.body, now, outbox_id=outbox_id)
    return outbox_id


def _conversation(conn: Connection, row: Any) -> Conversation:
    sent = conn.execute(
        select(conversation_turns.c.id)
        .where(conversation_turns.c.conversation_id == row.id)
        .where(conversation_turns.c.direction == "outbound")
        .limit(1)
    ).first()
    return Conversation(
        row.id,
        row.site_id,
        row.customer_id,
        row.phone,
        row.status,
        dict(row.state or {}),
        row.started_at,
        sent is None,
    )
