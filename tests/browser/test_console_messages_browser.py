"""The messages page in a real browser: find the email a relay refused and resend it.

The seed sends a dunning email through a real SMTP relay (aiosmtpd) that
refuses it for good; the server then runs without a worker, so the resent
message waits in the queue where the page shows it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from playwright.sync_api import Browser, expect
from sqlalchemy import select

from dunwell.bootstrap import App
from dunwell.gateways.sandbox import tokenize
from dunwell.services import ledger
from dunwell.services.channel_config import save_channel_config
from dunwell.services.sites import create_site, site_now
from dunwell.store import tables
from dunwell.worker import Worker
from tests.browser.conftest import Server
from tests.browser.console import add_staff, dashboard_page, screenshot, sign_in
from tests.integration.factories import DECLINE_ALWAYS
from tests.integration.smtp_server import SmtpServer

T = TypeVar("T")
Serve = Callable[[Callable[[App], T]], tuple[Server, T]]


@dataclass(frozen=True)
class Seeded:
    email: str
    message_id: int


def refused_dunning_email(app: App) -> Seeded:
    """A shop whose relay refused the first dunning email to Ada (550)."""
    with SmtpServer() as relay:
        relay.reject("ada@x.test", 550, "Mailbox unavailable")
        with app.begin() as conn:
            site = create_site(conn, app.clock, slug="coffee", name="Coffee Club")
            now = site_now(conn, site, app.clock)
            config = {"host": "127.0.0.1", "port": relay.port, "security": "none"}
            config["from_addr"] = "billing@coffee.example"
            save_channel_config(conn, site, "email", "smtp", config, None, app.secret_box(), now)
            customer = ledger.create_customer(
                conn, site, ledger.NewCustomer(first_name="Ada", email="ada@x.test"), now
            )
            card = tokenize(DECLINE_ALWAYS, 12, 2031)
            ledger.attach_payment_method(conn, site, customer, "sandbox", card, now)
            ledger.create_invoice(conn, site, customer, 4200, "USD", now, number="INV-42")
        Worker(app, name="seed").run_until_idle()
    o = tables.outbox
    with app.connect() as conn:
        message = conn.execute(
            select(o.c.id).where(o.c.channel == "email", o.c.status == "failed")
        ).scalar_one()
    return Seeded(add_staff(app, site, "support"), message)


def message_status(server: Server, message_id: int) -> str:
    app = server.app()
    try:
        with app.connect() as conn:
            o = tables.outbox
            return str(conn.execute(select(o.c.status).where(o.c.id == message_id)).scalar_one())
    finally:
        app.close()


def test_a_refused_email_is_found_and_resent(serve: Serve[Seeded], browser: Browser) -> None:
    server, seeded = serve(refused_dunning_email)
    page = dashboard_page(browser)
    sign_in(page, server.base, seeded.email)
    expect(page.locator("#failed-messages")).to_be_visible()
    page.get_by_role("link", name="See the failed messages").click()
    row = page.locator(f"#message-{seeded.message_id}")
    expect(row).to_contain_text("ada@x.test")
    expect(row).to_contain_text("550 Mailbox unavailable")
    screenshot(page, "console-messages-failed")

    row.get_by_role("button", name="Resend").click()
    expect(page.get_by_role("status")).to_have_text(f"Message {seeded.message_id} is queued again.")
    expect(page.locator(f"#message-{seeded.message_id}")).to_have_count(0)  # no longer failed
    assert message_status(server, seeded.message_id) == "pending"

    page.get_by_label("Status").select_option("pending")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(f"#message-{seeded.message_id}")).to_contain_text("pending")
    page.context.close()
