"""The customer's side of the sandbox phone: replying as if by text.

A reply goes through exactly the path a Twilio webhook takes
(:func:`~dunwell.services.inbound_sms.receive_sms`), and the answer (to
STOP, HELP...) lands in the sandbox phone like a real text would.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from dunwell.bootstrap import App
from dunwell.channels.sandbox import SANDBOX_FROM_NUMBER
from dunwell.domain.states import SiteMode
from dunwell.messaging.phones import PhoneError, normalize_phone
from dunwell.messaging.redact import redact_card_numbers
from dunwell.services.concierge import answer_pending_texts
from dunwell.services.errors import Conflict, InvalidInput
from dunwell.services.inbound_sms import InboundResult, InboundSms, receive_sms
from dunwell.services.sites import site_now
from dunwell.services.sms_settings import load_sms_settings
from dunwell.store.tables import conversation_turns, sandbox_messages, sites


def reply_as_customer(
    conn: Connection, site_id: int, from_phone: str, body: str, now: datetime
) -> InboundResult:
    mode = conn.execute(select(sites.c.mode).where(sites.c.id == site_id)).scalar_one()
    if mode != SiteMode.SANDBOX.value:
        raise Conflict("the sandbox phone exists only on sandbox sites")
    if not body.strip():
        raise InvalidInput("body", "a text cannot be empty")
    from_phone = _sender(conn, site_id, from_phone)
    sid = "SBIN" + secrets.token_hex(15)
    result = receive_sms(
        conn, InboundSms(site_id, "sandbox", sid, from_phone, SANDBOX_FROM_NUMBER, body), now
    )
    rows = [_row(site_id, "inbound", result.phone, SANDBOX_FROM_NUMBER, body, sid, now)]
    if result.reply:
        rows.append(
            _row(
                site_id, "outbound", SANDBOX_FROM_NUMBER, result.phone, result.reply, sid + "R", now
            )
        )
    conn.execute(insert(sandbox_messages), rows)
    return result


def _sender(conn: Connection, site_id: int, raw: str) -> str:
    """The number texting, in E.164, read like a customer's phone field.

    A real text always comes from a number; one that is not (``garbage``)
    would open a conversation nothing could ever answer.
    """
    if not raw.strip():
        raise InvalidInput("from", "give the customer's phone number")
    region = load_sms_settings(conn, [site_id])[site_id].default_region
    try:
        return normalize_phone(raw, region)
    except PhoneError as error:
        raise InvalidInput("from", str(error)) from None


@dataclass(frozen=True)
class Texted:
    result: InboundResult
    #: What the concierge queued in answer (delivered into the phone by the worker).
    answers: list[str]


def text_as_customer(app: App, site_id: int, from_phone: str, body: str, owner: str) -> Texted:
    """Text the site as the customer, and have the concierge answer at once.

    The text is committed in its own transaction first, because the
    concierge answers in transactions of its own that must see it.
    """
    with app.begin() as conn:
        now = site_now(conn, site_id, app.clock)
        result = reply_as_customer(conn, site_id, from_phone, body, now)
    if result.waiting_id is None:
        return Texted(result, [])
    answer_pending_texts(app, owner, 1, [result.waiting_id])
    with app.connect() as conn:
        return Texted(result, concierge_answers(conn, site_id, result.waiting_id))


def concierge_answers(conn: Connection, site_id: int, inbound_id: int) -> list[str]:
    """The texts the concierge queued in answer to one inbound text (delivered by the worker)."""
    t = conversation_turns
    asked = conn.execute(
        select(t.c.id, t.c.conversation_id).where(
            t.c.site_id == site_id, t.c.inbound_message_id == inbound_id
        )
    ).first()
    if asked is None:
        return []
    rows = conn.execute(
        select(t.c.body)
        .where(t.c.conversation_id == asked.conversation_id, t.c.id > asked.id)
        .where(t.c.direction == "outbound")
        .order_by(t.c.id)
    )
    return [row.body for row in rows]


def _row(
    site_id: int,
    direction: str,
    from_addr: str,
    to_addr: str,
    body: str,
    sid: str,
    now: datetime,
) -> dict[str, object]:
    return {
        "site_id": site_id,
        "channel": "sms",
        "direction": direction,
        "outbox_id": None,
        "to_addr": to_addr,
        "from_addr": from_addr,
        "subject": None,
        "body_text": redact_card_numbers(body),
        "body_html": None,
        "message_id": sid,
        "created_at": now,
    }
