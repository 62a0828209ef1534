"""Rules of the Stripe mirror that protect the customer's money.

* A subscription mirrored from Stripe is billed by Stripe: nothing in
  Dunwell (the customer page, the SMS concierge, the API) offers to change
  it, and a change asked for anyway is refused, since it would never reach
  Stripe.
* ISK amounts are counted in hundredths by Stripe's API and in whole krónur
  by ISO 4217 and the ledger: converted both ways at the Stripe edges.
* A failure in the same second as the payment that settled the invoice
  never puts it into dunning.

Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient

from dunwell.bootstrap import App
from dunwell.concierge.model import Action
from dunwell.gateways.base import CardDetails
from dunwell.gateways.stripe import StripeGateway
from dunwell.messaging.filters import format_minor
from dunwell.services import api_keys, ledger
from dunwell.services import subscription_changes as changes
from dunwell.services.concierge_actions import carry_out
from dunwell.services.concierge_context import gather_context
from dunwell.services.concierge_settings import load_concierge_settings
from dunwell.services.errors import Conflict
from dunwell.services.escalation_brief import Site as BriefSite
from dunwell.services.escalation_brief import build_handover
from dunwell.services.message_context import ContextLoader, MessageSubject
from dunwell.services.portal_rules import set_portal_rules
from dunwell.services.sites import site_now
from dunwell.services.stripe_ingest import save_webhook_secret
from dunwell.store import tables
from dunwell.web.csrf import FormSigner
from tests.integration import stripe_events as se
from tests.integration.concierge_phone import SandboxPhone
from tests.integration.console_helpers import signed_in_as
from tests.integration.factories import Shop
from tests.integration.fake_stripe import API_KEY, FakeStripeServer
from tests.integration.test_hosted_pages import portal_path
from tests.integration.test_stripe_ingest import (
    SECRET,
    accepted,
    deliver,
    failed_payment,
    invoice_event,
)

NUMBER = "+14155552671"


@pytest.fixture
def shop(app: App) -> Shop:
    shop = Shop.create(app)
    with app.begin() as conn:
        save_webhook_secret(conn, shop.site_id, SECRET, app.secret_box(), shop.now)
        set_portal_rules(conn, shop.site_id, {"swap_products": ["plan"]}, shop.now)
    return shop


@pytest.fixture
def mirrored(client: TestClient, shop: Shop) -> tuple[int, int]:
    """A customer with a Stripe subscription past due in dunning, and one of Dunwell's own:
    (customer, mirrored subscription)."""
    cus, sub, inv = se.new_id("cus"), se.new_id("sub"), se.new_id("in")
    customer = shop.customer(external_id=cus, phone=NUMBER)
    stripe_sub = se.subscription(sub, customer=cus, status="past_due")
    accepted(deliver(client, se.event("customer.subscription.updated", stripe_sub)))
    accepted(deliver(client, failed_payment(cus, inv, subscription=sub)))
    return customer, shop.one(tables.subscriptions, external_id=sub).id


def shows_year_3000(text: str) -> bool:
    """Whether ``text`` shows the mirror's placeholder date (not "3000" inside a token)."""
    return re.search(r"(?<![0-9A-Za-z])3000(?![0-9A-Za-z])", text) is not None


def unchanged(shop: Shop, subscription_id: int) -> Callable[[], bool]:
    """A check that the subscription, its items and its events are as they are now."""

    def state() -> tuple[Any, ...]:
        sub = shop.one(tables.subscriptions, id=subscription_id)
        items = shop.all(tables.subscription_items, subscription_id=subscription_id)
        events = shop.all(tables.events, subscription_id=subscription_id)
        return tuple(sub), [tuple(i) for i in items], len(events)

    before = state()
    return lambda: state() == before


# -- 1. a mirrored subscription is read-only everywhere ------------------------------


def test_the_customer_page_shows_a_mirrored_subscription_read_only_without_a_date(
    client: TestClient, shop: Shop, mirrored: tuple[int, int]
) -> None:
    customer, sub = mirrored
    own = shop.subscribe(customer)
    path = portal_path(shop, customer)

    page = client.get(path).text

    assert "managed in Stripe, so it cannot be changed or canceled here" in page
    assert not shows_year_3000(page)
    assert f"{path}/subscriptions/{sub}/" not in page  # no form, no cancel link
    assert f'action="{path}/subscriptions/{own}/skip"' in page  # Dunwell's own still changes
    assert "Pro monthly" in page  # its items, as Stripe bills them
    assert client.get(f"{path}/subscriptions/{sub}/cancel").status_code == 409


