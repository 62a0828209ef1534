"""Everything the concierge needs to know about the customer who texted, in a few queries.

The dialogue is pure, so this module gathers its
:class:`~dunwell.concierge.model.Context` up front: the customer's local
date, the upcoming order (their soonest active subscription that Dunwell
bills, never one mirrored from Stripe), the oldest unpaid invoice, the
products they may add or swap to, the site's switches, and freshly signed
links. The same facts give the understanding its request (catalog, items,
next charge date).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, or_, select

from dunwell.concierge.model import Context, Debt, Item, Order
from dunwell.domain.compliance import local_zone
from dunwell.domain.intervals import IntervalUnit, period_start
from dunwell.domain.states import InvoiceStatus, SubscriptionStatus
from dunwell.messaging.filters import format_minor
from dunwell.messaging.phones import phone_time_zone
from dunwell.security.links import LinkSigner
from dunwell.services.concierge_settings import ACTIONS, ConciergeSettings
from dunwell.services.hosted_links import portal_url
from dunwell.services.portal_rules import load_portal_rules
from dunwell.store.tables import (
    customers,
    invoices,
    products,
    sites,
    subscription_items,
    subscriptions,
)

#: The most products offered to the understanding as the catalog.
CATALOG_LIMIT = 200
OPEN_SUBSCRIPTIONS = (SubscriptionStatus.ACTIVE.value, SubscriptionStatus.PAST_DUE.value)


@dataclass(frozen=True)
class Gathered:
    context: Context
    #: Every product name the site sells in the order's currency.
    catalog: tuple[str, ...]
    #: The locale the customer reads (their own, else the site's).
    locale: str
    #: The customer's time zone (their own, their number's, else the site's).
    zone: ZoneInfo
    #: How long an unanswered yes/no question waits for its nudge; None: no nudge.
    nudge_after: timedelta | None


def gather_context(
    conn: Connection,
    site_id: int,
    customer_id: int | None,
    phone: str,
    settings: ConciergeSettings,
    links: LinkSigner,
    public_url: str,
    now: datetime,
) -> Gathered:
    site = conn.execute(
        select(sites.c.name, sites.c.time_zone, sites.c.locale).where(sites.c.id == site_id)
    ).one()
    person = None
    if customer_id is not None:
        person = conn.execute(
            select(customers).where(customers.c.site_id == site_id, customers.c.id == customer_id)
        ).first()
    zone = local_zone(person.time_zone if person else None, phone_time_zone(phone), site.time_zone)
    locale = (person.locale if person else None) or site.locale or "en"
    sub = _soonest_subscription(conn, site_id, customer_id) if person else None
    currency = sub.currency if sub else None
    catalog = _catalog(conn, site_id, currency)
    rules = load_portal_rules(conn, site_id)
    allowed = _allowed_products(conn, site_id, rules.swap_products, catalog)
    today = now.astimezone(zone).date()
    order = _order(conn, sub, zone, locale) if sub else None
    debt = _debt(conn, site_id, customer_id, locale) if person else None
    context = Context(
        today=today,
        company=site.name,
        first_name=person.first_name if person else None,
        known_customer=person is not None,
        order=order,
        debt=debt,
        allowed_products=allowed,
        allowed_actions=frozenset(a for a in ACTIONS if settings.allows(a)),
        surveys=_surveys(settings),
        customer_page_url=(
            portal_url(links, public_url, site_id, customer_id) if person and customer_id else None
        ),
        billing_url=(
            links.billing_url(site_id, customer_id, debt.invoice_id if debt else None)
            if person and customer_id
            else None
        ),
        max_quantity=rules.max_quantity,
    )
    nudge_after = timedelta(minutes=settings.nudge_after_minutes) if settings.send_nudge else None
    return Gathered(context, catalog, locale, zone, nudge_after)


def _soonest_subscription(conn: Connection, site_id: int, customer_id: int | None) -> Any:
    """The soonest subscription Dunwell bills; one mirrored from Stripe is never the order.

    Stripe bills a mirrored subscription, so a change to it here would never
    reach Stripe, and its next charge date is only a placeholder.
    """
    s = subscriptions
    return conn.execute(
        select(s)
        .where(s.c.site_id == site_id, s.c.customer_id == customer_id)
        .where(s.c.status.in_(OPEN_SUBSCRIPTIONS), s.c.external_id.is_(None))
        .order_by(s.c.next_charge_at, s.c.id)
        .limit(1)
    ).first()


def _order(conn: Connection, sub: Any, zone: Any, locale: str) -> Order:
    i, p = subscription_items, products
    rows = conn.execute(
        select(i.c.id, i.c.quantity, i.c.unit_price_minor, p.c.name)
        .join(p, p.c.id == i.c.product_id)
        .where(i.c.subscription_id == sub.id)
        .where(or_(i.c.one_time_period.is_(None), i.c.one_time_period == sub.periods_billed))
        .order_by(i.c.id)
    ).all()
    unit = IntervalUnit(sub.interval_unit)
    following = period_start(sub.anchor_at, unit, sub.interval_count, sub.periods_billed + 1)
    total = sum(row.quantity * row.unit_price_minor for row in rows)
    return Order(
        subscription_id=sub.id,
        next_date=sub.next_charge_at.astimezone(zone).date(),
        following_date=following.astimezone(zone).date(),
        items=tuple(Item(row.id, row.name, row.quantity) for row in rows),
        total=format_minor(total, sub.currency, locale),
    )


def _debt(conn: Connection, site_id: int, customer_id: int | None, locale: str) -> Debt | None:
    row = conn.execute(
        select(invoices.c.id, invoices.c.number, invoices.c.currency)
        .add_columns((invoices.c.amount_due_minor - invoices.c.amount_paid_minor).label("owed"))
        .where(invoices.c.site_id == site_id, invoices.c.customer_id == customer_id)
        .where(invoices.c.status == InvoiceStatus.PAST_DUE.value)
        .order_by(invoices.c.due_at, invoices.c.id)
        .limit(1)
    ).first()
    if row is None:
        return None
    return Debt(row.id, row.number, format_minor(row.owed, row.currency, locale))


def _catalog(conn: Connection, site_id: int, currency: str | None) -> tuple[str, ...]:
    query = select(products.c.name).where(products.c.site_id == site_id)
    if currency is not None:
        query = query.where(products.c.currency == currency)
    names = conn.execute(query.order_by(products.c.name).limit(CATALOG_LIMIT)).scalars()
    return tuple(dict.fromkeys(names))


def _allowed_products(
    conn: Connection, site_id: int, codes: tuple[str, ...], catalog: tuple[str, ...]
) -> tuple[str, ...]:
    """The portal's allowed collection when it names one, else the whole catalog."""
    if not codes:
        return catalog
    names = conn.execute(
        select(products.c.name).where(products.c.site_id == site_id, products.c.code.in_(codes))
    ).scalars()
    return tuple(name for name in names if name in catalog)


def _surveys(settings: ConciergeSettings) -> frozenset[str]:
    chosen = {
        "sentiment": settings.send_sentiment_survey,
        "adjustment": settings.send_adjustment_survey,
    }
    return frozenset(name for name, on in chosen.items() if on)
