"""Stripe webhooks into the ledger: signed, deduplicated, ordered, and dunned.

Every test runs on SQLite and PostgreSQL. Events are built and signed as
Stripe builds and signs them (``stripe_events``); the worker's retries pay
the Stripe invoice on a local fake of Stripe's API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from dunwell.bootstrap import App
from dunwell.gateways.base import ChargeRequest
from dunwell.gateways.stripe import StripeGateway
from dunwell.services import api_keys
from dunwell.services.sites import create_site
from dunwell.services.stripe_ingest import UNVERIFIED, save_webhook_secret
from dunwell.store import tables
from tests.integration import stripe_events as se
from tests.integration.factories import Shop
from tests.integration.fake_stripe import API_KEY, FakeStripeServer

SECRET = "whsec_5f1d8a0e7c3b4a2d9e6f1a0b3c5d7e9f"
OTHER_SECRET = "whsec_0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"
PROBLEM = "application/problem+json"


@pytest.fixture
def shop(app: App) -> Shop:
    shop = Shop.create(app)
    with app.begin() as conn:
        save_webhook_secret(conn, shop.site_id, SECRET, app.secret_box(), shop.now)
    return shop


@pytest.fixture
def stripe_api(app: App) -> Iterator[FakeStripeServer]:
    """Stripe's API on a local fake, used by the worker's ``stripe`` gateway."""
    server = FakeStripeServer().start()
    gateway = StripeGateway(API_KEY, api_base=server.url)
    app.gateways.add(gateway)
    yield server
    gateway.close()
    server.stop()


def deliver(
    client: TestClient,
    evt: dict[str, Any],
    *,
    secret: str = SECRET,
    slug: str = "shop",
    timestamp: int | None = None,
) -> httpx.Response:
    text = se.body(evt)
    headers = {"Stripe-Signature": se.sign(text, secret, timestamp)}
    return client.post(f"/stripe/{slug}/webhook", content=text, headers=headers)


def accepted(response: httpx.Response, outcome: str = "applied") -> dict[str, Any]:
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer["outcome"] == outcome, answer
    return answer


def rejected(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM
    detail: str = response.json()["detail"]
    return detail


def failed_payment(
    customer: str, invoice: str, *, created: int | None = None, **fields: Any
) -> dict[str, Any]:
    version = fields.pop("api_version", se.API_VERSION)
    obj = se.invoice(invoice, customer=customer, api_version=version, **fields)
    return se.event("invoice.payment_failed", obj, created=created, api_version=version)


def invoice_event(type_: str, customer: str, invoice: str, created: int) -> dict[str, Any]:
    status = {"invoice.voided": "void"}.get(type_, "paid")
    obj = se.invoice(invoice, customer=customer, status=status, attempt_count=2)
    return se.event(type_, obj, created=created)


def nothing_stored(shop: Shop) -> bool:
    return not shop.all(tables.stripe_events) and not shop.all(tables.invoices)


@pytest.fixture
def ids() -> tuple[str, str, str]:
    return se.new_id("cus"), se.new_id("sub"), se.new_id("in")


# -- a failed payment starts dunning -------------------------------------------------


@pytest.mark.parametrize("version", [se.API_VERSION, se.LEGACY_API_VERSION])
def test_a_failed_stripe_payment_starts_dunning_and_the_day_1_email_goes_out(
    client: TestClient, shop: Shop, ids: tuple[str, str, str], version: str
) -> None:
    cus, sub, inv = ids
    evt = failed_payment(cus, inv, subscription=sub, amount_due=4200, api_version=version)
    accepted(deliver(client, evt))

    invoice = shop.one(tables.invoices, external_id=inv)
    assert (invoice.status, invoice.amount_due_minor, invoice.currency) == ("past_due", 4200, "USD")
    cycle = shop.cycle_of(invoice.id)
    assert (cycle.phase, cycle.attempts, cycle.started_at) == ("dunning", 1, shop.now)
    [attempt] = shop.attempts_of(invoice.id)
    assert (attempt.status, attempt.decline_code, attempt.gateway) == (
        "declined",
        "card_declined",
        "stripe",
    )
    customer = shop.one(tables.customers, id=invoice.customer_id)
    assert (customer.external_id, customer.first_name, customer.email) == (
        cus,
        "Ada",
        "ada@example.com",
    )
    assert shop.one(tables.subscriptions, external_id=sub).status == "past_due"
    assert shop.event_types(invoice.id)[:4] == [
        "invoice.created",
        "invoice.past_due",
        "dunning.started",
        "payment.failed",
    ]
    shop.run()
    [email] = shop.all(tables.sandbox_messages, channel="email")
    assert email.to_addr == "ada@example.com"


def test_a_hard_decline_code_in_the_payload_stops_retries_until_a_new_card(
    client: TestClient, shop: Shop, ids: tuple[str, str, str]
) -> None:
    cus, _, inv = ids
    evt = failed_payment(cus, inv, api_version=se.LEGACY_API_VERSION)
    intent = se.new_id("pi")
    error = {"code": "card_declined", "decline_code": "lost_card", "type": "card_error"}
    evt["data"]["object"]["payment_intent"] = {"id": intent, "last_payment_error": error}
    accepted(deliver(client, evt))

    invoice = shop.one(tables.invoices, external_id=inv)
    [attempt] = shop.attempts_of(invoice.id)
    assert (attempt.decline_code, attempt.decline_class) == ("lost_card", "hard")
    assert attempt.gateway_reference == intent
    assert shop.cycle_of(invoice.id).hard_declined


def test_a_phone_that_cannot_text_is_left_out_and_the_event_still_applies(
    client: TestClient, shop: Shop, ids: tuple[str, str, str]
) -> None:
    cus, _, inv = ids
    answer = accepted(deliver(client, failed_payment(cus, inv, customer_phone="12")))

    assert "phone not kept" in answer["detail"]
    assert shop.one(tables.customers, external_id=cus).phone is None


# -- paid, voided, and events out of order --------------------------------------------


def test_an_invoice_paid_in_stripe_ends_dunning_as_recovered(
    client: TestClient, shop: Shop, ids: tuple[str, str, str]
) -> None:
    cus, sub, inv = ids
    accepted(deliver(client, failed_payment(cus, inv, subscription=sub, created=se.now() - 60)))
    accepted(deliver(client, invoice_event("invoice.paid", cus, inv, se.now())))

    invoice = shop.one(tables.invoices, external_id=inv)
    assert (invoice.status, invoice.amount_paid_minor) == ("paid", 2500)
    cycle = shop.cycle_of(invoice.id)
    assert (cycle.phase, cycle.outcome, cycle.next_run_at) == ("closed", "recovered", None)
    assert shop.one(tables.subscriptions, external_id=sub).status == "active"
    # payment_succeeded follows paid for the same payment: nothing more happens.
    again = accepted(
        deliver(client, invoice_event("invoice.payment_succeeded", cus, inv, se.now()))
    )
    assert "already paid" in again["detail"]
    assert shop.event_types(invoice.id).count("dunning.ended") == 1


def test_a_failure_delivered_after_the_payment_that_followed_it_is_ignored(
    client: TestClient, shop: Shop, ids: tuple[str, str, str]
) -> None:
    cus, _, inv = ids
    start = se.now() - 600
    accepted(deliver(client, failed_payment(cus, inv, created=start)))
    accepted(deliver(client, invoice_event("invoice.paid", cus, inv, start + 300)))
    late = failed_payment(cus, inv, created=start + 120, attempt_count=2)
    accepted(deliver(client, late), "ignored_stale")

    invoice = shop.one(tables.invoices, external_id=inv)
    assert invoice.status == "paid"
    assert shop.cycle_of(invoice.id).phase == "closed"
    assert len(shop.attempts_of(invoice.id)) == 1


def test_a_failure_delivered_after_the_payment_never_opens_the_invoice(
    client: TestClient, shop: Shop, ids: tuple[str, str, str]
) -> None:
    cus, _, inv = ids
    accepted(deliver(client, invoice_event("invoice.paid", cus, inv, se.now())))
    accepted(deliver(client, failed_payment(cus, inv, created=se.now() - 60)), "ignored_stale")

    assert shop.all(tables.invoices) == []
    assert [e.outcome for e in shop.all(tables.stripe_events)] == ["applied", "ignored_stale"]


def test_a_voided_invoice_stops_dunning_and_is_never_charged_again(
    client: TestClient, shop: Shop, ids: tuple[str, str, str]
) -> None:
    cus, _, inv = ids
    accepted(deliver(client, failed_payment(cus, inv, created=se.now() - 60)))
    accepted(deliver(client, invoice_event("invoice.voided", cus, inv, se.now())))

    invoice = shop.one(tables.invoices, external_id=inv)
    assert invoice.status == "voided"
    assert shop.cycle_of(invoice.id).outcome == "voided"
    shop.run_days(5)
    assert len(shop.attempts_of(invoice.id)) == 1


def test_a_duplicate_delivery_answers_the_same_and_changes_nothing(
    client: TestClient, shop: Shop, ids: tuple[str, str, str]
) -> None:
    cus, _, inv = ids
    evt = failed_payment(cus, inv)
    first = accepted(deliver(client, evt))
    counts = [len(shop.all(t)) for t in (tables.invoices, tables.events, tables.outbox)]
    second = accepted(deliver(client, evt))

    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert second["detail"] == first["detail"]
    assert [len(shop.all(t)) for t in (tables.invoices, tables.events, tables.outbox)] == counts
    assert len(shop.all(tables.stripe_events)) == 1


def test_an_event_type_dunwell_does_not_use_is_recorded_as_ignored(
    client: TestClient, shop: Shop
) -> None:
    refund = {"id": se.new_id("ch"), "object": "charge", "amount_refunded": 2500}
    accepted(deliver(client, se.event("charge.refunded", refund)), "ignored_type")

    [record] = shop.all(tables.stripe_events)
    assert (record.type, record.object_id) == ("charge.refunded", refund["id"])


# -- subscriptions, customers and cards -----------------------------------------------


def test_a_deleted_subscription_is_mirrored_as_canceled_with_its_price(
    client: TestClient, shop: Shop, ids: tuple[str, str, str]
) -> None:
    cus, sub, _ = ids
    obj = se.subscription(sub, customer=cus, status="canceled", canceled=True)
    accepted(deliver(client, se.event("customer.subscription.deleted", obj)))

    subscription = shop.one(tables.subscriptions, external_id=sub)
    assert subscription.status == "canceled"
    assert subscription.canceled_at == shop.now
    [item] = shop.all(tables.subscription_items, subscription_id=subscription.id)
    product = shop.one(tables.products, id=item.product_id)
    assert (product.code, item.unit_price_minor) == ("price_1PlanMonthlyUSD2500", 2500)


def test_an_older_subscription_update_does_not_undo_a_newer_one(
    client: TestClient, shop: Shop, ids: tuple[str, str, str]
) -> None:
    cus, sub, _ = ids
    newer = se.subscription(sub, customer=cus, status="past_due")
    older = se.subscription(sub, customer=cus, status="active", api_version=se.LEGACY_API_VERSION)
    type_ = "customer.subscription.updated"
    accepted(deliver(client, se.event(type_, newer, created=se.now())))
    accepted(deliver(client, se.event(type_, older, created=se.now() - 30)), "ignored_stale")

    assert shop.one(tables.subscriptions, external_id=sub).status == "past_due"


def test_a_customer_first_seen_on_a_subscription_is_named_by_its_failed_invoice(
    client: TestClient, shop: Shop, ids: tuple[str, str, str]
) -> None:
    cus, sub, inv = ids
    obj = se.subscription(sub, customer=cus)
    accepted(deliver(client, se.event("customer.subscription.updated", obj)))
    unnamed = shop.one(tables.customers, external_id=cus)
    assert (unnamed.first_name, unnamed.email) == ("Customer", None)
    accepted(deliver(client, failed_payment(cus, inv, subscription=sub)))

    customer = shop.one(tables.customers, external_id=cus)
    assert (customer.first_name, customer.last_name) == ("Ada", "Lovelace")
    assert customer.email == "ada@example.com"
    subscription = shop.one(tables.subscriptions, external_id=sub)
    assert subscription.status == "past_due"
    assert shop.one(tables.invoices, external_id=inv).subscription_id == subscription.id


def test_customer_updated_changes_the_email_name_and_language(
    client: TestClient, shop: Shop, ids: tuple[str, str, str]
) -> None:
    cus, _, inv = ids
    accepted(deliver(client, failed_payment(cus, inv)))
    obj = se.customer(cus, name="Ada King", email="ada@king.example", preferred_locales=("fr",))
    previous = {"email": "ada@example.com", "name": "Ada Lovelace"}
    evt = se.event("customer.updated", obj, previous_attributes=previous, by_api=True)
    accepted(deliver(client, evt))

    customer = shop.one(tables.customers, external_id=cus)
    assert (customer.first_name, customer.last_name) == ("Ada", "King")
    assert (customer.email, customer.locale) == ("ada@king.example", "fr")


def test_an_attached_card_becomes_the_default_and_queues_a_retry(
    client: TestClient, shop: Shop, ids: tuple[str, str, str]
) -> None:
    cus, _, inv = ids
    accepted(deliver(client, failed_payment(cus, inv)))
    shop.advance(0.5)
    pm = se.new_id("pm")
    accepted(deliver(client, se.event("payment_method.attached", se.card(pm, customer=cus))))

    invoice = shop.one(tables.invoices, external_id=inv)
    [method] = shop.all(tables.payment_methods, customer_id=invoice.customer_id)
    assert (method.gateway, method.token, method.gateway_customer) == ("stripe", pm, cus)
    assert (method.brand, method.last4, method.is_default) == ("visa", "4242", True)
    cycle = shop.cycle_of(invoice.id)
    assert cycle.retry_at == cycle.next_run_at == shop.now
    assert "invoice.collection_requested" in shop.event_types(invoice.id)


# -- the worker's retries pay the Stripe invoice ----------------------------------------


def test_a_retry_with_the_new_card_pays_the_stripe_invoice_once(
    client: TestClient, shop: Shop, ids: tuple[str, str, str], stripe_api: FakeStripeServer
) -> None:
    cus, sub, inv = ids
    evt = failed_payment(cus, inv, subscription=sub)
    stripe_api.fake.open_invoice(evt["data"]["object"])
    accepted(deliver(client, evt))
    card = se.card("pm_card_visa", customer=cus)
    accepted(deliver(client, se.event("payment_method.attached", card)))
    shop.run()

    invoice = shop.one(tables.invoices, external_id=inv)
    assert invoice.status == "paid"
    assert shop.cycle_of(invoice.id).outcome == "recovered"
    [sent] = stripe_api.fake.requests
    assert sent.path == f"/v1/invoices/{inv}/pay"
    assert sent.params == {"off_session": "true", "payment_method": "pm_card_visa"}
    assert sent.idempotency_key == f"dunwell-{shop.site_id}-{invoice.id}-2"
    # Stripe then reports the payment Dunwell made: nothing more changes.
    closed = accepted(deliver(client, invoice_event("invoice.paid", cus, inv, se.now())))
    assert "already paid" in closed["detail"]


def test_without_a_card_in_dunwell_the_retry_charges_the_card_stripe_has_on_file(
    client: TestClient, shop: Shop, ids: tuple[str, str, str], stripe_api: FakeStripeServer
) -> None:
    cus, _, inv = ids
    evt = failed_payment(cus, inv)
    stripe_api.fake.open_invoice(evt["data"]["object"], "pm_card_chargeDeclinedInsufficientFunds")
    accepted(deliver(client, evt))
    shop.advance(1)  # the default policy retries every 24 hours
    shop.run()

    invoice = shop.one(tables.invoices, external_id=inv)
    _, second = shop.attempts_of(invoice.id)
    assert (second.status, second.decline_code, second.gateway) == (
        "declined",
        "insufficient_funds",
        "stripe",
    )
    [sent] = stripe_api.fake.requests
    assert sent.params == {"off_session": "true"}


def test_paying_a_stripe_invoice_that_needs_the_customer_is_an_authentication_decline(
    stripe_api: FakeStripeServer,
) -> None:
    obj = se.invoice(se.new_id("in"), customer=se.new_id("cus"))
    stripe_api.fake.open_invoice(obj)
    request = ChargeRequest(
        "k-1", "pm_fake_requiresAction", 2500, "USD", external_invoice=obj["id"]
    )
    with StripeGateway(API_KEY, api_base=stripe_api.url) as gateway:
        [answer] = gateway.charge_many([request])
        [again] = gateway.charge_many([request])

    assert (answer.status.value, answer.decline_code) == ("declined", "authentication_required")
    assert again == answer
    assert stripe_api.fake.executed == ["k-1"]


# -- signatures and tenants -------------------------------------------------------------


@pytest.mark.parametrize(
    "tamper",
    ["forged body", "wrong secret", "older than 300 s", "no header", "unknown site", "no secret"],
)
def test_an_unverifiable_delivery_is_400_and_stores_nothing(
    client: TestClient, app: App, shop: Shop, ids: tuple[str, str, str], tamper: str
) -> None:
    text = se.body(failed_payment(ids[0], ids[2]))
    headers = {"Stripe-Signature": se.sign(text, SECRET)}
    slug = "shop"
    if tamper == "forged body":
        text = text.replace('"amount_due": 2500', '"amount_due": 1')
    elif tamper == "wrong secret":
        headers["Stripe-Signature"] = se.sign(text, OTHER_SECRET)
    elif tamper == "older than 300 s":
        headers["Stripe-Signature"] = se.sign(text, SECRET, se.now() - 301)
    elif tamper == "no header":
        headers = {}
    elif tamper == "unknown site":
        slug = "nobody"
    else:
        with app.begin() as conn:
            save_webhook_secret(conn, shop.site_id, None, app.secret_box(), shop.now)

    response = client.post(f"/stripe/{slug}/webhook", content=text, headers=headers)

    assert rejected(response) == UNVERIFIED
    assert nothing_stored(shop)


@pytest.mark.parametrize(
    ("text", "named"),
    [("{not json", "not valid JSON"), ('{"object": "invoice"}', '"object" is not "event"')],
)
def test_a_signed_body_that_is_not_an_event_is_400_naming_the_problem(
    client: TestClient, shop: Shop, text: str, named: str
) -> None:
    headers = {"Stripe-Signature": se.sign(text, SECRET)}
    response = client.post("/stripe/shop/webhook", content=text, headers=headers)

    assert named in rejected(response)
    assert nothing_stored(shop)


@pytest.mark.parametrize("created", [10**20, -(10**15), 0])
def test_a_signed_event_from_an_impossible_time_is_400_and_stores_nothing(
    client: TestClient, shop: Shop, ids: tuple[str, str, str], created: int
) -> None:
    customer, _, invoice = ids
    evt = failed_payment(customer, invoice)
    evt["created"] = created

    assert '"created" is out of range' in rejected(deliver(client, evt))
    assert nothing_stored(shop)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"amount_due": 2**63}, '"amount_due" is out of range'),
        ({"amount_due": 10**30}, '"amount_due" is out of range'),
        ({"amount_due": -5}, '"amount_due" is out of range'),
        ({"currency": "zzz"}, "\"currency\" 'zzz' is not an ISO 4217 currency"),
        ({"currency": "abcd"}, "\"currency\" 'abcd' is not an ISO 4217 currency"),
    ],
)
def test_a_signed_invoice_the_ledger_cannot_hold_is_recorded_failed_naming_the_field(
    client: TestClient, shop: Shop, ids: tuple[str, str, str], fields: dict[str, Any], named: str
) -> None:
    # Answered 200 with the outcome, not 500: Stripe would retry a 500 for
    # three days, and the same body would fail the same way each time.
    customer, _, invoice = ids
    evt = failed_payment(customer, invoice)
    evt["data"]["object"].update(fields)

    answer = accepted(deliver(client, evt), "failed")

    assert named in answer["detail"]
    assert not shop.all(tables.invoices)


def test_each_site_sees_only_its_own_stripe_events(
    client: TestClient, app: App, shop: Shop, ids: tuple[str, str, str]
) -> None:
    with app.begin() as conn:
        other = create_site(conn, app.clock, slug="other", name="Other Inc.")
        save_webhook_secret(conn, other, OTHER_SECRET, app.secret_box(), shop.now)
    evt = failed_payment(ids[0], ids[2])
    accepted(deliver(client, evt))

    assert shop.all(tables.stripe_events, site_id=other) == []
    assert shop.all(tables.customers, site_id=other) == []
    rejected(deliver(client, evt, secret=SECRET, slug="other"))
    # The same Stripe account may feed two sites: each keeps its own mirror.
    assert not accepted(deliver(client, evt, secret=OTHER_SECRET, slug="other"))["duplicate"]
    mine, theirs = (shop.one(tables.invoices, site_id=s) for s in (shop.site_id, other))
    assert mine.id != theirs.id
    assert mine.customer_id != theirs.customer_id


# -- the setting ------------------------------------------------------------------------


def test_the_signing_secret_is_saved_encrypted_by_an_admin_and_never_shown(
    client: TestClient, app: App, shop: Shop, ids: tuple[str, str, str]
) -> None:
    with app.begin() as conn:
        admin = api_keys.create_key(conn, shop.site_id, "admin", "admin", shop.now)
        writer = api_keys.create_key(conn, shop.site_id, "writer", "write", shop.now)
    body = {"webhook_secret": OTHER_SECRET}

    refused = client.put(
        "/v1/settings/stripe", json=body, headers={"Authorization": f"Bearer {writer}"}
    )
    assert refused.status_code == 403
    saved = client.put(
        "/v1/settings/stripe", json=body, headers={"Authorization": f"Bearer {admin}"}
    )
    assert saved.status_code == 200, saved.text
    shown = client.get("/v1/settings/stripe", headers={"Authorization": f"Bearer {writer}"}).json()

    assert shown["webhook_secret_set"] is True
    assert shown["webhook_url"].endswith("/stripe/shop/webhook")
    assert "invoice.payment_failed" in shown["events"]
    assert OTHER_SECRET not in saved.text + str(shown)
    [row] = shop.all(tables.site_preferences)
    assert OTHER_SECRET not in row.stripe_webhook_secret
    assert app.secret_box().open(row.stripe_webhook_secret) == OTHER_SECRET
    rejected(deliver(client, failed_payment(ids[0], ids[2])))
    accepted(deliver(client, failed_payment(ids[0], ids[2]), secret=OTHER_SECRET))


def test_a_secret_that_is_not_stripes_is_refused(client: TestClient, app: App, shop: Shop) -> None:
    with app.begin() as conn:
        admin = api_keys.create_key(conn, shop.site_id, "admin", "admin", shop.now)
    response = client.put(
        "/v1/settings/stripe",
        json={"webhook_secret": "sk_test_123"},
        headers={"Authorization": f"Bearer {admin}"},
    )

    assert response.status_code == 422
    assert response.json()["field"] == "webhook_secret"
    assert shop.all(tables.site_preferences)[0].stripe_webhook_secret is not None


def test_a_site_without_preferences_gets_a_row_when_the_secret_is_saved(app: App) -> None:
    shop = Shop.create(app, slug="fresh")
    with app.begin() as conn:
        save_webhook_secret(conn, shop.site_id, SECRET, app.secret_box(), shop.now)

    [row] = shop.all(tables.site_preferences, site_id=shop.site_id)
    assert row.portal == {}
    assert row.updated_at == shop.now
