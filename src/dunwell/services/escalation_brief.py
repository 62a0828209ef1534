"""The hand-over: what a person needs to take a conversation from the concierge.

One :class:`Handover` per escalation, written the same way for a help-desk
ticket and for the fallback email: why the concierge stopped, who the
customer is, their subscriptions and unpaid invoices, and the whole
conversation. Amounts are in the site's locale, times in its time zone.

It holds nothing a person answering the customer would not see anyway:
card numbers are redacted before turns are stored, and no payment method,
token or link is added here.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from dunwell.clock import ensure_utc
from dunwell.domain.states import is_mirrored
from dunwell.messaging.filters import format_minor
from dunwell.services.conversations import ESCALATION_IDLE
from dunwell.store.tables import (
    conversation_turns,
    customers,
    invoices,
    products,
    subscription_items,
    subscriptions,
)

REASONS = {
    "not_understood": "the concierge did not understand the customer twice",
    "asked_for_person": "the customer asked for a person",
    "action_failed": "something the customer asked for could not be done",
}
AUTHORS = {"customer": "Customer", "concierge": "Concierge", "merchant": "Staff"}
UNPAID = ("open", "past_due", "failed")


@dataclass(frozen=True)
class Site:
    name: str
    locale: str
    time_zone: str


@dataclass(frozen=True)
class Section:
    title: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Handover:
    subject: str
    body_text: str
    body_html: str
    #: The customer's email, which a help-desk ticket needs; None if unknown.
    customer_email: str | None
    customer_name: str | None


@dataclass(frozen=True)
class _Formats:
    site: Site

    def money(self, minor: int, currency: str) -> str:
        return format_minor(minor, currency, self.site.locale)

    def time(self, at: datetime) -> str:
        return ensure_utc(at).astimezone(ZoneInfo(self.site.time_zone)).strftime("%Y-%m-%d %H:%M")

    def day(self, at: datetime) -> str:
        return ensure_utc(at).astimezone(ZoneInfo(self.site.time_zone)).strftime("%Y-%m-%d")


def build_handover(
    conn: Connection,
    site: Site,
    escalation: Any,
    phone: str,
) -> Handover:
    """The hand-over for an escalation row (``site_id``, ``conversation_id``,
    ``customer_id``, ``reason``); ``phone`` is the number that texted."""
    formats = _Formats(site)
    customer = _customer(conn, escalation.site_id, escalation.customer_id)
    name = _full_name(customer)
    who = name or phone
    reason = REASONS.get(escalation.reason, escalation.reason)
    intro = (
        f"{who} texted {site.name} and needs a person: {reason}.",
        "The concierge stays quiet in this conversation from now on. Answer the customer "
        f"yourself; it takes over again after {ESCALATION_IDLE.days} days without messages.",
    )
    sections = [
        _customer_section(customer, name, phone),
        *_account_sections(conn, escalation.site_id, customer, formats),
        _transcript(conn, escalation.conversation_id, formats),
    ]
    return Handover(
        subject=f"SMS from {who} needs a person",
        body_text=_text(intro, sections),
        body_html=_html(intro, sections),
        customer_email=customer.email if customer is not None and customer.email else None,
        customer_name=name,
    )


def _customer(conn: Connection, site_id: int, customer_id: int | None) -> Any:
    if customer_id is None:
        return None
    c = customers
    return conn.execute(select(c).where(c.c.site_id == site_id, c.c.id == customer_id)).first()


def _full_name(customer: Any) -> str | None:
    if customer is None:
        return None
    return " ".join(p for p in (customer.first_name, customer.last_name) if p) or None


def _customer_section(customer: Any, name: str | None, phone: str) -> Section:
    if customer is None:
        return Section("Customer", (f"Phone: {phone}", "Not matched to a customer record."))
    return Section(
        "Customer",
        (
            f"Name: {name or '(none)'}",
            f"Email: {customer.email or '(none)'}",
            f"Phone: {customer.phone or phone}",
            f"Customer id: {customer.id}"
            + (f" (external id {customer.external_id})" if customer.external_id else ""),
        ),
    )


def _account_sections(
    conn: Connection, site_id: int, customer: Any, formats: _Formats
) -> list[Section]:
    if customer is None:
        return []
    return [
        Section("Subscriptions", _subscriptions(conn, site_id, customer.id, formats)),
        Section("Unpaid invoices", _unpaid(conn, site_id, customer.id, formats)),
    ]


def _subscriptions(
    conn: Connection, site_id: int, customer_id: int, formats: _Formats
) -> tuple[str, ...]:
    s = subscriptions
    subs = list(
        conn.execute(
            select(s).where(s.c.site_id == site_id, s.c.customer_id == customer_id).order_by(s.c.id)
        )
    )
    items = _items(conn, [sub.id for sub in subs])
    lines = []
    for sub in subs:
        if is_mirrored(sub):
            when = ", billed by Stripe"  # Dunwell keeps only a placeholder date for it
        elif sub.status == "canceled":
            when = ""
        else:
            when = f", next charge {formats.day(sub.next_charge_at)}"
        bought = [
            f"{row.quantity} x {row.name} at {formats.money(row.unit_price_minor, sub.currency)}"
            + ("" if row.one_time_period is None else " (next order only)")
            for row in items
            if row.subscription_id == sub.id
            # A one-order add-on from a period already billed is history.
            and (row.one_time_period is None or row.one_time_period >= sub.periods_billed)
        ]
        lines.append(f"#{sub.id}: {sub.status}{when}; " + ("; ".join(bought) or "no items"))
    return tuple(lines) or ("None.",)


def _items(conn: Connection, subscription_ids: Sequence[int]) -> list[Any]:
    i, p = subscription_items, products
    return list(
        conn.execute(
            select(
                i.c.subscription_id,
                i.c.quantity,
                i.c.unit_price_minor,
                i.c.one_time_period,
                p.c.name,
            )
            .join(p, p.c.id == i.c.product_id)
            .where(i.c.subscription_id.in_(subscription_ids))
            .order_by(i.c.id)
        )
    )


def _unpaid(conn: Connection, site_id: int, customer_id: int, formats: _Formats) -> tuple[str, ...]:
    v = invoices
    rows = conn.execute(
        select(v)
        .where(v.c.site_id == site_id, v.c.customer_id == customer_id, v.c.status.in_(UNPAID))
        .order_by(v.c.id)
    )
    lines = tuple(
        f"{row.number}: {formats.money(row.amount_due_minor - row.amount_paid_minor, row.currency)}"
        f" {row.status.replace('_', ' ')}, due {formats.day(row.due_at)}"
        for row in rows
    )
    return lines or ("None.",)


def _transcript(conn: Connection, conversation_id: int, formats: _Formats) -> Section:
    t = conversation_turns
    rows = conn.execute(
        select(t.c.author, t.c.body, t.c.created_at)
        .where(t.c.conversation_id == conversation_id)
        .order_by(t.c.created_at, t.c.id)
    )
    lines = tuple(
        f"{formats.time(row.created_at)} {AUTHORS.get(row.author, row.author)}: {row.body}"
        for row in rows
    )
    title = f"Conversation (times in {formats.site.time_zone})"
    return Section(title, lines or ("No messages.",))


def _text(intro: Sequence[str], sections: Sequence[Section]) -> str:
    parts = ["\n".join(intro)]
    for section in sections:
        parts.append("\n".join([section.title, *(f"  {line}" for line in section.lines)]))
    return "\n\n".join(parts) + "\n"


def _html(intro: Sequence[str], sections: Sequence[Section]) -> str:
    parts = [f"<p>{html.escape(line)}</p>" for line in intro]
    for section in sections:
        items = "".join(
            f"<li>{html.escape(line).replace(chr(10), '<br>')}</li>" for line in section.lines
        )
        parts.append(f"<h3>{html.escape(section.title)}</h3><ul>{items}</ul>")
    return "\n".join(parts)
