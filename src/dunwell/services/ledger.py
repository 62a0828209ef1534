"""Customers, payment methods, products, subscriptions and one-off invoices."""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Table, func, select, update

from dunwell.domain.intervals import IntervalUnit
from dunwell.domain.payday import parse_payday
from dunwell.domain.states import Collection, CyclePhase, InvoiceStatus, SubscriptionStatus
from dunwell.gateways.base import CardDetails
from dunwell.messaging.phones import PhoneError, normalize_phone
from dunwell.services.channel_config import EMAIL
from dunwell.services.collection_requests import request_collection_for_customer
from dunwell.services.errors import InvalidInput, NotFound
from dunwell.services.events import EventBatch
from dunwell.services.sms_settings import load_sms_settings
from dunwell.services.templates import LOCALE
from dunwell.store.sql import insert_one, utc_param
from dunwell.store.tables import (
    customers,
    dunning_cycles,
    invoices,
    payment_methods,
    products,
    subscription_items,
    subscriptions,
)


@dataclass(frozen=True)
class NewCustomer:
    first_name: str
    last_name: str = ""
    email: str | None = None
    phone: str | None = None
    locale: str | None = None
    time_zone: str | None = None
    payday: str | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class Item:
    product_id: int
    quantity: int = 1


#: What :func:`update_customer` may change.
EDITABLE_CUSTOMER_FIELDS = frozenset({*NewCustomer.__dataclass_fields__, "marketing_sms_opt_in"})


def create_customer(conn: Connection, site_id: int, new: NewCustomer, now: datetime) -> int:
    _check_customer(conn, site_id, None, new.__dict__)
    values = dict(new.__dict__)
    if new.phone:
        values["phone"] = site_phone(conn, site_id, new.phone)
    return insert_one(conn, customers, site_id=site_id, created_at=now, **values)


def update_customer(
    conn: Connection, site_id: int, customer_id: int, changes: Mapping[str, Any], now: datetime
) -> None:
    """Change the given fields; ``None`` clears an optional one.

    ``marketing_sms_opt_in`` records (true) or withdraws (false) the explicit
    consent marketing texts need; re-confirming keeps the first consent time.
    """
    _require(conn, customers, site_id, customer_id, "customer")
    for name in changes:
        if name not in EDITABLE_CUSTOMER_FIELDS:
            raise InvalidInput(name, "is not a customer field that can be changed")
    _check_customer(conn, site_id, customer_id, changes)
    values = {k: v for k, v in changes.items() if k != "marketing_sms_opt_in"}
    if "last_name" in values:
        values["last_name"] = values["last_name"] or ""
    if values.get("phone"):
        values["phone"] = site_phone(conn, site_id, values["phone"])
    if "marketing_sms_opt_in" in changes:
        opted_at = customers.c.marketing_sms_opt_in_at
        values["marketing_sms_opt_in_at"] = (
            func.coalesce(opted_at, utc_param("opt_in_at", now))
            if changes["marketing_sms_opt_in"]
            else None
        )
    if values:
        conn.execute(
            update(customers)
            .where(customers.c.site_id == site_id, customers.c.id == customer_id)
            .values(**values)
        )


def _check_customer(
    conn: Connection, site_id: int, customer_id: int | None, fields: Mapping[str, Any]
) -> None:
    """Raise :class:`InvalidInput` for the first given field that is wrong."""
    if "first_name" in fields and not (fields["first_name"] or "").strip():
        raise InvalidInput("first_name", "is required")
    email, locale = fields.get("email"), fields.get("locale")
    if email and not EMAIL.match(email):
        raise InvalidInput("email", f"{email!r} is not an email address")
    if locale and not LOCALE.match(locale):
        raise InvalidInput("locale", f"{locale!r} is not a language code like en, fr or pt_BR")
    if fields.get("time_zone"):
        check_zone(fields["time_zone"])
    if fields.get("payday"):
        try:
            parse_payday(fields["payday"])
        except ValueError as error:
            raise InvalidInput("payday", str(error)) from None
    if fields.get("external_id"):
        taken = conn.execute(
            select(customers.c.id).where(
                customers.c.site_id == site_id,
                customers.c.external_id == fields["external_id"],
                customers.c.id != (customer_id or 0),
            )
        ).first()
        if taken is not None:
            raise InvalidInput("external_id", f"already used by customer {taken.id}")


