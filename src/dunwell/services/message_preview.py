"""Previewing a template and sending a test, before a customer ever sees it.

A preview renders with the documented sample data or with a real customer
and their latest invoice. A test send writes a real outbox row (kind
``test``) that goes through the same delivery path, and for SMS the same
compliance gate, as every other message.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from dunwell.messaging.fields import sample_context
from dunwell.messaging.phones import PhoneError, normalize_phone
from dunwell.messaging.templates import TemplateError
from dunwell.security.links import LinkSigner
from dunwell.services.channel_config import EMAIL
from dunwell.services.errors import InvalidInput, NotFound
from dunwell.services.message_context import ContextLoader, MessageSubject, Recipient
from dunwell.services.sms_settings import load_sms_settings
from dunwell.services.sms_text import SmsFinisher
from dunwell.services.template_book import TemplateBook, UnknownTemplate
from dunwell.store.sql import insert_one
from dunwell.store.tables import customers, invoices, outbox, sites

#: The longest recipient an outbox row holds (an address, 320 characters).
MAX_ADDRESS = 320


def preview(
    conn: Connection,
    links: LinkSigner,
    site_id: int,
    name: str,
    channel: str,
    *,
    locale: str | None = None,
    customer_id: int | None = None,
    now: datetime,
) -> dict[str, Any]:
    """The rendered message; SMS with its final text, segments and encoding."""
    site_locale = conn.execute(select(sites.c.locale).where(sites.c.id == site_id)).scalar_one()
    if customer_id is None:
        context, wanted = sample_context(), locale or site_locale
    else:
        context, recipient = customer_context(conn, links, site_id, customer_id)
        wanted = locale or recipient.locale
    book = TemplateBook(conn, [site_id], [name])
    try:
        if channel == "email":
            email, used = book.email(site_id, name, wanted, site_locale)
            out = email.render(context, used)
            return {
                "channel": "email",
                "locale": used,
                "subject": out.subject,
                "body_text": out.text,
                "body_html": out.html,
            }
        sms, used = book.sms(site_id, name, wanted, site_locale)
        finished = SmsFinisher(conn, [site_id]).finish(site_id, sms.render(context, used).body)
    except UnknownTemplate as error:
        raise NotFound(str(error)) from None
    except TemplateError as error:
        raise InvalidInput("template", str(error)) from None
    return {
        "channel": "sms",
        "locale": used,
        "body_text": finished.body,
        "segments": finished.segments,
        "encoding": finished.encoding,
    }


#: A preview's billing link has expired when it is made: it has the length of
#: a real one (the SMS segment count is right) but opens nothing. A preview
#: is read by whoever may edit templates, and a test message goes to any
#: address typed in; a live link would let either act as the customer.
PREVIEW_LINK_LIFETIME = timedelta(0)


def customer_context(
    conn: Connection, links: LinkSigner, site_id: int, customer_id: int
) -> tuple[dict[str, Any], Recipient]:
    """A real customer's render context (with their latest invoice) and who they are."""
    subject = _customer_subject(conn, site_id, customer_id)
    loader = ContextLoader(conn, [subject])
    link = links.billing_url(site_id, customer_id, subject.invoice_id, PREVIEW_LINK_LIFETIME)
    return loader.context(subject, {}, link), loader.recipient(subject)


def send_test(
    conn: Connection,
    links: LinkSigner,
    site_id: int,
    name: str,
    channel: str,
    *,
    to: str,
    customer_id: int | None,
    locale: str | None,
    now: datetime,
) -> int:
    """Queue a test message to ``to``; returns its outbox id."""
    if channel not in ("email", "sms"):
        raise InvalidInput("channel", "must be email or sms")
    recipient = _recipient(conn, site_id, channel, to)
    shown = preview(
        conn, links, site_id, name, channel, locale=locale, customer_id=customer_id, now=now
    )
    return insert_one(
        conn,
        outbox,
        site_id=site_id,
        channel=channel,
        dedupe_key=f"test:{site_id}:{secrets.token_hex(8)}",
        customer_id=customer_id,
        template=name,
        payload={"event": "template.test"},
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        kind="test",
        recipient=recipient,
        locale=shown["locale"],
        subject=shown.get("subject"),
        body_text=shown["body_text"],
        body_html=shown.get("body_html"),
        segments=shown.get("segments"),
        encoding=shown.get("encoding"),
    )


def _recipient(conn: Connection, site_id: int, channel: str, to: str) -> str:
    to = to.strip()
    if channel == "email":
        # The column's width and SMTP's limit; control characters (NUL,
        # line breaks) belong in no address, and PostgreSQL refuses NUL.
        if len(to) > MAX_ADDRESS:
            raise InvalidInput("to", f"an email address has at most {MAX_ADDRESS} characters")
        if not EMAIL.match(to) or not to.isprintable():
            raise InvalidInput("to", f"{to!r} is not an email address")
        return to
    region = load_sms_settings(conn, [site_id])[site_id].default_region
    try:
        return normalize_phone(to, region)
    except PhoneError as error:
        raise InvalidInput("to", str(error)) from None


def _customer_subject(conn: Connection, site_id: int, customer_id: int) -> MessageSubject:
    found = conn.execute(
        select(customers.c.id).where(customers.c.site_id == site_id, customers.c.id == customer_id)
    ).first()
    if found is None:
        raise NotFound(f"no customer {customer_id} in this site")
    latest = conn.execute(
        select(invoices.c.id)
        .where(invoices.c.site_id == site_id, invoices.c.customer_id == customer_id)
        .order_by(invoices.c.id.desc())
        .limit(1)
    ).scalar()
    return MessageSubject(site_id, customer_id, latest)