@pytest.mark.parametrize(
    ("action", "form"),
    [
        ("skip", {}),
        ("delay", {"by": "1m"}),
        ("date", {"date": "2026-04-15"}),
        ("swap", {"product": "plan"}),
        ("quantities", {}),
        ("cancel", {}),
    ],
)
def test_a_forged_change_to_a_mirrored_subscription_is_refused_and_changes_nothing(
    client: TestClient,
    app: App,
    shop: Shop,
    mirrored: tuple[int, int],
    action: str,
    form: dict[str, str],
) -> None:
    customer, sub = mirrored
    [item] = shop.all(tables.subscription_items, subscription_id=sub)
    if action == "swap":
        form = {**form, "item": str(item.id)}
    elif action == "quantities":
        form = {f"qty-{item.id}": "2"}
    path = portal_path(shop, customer)
    same = unchanged(shop, sub)
    token = FormSigner(app.secret_key).issue(
        path.rsplit("/", 1)[1], f"portal:{sub}:{action}", app.clock.now()
    )

    response = client.post(f"{path}/subscriptions/{sub}/{action}", data={"csrf": token, **form})

    assert response.status_code == 409
    assert "This subscription is managed in Stripe" in response.text
    assert same()
    assert shop.one(tables.subscriptions, id=sub).status == "past_due"


@pytest.mark.parametrize(
    "change",
    [
        lambda conn, who, sub: changes.skip_next_order(conn, who, sub),
        lambda conn, who, sub: changes.delay_next_order(conn, who, sub, "1w"),
        lambda conn, who, sub: changes.ship_next_order_now(conn, who, sub),
        lambda conn, who, sub: changes.add_to_next_order(conn, who, sub, "Plan", 1, ("Plan",)),
        lambda conn, who, sub: changes.cancel_subscription(conn, who, sub),
        lambda conn, who, sub: changes.next_order_date(conn, who, sub, ZoneInfo("UTC")),
    ],
    ids=["skip", "delay", "ship_now", "add", "cancel", "next_order_date"],
)
def test_every_change_function_refuses_a_mirrored_subscription(
    app: App, shop: Shop, mirrored: tuple[int, int], change: Callable[..., Any]
) -> None:
    customer, sub = mirrored
    same = unchanged(shop, sub)
    who = changes.Changer(shop.site_id, customer, shop.now, source="concierge")
    with app.begin() as conn, pytest.raises(Conflict, match="managed in Stripe"):
        change(conn, who, sub)
    assert same()


def post_as_writer(client: TestClient, shop: Shop, path: str) -> httpx.Response:
    """POST ``path`` with a new write-scoped API key of the shop."""
    with shop.app.begin() as conn:
        key = api_keys.create_key(conn, shop.site_id, "writer", "write", shop.now)
    return client.post(path, headers={"Authorization": f"Bearer {key}"})


@pytest.mark.parametrize("action", ["cancel", "pause", "resume"])
def test_the_api_refuses_to_cancel_pause_or_resume_a_mirrored_subscription(
    client: TestClient, shop: Shop, mirrored: tuple[int, int], action: str
) -> None:
    _, sub = mirrored
    same = unchanged(shop, sub)
    answer = post_as_writer(client, shop, f"/v1/subscriptions/{sub}/{action}")
    assert answer.status_code == 409, answer.text
    assert "managed in Stripe" in answer.json()["detail"]
    assert same()


def test_marking_paid_an_invoice_stripe_collects_is_refused(
    client: TestClient, shop: Shop, mirrored: tuple[int, int]
) -> None:
    customer, _ = mirrored
    (invoice,) = shop.all(tables.invoices, customer_id=customer)
    answer = post_as_writer(client, shop, f"/v1/invoices/{invoice.id}/mark_paid")
    assert answer.status_code == 409, answer.text
    assert "mark it paid in Stripe" in answer.json()["detail"]
    assert shop.one(tables.invoices, id=invoice.id).status == "past_due"
    signed_in_as(client, shop.app, shop.site_id, "owner")
    page = client.get(f"/dashboard/customers/{customer}").text
    assert f'/dashboard/invoices/{invoice.id}/mark-paid"' not in page
    assert "Collected by Stripe: mark it paid there." in page


