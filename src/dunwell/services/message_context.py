"""Loading what a message template may show, for many messages at once.

:func:`load_contexts` reads the customers, sites, invoices, cards and
subscriptions behind a batch of messages in a handful of queries and turns
each into the Liquid context documented in ``docs/templates.md``. Dates are
given in the customer's own time zone (else the site's), so "due on 3 May"
means the customer's 3 May.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, select

from dunwell.domain.states import is_mirrored
from dunwell.store.tables import (
    customers,
    invoices,
    payment_methods,
    products,
    sites,
    subscription_items,
    subscriptions,
)


@dataclass(frozen=True)
class Recipient:
    """Who a message goes to and in which language and zone."""

    site_id: int
    site_slug: str
    site_mode: str
    customer_id: int | None
    email: str | None
    phone: str | None
    locale: str
    site_locale: str
    time_zone: str
    customer_time_zone: str | None


@dataclass(frozen=True)
class MessageSubject:
    """What one message is about: the key into the loaded data."""

    site_id: int
    customer_id: int | None
    invoice_id: int | None


class ContextLoader:
    """The rows behind a batch of messages, loaded once."""

    def __init__(self, conn: Connection, subjects: Iterable[MessageSubject]) -> None:
        subjects = list(subjects)
        self.sites = _by_id(conn, _SITE_COLUMNS, {s.site_id for s in subjects})
        self.customers = _by_id(
            conn, _CUSTOMER_COLUMNS, {s.customer_id for s in subjects if s.customer_id}
        )
        self.invoices = _by_id(
            conn, _INVOICE_COLUMNS, {s.invoice_id for s in subjects if s.invoice_id}
        )
        self.cards = _default_cards(conn, set(self.customers))
        sub_ids = {r.subscription_id for r in self.invoices.values() if r.subscription_id}
        self.subscriptions = _by_id(conn, _SUBSCRIPTION_COLUMNS, sub_ids)
        self.product_names = _product_names(conn, sub_ids)
        # A step's email and text go to the same person: one Recipient for both.
        self._recipients: dict[MessageSubject, Recipient] = {}

    def recipient(self, subject: MessageSubject) -> Recipient:
        found = self._recipients.get(subject)
        if found is None:
            found = self._recipients[subject] = self._recipient(subject)
        return found

    def _recipient(self, subject: MessageSubject) -> Recipient:
        site = self.sites[subject.site_id]
        customer = self.customers.get(subject.customer_id) if subject.customer_id else None
        zone = (customer.time_zone if customer else None) or site.time_zone
        return Recipient(
            site_id=site.id,
            site_slug=site.slug,
            site_mode=site.mode,
            customer_id=subject.customer_id,
            email=customer.email if customer else None,
            phone=customer.phone if customer else None,
            locale=(customer.locale if customer else None) or site.locale,
            site_locale=site.locale,
            time_zone=zone,
            customer_time_zone=customer.time_zone if customer else None,
        )

    def context(
        self, subject: MessageSubject, payload: dict[str, Any], billing_link: str
    ) -> dict[str, Any]:
        """The Liquid context for one message (see docs/templates.md)."""
        site = self.sites[subject.site_id]
        customer = self.customers.get(subject.customer_id) if subject.customer_id else None
        invoice = self.invoices.get(subject.invoice_id) if subject.invoice_id else None
        zone = _zone((customer.time_zone if customer else None) or site.time_zone)
        sub = self.subscriptions.get(invoice.subscription_id) if invoice else None
        card = self.cards.get(subject.customer_id) if subject.customer_id else None
        return {
            "customer": _customer(customer),
            "company": {"name": site.name, "support_email": site.support_email or ""},
            "invoice": _invoice(invoice, zone),
            "subscription": {
                "product": (self.product_names.get(sub.id) if sub else None) or "",
                # Stripe bills a mirrored subscription: its date here is a placeholder.
                "next_charge_date": (
                    _local_date(sub.next_charge_at, zone) if sub and not is_mirrored(sub) else None
                ),
            },
            "card": _card(card),
            "dunning": _dunning(payload, zone),
            "billing_link": billing_link,
        }


# Only what recipients and contexts read: a batch loads hundreds of each.
_SITE_COLUMNS = [
    sites.c[name] for name in ("id", "slug", "mode", "name", "support_email", "locale", "time_zone")
]
_CUSTOMER_COLUMNS = [
    customers.c[name]
    for name in ("id", "first_name", "last_name", "email", "phone", "locale", "time_zone")
]
_INVOICE_COLUMNS = [
    invoices.c[name]
    for name in (
        "id",
        "number",
        "amount_due_minor",
        "amount_paid_minor",
        "currency",
        "due_at",
        "subscription_id",
    )
]
_SUBSCRIPTION_COLUMNS = [
    subscriptions.c.id,
    subscriptions.c.next_charge_at,
    subscriptions.c.external_id,
]


def _by_id(conn: Connection, columns: list[Any], ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    id_column = columns[0]
    return {row.id: row for row in conn.execute(select(*columns).where(id_column.in_(ids)))}


def _default_cards(conn: Connection, customer_ids: set[int]) -> dict[int, Any]:
    if not customer_ids:
        return {}
    pm = payment_methods
    rows = conn.execute(
        select(pm.c.customer_id, pm.c.brand, pm.c.last4, pm.c.exp_month, pm.c.exp_year)
        .where(pm.c.customer_id.in_(customer_ids))
        .where(pm.c.is_default.is_(True))
        .where(pm.c.detached_at.is_(None))
    )
    return {row.customer_id: row for row in rows}


def _product_names(conn: Connection, subscription_ids: set[int]) -> dict[int, str]:
    """The first item's product name per subscription (what customers call it)."""
    if not subscription_ids:
        return {}
    items = subscription_items
    rows = conn.execute(
        select(items.c.subscription_id, products.c.name)
        .join(products, products.c.id == items.c.product_id)
        .where(items.c.subscription_id.in_(subscription_ids))
        .order_by(items.c.subscription_id, items.c.id)
    )
    names: dict[int, str] = {}
    for row in rows:
        names.setdefault(row.subscription_id, row.name)
    return names


