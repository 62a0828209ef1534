"""The dashboard's sandbox: the test clock, the sandbox phone and mailbox."""

from __future__ import annotations

from datetime import timedelta
from html import unescape

from fastapi.testclient import TestClient

from dunwell.bootstrap import App
from dunwell.domain.states import SiteMode
from dunwell.services.sites import create_site
from dunwell.store import tables
from tests.integration.console_helpers import assert_refused_for_the_role, signed_in_as
from tests.integration.console_support import notice_after
from tests.integration.factories import DECLINE_ALWAYS, GOOD, Shop

ADA = "+14155552671"


def test_advancing_moves_the_clock_by_exactly_that_and_does_what_became_due(
    app: App, shop: Shop, client: TestClient
) -> None:
    customer = shop.customer(DECLINE_ALWAYS, first_name="Ada")
    invoice = shop.invoice(customer)  # due now; no worker has run
    assert shop.one(tables.invoices, id=invoice).status == "open"
    token = signed_in_as(client, app, shop.site_id, "support")
    start = shop.now
    moved = client.post(
        "/dashboard/sandbox/clock", data={"csrf": token, "by": "1h"}, follow_redirects=False
    )
    assert moved.status_code == 303
    assert shop.now == start + timedelta(hours=1)
    # The page ran the worker: the charge was declined and dunning began.
    assert shop.one(tables.invoices, id=invoice).status == "past_due"
    assert [a.status for a in shop.attempts_of(invoice)] == ["declined"]
    assert shop.cycle_of(invoice).next_run_at is not None
    notice = unescape(notice_after(client, moved.headers["location"]))
    assert "Test clock advanced by 1h to 2026-03-02 10:00 UTC" in notice
    custom = client.post(
        "/dashboard/sandbox/clock", data={"csrf": token, "by": "1d12h"}, follow_redirects=False
    )
    assert custom.status_code == 303
    assert shop.now == start + timedelta(days=1, hours=13)
    # The dunning emails were delivered into the sandbox mailbox on the way.
    assert shop.all(tables.sandbox_messages, channel="email")


def test_a_bad_duration_names_the_field_and_leaves_the_clock(
    app: App, shop: Shop, client: TestClient
) -> None:
    token = signed_in_as(client, app, shop.site_id, "owner")
    start = shop.now
    for bad in ("soon", "", "-1d"):
        refused = client.post("/dashboard/sandbox/clock", data={"csrf": token, "by": bad})
        assert refused.status_code == 422, bad
        assert "Advance by:" in refused.text
    assert shop.now == start


def test_a_live_site_has_no_sandbox(app: App, client: TestClient) -> None:
    with app.begin() as conn:
        live = create_site(conn, app.clock, slug="live", name="Live Co", mode=SiteMode.LIVE)
    token = signed_in_as(client, app, live, "owner")
    page = client.get("/dashboard/sandbox")
    assert page.status_code == 409
    assert "live site" in page.text
    assert 'href="/dashboard/sandbox"' not in page.text  # not offered in the navigation
    for path, form in (
        ("/dashboard/sandbox/clock", {"by": "1d"}),
        ("/dashboard/sandbox/phone/reply", {"from": ADA, "body": "hello"}),
    ):
        refused = client.post(path, data={"csrf": token, **form})
        assert refused.status_code == 409, path
    assert client.get("/dashboard/sandbox/mail/1").status_code == 409
    with app.connect() as conn:
        assert (
            conn.execute(tables.sites.select().where(tables.sites.c.id == live)).one().clock_now
            is None
        )
        assert conn.execute(tables.inbound_messages.select()).first() is None


def test_replying_as_the_customer_gets_the_concierges_answer_in_the_phone(
    app: App, shop: Shop, client: TestClient
) -> None:
    customer = shop.customer(GOOD, phone=ADA, first_name="Ada", last_name="Lovelace")
    shop.subscribe(customer, starts_at=shop.now + timedelta(days=9))
    token = signed_in_as(client, app, shop.site_id, "support")
    sent = client.post(
        "/dashboard/sandbox/phone/reply",
        data={"csrf": token, "from": ADA, "body": "please skip my next order"},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    [question] = shop.all(tables.sandbox_messages, direction="outbound", to_addr=ADA)
    assert "Skip your order" in question.body_text
    assert "Skip your order" in unescape(notice_after(client, sent.headers["location"]))
    page = unescape(client.get("/dashboard/sandbox").text)
    assert page.index(question.body_text) < page.index("please skip my next order")  # newest first
    client.post("/dashboard/sandbox/phone/reply", data={"csrf": token, "from": ADA, "body": "yes"})
    answers = shop.all(tables.sandbox_messages, direction="outbound", to_addr=ADA)
    assert answers[-1].body_text.startswith("Done! Your order is skipped.")


def test_an_empty_text_is_refused_naming_the_field(
    app: App, shop: Shop, client: TestClient
) -> None:
    token = signed_in_as(client, app, shop.site_id, "support")
    refused = client.post(
        "/dashboard/sandbox/phone/reply", data={"csrf": token, "from": ADA, "body": " "}
    )
    assert refused.status_code == 422
    assert "body: a text cannot be empty" in refused.text
    assert shop.all(tables.sandbox_messages) == []


def test_the_mailbox_lists_and_shows_an_email_as_text(
    app: App, shop: Shop, client: TestClient
) -> None:
    customer = shop.customer(DECLINE_ALWAYS, first_name="Ada", email="ada@x.test")
    shop.invoice(customer)
    shop.run()  # the decline sends the first dunning email
    [mail] = shop.all(tables.sandbox_messages, channel="email")
    signed_in_as(client, app, shop.site_id, "support")
    listing = client.get("/dashboard/sandbox")
    assert f'href="/dashboard/sandbox/mail/{mail.id}"' in listing.text
    page = client.get(f"/dashboard/sandbox/mail/{mail.id}")
    assert page.status_code == 200
    text = unescape(page.text)
    assert mail.subject in text and "ada@x.test" in text
    assert mail.body_text.strip().splitlines()[0] in text
    # The dunning email has an HTML part, shown as source: its markup never becomes the page's.
    assert mail.body_html
    assert "&lt;" in page.text
    assert mail.body_html not in page.text
    assert client.get("/dashboard/sandbox/mail/999999").status_code == 404


def test_another_sites_mail_is_not_found(app: App, shop: Shop, client: TestClient) -> None:
    customer = shop.customer(DECLINE_ALWAYS)
    shop.invoice(customer)
    shop.run()
    [mail] = shop.all(tables.sandbox_messages, channel="email")
    other = Shop.create(app, slug="other")
    signed_in_as(client, app, other.site_id, "owner")
    assert client.get(f"/dashboard/sandbox/mail/{mail.id}").status_code == 404
    assert f"/dashboard/sandbox/mail/{mail.id}" not in client.get("/dashboard/sandbox").text


def test_the_sandbox_needs_its_permission(app: App, shop: Shop, client: TestClient) -> None:
    # A real token of the session: the 403s below come from the role check alone.
    token = signed_in_as(client, app, shop.site_id, "analytics")
    start = shop.now
    assert_refused_for_the_role(client.get("/dashboard/sandbox"))
    refused = client.post("/dashboard/sandbox/clock", data={"csrf": token, "by": "1d"})
    assert refused.status_code == 403
    assert "does not allow this" in refused.text
    assert shop.now == start
