"""Reading the ledger for the API, and the few changes it makes besides creating.

Every query here is scoped by ``site_id``: an id that belongs to another
site is reported as not found, never shown or changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from babel.core import get_global
from babel.numbers import get_territory_currencies
from sqlalchemy import Connection, Select, Table, func, select, update

from dunwell.domain.intervals import IntervalUnit, first_period_from
from dunwell.domain.states import InvoiceStatus, PausedBy, SubscriptionStatus, is_mirrored
from dunwell.services.channel_config import EMAIL
from dunwell.services.errors import Conflict, InvalidInput, NotFound
from dunwell.services.events import EventBatch
from dunwell.services.ids import parse_id
from dunwell.services.ledger import check_zone
from dunwell.services.templates import LOCALE
from dunwell.store.tables import (
    customers,
    invoices,
    payment_methods,
    products,
    sites,
    subscription_items,
    subscriptions,
)

CURRENCY = re.compile(r"^[A-Z]{3}$")


def _currencies_in_use() -> frozenset[str]:
    territories = get_global("territory_currencies")
    return frozenset(code for t in territories for code in get_territory_currencies(t))


#: ISO 4217 codes of the currencies that are legal tender somewhere today,
#: all of which the messages' ``money`` filter can format. Babel knows more
#: codes, but no one bills in them: funds codes (USN), metals (XAU), the
#: testing and no-currency codes (XTS, XXX) and retired ones (DEM, HRK).
CURRENCIES = _currencies_in_use()
SITE_FIELDS = frozenset({"name", "support_email", "time_zone", "locale", "currency"})


def _one(conn: Connection, query: Select[Any], what: str, row_id: int) -> dict[str, Any]:
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no {what} {row_id} in this site")
    return dict(row._mapping)


def _public(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A row as the API shows it: ``site_id`` is always the caller's own."""
    return {k: v for k, v in row.items() if k != "site_id"}


def _after(table: Table, site_id: int, after_id: int, limit: int) -> Select[Any]:
    return (
        select(table)
        .where(table.c.site_id == site_id, table.c.id > after_id)
        .order_by(table.c.id)
        .limit(limit)
    )


# -- customers -----------------------------------------------------------------------


def _customer(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in _public(row).items() if k != "links_revoked_at"}
    out["marketing_sms_opt_in"] = row["marketing_sms_opt_in_at"] is not None
    return out


def get_customer(conn: Connection, site_id: int, customer_id: int) -> dict[str, Any]:
    c = customers
    query = select(c).where(c.c.site_id == site_id, c.c.id == customer_id)
    return _customer(_one(conn, query, "customer", customer_id))


def find_customer(conn: Connection, site_id: int, text: str) -> Any:
    """A customer of this site by id or email address (any case); None for blank text.

    Refused with InvalidInput (field ``customer``) when no customer of the site matches.
    """
    wanted = text.strip()
    if not wanted:
        return None
    c = customers
    query = select(c).where(c.c.site_id == site_id)
    if wanted.isascii() and wanted.isdigit():
        customer_id = parse_id(wanted)  # None past the column's range: no such customer
        found = (
            conn.execute(query.where(c.c.id == customer_id)).first()
            if customer_id is not None
            else None
        )
    else:
        query = query.where(func.lower(c.c.email) == wanted.lower())
        found = conn.execute(query.order_by(c.c.id).limit(1)).first()
    if found is None:
        raise InvalidInput("customer", f"no customer {wanted!r} in this site (give an id or email)")
    return found


def person_name(person: Any) -> str:
    """First and last name, either missing part left out; "" when both are."""
    return " ".join(part for part in (person.first_name, person.last_name) if part)


