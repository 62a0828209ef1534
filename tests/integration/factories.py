"""Factories that build a shop through the real services (no mocks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from dunwell.bootstrap import App
from dunwell.domain.states import Collection
from dunwell.gateways.sandbox import tokenize
from dunwell.services import ledger, policies
from dunwell.services.sites import advance_clock, create_site, site_now
from dunwell.store import tables
from dunwell.worker import Worker

GOOD = "4111111111111111"
INSUFFICIENT = "4000000000009995"
RECOVERS = "4000000000005126"
LOST = "4000000000009987"
EXPIRED = "4000000000000069"
DECLINE_ALWAYS = "4000000000000341"
TIMEOUT = "4000000000000408"


@dataclass
class Shop:
    """A sandbox site with one product, and helpers to drive it day by day."""

    app: App
    site_id: int
    product_id: int
    worker: Worker

    @classmethod
    def create(cls, app: App, slug: str = "shop", price_minor: int = 2500) -> Shop:
        with app.begin() as conn:
            site_id = create_site(conn, app.clock, slug=slug, name=f"{slug} Inc.")
            product_id = ledger.create_product(
                conn,
                site_id,
                "plan",
                "Plan",
                price_minor,
                "USD",
                site_now(conn, site_id, app.clock),
            )
        return cls(app, site_id, product_id, Worker(app, name=f"test-{slug}"))

    @property
    def now(self) -> datetime:
        with self.app.connect() as conn:
            return site_now(conn, self.site_id, self.app.clock)

    def customer(self, card: str | None = GOOD, **fields: Any) -> int:
        with self.app.begin() as conn:
            now = site_now(conn, self.site_id, self.app.clock)
            customer_id = ledger.create_customer(
                conn,
                self.site_id,
                ledger.NewCustomer(**{"first_name": "Ada", "email": "ada@x.test", **fields}),
                now,
            )
            if card is not None:
                ledger.attach_payment_method(
                    conn, self.site_id, customer_id, "sandbox", tokenize(card, 12, 2031), now
                )
        return customer_id

    def change_card(self, customer_id: int, card: str) -> None:
        with self.app.begin() as conn:
            ledger.attach_payment_method(
                conn, self.site_id, customer_id, "sandbox", tokenize(card, 12, 2031), self.now
            )

    def subscribe(self, customer_id: int, **options: Any) -> int:
        with self.app.begin() as conn:
            return ledger.create_subscription(
                conn, self.site_id, customer_id, [ledger.Item(self.product_id)], self.now, **options
            )

    def invoice(self, customer_id: int, amount_minor: int = 5000, **options: Any) -> int:
        with self.app.begin() as conn:
            return ledger.create_invoice(
                conn, self.site_id, customer_id, amount_minor, "USD", self.now, **options
            )

    def save_policy(self, data: dict[str, Any], kind: Collection = Collection.AUTOMATIC) -> int:
        with self.app.begin() as conn:
            return policies.save_policy(conn, self.site_id, kind, data, self.now).id

    def run(self) -> int:
        return self.worker.run_until_idle()

    def advance(self, days: float = 1) -> None:
        with self.app.begin() as conn:
            advance_clock(conn, self.site_id, timedelta(days=days))

    def run_days(self, days: int) -> None:
        """Run the worker, then move one day, ``days`` times, and run once more."""
        self.run()
        for _ in range(days):
            self.advance(1)
            self.run()

    # -- reading ---------------------------------------------------------------

    def one(self, table: Any, **where: Any) -> Any:
        with self.app.connect() as conn:
            query = select(table).where(*(table.c[k] == v for k, v in where.items()))
            return conn.execute(query).one()

    def all(self, table: Any, **where: Any) -> list[Any]:
        with self.app.connect() as conn:
            query = select(table).where(*(table.c[k] == v for k, v in where.items()))
            return list(conn.execute(query.order_by(table.c.id)))

    def invoice_of(self, subscription_id: int, period: int = 0) -> Any:
        return self.one(tables.invoices, subscription_id=subscription_id, period=period)

    def cycle_of(self, invoice_id: int) -> Any:
        return self.one(tables.dunning_cycles, invoice_id=invoice_id)

    def event_types(self, invoice_id: int) -> list[str]:
        """The invoice's billing events in order (message delivery events left out)."""
        return [
            e.type
            for e in self.all(tables.events, invoice_id=invoice_id)
            if not e.type.startswith("message.")
        ]

    def attempts_of(self, invoice_id: int) -> list[Any]:
        """The invoice's payment attempts, in attempt order."""
        return self.all(tables.payment_attempts, invoice_id=invoice_id)

    def sms_balance(self) -> int:
        with self.app.connect() as conn:
            return int(
                conn.execute(
                    select(tables.sms_credits.c.balance).where(
                        tables.sms_credits.c.site_id == self.site_id
                    )
                ).scalar_one()
            )

    def outbox_of(self, invoice_id: int) -> list[Any]:
        return self.all(tables.outbox, invoice_id=invoice_id)

    def act(self, action: Callable[..., Any], invoice_id: int, *args: Any) -> Any:
        """Run an invoice action (``invoice_actions.mark_paid``...) at the site's now."""
        with self.app.begin() as conn:
            return action(
                conn, self.site_id, invoice_id, *args, site_now(conn, self.site_id, self.app.clock)
            )
