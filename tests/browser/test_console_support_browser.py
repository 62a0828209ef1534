"""Support work in a real browser against the real server (run without a worker process).

A conversation on the sandbox phone, the test clock moving an invoice into
dunning, and stopping collection from the customer page. Each flow keeps a
screenshot.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from playwright.sync_api import Browser, Dialog, expect
from sqlalchemy import select

from dunwell.bootstrap import App
from dunwell.gateways.sandbox import tokenize
from dunwell.services import ledger
from dunwell.services.sites import create_site, site_now
from dunwell.store import tables
from dunwell.worker import Worker
from tests.browser.conftest import Server
from tests.browser.console import add_staff, dashboard_page, screenshot, sign_in
from tests.integration.factories import DECLINE_ALWAYS, GOOD

T = TypeVar("T")
Serve = Callable[[Callable[[App], T]], tuple[Server, T]]
PHONE = "+33612000000"


@dataclass(frozen=True)
class Seeded:
    email: str
    customer_id: int
    invoice_id: int | None = None


def _shop(app: App, card: str, phone: str | None = None) -> tuple[int, int, int]:
    """A sandbox coffee shop in Paris with one customer, Ada, and her card."""
    with app.begin() as conn:
        site = create_site(
            conn, app.clock, slug="coffee", name="Coffee Club", time_zone="Europe/Paris"
        )
        now = site_now(conn, site, app.clock)
        product = ledger.create_product(conn, site, "roast", "Dark Roast", 1800, "USD", now)
        customer = ledger.create_customer(
            conn,
            site,
            ledger.NewCustomer(
                first_name="Ada", last_name="Lovelace", email="ada@x.test", phone=phone
            ),
            now,
        )
        ledger.attach_payment_method(conn, site, customer, "sandbox", tokenize(card, 12, 2031), now)
    return site, customer, product


def subscriber_with_a_phone(app: App) -> Seeded:
    site, customer, product = _shop(app, GOOD, PHONE)
    with app.begin() as conn:
        now = site_now(conn, site, app.clock)
        ledger.create_subscription(
            conn, site, customer, [ledger.Item(product)], now, starts_at=now + timedelta(days=9)
        )
    return Seeded(add_staff(app, site, "support"), customer)


def invoice_due_now(app: App) -> Seeded:
    """An invoice due now on a card that always declines; nothing has charged it yet."""
    site, customer, _ = _shop(app, DECLINE_ALWAYS)
    with app.begin() as conn:
        invoice = ledger.create_invoice(
            conn, site, customer, 4200, "USD", site_now(conn, site, app.clock), number="INV-42"
        )
    return Seeded(add_staff(app, site, "support"), customer, invoice)


def invoice_in_dunning(app: App) -> Seeded:
    seeded = invoice_due_now(app)
    Worker(app, name="seed").run_until_idle()
    return seeded


def invoice_status(server: Server, invoice_id: int) -> str:
    app = server.app()
    try:
        with app.connect() as conn:
            return str(
                conn.execute(
                    select(tables.invoices.c.status).where(tables.invoices.c.id == invoice_id)
                ).scalar_one()
            )
    finally:
        app.close()


def test_a_conversation_on_the_sandbox_phone(serve: Serve[Seeded], browser: Browser) -> None:
    server, seeded = serve(subscriber_with_a_phone)
    page = dashboard_page(browser)
    sign_in(page, server.base, seeded.email, "/dashboard/sandbox")
    expect(page.get_by_role("heading", name="Sandbox", level=1)).to_be_visible()

    page.get_by_label("Text from number").fill(PHONE)
    page.get_by_label("Message").fill("skip next month")
    page.get_by_role("button", name="Text as the customer").click()
    thread = page.locator(f'[id="phone-{PHONE}"]')
    expect(thread).to_contain_text("skip next month")
    expect(thread).to_contain_text("Skip your order")
    expect(page.get_by_role("status")).to_contain_text("Skip your order")

    thread.get_by_label(f"Reply as {PHONE}").fill("yes")
    thread.get_by_role("button", name="Reply").click()
    expect(thread.locator(".bubble").first).to_contain_text("Done! Your order is skipped.")
    screenshot(page, "console-sandbox-phone")

    # The inbox holds the same conversation, with how each text was read.
    page.get_by_role("link", name="Inbox").click()
    page.get_by_role("link", name="Ada Lovelace").click()
    expect(page.get_by_text("skip order").first).to_be_visible()
    expect(page.locator(".understanding").first).to_contain_text("rules")
    screenshot(page, "console-inbox-conversation")
    page.context.close()


def test_advancing_the_test_clock_moves_the_invoice_into_dunning(
    serve: Serve[Seeded], browser: Browser
) -> None:
    server, seeded = serve(invoice_due_now)
    page = dashboard_page(browser)
    customer_page = f"{server.base}/dashboard/customers/{seeded.customer_id}"
    sign_in(page, server.base, seeded.email, f"/dashboard/customers/{seeded.customer_id}")
    row = page.locator(f"#invoice-{seeded.invoice_id}")
    expect(row).to_contain_text("INV-42")
    expect(row).to_contain_text("open")

    page.get_by_role("link", name="Sandbox").click()
    before = page.locator("#test-clock").inner_text()
    page.get_by_role("button", name="Advance 1d").click()
    expect(page.get_by_role("status")).to_contain_text("Test clock advanced by 1d")
    expect(page.locator("#test-clock")).not_to_have_text(before)
    expect(page.get_by_role("link", name=re.compile("payment"))).not_to_have_count(0)

    page.goto(customer_page)
    row = page.locator(f"#invoice-{seeded.invoice_id}")
    expect(row).to_contain_text("past due")
    expect(row.locator("td").nth(5)).to_contain_text("1")  # one attempt, declined
    expect(page.locator(".timeline")).to_contain_text("Attempt 1 declined")
    assert invoice_status(server, seeded.invoice_id or 0) == "past_due"
    screenshot(page, "console-sandbox-clock-advanced")
    page.context.close()


def test_stopping_collection_from_the_customer_page(serve: Serve[Seeded], browser: Browser) -> None:
    server, seeded = serve(invoice_in_dunning)
    page = dashboard_page(browser)
    sign_in(page, server.base, seeded.email, "/dashboard/customers")
    page.get_by_label("Name, email or phone").fill("lovelace")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Ada Lovelace").click()
    row = page.locator(f"#invoice-{seeded.invoice_id}")
    expect(row).to_contain_text("past due")

    asked: list[str] = []

    def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    row.get_by_role("button", name="Stop collecting").click()
    expect(page.get_by_role("status")).to_have_text("Collection stopped on invoice INV-42.")
    expect(row).to_contain_text("failed")
    expect(row.get_by_role("button", name="Stop collecting")).to_have_count(0)
    assert asked and "Stop collecting invoice INV-42?" in asked[0]
    assert invoice_status(server, seeded.invoice_id or 0) == "failed"
    screenshot(page, "console-customer-stop-collecting")
    page.context.close()