def list_customers(
    conn: Connection,
    site_id: int,
    *,
    email: str | None = None,
    external_id: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    query = _after(customers, site_id, after_id, limit)
    if email is not None:
        query = query.where(customers.c.email == email)
    if external_id is not None:
        query = query.where(customers.c.external_id == external_id)
    return [_customer(dict(row._mapping)) for row in conn.execute(query)]


def list_payment_methods(conn: Connection, site_id: int, customer_id: int) -> list[dict[str, Any]]:
    """The customer's attached methods (the token is the gateway's reference, not a card)."""
    get_customer(conn, site_id, customer_id)
    pm = payment_methods
    rows = conn.execute(
        select(pm)
        .where(pm.c.site_id == site_id, pm.c.customer_id == customer_id)
        .where(pm.c.detached_at.is_(None))
        .order_by(pm.c.id)
    )
    return [_public(row._mapping) for row in rows]


def get_payment_method(conn: Connection, site_id: int, method_id: int) -> dict[str, Any]:
    pm = payment_methods
    query = select(pm).where(pm.c.site_id == site_id, pm.c.id == method_id)
    return _public(_one(conn, query, "payment method", method_id))


# -- products ------------------------------------------------------------------------


def get_product(conn: Connection, site_id: int, product_id: int) -> dict[str, Any]:
    p = products
    query = select(p).where(p.c.site_id == site_id, p.c.id == product_id)
    return _public(_one(conn, query, "product", product_id))


def list_products(
    conn: Connection, site_id: int, *, after_id: int = 0, limit: int = 100
) -> list[dict[str, Any]]:
    return [
        _public(row._mapping) for row in conn.execute(_after(products, site_id, after_id, limit))
    ]


def products_by_id(conn: Connection, site_id: int, ids: set[int]) -> list[dict[str, Any]]:
    p = products
    rows = conn.execute(select(p).where(p.c.site_id == site_id, p.c.id.in_(ids)))
    return [dict(row._mapping) for row in rows]


# -- subscriptions -------------------------------------------------------------------


def get_subscription(conn: Connection, site_id: int, subscription_id: int) -> dict[str, Any]:
    s = subscriptions
    query = select(s).where(s.c.site_id == site_id, s.c.id == subscription_id)
    found = _public(_one(conn, query, "subscription", subscription_id))
    return _with_items(conn, site_id, [found])[0]


def list_subscriptions(
    conn: Connection,
    site_id: int,
    *,
    status: str | None = None,
    customer_id: int | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    query = _after(subscriptions, site_id, after_id, limit)
    if status is not None:
        query = query.where(subscriptions.c.status == status)
    if customer_id is not None:
        query = query.where(subscriptions.c.customer_id == customer_id)
    return _with_items(conn, site_id, [_public(row._mapping) for row in conn.execute(query)])


def _with_items(conn: Connection, site_id: int, subs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Attach each subscription's items and the amount one period costs."""
    items = subscription_items
    by_sub: dict[int, list[dict[str, Any]]] = {sub["id"]: [] for sub in subs}
    if subs:
        rows = conn.execute(
            select(items.c.id, items.c.subscription_id, items.c.product_id, items.c.quantity)
            .add_columns(items.c.unit_price_minor)
            .where(items.c.site_id == site_id, items.c.subscription_id.in_(list(by_sub)))
            .order_by(items.c.id)
        )
        for row in rows:
            by_sub[row.subscription_id].append(dict(row._mapping))
    for sub in subs:
        sub["items"] = by_sub[sub["id"]]
        sub["amount_minor"] = sum(i["quantity"] * i["unit_price_minor"] for i in sub["items"])
    return subs


def cancel_subscription(
    conn: Connection, site_id: int, subscription_id: int, now: datetime
) -> None:
    """Cancel for good: no more renewals. Its unpaid invoices keep being collected
    (stop collecting on each invoice to write it off)."""
    current = _subscription_row(conn, site_id, subscription_id)
    if current.status == SubscriptionStatus.CANCELED.value:
        raise Conflict(f"subscription {subscription_id} is already canceled")
    _move(conn, current, SubscriptionStatus.CANCELED, now, canceled_at=now)


def pause_subscription(conn: Connection, site_id: int, subscription_id: int, now: datetime) -> None:
    """Stop renewals until resumed; invoices already issued are still collected."""
    current = _subscription_row(conn, site_id, subscription_id)
    if current.status not in (SubscriptionStatus.ACTIVE.value, SubscriptionStatus.PAST_DUE.value):
        raise Conflict(f"cannot pause subscription {subscription_id}: it is {current.status}")
    _move(conn, current, SubscriptionStatus.PAUSED, now, paused_by=PausedBy.MERCHANT.value)


def resume_subscription(
    conn: Connection, site_id: int, subscription_id: int, now: datetime
) -> None:
    """Renew again from the next period boundary; the periods spent paused are not billed.

    The subscription is ``past_due`` again when one of its invoices still is.
    """
    current = _subscription_row(conn, site_id, subscription_id)
    if current.status != SubscriptionStatus.PAUSED.value:
        raise Conflict(f"cannot resume subscription {subscription_id}: it is {current.status}")
    owing = conn.execute(
        select(invoices.c.id).where(
            invoices.c.site_id == site_id,
            invoices.c.subscription_id == subscription_id,
            invoices.c.status == InvoiceStatus.PAST_DUE.value,
        )
    ).first()
    period, at = first_period_from(
        current.anchor_at,
        IntervalUnit(current.interval_unit),
        current.interval_count,
        current.periods_billed,
        current.next_charge_at,
        now,
    )
    status = SubscriptionStatus.PAST_DUE if owing else SubscriptionStatus.ACTIVE
    _move(conn, current, status, now, periods_billed=period, next_charge_at=at)


def _subscription_row(conn: Connection, site_id: int, subscription_id: int) -> Any:
    """The subscription to cancel, pause or resume; never a mirror of Stripe's.

    Stripe bills a mirrored subscription: changed here alone, Stripe would
    go on billing a customer the merchant believes canceled or paused.
    """
    s = subscriptions
    query = select(s).where(s.c.site_id == site_id, s.c.id == subscription_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no subscription {subscription_id} in this site")
    if is_mirrored(row):
        raise Conflict(
            f"subscription {subscription_id} is managed in Stripe ({row.external_id}); "
            "change it there, and Stripe's customer.subscription event brings the change here"
        )
    return row


def _move(
    conn: Connection, current: Any, status: SubscriptionStatus, now: datetime, **values: Any
) -> None:
    # Compare-and-set on the status read above: a worker that changed it in
    # between (a final action, a payment) wins, and the caller may try again.
    s = subscriptions
    values.setdefault("paused_by", None)
    done = conn.execute(
        update(s)
        .where(s.c.site_id == current.site_id, s.c.id == current.id)
        .where(s.c.status == current.status)
        .values(status=status.value, **values)
    )
    if done.rowcount == 0:
        raise Conflict(f"subscription {current.id} changed meanwhile; try again")
    batch = EventBatch()
    batch.add(
        current.site_id,
        "subscription.state_changed",
        now,
        customer_id=current.customer_id,
        subscription_id=current.id,
        previous=current.status,
        current=status.value,
    )
    batch.write(conn)


# -- the calling site ----------------------------------------------------------------


def check_currency(code: str, field: str = "currency") -> str:
    """``code`` in upper case; InvalidInput naming ``field`` unless it is in :data:`CURRENCIES`.

    The one check of every currency a request sets: a code the ``money``
    filter cannot format would fail each message about the invoice.
    """
    upper = code.upper()
    if not CURRENCY.fullmatch(upper):
        raise InvalidInput(field, "must be a three-letter ISO 4217 code like USD")
    if upper not in CURRENCIES:
        raise InvalidInput(field, f"{upper} is not an ISO 4217 currency in use, like USD or EUR")
    return upper


def get_site(conn: Connection, site_id: int) -> dict[str, Any]:
    return _one(conn, select(sites).where(sites.c.id == site_id), "site", site_id)


def update_site(conn: Connection, site_id: int, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Change the site's name, support email, time zone, locale or currency."""
    for name in changes:
        if name not in SITE_FIELDS:
            raise InvalidInput(name, "is not a site setting that can be changed")
    values = dict(changes)
    if "name" in values:
        values["name"] = (values["name"] or "").strip()
        if not values["name"]:
            raise InvalidInput("name", "is required")
    email = values.get("support_email")
    if email and not EMAIL.match(email):
        raise InvalidInput("support_email", f"{email!r} is not an email address")
    for required in ("time_zone", "locale", "currency"):
        if required in values and not values[required]:
            raise InvalidInput(required, "is required")
    if values.get("time_zone"):
        check_zone(values["time_zone"])
    if values.get("locale") and not LOCALE.match(values["locale"]):
        raise InvalidInput("locale", f"{values['locale']!r} is not a language code like en or fr")
    if values.get("currency"):
        values["currency"] = check_currency(values["currency"])
    if values:
        conn.execute(update(sites).where(sites.c.id == site_id).values(**values))
    return get_site(conn, site_id)