def _customer(row: Any) -> dict[str, Any]:
    # Fields that "may be empty" are "" then, never nil: Liquid's
    # ``nil != blank`` is true, so a template's ``!= blank`` test would
    # let a nil through and print "for  with".
    if row is None:
        return {"first_name": "", "last_name": "", "name": "", "email": "", "phone": ""}
    name = " ".join(part for part in (row.first_name, row.last_name) if part)
    return {
        "first_name": row.first_name or "",
        "last_name": row.last_name or "",
        "name": name,
        "email": row.email or "",
        "phone": row.phone or "",
    }


def _invoice(row: Any, zone: ZoneInfo) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "number": row.number,
        "total": {"amount_minor": row.amount_due_minor, "currency": row.currency},
        "amount_due": {
            "amount_minor": row.amount_due_minor - row.amount_paid_minor,
            "currency": row.currency,
        },
        "due_date": _local_date(row.due_at, zone),
    }


def _card(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "brand": card_brand_name(row.brand),
        "last4": row.last4,
        "exp_month": row.exp_month,
        "exp_year": row.exp_year,
        "expiry": f"{row.exp_month:02d}/{row.exp_year % 100:02d}",
    }


#: How a brand is written to people; gateways store codes (Stripe's, the sandbox's).
_BRAND_NAMES = {
    "amex": "American Express",
    "american_express": "American Express",
    "cartes_bancaires": "Cartes Bancaires",
    "diners": "Diners Club",
    "discover": "Discover",
    "eftpos_au": "eftpos",
    "interac": "Interac",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}


def card_brand_name(code: str) -> str:
    """``visa`` -> ``Visa``; a code not listed is shown as stored."""
    return _BRAND_NAMES.get(code.strip().lower(), code)


def _dunning(payload: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    return {
        "day": payload.get("day"),
        "attempts_made": payload.get("attempts", 0),
        "attempts_left": payload.get("attempts_left", 0),
        "next_retry_date": _parse_local(payload.get("next_retry_at"), zone),
        "final_action": payload.get("final_action") or payload.get("subscription_action"),
        "final_date": _parse_local(payload.get("final_at"), zone),
    }


def _parse_local(value: str | None, zone: ZoneInfo) -> date | None:
    return None if not value else _local_date(datetime.fromisoformat(value), zone)


def _local_date(at: datetime | None, zone: ZoneInfo) -> date | None:
    return None if at is None else at.astimezone(zone).date()


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")
