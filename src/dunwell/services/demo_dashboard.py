"""The sandbox site ``make run`` opens on: two months of history behind a dashboard.

Subscribers renew with the demo card mix (most cards work, some decline
softly, a few hard), a share of them update their card after the dunning
email, and some text the concierge back ("I get paid Friday", "skip next
month", "can I talk to someone"). Halfway through, the merchant saves a
second policy version with one more text, so the history has two versions
to compare. Everything runs through the real services and the real worker
on the site's test clock; one seeded generator makes it repeatable.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import select

from dunwell.bootstrap import App
from dunwell.domain.policy import policy_to_dict
from dunwell.domain.roles import Role
from dunwell.domain.states import Collection, SiteMode
from dunwell.services import ledger
from dunwell.services.concierge import answer_pending_texts
from dunwell.services.console_users import create_user
from dunwell.services.demo import PLANS, add_subscribers, simulate_days
from dunwell.services.policies import current_version, save_policy
from dunwell.services.sandbox_phone import reply_as_customer
from dunwell.services.sites import create_site, site_now
from dunwell.services.sms_credits import top_up
from dunwell.store.tables import customers, invoices

DEMO_SLUG = "demo"
#: Day 0 of the demo; the test clock ends DAYS later.
DEMO_START_DAYS_AGO = 60
TEXTING_SHARE = 0.4
#: What customers in dunning text back, and how they answer the concierge.
SCRIPTS: tuple[tuple[str, ...], ...] = (
    ("I get paid on Friday", "yes"),
    ("can you skip next month?", "yes"),
    ("please retry my card now",),
    ("how much do I owe?",),
    ("I want to talk to a person",),
    ("delay my next order by 2 weeks", "no"),
)


@dataclass(frozen=True)
class DashboardDemo:
    site_id: int
    slug: str
    #: One user per role, all with the same password.
    users: dict[Role, str]


def build_dashboard_demo(
    app: App,
    password: str,
    customers_count: int = 200,
    days: int = DEMO_START_DAYS_AGO,
    seed: int = 7,
    progress: Callable[[int], None] | None = None,
) -> DashboardDemo:
    rng = random.Random(seed)
    start = app.clock.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=days)
    with app.begin() as conn:
        site_id = create_site(
            conn,
            app.clock,
            slug=DEMO_SLUG,
            name="Demo Coffee Co.",
            mode=SiteMode.SANDBOX,
            clock_start=start,
            support_email="help@demo.example",
        )
        top_up(conn, site_id, 5_000, start, note="demo credits")
        plans = [
            ledger.create_product(conn, site_id, code, name, price, "USD", start)
            for code, name, price in PLANS
        ]
        # Sign-ups spread over the whole period, so the last fortnight's
        # failures are still in dunning when the demo ends.
        updates = add_subscribers(conn, site_id, customers_count, rng, plans, start, days)
        users = {role: f"{role.value}@demo.example" for role in Role}
        for role, email in users.items():
            create_user(conn, site_id, email, f"Demo {role.value}", role.value, password, start)
    texted: set[int] = set()

    def the_rest_of_the_day(day: int) -> None:
        _text_back(app, site_id, rng, texted)
        if day == days // 2:
            _save_second_version(app, site_id)
        if progress:
            progress(day + 1)

    simulate_days(app, site_id, days, updates, the_rest_of_the_day, worker_name="demo-dashboard")
    return DashboardDemo(site_id, DEMO_SLUG, users)


def _save_second_version(app: App, site_id: int) -> None:
    """The merchant adds a text on day 3, as many do after a month of email only.

    Saved at the end of the middle day: cycles that begin from the next day on use it.
    """
    with app.begin() as conn:
        now = site_now(conn, site_id, app.clock)
        policy = current_version(conn, site_id, Collection.AUTOMATIC).policy
        steps = tuple(
            replace(step, sms_template="payment_declined") if step.day == 3 else step
            for step in policy.steps
        )
        data = policy_to_dict(replace(policy, steps=steps))
        save_policy(conn, site_id, Collection.AUTOMATIC, data, now, note="Text on day 3 too")


def _text_back(app: App, site_id: int, rng: random.Random, texted: set[int]) -> None:
    """Some customers whose invoice is past due answer the text, once each."""
    with app.connect() as conn:
        rows = conn.execute(
            select(customers.c.id, customers.c.phone)
            .join(invoices, invoices.c.customer_id == customers.c.id)
            .where(invoices.c.site_id == site_id, invoices.c.status == "past_due")
            .where(customers.c.phone.is_not(None))
            .distinct()
            .order_by(customers.c.id)
        ).all()
    for row in rows:
        if row.id in texted:
            continue
        texted.add(row.id)
        if rng.random() >= TEXTING_SHARE:
            continue
        for text in rng.choice(SCRIPTS):
            with app.begin() as conn:
                now = site_now(conn, site_id, app.clock)
                result = reply_as_customer(conn, site_id, row.phone, text, now)
            if result.waiting_id is not None:
                answer_pending_texts(app, "demo-phone", 1, [result.waiting_id])
