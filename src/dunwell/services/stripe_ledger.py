"""The ledger side of Stripe events: mirrored customers, cards and subscriptions.

Every row mirrored from Stripe carries Stripe's id in ``external_id`` (cards:
``token``), unique per site, which is how a later event finds it. Changes go
through the ledger's own operations where there is one, with the same
events, so everything downstream (the worker, messages, webhooks) treats
mirrored rows like any other. Invoices are in :mod:`.stripe_invoices`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, delete, select, update

from dunwell.domain.intervals import IntervalUnit
from dunwell.domain.states import Collection, SubscriptionStatus
from dunwell.gateways.base import CardDetails
from dunwell.security.links import LinkSigner
from dunwell.services import ledger
from dunwell.services.channel_config import EMAIL
from dunwell.services.errors import InvalidInput
from dunwell.services.events import EventBatch
from dunwell.services.stripe_payloads import (
    CardFacts,
    CustomerFacts,
    PriceFacts,
    SubscriptionFacts,
)
from dunwell.services.templates import LOCALE
from dunwell.store.sql import insert_one
from dunwell.store.tables import (
    customers,
    payment_methods,
    products,
    subscription_items,
    subscriptions,
)

#: Stripe's own gateway name in Dunwell: mirrored cards and Stripe's charges.
GATEWAY = "stripe"
#: A mirrored subscription is billed by Stripe, never by Dunwell's renewals:
#: its next charge date is put beyond any clock.
NEVER = datetime(3000, 1, 1, tzinfo=UTC)
#: Dunwell greets by first name and needs one; Stripe's customer may have none.
NO_NAME = "Customer"


@dataclass
class Mirror:
    """One site's ledger inside the transaction of one Stripe event."""

    conn: Connection
    site_id: int
    now: datetime
    links: Callable[[], LinkSigner]

    def events(self, type_: str, **data: Any) -> None:
        batch = EventBatch()
        batch.add(self.site_id, type_, self.now, source="stripe", **data)
        batch.write(self.conn)

    # -- customers ----------------------------------------------------------------

    def customer(self, facts: CustomerFacts, *, overwrite: bool) -> tuple[int, list[str]]:
        """The mirrored customer, created if new; returns its id and notes for the log.

        ``overwrite`` (a ``customer.*`` event) replaces Dunwell's name, email,
        phone and locale with Stripe's; otherwise (an invoice's snapshot of
        the customer) they only fill what is missing. A value Stripe leaves
        empty never erases Dunwell's, such as a phone number imported here.
        """
        notes: list[str] = []
        first, last = _split_name(facts.name)
        given = {
            "email": _checked("email", facts.email, EMAIL.match, notes),
            "phone": self._phone(facts.phone, notes),
            "locale": _checked("locale", facts.locale, LOCALE.match, notes),
        }
        row = self.conn.execute(
            select(customers).where(
                customers.c.site_id == self.site_id, customers.c.external_id == facts.id
            )
        ).first()
        if row is None:
            new = ledger.NewCustomer(
                first_name=first or NO_NAME,
                last_name=last,
                external_id=facts.id,
                **given,
            )
            return ledger.create_customer(self.conn, self.site_id, new, self.now), notes
        current = row._mapping
        missing = {key: not current[key] for key in given}
        if first:
            given.update(first_name=first, last_name=last)
            unnamed = current["first_name"] == NO_NAME and not current["last_name"]
            missing.update(first_name=unnamed, last_name=unnamed)
        changes = {
            key: value
            for key, value in given.items()
            if value is not None and value != current[key] and (overwrite or missing[key])
        }
        if changes:
            self.conn.execute(update(customers).where(customers.c.id == row.id).values(**changes))
            self.events("customer.updated", customer_id=row.id, fields=sorted(changes))
        return int(row.id), notes

    def _phone(self, raw: str | None, notes: list[str]) -> str | None:
        if not raw:
            return None
        try:
            return ledger.site_phone(self.conn, self.site_id, raw)
        except InvalidInput as error:
            # A number we cannot text is no reason to lose the rest of the event.
            notes.append(f"phone not kept ({error.message})")
            return None

    # -- cards --------------------------------------------------------------------

    def attach_card(self, customer_id: int, card: CardFacts) -> str:
        """Save a Stripe card as the default; past-due invoices are retried at once."""
        known = self.conn.execute(
            select(payment_methods.c.id).where(
                payment_methods.c.site_id == self.site_id,
                payment_methods.c.customer_id == customer_id,
                payment_methods.c.gateway == GATEWAY,
                payment_methods.c.token == card.id,
                payment_methods.c.detached_at.is_(None),
            )
        ).first()
        if known is not None:
            return f"card {card.id} was already attached"
        details = CardDetails(
            card.id, card.brand, card.last4, card.exp_month, card.exp_year, card.customer
        )
        ledger.attach_payment_method(
            self.conn, self.site_id, customer_id, GATEWAY, details, self.now
        )
        return f"card {card.brand} {card.last4} is the default; past-due invoices retry now"

    # -- subscriptions ------------------------------------------------------------

    def subscription(self, customer_id: int, external_id: str, currency: str) -> tuple[int, str]:
        """The mirrored subscription and its status; a new one is active and monthly
        until a ``customer.subscription.*`` event tells its plan."""
        row = self.conn.execute(
            select(subscriptions.c.id, subscriptions.c.status).where(
                subscriptions.c.site_id == self.site_id,
                subscriptions.c.external_id == external_id,
            )
        ).first()
        if row is not None:
            return int(row.id), str(row.status)
        status = SubscriptionStatus.ACTIVE.value
        subscription_id = insert_one(
            self.conn,
            subscriptions,
            site_id=self.site_id,
            customer_id=customer_id,
            status=status,
            currency=currency,
            interval_unit=IntervalUnit.MONTH.value,
            interval_count=1,
            collection=Collection.AUTOMATIC.value,
            net_terms_days=0,
            anchor_at=self.now,
            next_charge_at=NEVER,
            periods_billed=0,
            external_id=external_id,
            created_at=self.now,
        )
        self.events(
            "subscription.created",
            customer_id=customer_id,
            subscription_id=subscription_id,
            stripe_subscription=external_id,
        )
        return subscription_id, status

    def mirror_subscription(self, customer_id: int, facts: SubscriptionFacts, status: str) -> str:
        """Take Stripe's status, billing interval and items onto the mirrored subscription."""
        currency = facts.currency or next((p.currency for p in facts.items), "") or "USD"
        subscription_id, previous = self.subscription(customer_id, facts.id, currency)
        first = facts.items[0] if facts.items else None
        values: dict[str, Any] = {"anchor_at": facts.started}
        if first is not None and first.interval in {unit.value for unit in IntervalUnit}:
            values.update(interval_unit=first.interval, interval_count=first.interval_count)
        if facts.collection_method == "send_invoice":
            values["collection"] = Collection.MANUAL.value
        self.conn.execute(
            update(subscriptions).where(subscriptions.c.id == subscription_id).values(**values)
        )
        if facts.items:
            self._items(subscription_id, facts.items)
        self.set_subscription_status(subscription_id, customer_id, previous, status)
        return f"subscription {subscription_id} is {status}"

    def _items(self, subscription_id: int, prices: tuple[PriceFacts, ...]) -> None:
        """Replace the items: one product per Stripe price (its code is the price id)."""
        rows = []
        for price in prices:
            product = self.conn.execute(
                select(products.c.id).where(
                    products.c.site_id == self.site_id, products.c.code == price.id
                )
            ).scalar()
            if product is None:
                product = ledger.create_product(
                    self.conn,
                    self.site_id,
                    price.id,
                    price.name,
                    price.unit_amount,
                    price.currency or "USD",
                    self.now,
                )
            rows.append(
                {
                    "site_id": self.site_id,
                    "subscription_id": subscription_id,
                    "product_id": product,
                    "quantity": max(price.quantity, 1),
                    "unit_price_minor": price.unit_amount,
                }
            )
        items = subscription_items
        self.conn.execute(delete(items).where(items.c.subscription_id == subscription_id))
        self.conn.execute(items.insert(), rows)

    def set_subscription_status(
        self, subscription_id: int, customer_id: int, previous: str, current: str
    ) -> None:
        if previous == current:
            return
        canceled = current == SubscriptionStatus.CANCELED.value
        self.conn.execute(
            update(subscriptions)
            .where(subscriptions.c.id == subscription_id)
            .values(status=current, canceled_at=self.now if canceled else None)
        )
        self.events(
            "subscription.state_changed",
            customer_id=customer_id,
            subscription_id=subscription_id,
            previous=previous,
            current=current,
        )


def _checked(
    field: str, value: str | None, valid: Callable[[str], object], notes: list[str]
) -> str | None:
    if value is not None and not valid(value):
        notes.append(f"{field} {value!r} not kept")
        return None
    return value


def _split_name(name: str | None) -> tuple[str, str]:
    """Stripe keeps one ``name``; Dunwell greets by first name."""
    if not name:
        return "", ""
    first, _, last = name.strip().partition(" ")
    return first, last.strip()