def check_zone(name: str) -> None:
    """Raise unless ``name`` is an IANA time zone (``Europe/Paris``)."""
    try:
        ZoneInfo(name)
    # A directory ("America") or an overlong name surfaces as an OSError.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput("time_zone", f"{name!r} is not an IANA time zone") from None


def site_phone(conn: Connection, site_id: int, raw: str) -> str:
    """``raw`` as E.164 under the site's default region and allowed countries."""
    settings = load_sms_settings(conn, [site_id])[site_id]
    try:
        return normalize_phone(raw, settings.default_region, settings.allowed_countries or None)
    except PhoneError as error:
        raise InvalidInput("phone", str(error)) from None


def attach_payment_method(
    conn: Connection,
    site_id: int,
    customer_id: int,
    gateway: str,
    card: CardDetails,
    now: datetime,
    *,
    make_default: bool = True,
) -> int:
    """Save a card reference; a new default card sends past-due invoices to collection."""
    _require(conn, customers, site_id, customer_id, "customer")
    if make_default:
        conn.execute(
            update(payment_methods)
            .where(payment_methods.c.site_id == site_id)
            .where(payment_methods.c.customer_id == customer_id)
            .values(is_default=False)
        )
    method_id = insert_one(
        conn,
        payment_methods,
        site_id=site_id,
        customer_id=customer_id,
        gateway=gateway,
        token=card.token,
        gateway_customer=card.gateway_customer,
        brand=card.brand,
        last4=card.last4,
        exp_month=card.exp_month,
        exp_year=card.exp_year,
        is_default=make_default,
        created_at=now,
    )
    batch = EventBatch()
    batch.add(
        site_id,
        "payment_method.attached",
        now,
        customer_id=customer_id,
        payment_method_id=method_id,
        brand=card.brand,
        last4=card.last4,
    )
    batch.write(conn)
    if make_default:
        request_collection_for_customer(conn, site_id, customer_id, now, "payment_method_updated")
    return method_id


def detach_payment_method(
    conn: Connection, site_id: int, customer_id: int, method_id: int, now: datetime
) -> None:
    """Stop using a saved method; a detached default leaves the customer without one."""
    pm = payment_methods
    done = conn.execute(
        update(pm)
        .where(pm.c.site_id == site_id, pm.c.customer_id == customer_id, pm.c.id == method_id)
        .where(pm.c.detached_at.is_(None))
        .values(detached_at=now, is_default=False)
    )
    if done.rowcount == 0:
        raise NotFound(f"no payment method {method_id} attached to customer {customer_id}")
    batch = EventBatch()
    batch.add(
        site_id,
        "payment_method.detached",
        now,
        customer_id=customer_id,
        payment_method_id=method_id,
    )
    batch.write(conn)


def create_product(
    conn: Connection,
    site_id: int,
    code: str,
    name: str,
    price_minor: int,
    currency: str,
    now: datetime,
) -> int:
    if price_minor < 0:
        raise InvalidInput("price_minor", "must not be negative")
    if conn.execute(
        select(products.c.id).where(products.c.site_id == site_id, products.c.code == code)
    ).first():
        raise InvalidInput("code", f"a product with code {code!r} already exists")
    return insert_one(
        conn,
        products,
        site_id=site_id,
        code=code,
        name=name,
        price_minor=price_minor,
        currency=currency.upper(),
        created_at=now,
    )


