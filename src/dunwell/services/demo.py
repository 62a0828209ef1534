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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, select

from dunwell.bootstrap import App
from dunwell.domain.states import SiteMode
from dunwell.gateways.sandbox import tokenize
from dunwell.services import ledger
from dunwell.services.sites import advance_clock, create_site, site_now
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
#: ``dunwell demo`` subscribers renew over the first four weeks.
RENEWAL_DAYS = 28
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
    simulate_days(
        app,
        site_id,
        days,
        updates,
        (lambda day: progress(day + 1)) if progress else None,
        worker_name=f"demo-{slug}",
    )
    figures = summarize(app, site_id)
    figures["elapsed_s"] = round(time.perf_counter() - started, 3)
    return DemoResult(slug, figures)


def simulate_days(
    app: App,
    site_id: int,
    days: int,
    updates: Mapping[int, Sequence[int]],
    on_day: Callable[[int], None] | None = None,
    *,
    worker_name: str = "demo",
) -> None:
    """Live ``days`` days on a sandbox site's test clock, then let the worker finish.

    Each day: the customers in ``updates[day]`` attach a working card, the
    worker does everything due, ``on_day(day)`` adds whatever else happens
    that day, and the clock moves on a day.
    """
    worker = Worker(app, name=worker_name)
    for day in range(days):
        with app.begin() as conn:
            now = site_now(conn, site_id, app.clock)
            for customer_id in updates.get(day, ()):
                card = tokenize(GOOD_CARD, 12, now.year + 4)
                ledger.attach_payment_method(conn, site_id, customer_id, "sandbox", card, now)
        worker.run_until_idle()
        if on_day:
            on_day(day)
        with app.begin() as conn:
            advance_clock(conn, site_id, timedelta(days=1))
    worker.run_until_idle()


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
        updates = add_subscribers(conn, site_id, count, rng, plans, DEMO_EPOCH, RENEWAL_DAYS)
    return slug, site_id, updates


def add_subscribers(
    conn: Connection,
    site_id: int,
    count: int,
    rng: random.Random,
    plans: Sequence[int],
    start: datetime,
    spread_days: int,
) -> dict[int, list[int]]:
    """``count`` subscribers with the demo card mix, renewing over ``spread_days`` from ``start``.

    Returns who fixes their card on which day (counted from ``start``); the
    random draws are made in one fixed order, so a seed gives the same site.
    """
    cards = [card for card, _ in CARD_MIX]
    weights = [weight for _, weight in CARD_MIX]
    updates: dict[int, list[int]] = {}
    for n in range(count):
        card = rng.choices(cards, weights)[0]
        renew_day = rng.randrange(0, spread_days)
        starts = start + timedelta(days=renew_day, hours=rng.randrange(0, 24))
        customer_id = add_subscriber(
            conn, site_id, f"c{n}", card, rng.choice(plans), start, starts, number=n
        )
        if card != GOOD_CARD and rng.random() < CARD_UPDATE_SHARE:
            updates.setdefault(renew_day + rng.randrange(2, 12), []).append(customer_id)
    return updates


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
