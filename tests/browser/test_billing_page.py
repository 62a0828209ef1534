"""The billing page in a real browser, with JavaScript off, against the real server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from playwright.sync_api import Page, expect
from sqlalchemy import select

from dunwell.bootstrap import App
from dunwell.gateways.sandbox import tokenize
from dunwell.services import ledger
from dunwell.services.sites import create_site, site_now
from dunwell.store import tables
from dunwell.worker import Worker
from tests.browser.conftest import Server
from tests.integration.factories import DECLINE_ALWAYS

T = TypeVar("T")
Serve = Callable[[Callable[[App], T]], tuple[Server, T]]


@dataclass(frozen=True)
class Dunning:
    link: str
    customer_id: int
    invoice_number: str


def customer_in_dunning(app: App) -> Dunning:
    """A sandbox shop whose customer's card declined an invoice of $42.00."""
    with app.begin() as conn:
        site = create_site(conn, app.clock, slug="corner-shop", name="Corner Shop")
        now = site_now(conn, site, app.clock)
        customer = ledger.create_customer(
            conn, site, ledger.NewCustomer(first_name="Ada", email="ada@x.test"), now
        )
        card = tokenize(DECLINE_ALWAYS, 12, 2031)
        ledger.attach_payment_method(conn, site, customer, "sandbox", card, now)
        invoice = ledger.create_invoice(conn, site, customer, 4200, "USD", now, number="INV-42")
    Worker(app, name="seed").run_until_idle()
    with app.connect() as conn:
        status = conn.execute(
            select(tables.invoices.c.status).where(tables.invoices.c.id == invoice)
        ).scalar_one()
    assert status == "past_due"
    link = app.links().billing_url(site, customer, invoice)
    return Dunning(link, customer, "INV-42")


def cards_of(server: Server, customer_id: int) -> int:
    app = server.app()
    try:
        with app.connect() as conn:
            rows = conn.execute(
                select(tables.payment_methods.c.id).where(
                    tables.payment_methods.c.customer_id == customer_id
                )
            )
            return len(rows.all())
    finally:
        app.close()


def test_a_new_test_card_pays_the_past_due_invoice_and_the_page_says_so(
    serve: Serve[Dunning], page: Page
) -> None:
    server, seeded = serve(customer_in_dunning)
    page.goto(seeded.link)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your payment details")
    row = page.get_by_role("row", name="INV-42")
    expect(row).to_contain_text("Past due")
    expect(row).to_contain_text("$42.00")
    expect(page.get_by_text("Visa ending in 0341")).to_be_visible()

    page.get_by_label("Card number").fill("4111 1111 1111 1111")
    page.get_by_label("Month").fill("12")
    page.get_by_label("Year").fill("2031")
    page.get_by_label("Security code").fill("123")
    page.get_by_role("button", name="Save card and pay now").click()

    expect(page.get_by_role("status")).to_contain_text("Your new card has been saved")
    expect(page.locator(".result--paid")).to_have_text("Invoice INV-42: Paid. Thank you.")
    expect(page.get_by_text("You owe nothing at the moment")).to_be_visible()
    expect(page.get_by_label("Card number")).to_have_value("")
    assert "saved=1" in page.url  # redirected after the post
    page.reload()  # a GET: nothing is posted again
    expect(page.locator(".result--paid")).to_have_count(1)
    assert cards_of(server, seeded.customer_id) == 2


def test_a_wrong_number_is_announced_with_its_field_and_keeps_the_focus_order(
    serve: Serve[Dunning], page: Page
) -> None:
    _, seeded = serve(customer_in_dunning)
    page.goto(seeded.link)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()

    number = page.get_by_label("Card number")
    number.fill("4111 1111 1111 1112")
    page.get_by_label("Month").fill("12")
    page.get_by_label("Year").fill("2031")
    page.get_by_label("Security code").fill("123")
    page.get_by_role("button", name="Save card and pay now").click()

    expect(page.get_by_role("alert")).to_contain_text("This card number is not valid")
    expect(number).to_have_attribute("aria-invalid", "true")
    expect(number).to_have_accessible_description(
        "The long number on the front of your card. Error: This card number is not valid;"
        " check for a typing error."
    )
    expect(number).to_have_value("")
    expect(page.get_by_label("Month")).to_have_value("12")

    # Tab order follows the form: number, month, year, security code, button.
    number.focus()
    for name in ("Month", "Year", "Security code"):
        page.keyboard.press("Tab")
        expect(page.get_by_label(name)).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Save card and pay now")).to_be_focused()
