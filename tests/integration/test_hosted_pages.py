"""The hosted billing page and customer page over HTTP (no browser).

Each test builds its shop through the real services, opens the pages with
a signed link as a customer would, and posts the forms the page rendered.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import pytest
import stripe
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dunwell.bootstrap import App
from dunwell.clock import FixedClock
from dunwell.domain.intervals import IntervalUnit, period_start
from dunwell.gateways.base import CardDetails
from dunwell.security.links import LinkClaims
from dunwell.services import ledger
from dunwell.services.errors import InvalidInput
from dunwell.services.hosted_links import portal_url, revoke_links
from dunwell.services.portal_rules import load_portal_rules, set_portal_rules
from dunwell.services.stripe_setup import CardSetupError, SetupStart, StripeCardSetup
from dunwell.services.subscription_changes import Changer, change_next_date, skip_next_order
from dunwell.store import tables
from dunwell.web.csrf import FormSigner
from tests.integration.factories import DECLINE_ALWAYS, GOOD, INSUFFICIENT, Shop

# -- helpers -------------------------------------------------------------------------


def billing_path(shop: Shop, customer_id: int, invoice_id: int | None = None) -> str:
    url = shop.app.links().billing_url(shop.site_id, customer_id, invoice_id)
    return "/billing/" + url.rsplit("/", 1)[1]


def portal_path(shop: Shop, customer_id: int) -> str:
    app = shop.app
    url = portal_url(app.links(), "", shop.site_id, customer_id)
    return url


def form_token(page: str, action: str) -> str:
    """The form token of the form that posts to ``action``."""
    found = re.search(
        rf'<form[^>]*action="{re.escape(action)}"[^>]*>\s*<input type="hidden" name="csrf" '
        r'value="([^"]+)"',
        page,
    )
    assert found, f"no form posting to {action}"
    return found.group(1)


def in_dunning(shop: Shop, card: str = DECLINE_ALWAYS, **fields: Any) -> tuple[int, int]:
    """A customer whose invoice of 50.00 was declined: (customer, invoice)."""
    customer = shop.customer(card=card, **fields)
    invoice = shop.invoice(customer, 5000)
    shop.run()
    assert shop.one(tables.invoices, id=invoice).status == "past_due"
    return customer, invoice


def post_card(client: TestClient, path: str, number: str, **fields: str) -> Any:
    token = form_token(client.get(path).text, path)
    data = {"csrf": token, "number": number, "exp_month": "12", "exp_year": "2031", "cvc": "123"}
    return client.post(path, data={**data, **fields}, follow_redirects=False)


def subscribed(shop: Shop, **fields: Any) -> tuple[int, int, str]:
    """A customer with a monthly subscription whose next order is in 5 days."""
    customer = shop.customer(**fields)
    sub = shop.subscribe(customer, starts_at=shop.now + timedelta(days=5))
    return customer, sub, portal_path(shop, customer)


def change(client: TestClient, path: str, sub: int, action: str, **data: str) -> Any:
    page = client.get(f"{path}/subscriptions/{sub}/cancel" if action == "cancel" else path).text
    token = form_token(page, f"{path}/subscriptions/{sub}/{action}")
    return client.post(
        f"{path}/subscriptions/{sub}/{action}", data={"csrf": token, **data}, follow_redirects=False
    )


def events(shop: Shop, type_: str) -> list[Any]:
    return [e for e in shop.all(tables.events, site_id=shop.site_id) if e.type == type_]


# -- links ---------------------------------------------------------------------------


def test_a_forged_link_gets_a_403_page_that_names_no_one(shop: Shop, client: TestClient) -> None:
    customer, _ = in_dunning(shop, first_name="Grace")
    path = billing_path(shop, customer)
    forged = path[:-3] + ("AAA" if not path.endswith("AAA") else "BBB")
    for url in (forged, "/billing/not-a-token", forged.replace("/billing/", "/portal/")):
        response = client.get(url)
        assert response.status_code == 403
        assert "This link is not valid" in response.text
        assert "Grace" not in response.text and "shop Inc." not in response.text


def test_an_expired_link_gets_a_410_page(shop: Shop, client: TestClient, app: App) -> None:
    customer, _ = in_dunning(shop, first_name="Grace")
    now = app.clock.now()
    token = app.links().token(
        LinkClaims(shop.site_id, customer, None, now - timedelta(days=31), now)
    )
    response = client.get(f"/billing/{token}")
    assert response.status_code == 410
    assert "This link has expired" in response.text and "Grace" not in response.text


def test_a_link_sent_from_a_sandbox_site_whose_clock_runs_ahead_lasts_30_real_days(
    shop: Shop, client: TestClient, app: App
) -> None:
    # The test clock is four months ahead; links are judged by the real
    # clock, so they must be stamped with it too, or they would live on for
    # four months more.
    shop.advance(120)
    _, invoice = in_dunning(shop, first_name="Grace")
    (email,) = [m for m in shop.outbox_of(invoice) if m.channel == "email"]
    found = re.search(r"/billing/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", email.body_text)
    assert found is not None
    path = f"/billing/{found.group(1)}"
    start = app.clock.now()

    app.clock.set(start + timedelta(days=29))
    assert client.get(path).status_code == 200
    app.clock.set(start + timedelta(days=31))
    assert client.get(path).status_code == 410


def test_links_issued_before_a_revocation_get_a_410_page_and_newer_ones_work(
    shop: Shop, client: TestClient, app: App
) -> None:
    customer, _ = in_dunning(shop)
    old = billing_path(shop, customer)
    with app.begin() as conn:
        revoke_links(
            conn, shop.site_id, customer, FixedClock(app.clock.now() + timedelta(seconds=1))
        )
    assert client.get(old).status_code == 410
    assert client.get(old.replace("/billing/", "/portal/")).status_code == 410
    later = app.links().token(
        LinkClaims(
            shop.site_id,
            customer,
            None,
            shop.now + timedelta(seconds=2),
            shop.now + timedelta(days=1),
        )
    )
    assert client.get(f"/billing/{later}").status_code == 200


def test_pages_are_never_cached_and_never_leak_the_link_as_a_referrer(
    shop: Shop, client: TestClient
) -> None:
    customer, _ = in_dunning(shop)
    response = client.get(billing_path(shop, customer))
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "js.stripe.com" not in response.text


# -- the billing page ----------------------------------------------------------------


def test_the_billing_page_shows_what_is_owed_in_the_customer_locale_and_the_card_on_file(
    shop: Shop, client: TestClient
) -> None:
    customer, invoice = in_dunning(shop, locale="fr", time_zone="Europe/Paris")
    second = shop.invoice(customer, 1250)
    page = client.get(billing_path(shop, customer, invoice)).text
    for number in (shop.one(tables.invoices, id=i).number for i in (invoice, second)):
        assert number in page
    assert '<td class="num" lang="fr">50,00\xa0$US</td>' in page
    assert "62,50\xa0$US" in page  # the total
    assert "Visa ending in 0341, expires 12/2031" in page
    assert '<html lang="en">' in page


def test_a_post_without_a_valid_form_token_is_refused_and_changes_nothing(
    shop: Shop, client: TestClient
) -> None:
    customer, _ = in_dunning(shop)
    path = billing_path(shop, customer)
    other = billing_path(shop, shop.customer(card=None, email="b@x.test"))
    card = {"number": GOOD, "exp_month": "12", "exp_year": "2031", "cvc": "123"}
    for token in ("", "abc.123.def", form_token(client.get(other).text, other)):
        response = client.post(path, data={"csrf": token, **card})
        assert response.status_code == 403
        assert "This form has expired" in response.text
    assert len(shop.all(tables.payment_methods, customer_id=customer)) == 1


def test_a_good_test_card_pays_the_past_due_invoice_at_once(shop: Shop, client: TestClient) -> None:
    customer, invoice = in_dunning(shop)
    path = billing_path(shop, customer)
    response = post_card(client, path, "4111 1111 1111 1111")
    assert response.status_code == 303
    assert response.headers["location"] == f"{path}?saved=1&retried={invoice}"
    assert shop.one(tables.invoices, id=invoice).status == "paid"
    page = client.get(response.headers["location"]).text
    assert "Your new card has been saved" in page
    assert re.search(r"Invoice [^<]+:</span>\s*<strong>Paid</strong>", page)
    assert "You owe nothing at the moment" in page
    events_ = [e.type for e in shop.all(tables.events, invoice_id=invoice)]
    assert "invoice.collection_requested" in events_ and "invoice.paid" in events_


def test_a_card_that_still_declines_shows_the_plain_reason(shop: Shop, client: TestClient) -> None:
    customer, invoice = in_dunning(shop)
    path = billing_path(shop, customer)
    response = post_card(client, path, INSUFFICIENT)
    page = client.get(response.headers["location"]).text
    assert "<strong>Still declined</strong>: the bank reported insufficient funds" in page
    assert shop.one(tables.invoices, id=invoice).status == "past_due"
    assert "Visa ending in 9995" in page


def test_refreshing_after_saving_a_card_saves_and_charges_nothing_more(
    shop: Shop, client: TestClient
) -> None:
    customer, invoice = in_dunning(shop)
    location = post_card(client, billing_path(shop, customer), GOOD).headers["location"]
    for _ in range(2):
        assert client.get(location).status_code == 200
    assert len(shop.all(tables.payment_methods, customer_id=customer)) == 2
    assert [a.status for a in shop.attempts_of(invoice)] == ["declined", "succeeded"]


def test_an_invalid_card_number_is_reported_next_to_its_field(
    shop: Shop, client: TestClient
) -> None:
    customer, _ = in_dunning(shop)
    response = post_card(client, billing_path(shop, customer), "4111 1111 1111 1112")
    assert response.status_code == 422
    page = response.text
    assert 'aria-describedby="card-number-hint card-number-error" aria-invalid="true"' in page
    assert re.search(r'id="card-number-error">.*This card number is not valid', page)
    assert '<a href="#card-number">This card number is not valid' in page
    assert 'value="12"' in page  # the expiry month is kept; the number is not


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"exp_month": "13"}, "card-exp-month", "Enter the month as a number, 1 to 12."),
        ({"exp_year": "2025"}, "card-exp-year", "This card has expired"),
        ({"cvc": "12"}, "card-cvc", "Enter the 3 or 4 digits of the security code."),
    ],
)
def test_expiry_and_security_code_errors_name_their_field(
    shop: Shop, client: TestClient, fields: dict[str, str], field: str, message: str
) -> None:
    customer, _ = in_dunning(shop)
    response = post_card(client, billing_path(shop, customer), GOOD, **fields)
    assert response.status_code == 422
    assert f'<a href="#{field}">{message}' in response.text


# 4242... also succeeds; 4111... would be found in the page's own test-card hint.
@pytest.mark.parametrize("number", ["4242 4242 4242 4242", DECLINE_ALWAYS, "4242424242424241"])
def test_a_card_number_never_appears_in_a_response_the_database_or_the_logs(
    shop: Shop, client: TestClient, app: App, caplog: pytest.LogCaptureFixture, number: str
) -> None:
    caplog.set_level(logging.DEBUG)
    customer, _ = in_dunning(shop)
    path = billing_path(shop, customer)
    response = post_card(client, path, number)
    pages = [response.text]
    if response.status_code == 303:
        pages.append(client.get(response.headers["location"]).text)
    digits = number.replace(" ", "")
    for text in [*pages, caplog.text]:
        assert digits not in text.replace(" ", "") and number not in text
    with app.connect() as conn:
        for table in tables.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                assert digits not in repr(tuple(row)), table.name


# -- Stripe Elements -----------------------------------------------------------------


class FakeCardSetup:
    """Stands in for Stripe: what the billing page asks of it, and what it answers."""

    def __init__(self) -> None:
        self.started: list[tuple[int, str | None]] = []

    def start(
        self, site_id: int, customer_id: int, gateway_customer: str | None, email: str | None
    ) -> SetupStart:
        self.started.append((customer_id, gateway_customer))
        return SetupStart("seti_1_secret_abc", gateway_customer or "cus_new")

    def finish(self, site_id: int, customer_id: int, setup_intent_id: str) -> CardDetails:
        if setup_intent_id != "seti_1":
            raise CardSetupError("the card was not confirmed; please try again")
        return CardDetails("pm_card_visa", "visa", "4242", 4, 2032, gateway_customer="cus_1")


@pytest.fixture
def stripe_client(app: App) -> Iterator[tuple[TestClient, FakeCardSetup]]:
    from dunwell.api.app import create_app

    api = create_app(app)
    setup = FakeCardSetup()
    api.state.hosted_card_setup = setup
    with TestClient(api) as test_client:
        yield test_client, setup


def test_stripe_customers_get_stripe_elements_and_only_the_setup_intent_is_posted(
    shop: Shop, app: App, stripe_client: tuple[TestClient, FakeCardSetup]
) -> None:
    client, setup = stripe_client
    customer = shop.customer(card=None)
    with app.begin() as conn:
        card = CardDetails("pm_card_chargeDeclined", "visa", "0002", 1, 2031, "cus_1")
        ledger.attach_payment_method(conn, shop.site_id, customer, "stripe", card, shop.now)
        set_portal_rules(conn, shop.site_id, {"stripe_publishable_key": "pk_test_1"}, shop.now)
    path = billing_path(shop, customer)
    response = client.get(path)
    assert setup.started == [(customer, "cus_1")]
    assert 'src="https://js.stripe.com/v3/"' in response.text
    assert 'data-key="pk_test_1" data-secret="seti_1_secret_abc"' in response.text
    assert 'name="number"' not in response.text
    assert "https://js.stripe.com" in response.headers["content-security-policy"]
    token = form_token(response.text, path)
    refused = client.post(path, data={"csrf": token, "setup_intent": "seti_other"})
    assert refused.status_code == 422 and "The card was not confirmed" in refused.text
    saved = client.post(path, data={"csrf": token, "setup_intent": "seti_1"})
    assert saved.status_code == 200  # followed the redirect
    method = shop.all(tables.payment_methods, customer_id=customer)[-1]
    assert (method.gateway, method.token, method.gateway_customer) == (
        "stripe",
        "pm_card_visa",
        "cus_1",
    )


class StripeAnswers(stripe.HTTPClient):
    """The SDK's transport, answered in-process the way Stripe's API answers."""

    name = "stripe-answers"

    def __init__(self, intent_metadata: dict[str, str]) -> None:
        super().__init__()
        self.intent_metadata = intent_metadata
        self.calls: list[tuple[str, str, dict[str, str], str | None]] = []

    def request(
        self, method: str, url: str, headers: Any, post_data: Any = None, *, _usage: Any = None
    ) -> tuple[str, int, dict[str, str]]:
        parts = urlsplit(url)
        params = dict(parse_qsl(post_data or parts.query))
        self.calls.append((method, parts.path, params, (headers or {}).get("Idempotency-Key")))
        card = {"brand": "visa", "last4": "4242", "exp_month": 4, "exp_year": 2032}
        bodies = {
            "/v1/customers": {"id": "cus_new", "object": "customer"},
            "/v1/setup_intents": {
                "id": "seti_1",
                "object": "setup_intent",
                "client_secret": "seti_1_secret_x",
                "status": "requires_payment_method",
            },
            "/v1/setup_intents/seti_1": {
                "id": "seti_1",
                "object": "setup_intent",
                "status": "succeeded",
                "customer": "cus_new",
                "metadata": self.intent_metadata,
                "payment_method": {"id": "pm_1", "object": "payment_method", "card": card},
            },
        }
        return json.dumps(bodies[parts.path]), 200, {}

    def request_stream(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        pass


def test_the_stripe_setup_asks_for_an_off_session_intent_and_checks_whose_it_is() -> None:
    answers = StripeAnswers({"dunwell_site": "1", "dunwell_customer": "7"})
    setup = StripeCardSetup("sk_test_x", http_client=answers)
    started = setup.start(1, 7, None, "ada@x.test")
    assert (started.client_secret, started.gateway_customer) == ("seti_1_secret_x", "cus_new")
    (_, customer_path, customer, key), (_, intent_path, intent, _) = answers.calls
    assert (customer_path, customer["email"], key) == (
        "/v1/customers",
        "ada@x.test",
        "dunwell-customer-1-7",
    )
    assert intent_path == "/v1/setup_intents"
    assert intent["usage"] == "off_session" and intent["customer"] == "cus_new"
    assert intent["metadata[dunwell_customer]"] == "7"
    card = setup.finish(1, 7, "seti_1")
    assert (card.token, card.last4, card.gateway_customer) == ("pm_1", "4242", "cus_new")
    with pytest.raises(CardSetupError, match="another page"):
        setup.finish(1, 8, "seti_1")  # another customer's intent


def test_a_live_site_without_stripe_shows_no_card_form(shop: Shop, client: TestClient) -> None:
    customer = shop.customer(card=None)
    with shop.app.begin() as conn:
        conn.execute(tables.sites.update().values(mode="live", clock_now=None))
    page = client.get(billing_path(shop, customer)).text
    assert "Cards cannot be updated on this page yet" in page
    assert 'name="number"' not in page


# -- the customer page ---------------------------------------------------------------


def test_skipping_moves_the_next_order_one_period_on_and_records_what_changed(
    shop: Shop, client: TestClient
) -> None:
    _, sub, path = subscribed(shop, time_zone="America/New_York")
    before = shop.one(tables.subscriptions, id=sub).next_charge_at
    response = change(client, path, sub, "skip")
    assert response.headers["location"] == f"{path}?done=skip&sub={sub}"
    after = shop.one(tables.subscriptions, id=sub).next_charge_at
    assert after.date() == (before + timedelta(days=31)).date()  # 7 March -> 7 April
    assert (
        "Your next order is now on April 7, 2026" in client.get(response.headers["location"]).text
    )
    [event] = events(shop, "subscription.updated")
    assert event.data["changes"]["action"] == "skip" and event.data["source"] == "customer_portal"


def test_a_skipped_period_is_never_billed(shop: Shop, client: TestClient) -> None:
    _, sub, path = subscribed(shop)
    change(client, path, sub, "skip")
    shop.run_days(40)
    [invoice] = shop.all(tables.invoices, subscription_id=sub)
    assert invoice.period == 1 and invoice.issued_at.date().isoformat() == "2026-04-07"


def test_delaying_by_two_weeks_moves_the_date_and_later_renewals_follow_it(
    shop: Shop, client: TestClient
) -> None:
    _, sub, path = subscribed(shop)
    change(client, path, sub, "delay", by="2w")
    assert shop.one(tables.subscriptions, id=sub).next_charge_at.date().isoformat() == "2026-03-21"
    shop.run_days(50)
    dates = [i.issued_at.date().isoformat() for i in shop.all(tables.invoices, subscription_id=sub)]
    assert dates == ["2026-03-21", "2026-04-21"]


def test_a_new_date_is_read_in_the_customer_time_zone(shop: Shop, client: TestClient) -> None:
    # 09:00 UTC on 7 March is 23:00 on 6 March in Honolulu.
    _, sub, path = subscribed(shop, time_zone="Pacific/Honolulu")
    assert "March 6, 2026" in client.get(path).text
    response = change(client, path, sub, "date", date="2026-04-01")
    assert response.status_code == 303
    moved = shop.one(tables.subscriptions, id=sub).next_charge_at
    assert moved.isoformat() == "2026-04-02T09:00:00+00:00"  # 23:00 on 1 April there


def test_a_new_date_on_the_31st_keeps_later_renewals_on_the_31st(shop: Shop, app: App) -> None:
    customer = shop.customer()
    sub = shop.subscribe(customer)
    shop.run()  # bills 2 March; the next order is 2 April (period 1)
    who = Changer(shop.site_id, customer, shop.now)
    with app.begin() as conn:
        change_next_date(conn, who, sub, date(2026, 5, 31), ZoneInfo("UTC"))
        skip_next_order(conn, who, sub)
    row = shop.one(tables.subscriptions, id=sub)
    later = [
        period_start(row.anchor_at, IntervalUnit.MONTH, 1, row.periods_billed + n).date()
        for n in range(3)
    ]
    # Moved to 31 May, skipped to 30 June (no 31st), then back on the 31st.
    assert [d.isoformat() for d in later] == ["2026-06-30", "2026-07-31", "2026-08-31"]
    assert row.next_charge_at.date() == later[0]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2026-03-01", "Choose a date after today."),
        ("2028-01-01", "The next order can be moved at most a year ahead."),
        ("soon", "Enter a date like 2026-04-15 (year, month, day)."),
    ],
)
def test_a_bad_date_is_refused_next_to_the_field(
    shop: Shop, client: TestClient, value: str, message: str
) -> None:
    _, sub, path = subscribed(shop)
    response = change(client, path, sub, "date", date=value)
    assert response.status_code == 422
    assert f'id="s{sub}-date-error"><span class="visually-hidden">Error: </span>{message}' in (
        response.text
    )
    assert f'value="{html.escape(value)}"' in response.text
    assert not events(shop, "subscription.updated")


def test_swapping_is_offered_only_for_products_in_the_allowed_list(
    shop: Shop, client: TestClient, app: App
) -> None:
    _, sub, path = subscribed(shop)
    assert "Swap a product" not in client.get(path).text  # no list, no swapping
    with app.begin() as conn:
        for code, price in (("dark", 1800), ("decaf", 1900), ("secret", 100)):
            ledger.create_product(conn, shop.site_id, code, code.title(), price, "USD", shop.now)
        set_portal_rules(conn, shop.site_id, {"swap_products": ["dark", "decaf"]}, shop.now)
    page = client.get(path).text
    assert '<option value="dark">' in page and 'value="secret"' not in page
    [item] = shop.all(tables.subscription_items, subscription_id=sub)
    refused = change(client, path, sub, "swap", item=str(item.id), product="secret")
    assert refused.status_code == 422 and "Choose one of the products offered." in refused.text
    assert change(client, path, sub, "swap", item=str(item.id), product="dark").status_code == 303
    swapped = shop.one(tables.subscription_items, id=item.id)
    assert swapped.unit_price_minor == 1800
    [event] = events(shop, "subscription.updated")
    assert event.data["changes"]["swap"] == {"item_id": item.id, "from": "plan", "to": "dark"}


def test_quantity_zero_removes_an_item_but_one_item_must_remain(
    shop: Shop, client: TestClient, app: App
) -> None:
    customer = shop.customer()
    with app.begin() as conn:
        extra = ledger.create_product(conn, shop.site_id, "mug", "Mug", 900, "USD", shop.now)
        items = [ledger.Item(shop.product_id, 2), ledger.Item(extra, 1)]
        sub = ledger.create_subscription(
            conn, shop.site_id, customer, items, shop.now, starts_at=shop.now + timedelta(days=3)
        )
    path = portal_path(shop, customer)
    plan, mug = (i.id for i in shop.all(tables.subscription_items, subscription_id=sub))
    refused = change(client, path, sub, "quantities", **{f"qty-{plan}": "0", f"qty-{mug}": "0"})
    assert refused.status_code == 422
    assert "Keep at least one item; to stop every item, cancel the subscription." in refused.text
    too_many = change(client, path, sub, "quantities", **{f"qty-{plan}": "11"})
    assert "Enter a number from 0 to 10." in too_many.text
    done = change(client, path, sub, "quantities", **{f"qty-{plan}": "3", f"qty-{mug}": "0"})
    assert done.status_code == 303
    [left] = shop.all(tables.subscription_items, subscription_id=sub)
    assert (left.id, left.quantity) == (plan, 3)
    [event] = events(shop, "subscription.updated")
    assert {(i["product"], i["from"], i["to"]) for i in event.data["changes"]["items"]} == {
        ("plan", 2, 3),
        ("mug", 1, 0),
    }


def test_cancelling_goes_through_a_confirmation_page_that_offers_a_delay_or_a_skip(
    shop: Shop, client: TestClient
) -> None:
    _, sub, path = subscribed(shop)
    portal = client.get(path).text
    assert f'{path}/subscriptions/{sub}/cancel"' in portal
    assert f'action="{path}/subscriptions/{sub}/cancel"' not in portal  # only on the next page
    confirm = client.get(f"{path}/subscriptions/{sub}/cancel").text
    assert "Delay my next order by 1 month" in confirm and "Skip my next order" in confirm
    response = change(client, path, sub, "cancel")
    assert response.status_code == 303
    assert shop.one(tables.subscriptions, id=sub).status == "canceled"
    [event] = events(shop, "subscription.canceled")
    assert event.data["reason"] == "customer_request" and event.subscription_id == sub
    assert "Your subscription has been canceled" in client.get(response.headers["location"]).text


def test_an_action_the_site_turned_off_is_neither_shown_nor_accepted(
    shop: Shop, client: TestClient, app: App
) -> None:
    _, sub, path = subscribed(shop)
    token = form_token(client.get(path).text, f"{path}/subscriptions/{sub}/skip")
    with app.begin() as conn:
        set_portal_rules(conn, shop.site_id, {"allow_skip": False}, shop.now)
    assert "Skip next order" not in client.get(path).text
    response = client.post(f"{path}/subscriptions/{sub}/skip", data={"csrf": token})
    assert response.status_code == 409 and "This change is not offered" in response.text
    assert not events(shop, "subscription.updated")


def test_one_customer_cannot_change_another_customers_subscription(
    shop: Shop, client: TestClient, app: App
) -> None:
    _, sub, _ = subscribed(shop)
    _, _, intruder = subscribed(shop, email="eve@x.test")
    action = f"{intruder}/subscriptions/{sub}/skip"
    # The intruder's page renders no form for it: no form token, no change.
    assert client.post(action, data={"csrf": ""}).status_code == 403
    # Even with a well-made token for that address, the change is scoped to its customer.
    link = intruder.rsplit("/", 1)[1]
    token = FormSigner(app.secret_key).issue(link, f"portal:{sub}:skip", app.clock.now())
    response = client.post(action, data={"csrf": token})
    assert response.status_code == 404 and "not on your account" in response.text
    assert not events(shop, "subscription.updated")


def test_the_rules_row_is_created_with_defaults_and_checked_on_save(shop: Shop, app: App) -> None:
    with app.begin() as conn:
        assert load_portal_rules(conn, shop.site_id).allows("skip")
        assert not load_portal_rules(conn, shop.site_id).allows("swap")
        set_portal_rules(conn, shop.site_id, {"max_quantity": 4}, shop.now)
        count = conn.execute(select(func.count()).select_from(tables.site_preferences)).scalar()
        assert count == 1
        for changes in (
            {"swap_products": ["nope"]},
            {"allow_skip": "yes"},
            {"unknown": 1},
            {"stripe_publishable_key": "sk_live_x"},
        ):
            with pytest.raises(InvalidInput):
                set_portal_rules(conn, shop.site_id, changes, shop.now)


def test_revoking_on_a_site_whose_test_clock_runs_ahead_spares_the_links_made_after(
    shop: Shop, client: TestClient, app: App
) -> None:
    # Links are stamped with the real clock, so revocation is too, not the test clock.
    customer, _ = in_dunning(shop)
    old = billing_path(shop, customer)
    shop.advance(3)
    real = app.clock.now() + timedelta(seconds=1)
    with app.begin() as conn:
        revoke_links(conn, shop.site_id, customer, FixedClock(real))
        revoked_at = conn.execute(
            select(tables.customers.c.links_revoked_at).where(tables.customers.c.id == customer)
        ).scalar_one()
    assert revoked_at == real
    assert client.get(old).status_code == 410
    assert isinstance(app.clock, FixedClock)
    app.clock.set(real + timedelta(seconds=1))
    assert client.get(billing_path(shop, customer)).status_code == 200
    assert client.get(portal_path(shop, customer)).status_code == 200
    # The event keeps the site's time, in order with the site's other events.
    (event,) = shop.all(tables.events, type="customer.links_revoked")
    assert event.occurred_at == shop.now