def concierge_context(app: App, shop: Shop, customer: int) -> Any:
    with app.connect() as conn:
        settings = load_concierge_settings(conn, [shop.site_id])[shop.site_id]
        now = site_now(conn, shop.site_id, app.clock)
        gathered = gather_context(
            conn, shop.site_id, customer, NUMBER, settings, app.links(), "https://d.test", now
        )
    return gathered


def test_the_concierge_never_takes_a_mirrored_subscription_for_the_upcoming_order(
    app: App, shop: Shop, mirrored: tuple[int, int]
) -> None:
    customer, _ = mirrored
    assert concierge_context(app, shop, customer).context.order is None
    own = shop.subscribe(customer)
    order = concierge_context(app, shop, customer).context.order
    assert order is not None and order.subscription_id == own


@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("skip", {}),
        ("move_date", {"date": "2026-04-15"}),
        ("ship_now", {}),
        ("change_quantity", {"quantity": 2}),
    ],
)
def test_a_concierge_change_to_a_mirrored_subscription_is_refused_in_words(
    app: App, shop: Shop, mirrored: tuple[int, int], kind: str, params: dict[str, Any]
) -> None:
    # A question asked before the rule, or an action made up: the yes changes nothing.
    customer, sub = mirrored
    [item] = shop.all(tables.subscription_items, subscription_id=sub)
    gathered = concierge_context(app, shop, customer)
    action = Action(kind, {"subscription_id": sub, "item_id": item.id, **params})
    same = unchanged(shop, sub)
    with app.begin() as conn:
        result = carry_out(
            conn, shop.site_id, customer, action, gathered.context, gathered.zone, shop.now
        )
    assert not result.ok
    assert result.error is not None and "managed in Stripe" in result.error
    assert same()


def test_a_customer_texting_to_skip_a_mirrored_order_is_not_offered_it(
    client: TestClient, app: App, shop: Shop, mirrored: tuple[int, int]
) -> None:
    _, sub = mirrored
    with app.begin() as conn:
        key = api_keys.create_key(conn, shop.site_id, "test", "admin", shop.now)
    phone = SandboxPhone(shop, client, {"Authorization": f"Bearer {key}"}, NUMBER)
    same = unchanged(shop, sub)

    replies = phone.text("please skip my next order")
    replies += phone.text("yes")

    assert "couldn't find an upcoming order" in replies[0]
    assert not any(shows_year_3000(reply) for reply in replies)
    assert same()


# -- 2. ISK: hundredths in Stripe's API, whole krónur in the ledger -------------------


def test_a_mirrored_isk_invoice_is_stored_and_written_in_whole_kronur(
    client: TestClient, shop: Shop
) -> None:
    cus, sub, inv = se.new_id("cus"), se.new_id("sub"), se.new_id("in")
    isk = (se.price("price_1IskMonthly", unit_amount=250000, currency="isk"),)
    stripe_sub = se.subscription(sub, customer=cus, status="past_due", prices=isk)
    accepted(deliver(client, se.event("customer.subscription.updated", stripe_sub)))
    evt = failed_payment(cus, inv, subscription=sub, amount_due=500000, currency="isk")
    accepted(deliver(client, evt))

    invoice = shop.one(tables.invoices, external_id=inv)
    assert (invoice.amount_due_minor, invoice.currency) == (5000, "ISK")
    [attempt] = shop.attempts_of(invoice.id)
    assert attempt.amount_minor == 5000
    [item] = shop.all(tables.subscription_items, subscription_id=invoice.subscription_id)
    assert item.unit_price_minor == 2500
    shop.run()
    [email] = shop.all(tables.sandbox_messages, channel="email")
    assert format_minor(5000, "ISK") in email.body_text
    assert "500,000" not in email.body_text


def test_an_isk_amount_of_a_fraction_of_a_krona_is_refused_naming_the_field(
    client: TestClient, shop: Shop
) -> None:
    evt = failed_payment(se.new_id("cus"), se.new_id("in"), amount_due=500050, currency="isk")
    answer = accepted(deliver(client, evt), "failed")
    assert '"amount_due" 500050 is not a whole number of ISK' in answer["detail"]
    assert not shop.all(tables.invoices)


