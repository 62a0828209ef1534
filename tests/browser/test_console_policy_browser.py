"""The policy editor in Chromium: edit a step, watch the simulation follow, save a version."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from playwright.sync_api import Browser, expect

from dunwell.bootstrap import App
from dunwell.services import ledger
from dunwell.services.sites import create_site, site_now
from tests.browser.conftest import Server
from tests.browser.console import add_staff, dashboard_page, screenshot, sign_in

T = TypeVar("T")
Serve = Callable[[Callable[[App], T]], tuple[Server, T]]


def shop_with_owner(app: App) -> str:
    """A sandbox shop, its owner, and a customer in Paris to simulate for."""
    with app.begin() as conn:
        site = create_site(conn, app.clock, slug="corner-shop", name="Corner Shop")
        ledger.create_customer(
            conn,
            site,
            ledger.NewCustomer(first_name="Léa", email="lea@x.test", time_zone="Europe/Paris"),
            site_now(conn, site, app.clock),
        )
    return add_staff(app, site, "owner")


def test_an_owner_adds_an_sms_step_sees_the_simulation_and_saves_version_2(
    serve: Serve[str], browser: Browser
) -> None:
    server, owner = serve(shop_with_owner)
    page = dashboard_page(browser)
    sign_in(page, server.base, owner, "/dashboard/policies")
    page.get_by_role("link", name="Edit automatic policy").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Automatic invoices policy")
    simulation = page.locator("#simulation")
    expect(simulation).to_contain_text("Day 15")

    page.get_by_label("Customer (id or email").fill("lea@x.test")
    expect(simulation).to_contain_text("Europe/Paris")
    day5 = simulation.locator("li", has=page.locator("strong", has_text="Day 5"))
    expect(day5.locator("[data-kind=sms]")).to_have_count(0)
    # The first blank row becomes a text on day 5; the simulation follows live.
    page.get_by_label("Step 5 day", exact=True).fill("5")
    page.get_by_label("Step 5 SMS template").select_option("payment_declined")
    expect(day5.locator("[data-kind=sms]")).to_contain_text("SMS payment_declined")
    screenshot(page, "policy-editor-simulation")

    page.get_by_label("Note for this version").fill("a text on day 5")
    page.get_by_role("button", name="Save as version 2").click()
    expect(page.get_by_role("status")).to_have_text("Saved version 2.")
    history = page.locator("table.history tbody tr").first
    expect(history).to_contain_text("version 2")
    expect(history).to_contain_text("current")
    expect(history).to_contain_text("a text on day 5")
    expect(history).to_contain_text("d5 SMS")
    # Steps are kept in day order: the new one is now the third.
    expect(page.get_by_label("Step 3 day", exact=True)).to_have_value("5")
    expect(page.get_by_label("Step 3 SMS template")).to_have_value("payment_declined")
    screenshot(page, "policy-saved-version-2")
