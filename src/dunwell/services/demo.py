"""The sandbox demo: a fresh site of subscribers whose renewals fail as in life.

Card mix (per subscriber) follows published decline-rate studies loosely:
most cards work, insufficient funds is the commonest soft decline, expired
and lost cards the commonest hard ones. A share of the customers whose
payment fails update their card a few days later, as real customers do
after a dunning email. Everything random comes from one seeded generator, so
the same seed gives the same figures.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from dunwell.bootstrap import App
from dunwell.domain.states import SiteMode
from dunwell.gateways.sandbox import tokenize
from dunwell.services import ledger
from dunwell.services.sites import advance_clock, create_site
from dunwell.store.tables import dunning_cycles, invoices, outbox, payment_attempts, sites
from dunwell.worker import Worker

DEMO_EPOCH = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
GOOD_CARD = "4111111111111111"

#: (test card, weight). About one renewal in five fails at first.
CARD_MIX: tuple[tuple[str, int], ...] = (
    (GOOD_CARD, 790),
    ("4000000000009995", 70),  # insufficient funds, every time
    ("4000000000005126", 50),  # insufficient funds twice, then fine
    ("4000000000000119", 15),  # processing error
    ("4000000000000341", 15),  # generic decline
    ("4000000000000069", 30),  # expired (hard)
    ("4000000000009987", 12),  # lost (hard)
    ("4000000000009979", 8),  # stolen (hard)
    ("4000000000000408", 10),  # gateway timeout
)
CARD_UPDATE_SHARE = 0.35  # of customers with a failing card, how many fix it
PLANS = (("starter", "Starter", 900), ("growth", "Growth", 2900), ("scale", "Scale", 9900))


@dataclass(frozen=True)
class DemoResult:
    site_slug: str
    figures: dict[str, Any]


def run_demo(
    app: App,
    customers: int,
    days: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> DemoResult:
    started = time.perf_counter()
    rng = random.Random(seed)
    slug, site_id, updates = _build_site(app, customers, rng, seed)
    worker = Worker(app, name=f"demo-{slug}")
    for day in range(days):
        with app.begin() as conn:
            for customer_id in updates.get(day, ()):
                card = tokenize(GOOD_CARD, 12, 2030)
                ledger.attach_payment_method(
                    conn, site_id, customer_id, "sandbox", card, _site_now(conn, site_id)
                )
        worker.run_until_idle()
        with app.begin() as conn:
            advance_clock(conn, site_id, timedelta(days=1))
        if progress:
            progress(day + 1)
    worker.run_until_idle()
    figures = summarize(app, site_id)
    figures["elapsed_s"] = round(time.perf_counter() - started, 3)
    return DemoResult(slug, figures)


def summarize(app: App, site_id: int) -> dict[str, Any]:
    """The demo's figures for one site, from the ledger itself."""
    with app.connect() as conn:
        failed = conn.execute(
            select(invoices.c.status, invoices.c.amount_due_minor, dunning_cycles.c.outcome)
            .join(dunning_cycles, dunning_cycles.c.invoice_id == invoices.c.id)
            .where(invoices.c.site_id == site_id)
            .where(dunning_cycles.c.started_at.is_not(None))
        ).all()
        attempts = conn.execute(
            select(func.count()).where(payment_attempts.c.site_id == site_id)
        ).scalar_one()
        messages = conn.execute(
            select(outbox.c.channel, outbox.c.status, func.count())
            .where(outbox.c.site_id == site_id, outbox.c.channel.in_(("email", "sms")))
            .group_by(outbox.c.channel, outbox.c.status)
        ).all()
    recovered = [row for row in failed if row.outcome == "recovered"]
    return {
        "invoices_failed": len(failed),
        "recovered": len(recovered),
        "recovery_rate": round(len(recovered) / len(failed), 4) if failed else 0.0,
        "recovered_amount_minor": sum(row.amount_due_minor for row in recovered),
        "by_outcome": dict(sorted(Counter(row.status for row in failed).items())),
        "attempts": attempts,
        "messages": {f"{channel}_{status}": count for channel, status, count in sorted(messages)},
    }


def _build_site(
    app: App, count: int, rng: random.Random, seed: int
) -> tuple[str, int, dict[int, list[int]]]:
    cards = [card for card, _ in CARD_MIX]
    weights = [weight for _, weight in CARD_MIX]
    updates: dict[int, list[int]] = {}
    with app.begin() as conn:
        taken = conn.execute(select(func.count()).where(sites.c.slug.like(f"demo-{seed}-%")))
        slug = f"demo-{seed}-{taken.scalar_one() + 1}"
        site_id = create_site(
            conn,
            app.clock,
            slug=slug,
            name=f"Demo shop (seed {seed})",
            mode=SiteMode.SANDBOX,
            clock_start=DEMO_EPOCH,
            support_email="support@demo.example",
        )
        plans = [
            ledger.create_product(conn, site_id, code, name, price, "USD", DEMO_EPOCH)
            for code, name, price in PLANS
        ]
        for n in range(count):
            card = rng.choices(cards, weights)[0]
            renew_day = rng.randrange(0, 28)
            starts = DEMO_EPOCH + timedelta(days=renew_day, hours=rng.randrange(0, 24))
            customer_id = add_subscriber(
                conn, site_id, f"c{n}", card, rng.choice(plans), DEMO_EPOCH, starts, number=n
            )
            if card != GOOD_CARD and rng.random() < CARD_UPDATE_SHARE:
                updates.setdefault(renew_day + rng.randrange(2, 12), []).append(customer_id)
    return slug, site_id, updates


def add_subscriber(
    conn: Connection,
    site_id: int,
    name: str,
    card: str,
    product_id: int,
    now: datetime,
    starts_at: datetime,
    number: int = 0,
) -> int:
    """A customer with a sandbox test card and a monthly subscription; returns the customer.

    Seven customers in ten have a mobile number (French, so the demo's
    09:00 UTC is 10:00 for them, inside the send window), and three in ten
    read French, Spanish or German; chosen by ``number`` so the random draws, and the figures, stay
    those of the seed.
    """
    customer_id = ledger.create_customer(
        conn,
        site_id,
        ledger.NewCustomer(
            first_name=name.capitalize(),
            last_name="Demo",
            email=f"{name}@demo.example",
            external_id=name,
            phone=f"+336{12000000 + number:08d}" if number % 10 < 7 else None,
            locale={7: "fr", 8: "es", 9: "de"}.get(number % 10, "en"),
        ),
        now,
    )
    card_details = tokenize(card, 12, now.year + 4)
    ledger.attach_payment_method(conn, site_id, customer_id, "sandbox", card_details, now)
    ledger.create_subscription(
        conn, site_id, customer_id, [ledger.Item(product_id)], now, starts_at=starts_at
    )
    return customer_id


def _site_now(conn: Any, site_id: int) -> datetime:
    now: datetime = conn.execute(
        select(sites.c.clock_now).where(sites.c.id == site_id)
    ).scalar_one()
    return now