@pytest.mark.parametrize(("currency", "sent"), [("ISK", "500000"), ("JPY", "5000")])
def test_an_invoice_charged_through_stripe_sends_stripes_units(
    app: App, currency: str, sent: str
) -> None:
    server = FakeStripeServer().start()
    try:
        with StripeGateway(API_KEY, api_base=server.url) as gateway:
            app.gateways.add(gateway)
            shop = Shop.create(app)
            customer = shop.customer(card=None)
            card = CardDetails("pm_card_visa", "visa", "4242", 12, 2031, "cus_Nv0001")
            with app.begin() as conn:
                ledger.attach_payment_method(conn, shop.site_id, customer, "stripe", card, shop.now)
                invoice = ledger.create_invoice(
                    conn, shop.site_id, customer, 5000, currency, shop.now
                )
            shop.run()
    finally:
        server.stop()

    [request] = server.fake.requests
    assert (request.params["amount"], request.params["currency"]) == (sent, currency.lower())
    [attempt] = shop.attempts_of(invoice)
    assert (attempt.status, attempt.amount_minor) == ("succeeded", 5000)


# -- 3. a failure never reopens an invoice settled in the same second -----------------


@pytest.mark.parametrize("closing", ["invoice.paid", "invoice.payment_succeeded", "invoice.voided"])
def test_a_failure_in_the_same_second_as_a_settlement_of_an_unmirrored_invoice_is_stale(
    client: TestClient, shop: Shop, closing: str
) -> None:
    cus, inv = se.new_id("cus"), se.new_id("in")
    t = se.now() - 30
    accepted(deliver(client, invoice_event(closing, cus, inv, t)))

    answer = accepted(deliver(client, failed_payment(cus, inv, created=t)), "ignored_stale")

    assert "was paid or voided in Stripe" in answer["detail"]
    assert shop.all(tables.invoices) == []
    # Nor does an earlier failure, delivered later still.
    late = failed_payment(cus, inv, created=t - 5)
    accepted(deliver(client, late), "ignored_stale")
    assert shop.all(tables.invoices) == []


def test_a_failure_in_the_same_second_as_the_payment_of_a_mirrored_invoice_is_stale(
    client: TestClient, shop: Shop
) -> None:
    cus, inv = se.new_id("cus"), se.new_id("in")
    t = se.now() - 30
    accepted(deliver(client, failed_payment(cus, inv, created=t - 60)))
    accepted(deliver(client, invoice_event("invoice.paid", cus, inv, t)))
    accepted(deliver(client, failed_payment(cus, inv, created=t, attempt_count=2)), "ignored_stale")

    invoice = shop.one(tables.invoices, external_id=inv)
    assert invoice.status == "paid"
    assert len(shop.attempts_of(invoice.id)) == 1


def test_other_events_of_one_second_still_apply_in_the_order_they_arrive(
    client: TestClient, shop: Shop
) -> None:
    cus, sub, inv = se.new_id("cus"), se.new_id("sub"), se.new_id("in")
    t = se.now() - 30
    # A failure, then the payment of the same second: the payment settles it.
    accepted(deliver(client, failed_payment(cus, inv, created=t)))
    accepted(deliver(client, invoice_event("invoice.paid", cus, inv, t)))
    assert shop.one(tables.invoices, external_id=inv).status == "paid"
    # Two subscription updates of one second: the later arrival wins.
    type_ = "customer.subscription.updated"
    for status in ("past_due", "active", "unpaid"):
        obj = se.subscription(sub, customer=cus, status=status)
        accepted(deliver(client, se.event(type_, obj, created=t)))
    assert shop.one(tables.subscriptions, external_id=sub).status == "unpaid"


def test_messages_and_the_hand_over_give_no_date_for_a_mirrored_subscription(
    shop: Shop, mirrored: tuple[int, int]
) -> None:
    # Dunwell keeps a placeholder far beyond any clock as a mirrored
    # subscription's next charge: a template or an operator must not show it.
    customer, sub = mirrored
    own = shop.subscribe(customer)
    (invoice,) = shop.all(tables.invoices, subscription_id=sub)
    with shop.app.connect() as conn:
        subject = MessageSubject(shop.site_id, customer, invoice.id)
        context = ContextLoader(conn, [subject]).context(subject, {}, "https://link")
        handover = build_handover(
            conn,
            BriefSite(name="shop Inc.", locale="en", time_zone="UTC"),
            SimpleNamespace(
                site_id=shop.site_id, customer_id=customer, conversation_id=None, reason="asked"
            ),
            NUMBER,
        )
    assert context["subscription"]["next_charge_date"] is None
    assert "billed by Stripe" in handover.body_text
    assert not shows_year_3000(handover.body_text)
    own_charge = shop.one(tables.subscriptions, id=own).next_charge_at
    assert f"next charge {own_charge:%Y-%m-%d}" in handover.body_text
