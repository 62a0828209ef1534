"""A text from a customer: stored once, carrier keywords first, then the rest.

Twilio's webhook and the sandbox phone both land here. The order matters
and is fixed: a retried delivery (same MessageSid) changes nothing; card
numbers are redacted before the body is stored; STOP / START / HELP (and
Twilio's Advanced Opt-Out ``OptOutType``) are handled before anything
conversational, and an opt-out is recorded per site and number in the same
transaction, so no text can follow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, update

from dunwell.messaging.keywords import Keyword, match_keyword, twilio_opt_out_type
from dunwell.messaging.phones import PhoneError, normalize_phone
from dunwell.messaging.redact import redact_card_numbers
from dunwell.services.conversations import peek_state
from dunwell.services.events import EventBatch
from dunwell.services.sms_settings import load_sms_settings
from dunwell.store.sql import insert_ignore, insert_one
from dunwell.store.tables import customers, inbound_messages, sites, sms_opt_outs


@dataclass(frozen=True)
class InboundSms:
    site_id: int
    provider: str  # twilio | sandbox
    sid: str
    from_phone: str
    to_phone: str | None
    body: str
    #: Twilio Advanced Opt-Out's ``OptOutType`` (STOP, START, HELP) when set.
    opt_out_type: str | None = None


@dataclass(frozen=True)
class InboundResult:
    duplicate: bool
    keyword: Keyword | None
    #: What to answer, or None for no answer.
    reply: str | None
    customer_id: int | None
    phone: str
    #: The stored text, when it waits for the concierge (not a keyword, not a repeat).
    waiting_id: int | None = None


def receive_sms(conn: Connection, sms: InboundSms, now: datetime) -> InboundResult:
    settings = load_sms_settings(conn, [sms.site_id])[sms.site_id]
    phone = _normalized(sms.from_phone, settings.default_region)
    customer_id = conn.execute(
        select(customers.c.id)
        .where(customers.c.site_id == sms.site_id, customers.c.phone == phone)
        .order_by(customers.c.id)
        .limit(1)
    ).scalar()
    # While the concierge waits for a yes, a bare YES answers it (not START).
    awaiting = peek_state(conn, sms.site_id, phone, now).get("awaiting") == "confirmation"
    keyword = match_keyword(sms.body, awaiting_confirmation=awaiting)
    advanced = twilio_opt_out_type(sms.opt_out_type)
    if advanced is not None and not (advanced is Keyword.OPT_IN and awaiting and keyword is None):
        keyword = advanced
    else:
        advanced = None
    if _already_stored(conn, sms.sid):
        return InboundResult(True, keyword, None, customer_id, phone)
    insert_ignore(
        conn,
        inbound_messages,
        [
            {
                "site_id": sms.site_id,
                "provider": sms.provider,
                "provider_sid": sms.sid,
                "from_phone": phone,
                "to_phone": sms.to_phone,
                "customer_id": customer_id,
                "body": redact_card_numbers(sms.body),
                "keyword": keyword.value if keyword else None,
                "received_at": now,
                # A keyword is answered here; anything else waits for the concierge.
                "answered_at": now if keyword else None,
            }
        ],
        ["provider_sid"],
    )
    events = EventBatch()
    reply = None
    if keyword is Keyword.OPT_OUT:
        _set_opt_out(conn, sms.site_id, phone, True, "twilio" if advanced else "keyword", now)
        events.add(sms.site_id, "sms.opted_out", now, customer_id=customer_id, phone=phone)
        reply = settings.stop_reply
    elif keyword is Keyword.OPT_IN:
        _set_opt_out(conn, sms.site_id, phone, False, "twilio" if advanced else "keyword", now)
        events.add(sms.site_id, "sms.opted_in", now, customer_id=customer_id, phone=phone)
        reply = settings.start_reply
    elif keyword is Keyword.HELP:
        reply = settings.help_reply
    else:
        events.add(sms.site_id, "sms.received", now, customer_id=customer_id, phone=phone)
    events.write(conn)
    if reply is not None and advanced is not None:
        reply = None  # with Advanced Opt-Out, Twilio sends its own configured answer
    if reply is not None:
        name, support = conn.execute(
            select(sites.c.name, sites.c.support_email).where(sites.c.id == sms.site_id)
        ).one()
        reply = settings.reply(reply, name, settings.help_contact or support or name)
    waiting_id = None
    if keyword is None:
        waiting_id = conn.execute(
            select(inbound_messages.c.id).where(inbound_messages.c.provider_sid == sms.sid)
        ).scalar()
    return InboundResult(False, keyword, reply, customer_id, phone, waiting_id)


def record_opt_out(
    conn: Connection,
    site_id: int,
    phone: str,
    customer_id: int | None,
    source: str,
    now: datetime,
) -> None:
    """Opt a number out of the site's texts (a request in words, not the keyword)."""
    _set_opt_out(conn, site_id, phone, True, source, now)
    events = EventBatch()
    events.add(site_id, "sms.opted_out", now, customer_id=customer_id, phone=phone)
    events.write(conn)


def is_opted_out(conn: Connection, site_id: int, phone: str) -> bool:
    t = sms_opt_outs
    return bool(
        conn.execute(
            select(t.c.opted_out).where(t.c.site_id == site_id, t.c.phone == phone)
        ).scalar()
    )


def _already_stored(conn: Connection, sid: str) -> bool:
    found = conn.execute(
        select(inbound_messages.c.id).where(inbound_messages.c.provider_sid == sid)
    ).first()
    return found is not None


def _normalized(raw: str, region: str) -> str:
    try:
        return normalize_phone(raw, region)
    except PhoneError:
        return raw.strip()  # kept as given: an opt-out must be honoured whatever the number


def _set_opt_out(
    conn: Connection, site_id: int, phone: str, opted_out: bool, source: str, now: datetime
) -> None:
    t = sms_opt_outs
    changed = conn.execute(
        update(t)
        .where(t.c.site_id == site_id, t.c.phone == phone)
        .values(opted_out=opted_out, source=source, updated_at=now)
    ).rowcount
    if not changed:
        insert_one(
            conn,
            t,
            site_id=site_id,
            phone=phone,
            opted_out=opted_out,
            source=source,
            updated_at=now,
        )
