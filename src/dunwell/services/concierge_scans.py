"""Who is due a message the concierge starts: one bounded query per kind of message.

Every scan takes, per site, the span of time to look in (see
:mod:`dunwell.services.concierge_outbound` for the window rule) and returns
at most ``limit`` candidates in id order, each with the customer's phone.
Customers without a phone number are left out, and so is anything whose
message is already in the outbox: the dedupe key is rebuilt in SQL and
looked up in the outbox's unique index. So a rerun finds nothing, and a
backlog larger than one batch drains batch by batch instead of returning
the same first rows for ever.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    and_,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
)

from dunwell.domain.states import InvoiceStatus, SubscriptionStatus
from dunwell.services.claims import site_scope
from dunwell.store.sql import utc_param
from dunwell.store.tables import (
    conversations,
    customers,
    dunning_cycles,
    invoices,
    outbox,
    products,
    sites,
    subscription_items,
    subscriptions,
)

#: Per site: the earliest and latest moment a scan looks at.
Bounds = Mapping[int, tuple[datetime, datetime]]

UNPAID = (InvoiceStatus.OPEN.value, InvoiceStatus.PAST_DUE.value)
CANCELED = SubscriptionStatus.CANCELED.value
# A dunning cycle that ended this way ended the subscription too: that
# cancellation was the payment's doing, not the customer's choice.
UNRECOVERED = ("written_off", "left_past_due")


@dataclass(frozen=True)
class Line:
    """One item of an order, as the customer knows it."""

    name: str
    quantity: int
    unit_price_minor: int
    #: Set for an add-on to one order only: the period it belongs to.
    one_time_period: int | None


def dedupe_key(kind: str, *ids: int) -> str:
    """``concierge:{kind}:{id}[:{id}]``: the outbox key of one concierge message."""
    return ":".join(["concierge", kind, *(str(i) for i in ids)])


def new_subscriptions(conn: Connection, bounds: Bounds, limit: int) -> list[Any]:
    """Subscriptions created and started within their site's span (welcome).

    A subscription that started before the span is an imported or mirrored
    one, not a new customer, however recently Dunwell learned of it.
    """
    s = subscriptions
    query = _with_phone(select(s.c.id, s.c.site_id, s.c.customer_id), s.c.customer_id).where(
        s.c.status != CANCELED,
        _per_site(
            s.c.site_id,
            bounds,
            lambda low, high: and_(s.c.created_at.between(low, high), s.c.anchor_at >= low),
        ),
        _not_queued(_key_sql("welcome", s.c.id)),
    )
    return list(conn.execute(query.order_by(s.c.id).limit(limit)))


def upcoming_orders(conn: Connection, bounds: Bounds, limit: int) -> list[Any]:
    """Active subscriptions whose next charge falls in their site's span."""
    s = subscriptions
    query = _with_phone(
        select(
            s.c.id,
            s.c.site_id,
            s.c.customer_id,
            s.c.currency,
            s.c.next_charge_at,
            s.c.periods_billed,
        ),
        s.c.customer_id,
    ).where(
        s.c.status == SubscriptionStatus.ACTIVE.value,
        _per_site(s.c.site_id, bounds, lambda low, high: s.c.next_charge_at.between(low, high)),
        _not_queued(_key_sql("upcoming", s.c.id, s.c.periods_billed)),
    )
    return list(conn.execute(query.order_by(s.c.id).limit(limit)))


def processed_orders(conn: Connection, bounds: Bounds, limit: int) -> list[Any]:
    """Subscription invoices paid within their site's span, with the next order's date."""
    i, s = invoices, subscriptions
    query = _with_phone(
        select(
            i.c.id,
            i.c.site_id,
            i.c.customer_id,
            i.c.subscription_id,
            i.c.period,
            i.c.amount_paid_minor,
            i.c.currency,
            s.c.status.label("subscription_status"),
            s.c.external_id.label("subscription_external_id"),
            s.c.next_charge_at,
        ).join(s, s.c.id == i.c.subscription_id),
        i.c.customer_id,
    ).where(
        i.c.status == InvoiceStatus.PAID.value,
        _per_site(i.c.site_id, bounds, lambda low, high: i.c.paid_at.between(low, high)),
        _not_queued(_key_sql("processed", i.c.id)),
    )
    return list(conn.execute(query.order_by(i.c.id).limit(limit)))


def dunning_emails(conn: Connection, bounds: Bounds, limit: int) -> list[Any]:
    """Dunning step emails written within their site's span for invoices still unpaid.

    An email withdrawn, or held because the customer promised a date, is
    left out, and so is one followed by a later step's email: steps reached
    together (a worker that was stopped) get one text, not a burst.

    A step that has an SMS of its own is left out: dunning keys a step's
    messages ``{invoice}:v{version}:d{day}:{channel}``, so the step's text
    is the email's key with ``:sms`` for ``:email``. Only automatic
    collection counts: a manual invoice was never charged, so there is no
    card to try again.
    """
    o, i, c = outbox, invoices, dunning_cycles
    step_sms, later = outbox.alias("step_sms"), outbox.alias("later")
    later_step = exists().where(
        later.c.invoice_id == o.c.invoice_id,
        later.c.channel == "email",
        later.c.id > o.c.id,
        later.c.payload["event"].as_string() == "dunning.step_reached",
    )
    query = _with_phone(
        select(
            o.c.id,
            o.c.site_id,
            o.c.invoice_id,
            i.c.customer_id,
            (i.c.amount_due_minor - i.c.amount_paid_minor).label("amount_minor"),
            i.c.currency,
        )
        .select_from(o)
        .join(i, i.c.id == o.c.invoice_id)
        .join(c, c.c.invoice_id == i.c.id),
        i.c.customer_id,
    ).where(
        o.c.channel == "email",
        o.c.payload["event"].as_string() == "dunning.step_reached",
        o.c.status != "canceled",
        # The customer already said when they will pay: no nudge to pay now.
        or_(o.c.held_reason.is_(None), o.c.held_reason != "promise_to_pay"),
        i.c.status.in_(UNPAID),
        c.c.collection == "automatic",
        _per_site(o.c.site_id, bounds, lambda low, high: o.c.created_at.between(low, high)),
        ~exists().where(step_sms.c.dedupe_key == func.replace(o.c.dedupe_key, ":email", ":sms")),
        ~later_step,
        _not_queued(_key_sql("failed", o.c.id)),
    )
    return list(conn.execute(query.order_by(o.c.id).limit(limit)))


