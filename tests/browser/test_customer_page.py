"""The customer page in a real browser, with JavaScript off, against the real server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from babel.dates import format_date
from playwright.sync_api import Page, expect

from dunwell.bootstrap import App
from dunwell.domain.intervals import IntervalUnit, period_start
from dunwell.gateways.sandbox import tokenize
from dunwell.services import ledger
from dunwell.services.hosted_links import portal_url
from dunwell.services.sites import create_site, site_now
from tests.browser.conftest import Server
from tests.integration.factories import GOOD

T = TypeVar("T")
Serve = Callable[[Callable[[App], T]], tuple[Server, T]]


@dataclass(frozen=True)
class Subscriber:
    link: str
    subscription_id: int
    next_charge_at: datetime


def subscriber(app: App) -> Subscriber:
    """A monthly coffee subscription whose next order is ten days away (customer in UTC)."""
    with app.begin() as conn:
        site = create_site(conn, app.clock, slug="roastery", name="The Roastery")
        now = site_now(conn, site, app.clock)
        customer = ledger.create_customer(
            conn,
            site,
            ledger.NewCustomer(first_name="Ada", email="ada@x.test", time_zone="UTC"),
            now,
        )
        ledger.attach_payment_method(conn, site, customer, "sandbox", tokenize(GOOD, 12, 2031), now)
        beans = ledger.create_product(conn, site, "beans", "Coffee beans", 1800, "USD", now)
        starts = now + timedelta(days=10)
        sub = ledger.create_subscription(
            conn, site, customer, [ledger.Item(beans, 2)], now, starts_at=starts
        )
    link = portal_url(app.links(), app.settings.public_url, site, customer)
    return Subscriber(link, sub, starts)


def long_date(at: datetime) -> str:
    return str(format_date(at.date(), "long", locale="en"))


def in_a_month(at: datetime) -> datetime:
    return period_start(at, IntervalUnit.MONTH, 1, 1)


def test_skipping_the_next_order_shows_the_new_date(serve: Serve[Subscriber], page: Page) -> None:
    _, seeded = serve(subscriber)
    page.goto(seeded.link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your subscriptions")
    next_date = page.locator(f"#s{seeded.subscription_id}-next-date")
    expect(next_date).to_have_text(long_date(seeded.next_charge_at))
    expect(page.get_by_role("row", name="Coffee beans")).to_contain_text("$36.00")

    page.get_by_role("button", name="Skip next order").click()

    skipped_to = long_date(in_a_month(seeded.next_charge_at))
    expect(page.get_by_role("status")).to_have_text(
        f"Done. Your next order is now on {skipped_to}."
    )
    expect(next_date).to_have_text(skipped_to)


def test_cancelling_first_offers_a_delay_which_keeps_the_subscription(
    serve: Serve[Subscriber], page: Page
) -> None:
    _, seeded = serve(subscriber)
    page.goto(seeded.link)
    page.get_by_role("link", name="Cancel this subscription").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel your subscription?")
    page.get_by_role("button", name="Delay my next order by 1 month").click()

    delayed_to = long_date(in_a_month(seeded.next_charge_at))
    expect(page.get_by_role("status")).to_contain_text(delayed_to)
    expect(page.get_by_text("Status: Active")).to_be_visible()