def create_subscription(
    conn: Connection,
    site_id: int,
    customer_id: int,
    items: Sequence[Item],
    now: datetime,
    *,
    starts_at: datetime | None = None,
    interval_unit: IntervalUnit = IntervalUnit.MONTH,
    interval_count: int = 1,
    collection: Collection = Collection.AUTOMATIC,
    net_terms_days: int = 0,
) -> int:
    """Create a subscription whose first charge is at ``starts_at`` (default now).

    A customer who already has past-due invoices has them sent to collection,
    as Recurly does when a lapsed customer resubscribes.
    """
    _require(conn, customers, site_id, customer_id, "customer")
    if not items:
        raise InvalidInput("items", "a subscription needs at least one item")
    if interval_count < 1:
        raise InvalidInput("interval_count", "must be at least 1")
    if net_terms_days < 0:
        raise InvalidInput("net_terms_days", "must not be negative")
    prices = _prices(conn, site_id, items)
    currencies = {currency for _, currency in prices.values()}
    if len(currencies) != 1:
        raise InvalidInput("items", "all items must be priced in one currency")
    start = starts_at or now
    subscription_id = insert_one(
        conn,
        subscriptions,
        site_id=site_id,
        customer_id=customer_id,
        status=SubscriptionStatus.ACTIVE.value,
        currency=currencies.pop(),
        interval_unit=interval_unit.value,
        interval_count=interval_count,
        collection=collection.value,
        net_terms_days=net_terms_days,
        anchor_at=start,
        next_charge_at=start,
        periods_billed=0,
        created_at=now,
    )
    conn.execute(
        subscription_items.insert(),
        [
            {
                "site_id": site_id,
                "subscription_id": subscription_id,
                "product_id": item.product_id,
                "quantity": item.quantity,
                "unit_price_minor": prices[item.product_id][0],
            }
            for item in items
        ],
    )
    request_collection_for_customer(conn, site_id, customer_id, now, "new_subscription")
    return subscription_id


def create_invoice(
    conn: Connection,
    site_id: int,
    customer_id: int,
    amount_minor: int,
    currency: str,
    now: datetime,
    *,
    collection: Collection = Collection.AUTOMATIC,
    net_terms_days: int = 0,
    number: str | None = None,
) -> int:
    """A one-off invoice; automatic ones are charged at once, manual ones wait for net terms."""
    _require(conn, customers, site_id, customer_id, "customer")
    if amount_minor <= 0:
        raise InvalidInput("amount_minor", "must be a positive amount in minor units")
    due_at = now + timedelta(days=net_terms_days)
    invoice_id = insert_one(
        conn,
        invoices,
        site_id=site_id,
        customer_id=customer_id,
        number=number or f"INV-{secrets.token_hex(5).upper()}",
        collection=collection.value,
        net_terms_days=net_terms_days,
        status=InvoiceStatus.OPEN.value,
        currency=currency.upper(),
        amount_due_minor=amount_minor,
        amount_paid_minor=0,
        issued_at=now,
        due_at=due_at,
    )
    insert_one(conn, dunning_cycles, **new_cycle_row(site_id, invoice_id, collection, due_at, now))
    batch = EventBatch()
    batch.add(
        site_id,
        "invoice.created",
        now,
        customer_id=customer_id,
        invoice_id=invoice_id,
        amount_minor=amount_minor,
        currency=currency.upper(),
    )
    batch.write(conn)
    return invoice_id


def new_cycle_row(
    site_id: int, invoice_id: int, collection: Collection, due_at: datetime, now: datetime
) -> dict[str, object]:
    """The collection row every invoice gets: it is what the worker claims."""
    return {
        "site_id": site_id,
        "invoice_id": invoice_id,
        "collection": collection.value,
        "phase": CyclePhase.INITIAL.value,
        "due_at": due_at,
        "attempts": 0,
        "hard_declined": False,
        "steps_done_through": 0,
        "transient_errors": 0,
        "finalized": False,
        "next_run_at": due_at,
        "updated_at": now,
    }


def _prices(conn: Connection, site_id: int, items: Sequence[Item]) -> dict[int, tuple[int, str]]:
    ids = [item.product_id for item in items]
    rows = conn.execute(
        select(products.c.id, products.c.price_minor, products.c.currency).where(
            products.c.site_id == site_id, products.c.id.in_(ids)
        )
    )
    prices = {row.id: (row.price_minor, row.currency) for row in rows}
    for index, item in enumerate(items):
        if item.product_id not in prices:
            raise InvalidInput(f"items[{index}].product_id", f"no product {item.product_id}")
        if item.quantity < 1:
            raise InvalidInput(f"items[{index}].quantity", "must be at least 1")
    return prices


def _require(conn: Connection, table: Table, site_id: int, row_id: int, what: str) -> None:
    found = conn.execute(
        select(table.c.id).where(table.c.site_id == site_id, table.c.id == row_id)
    ).first()
    if found is None:
        raise NotFound(f"no {what} {row_id} in this site")