def last_cancellations(conn: Connection, bounds: Bounds, limit: int) -> list[Any]:
    """Subscriptions canceled within their site's span that left the customer with none.

    Only the customer's latest cancellation counts, and not one that dunning
    made (a cycle of the subscription that ended unrecovered at or after it).
    """
    s = subscriptions
    other = subscriptions.alias("other")
    by_dunning = (
        select(invoices.c.id)
        .join(dunning_cycles, dunning_cycles.c.invoice_id == invoices.c.id)
        .where(
            invoices.c.subscription_id == s.c.id,
            dunning_cycles.c.finalized.is_(True),
            dunning_cycles.c.outcome.in_(UNRECOVERED),
            dunning_cycles.c.updated_at >= s.c.canceled_at,
        )
        .exists()
    )
    later_or_live = (
        select(other.c.id)
        .where(
            other.c.customer_id == s.c.customer_id,
            other.c.id != s.c.id,
            or_(
                other.c.status != CANCELED,
                other.c.canceled_at > s.c.canceled_at,
                and_(other.c.canceled_at == s.c.canceled_at, other.c.id > s.c.id),
            ),
        )
        .exists()
    )
    query = _with_phone(select(s.c.id, s.c.site_id, s.c.customer_id), s.c.customer_id).where(
        s.c.status == CANCELED,
        _per_site(s.c.site_id, bounds, lambda low, high: s.c.canceled_at.between(low, high)),
        ~later_or_live,
        ~by_dunning,
        _not_queued(_key_sql("winback", s.c.id)),
    )
    return list(conn.execute(query.order_by(s.c.id).limit(limit)))


def due_nudges(conn: Connection, real_now: datetime, skip_sites: set[int], limit: int) -> list[Any]:
    """Open conversations awaiting a yes or no whose nudge time has come (site time)."""
    v = conversations
    site_now = func.coalesce(sites.c.clock_now, utc_param("real_now", real_now))
    query = (
        select(v.c.id, v.c.site_id, v.c.nudge_at, v.c.state, site_now.label("site_now"))
        .join(sites, sites.c.id == v.c.site_id)
        .where(
            v.c.nudge_at.is_not(None),
            v.c.nudge_at <= site_now,
            v.c.status == "open",
            v.c.awaiting == "confirmation",
            *site_scope(),
        )
    )
    if skip_sites:
        query = query.where(v.c.site_id.not_in(skip_sites))
    return list(conn.execute(query.order_by(v.c.nudge_at, v.c.id).limit(limit)))


def order_lines(conn: Connection, subscription_ids: set[int]) -> dict[int, list[Line]]:
    """Every item of these subscriptions, in the order they were added, in one query."""
    if not subscription_ids:
        return {}
    items = subscription_items
    rows = conn.execute(
        select(
            items.c.subscription_id,
            products.c.name,
            items.c.quantity,
            items.c.unit_price_minor,
            items.c.one_time_period,
        )
        .join(products, products.c.id == items.c.product_id)
        .where(items.c.subscription_id.in_(subscription_ids))
        .order_by(items.c.subscription_id, items.c.id)
    )
    lines: defaultdict[int, list[Line]] = defaultdict(list)
    for row in rows:
        lines[row.subscription_id].append(
            Line(row.name, row.quantity, row.unit_price_minor, row.one_time_period)
        )
    return dict(lines)


# -- building blocks -------------------------------------------------------------


def _with_phone(query: Any, customer_id: Any) -> Any:
    """Join the customer for their phone, name and zone; only customers with a phone stay."""
    c = customers
    return (
        query.add_columns(c.c.phone, c.c.first_name, c.c.time_zone.label("customer_zone"))
        .join(c, c.c.id == customer_id)
        .where(c.c.phone.is_not(None), c.c.phone != "")
    )


def _per_site(
    site_id: Any,
    bounds: Bounds,
    within: Callable[[datetime, datetime], ColumnElement[bool]],
) -> ColumnElement[bool]:
    """``within(low, high)`` for each site's own bounds, sites sharing bounds grouped.

    Live sites share the real time and so one clause; each sandbox site has
    its own test clock and its own clause.
    """
    groups: defaultdict[tuple[datetime, datetime], list[int]] = defaultdict(list)
    for site, span in bounds.items():
        groups[span].append(site)
    return or_(
        *(and_(site_id.in_(sorted(ids)), within(low, high)) for (low, high), ids in groups.items())
    )


def _key_sql(kind: str, *ids: Any) -> ColumnElement[str]:
    """:func:`dedupe_key` built in SQL from the candidate's id columns."""
    key: ColumnElement[str] = literal(f"concierge:{kind}", String)
    for column in ids:
        key = key + literal(":", String) + cast(column, String)
    return key


def _not_queued(key: ColumnElement[str]) -> ColumnElement[bool]:
    queued = outbox.alias("queued")
    return ~exists().where(queued.c.dedupe_key == key)
