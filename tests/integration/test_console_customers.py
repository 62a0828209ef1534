"""The dashboard's customers: search, one customer's file, and the invoice actions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from html import unescape
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from dunwell.bootstrap import App
from dunwell.domain.states import Collection
from dunwell.services import invoice_actions, ledger_queries
from dunwell.store import tables
from dunwell.web.console.event_words import describe_event
from tests.integration.console_helpers import assert_refused_for_the_role, signed_in_as
from tests.integration.console_support import notice_after, text_from
from tests.integration.factories import DECLINE_ALWAYS, GOOD, INSUFFICIENT, Shop

ADA = "+14155552671"


def listed(client: TestClient, q: str = "") -> set[int]:
    page = client.get("/dashboard/customers", params={"q": q})
    assert page.status_code == 200, page.text
    return {
        int(part.split('"')[0])
        for part in page.text.split('href="/dashboard/customers/')[1:]
        if part.split('"')[0].isdigit()
    }


def past_due_invoice(shop: Shop, customer_id: int, **options: Any) -> int:
    """An invoice whose first charge the sandbox gateway declined."""
    invoice = shop.invoice(customer_id, **options)
    shop.run()
    assert shop.one(tables.invoices, id=invoice).status == "past_due"
    return invoice


def test_search_finds_customers_by_name_email_or_phone(
    app: App, shop: Shop, client: TestClient
) -> None:
    ada = shop.customer(GOOD, phone=ADA, first_name="Ada", last_name="Lovelace")
    grace = shop.customer(GOOD, first_name="Grace", last_name="Hopper", email="grace@navy.test")
    signed_in_as(client, app, shop.site_id, "support")
    assert listed(client) == {ada, grace}
    assert listed(client, "ada lovelace") == {ada}
    assert listed(client, "GRACE@NAVY") == {grace}
    assert listed(client, "415-555-2671") == {ada}
    assert listed(client, "50%_") == set()  # wildcards are matched as themselves


def test_the_customer_page_shows_the_whole_file(app: App, shop: Shop, client: TestClient) -> None:
    ada = shop.customer(DECLINE_ALWAYS, phone=ADA, first_name="Ada", last_name="Lovelace")
    shop.subscribe(ada)
    shop.run()  # the first renewal is charged, declined, and dunning starts
    text_from(shop, ADA, "I get paid on friday")
    invoice = shop.all(tables.invoices, customer_id=ada)[0]
    signed_in_as(client, app, shop.site_id, "support")
    page = client.get(f"/dashboard/customers/{ada}")
    assert page.status_code == 200
    text = unescape(page.text)
    assert "Ada Lovelace" in text
    assert f'id="invoice-{invoice.id}"' in text and invoice.number in text
    assert 'data-status="past_due"' in text
    assert "1 \u00d7 Plan" in text  # the subscription's item (one of the plan)
    assert "dunning.started" in text and "Attempt 1 declined" in text  # the timeline
    messages = shop.all(tables.outbox, customer_id=ada)
    assert messages and all(f"<td>{m.id}</td>" in text for m in messages)
    assert "I get paid on friday" in text  # the chat history
    assert "Stop collecting" in text


def test_a_paused_subscription_says_who_paused_it(app: App, shop: Shop, client: TestClient) -> None:
    ada = shop.customer(GOOD, first_name="Ada", last_name="Lovelace")
    subscription = shop.subscribe(ada)
    with app.begin() as conn:
        ledger_queries.pause_subscription(conn, shop.site_id, subscription, shop.now)
    signed_in_as(client, app, shop.site_id, "support")
    text = unescape(client.get(f"/dashboard/customers/{ada}").text)
    assert "by the merchant; resume it yourself" in text


def test_another_sites_customer_is_not_found(app: App, shop: Shop, client: TestClient) -> None:
    ada = shop.customer(GOOD, first_name="Ada", last_name="Lovelace")
    other = Shop.create(app, slug="other")
    signed_in_as(client, app, other.site_id, "owner")
    assert listed(client) == set()
    assert listed(client, "lovelace") == set()
    assert client.get(f"/dashboard/customers/{ada}").status_code == 404


Act = Callable[[Any, int, int, datetime], None]
CASES: list[tuple[str, Act, str]] = [
    ("stop-collecting", invoice_actions.stop_collecting, "failed"),
    ("mark-paid", invoice_actions.mark_paid, "paid"),
    # The card still declines: a second attempt, and the invoice stays past due.
    ("collect-now", invoice_actions.collect_now, "past_due"),
]


@pytest.mark.parametrize(("action", "service", "status"), CASES)
def test_an_invoice_action_does_exactly_what_the_service_does(
    app: App, shop: Shop, client: TestClient, action: str, service: Act, status: str
) -> None:
    # Twins: one acted on through the page, one through the service.
    by_page, by_service = shop.customer(INSUFFICIENT), shop.customer(INSUFFICIENT)
    page_invoice = past_due_invoice(shop, by_page)
    service_invoice = past_due_invoice(shop, by_service)
    token = signed_in_as(client, app, shop.site_id, "support")
    done = client.post(
        f"/dashboard/invoices/{page_invoice}/{action}",
        data={"csrf": token},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"/dashboard/customers/{by_page}#invoice-{page_invoice}"
    assert "on invoice" in notice_after(client, done.headers["location"])
    if action == "collect-now":
        # The page charges at once, with no worker: the card declines a second time.
        assert [a.status for a in shop.attempts_of(page_invoice)] == ["declined", "declined"]
    shop.act(service, service_invoice)
    shop.run()
    mine, theirs = (
        shop.one(tables.invoices, id=page_invoice),
        shop.one(tables.invoices, id=service_invoice),
    )
    assert mine.status == theirs.status == status
    assert shop.cycle_of(page_invoice).phase == shop.cycle_of(service_invoice).phase
    assert shop.cycle_of(page_invoice).outcome == shop.cycle_of(service_invoice).outcome
    assert shop.event_types(page_invoice) == shop.event_types(service_invoice)
    assert len(shop.attempts_of(page_invoice)) == len(shop.attempts_of(service_invoice))


def test_reopen_opens_a_failed_manual_invoice_again(
    app: App, shop: Shop, client: TestClient
) -> None:
    customer = shop.customer(None)
    invoice = shop.invoice(customer, collection=Collection.MANUAL, net_terms_days=7)
    shop.act(invoice_actions.stop_collecting, invoice)
    assert shop.one(tables.invoices, id=invoice).status == "failed"
    token = signed_in_as(client, app, shop.site_id, "owner")
    page = client.get(f"/dashboard/customers/{customer}")
    assert f'action="/dashboard/invoices/{invoice}/reopen"' in page.text
    done = client.post(
        f"/dashboard/invoices/{invoice}/reopen", data={"csrf": token}, follow_redirects=False
    )
    assert done.status_code == 303
    assert shop.one(tables.invoices, id=invoice).status == "open"
    assert shop.event_types(invoice)[-1] == "invoice.reopened"


def test_an_action_the_invoice_state_forbids_is_refused_and_changes_nothing(
    app: App, shop: Shop, client: TestClient
) -> None:
    customer = shop.customer(GOOD)
    invoice = shop.invoice(customer)
    shop.run()
    assert shop.one(tables.invoices, id=invoice).status == "paid"
    token = signed_in_as(client, app, shop.site_id, "support")
    events = shop.event_types(invoice)
    refused = client.post(f"/dashboard/invoices/{invoice}/stop-collecting", data={"csrf": token})
    assert refused.status_code == 409
    assert f"cannot stop collecting on invoice {invoice}: it is paid" in unescape(refused.text)
    assert shop.one(tables.invoices, id=invoice).status == "paid"
    assert shop.event_types(invoice) == events
    unknown = client.post(f"/dashboard/invoices/{invoice}/delete", data={"csrf": token})
    assert unknown.status_code == 404


def test_invoice_actions_need_the_permission(app: App, shop: Shop, client: TestClient) -> None:
    customer = shop.customer(INSUFFICIENT)
    invoice = past_due_invoice(shop, customer)
    # A real token of the session: the 403s below come from the role check alone.
    token = signed_in_as(client, app, shop.site_id, "analytics")
    assert_refused_for_the_role(client.get(f"/dashboard/customers/{customer}"))
    for action in ("stop-collecting", "mark-paid", "collect-now"):
        refused = client.post(f"/dashboard/invoices/{invoice}/{action}", data={"csrf": token})
        assert refused.status_code == 403
        assert "does not allow this" in refused.text, action
    assert shop.one(tables.invoices, id=invoice).status == "past_due"
    assert len(shop.attempts_of(invoice)) == 1


def test_another_sites_invoice_is_not_found_and_unchanged(
    app: App, shop: Shop, client: TestClient
) -> None:
    customer = shop.customer(INSUFFICIENT)
    invoice = past_due_invoice(shop, customer)
    other = Shop.create(app, slug="other")
    token = signed_in_as(client, app, other.site_id, "owner")
    for action in ("stop-collecting", "mark-paid", "collect-now", "reopen"):
        refused = client.post(f"/dashboard/invoices/{invoice}/{action}", data={"csrf": token})
        assert refused.status_code == 404, action
    assert shop.one(tables.invoices, id=invoice).status == "past_due"
    assert len(shop.attempts_of(invoice)) == 1


def test_times_in_an_events_words_are_in_the_pages_zone() -> None:
    """Stored in UTC, shown in the site's zone as every other time on the page."""
    zone = ZoneInfo("America/Los_Angeles")
    promised = {"retry_at": "2026-03-04T09:00:00+00:00"}
    words = describe_event("invoice.promise_to_pay", promised, zone)
    assert words == "Promised to pay; retry at 2026-03-04 01:00"
    # An event without words of its own: its times too, and nothing else changed.
    other = {"held_until_at": "2026-03-04T09:00:00+00:00", "on": "2026-03-04", "reason": "x"}
    assert describe_event("invoice.held", other, zone) == (
        "held until at: 2026-03-04 01:00, on: 2026-03-04, reason: x"
    )


def test_a_promise_to_pay_is_shown_in_the_sites_zone(
    app: App, shop: Shop, client: TestClient
) -> None:
    with app.begin() as conn:
        conn.execute(
            tables.sites.update()
            .where(tables.sites.c.id == shop.site_id)
            .values(time_zone="America/Los_Angeles")
        )
    customer = shop.customer(DECLINE_ALWAYS)
    invoice = past_due_invoice(shop, customer)
    at = datetime(2026, 3, 4, 9, tzinfo=UTC)
    assert shop.act(invoice_actions.promise_to_pay, invoice, at) == at
    signed_in_as(client, app, shop.site_id, "support")
    page = unescape(client.get(f"/dashboard/customers/{customer}").text)
    assert "Promised to pay; retry at 2026-03-04 01:00" in page
    assert "+00:00" not in page
