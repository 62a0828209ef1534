"""Customers, payment methods, products, subscriptions and the site, through ``/v1``.

Every test runs on SQLite and on PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dunwell.domain.states import SiteMode
from dunwell.gateways.sandbox import tokenize
from dunwell.services import api_keys
from dunwell.services.sites import create_site
from dunwell.store import tables
from tests.integration.factories import GOOD, INSUFFICIENT, Shop
from tests.integration.test_api_core import bearer, problem


def token_body(card: str = GOOD, **extra: Any) -> dict[str, Any]:
    details = tokenize(card, 12, 2031)
    return {
        "token": details.token,
        "brand": details.brand,
        "last4": details.last4,
        "exp_month": 12,
        "exp_year": 2031,
        **extra,
    }


def create(client: TestClient, shop: Shop, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(path, json=body, headers=bearer(shop))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- customers ---------------------------------------------------------------------------


def test_a_customer_is_created_with_a_normalised_phone_and_read_back(
    client: TestClient, shop: Shop
) -> None:
    customer = create(
        client,
        shop,
        "/v1/customers",
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": "ada@x.test",
            "phone": "(415) 555-0123",
            "time_zone": "America/Los_Angeles",
            "payday": "friday",
            "locale": "en",
            "external_id": "user-42",
            "marketing_sms_opt_in": True,
        },
    )

    assert customer["phone"] == "+14155550123"
    assert customer["marketing_sms_opt_in"] is True
    assert at(customer["marketing_sms_opt_in_at"]) == shop.now
    read = client.get(f"/v1/customers/{customer['id']}", headers=bearer(shop, "read"))
    assert read.json() == customer
    assert "site_id" not in customer


def test_a_patch_changes_only_the_fields_sent_and_null_clears_one(
    client: TestClient, shop: Shop
) -> None:
    customer = create(client, shop, "/v1/customers", {"first_name": "Ada", "email": "a@x.test"})
    url = f"/v1/customers/{customer['id']}"

    changed = client.patch(url, json={"payday": "15", "email": None}, headers=bearer(shop))
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["first_name"], body["email"], body["payday"]) == ("Ada", None, "15")

    opted_in = client.patch(url, json={"marketing_sms_opt_in": True}, headers=bearer(shop))
    assert opted_in.json()["marketing_sms_opt_in"] is True
    opted_out = client.patch(url, json={"marketing_sms_opt_in": False}, headers=bearer(shop))
    assert opted_out.json()["marketing_sms_opt_in_at"] is None


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"phone": "123"}, "phone"),
        ({"phone": "+1 800 555 0100"}, "phone"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "America"}, "time_zone"),
        ({"payday": "someday"}, "payday"),
        ({"email": "not an address"}, "email"),
        ({"locale": "english!"}, "locale"),
        ({"first_name": ""}, "first_name"),
        ({"nickname": "Ada"}, "nickname"),
        ({"first_name": "A\x00da"}, "first_name"),
        ({"external_id": "taken"}, "external_id"),
    ],
)
def test_a_wrong_customer_field_is_422_naming_it_on_create_and_on_patch(
    client: TestClient, shop: Shop, fields: dict[str, Any], field: str
) -> None:
    existing = create(client, shop, "/v1/customers", {"first_name": "Bo", "external_id": "taken"})
    created = client.post(
        "/v1/customers", json={"first_name": "Ada", **fields}, headers=bearer(shop)
    )
    assert problem(created, 422)["field"] == field
    patched = client.patch(f"/v1/customers/{existing['id'] + 1}", json=fields, headers=bearer(shop))
    assert patched.status_code in (404, 422)  # no such customer, unless the body is refused first
    unchanged = client.patch(f"/v1/customers/{existing['id']}", json=fields, headers=bearer(shop))
    if field != "external_id":  # setting its own external id again is fine
        assert problem(unchanged, 422)["field"] == field
    with shop.app.connect() as conn:
        assert conn.execute(select(tables.customers.c.id)).scalars().all() == [existing["id"]]


def test_customers_are_listed_page_by_page_and_filtered(client: TestClient, shop: Shop) -> None:
    ids = [
        create(client, shop, "/v1/customers", {"first_name": f"C{n}", "email": f"c{n}@x.test"})[
            "id"
        ]
        for n in range(5)
    ]
    headers = bearer(shop, "read")
    pages, after = [], 0
    while after is not None:
        body = client.get("/v1/customers", params={"limit": 2, "after": after}, headers=headers)
        pages.append([row["id"] for row in body.json()["data"]])
        after = body.json()["next_cursor"]
    assert pages == [ids[0:2], ids[2:4], ids[4:5]]
    found = client.get("/v1/customers", params={"email": "c3@x.test"}, headers=headers).json()
    assert [row["id"] for row in found["data"]] == [ids[3]]


def test_a_read_key_cannot_create_or_change_a_customer(client: TestClient, shop: Shop) -> None:
    headers = bearer(shop, "read")
    problem(client.post("/v1/customers", json={"first_name": "Ada"}, headers=headers), 403)
    customer_id = shop.customer()
    problem(client.patch(f"/v1/customers/{customer_id}", json={}, headers=headers), 403)


# -- payment methods ---------------------------------------------------------------------


def test_a_sandbox_token_is_attached_listed_and_detached(client: TestClient, shop: Shop) -> None:
    customer_id = shop.customer(card=None)
    url = f"/v1/customers/{customer_id}/payment_methods"
    method = create(client, shop, url, token_body())
    assert (method["gateway"], method["brand"], method["last4"]) == ("sandbox", "visa", "1111")
    assert method["is_default"] is True
    listed = client.get(url, headers=bearer(shop, "read")).json()["data"]
    assert [m["id"] for m in listed] == [method["id"]]

    detached = client.delete(f"{url}/{method['id']}", headers=bearer(shop))
    assert detached.status_code == 200
    assert at(detached.json()["detached_at"]) == shop.now
    assert client.get(url, headers=bearer(shop, "read")).json()["data"] == []
    problem(client.delete(f"{url}/{method['id']}", headers=bearer(shop)), 404)


def test_a_new_default_card_sends_the_past_due_invoice_to_collection(
    client: TestClient, shop: Shop
) -> None:
    customer_id = shop.customer(INSUFFICIENT)
    subscription_id = shop.subscribe(customer_id)
    shop.run()
    invoice = shop.invoice_of(subscription_id)
    assert invoice.status == "past_due"

    create(client, shop, f"/v1/customers/{customer_id}/payment_methods", token_body(GOOD))
    shop.run()

    assert shop.invoice_of(subscription_id).status == "paid"
    assert "invoice.collection_requested" in shop.event_types(invoice.id)


@pytest.mark.parametrize(
    "body",
    [
        token_body(token="4000000000009995"),
        token_body(token="pan 4000-0000-0000-9995"),
        token_body(exp_year=4000000000009995),
        token_body(number="4000 0000 0000 9995"),
        token_body(brand="4000000000009995"),
    ],
    ids=["as the token", "inside the token", "as a number", "in another field", "as the brand"],
)
def test_a_request_carrying_a_card_number_is_refused_and_the_number_is_kept_nowhere(
    client: TestClient, shop: Shop, body: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    customer_id = shop.customer(card=None)
    caplog.set_level(logging.DEBUG)
    headers = {**bearer(shop), "Idempotency-Key": "card-1"}

    response = client.post(
        f"/v1/customers/{customer_id}/payment_methods", json=body, headers=headers
    )

    problem(response, 422)
    assert "9995" not in response.text
    assert not any("9995" in record.getMessage() for record in caplog.records)
    for table in (tables.payment_methods, tables.idempotency_keys, tables.events):
        assert "9995" not in str(shop.all(table))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (token_body(token="tok_visa"), "token"),
        (token_body(token="sbx_made_up_0123456789abcdef"), "token"),
        (token_body(gateway="stripe", token="pm_123", gateway_customer="cus_1"), "gateway"),
        (token_body(last4="42"), "last4"),
        (token_body(exp_month=13), "exp_month"),
    ],
)
def test_a_token_that_its_gateway_cannot_use_is_422_naming_the_field(
    client: TestClient, shop: Shop, body: dict[str, Any], field: str
) -> None:
    url = f"/v1/customers/{shop.customer(card=None)}/payment_methods"
    assert problem(client.post(url, json=body, headers=bearer(shop)), 422)["field"] == field
    assert shop.all(tables.payment_methods) == []


def test_a_live_site_cannot_attach_a_sandbox_token(client: TestClient, shop: Shop) -> None:
    with shop.app.begin() as conn:
        live = create_site(conn, shop.app.clock, slug="live", name="Live", mode=SiteMode.LIVE)
        key = api_keys.create_key(conn, live, "k", "write", shop.now)
    headers = {"Authorization": f"Bearer {key}"}
    customer = client.post("/v1/customers", json={"first_name": "Liv"}, headers=headers).json()
    url = f"/v1/customers/{customer['id']}/payment_methods"
    assert problem(client.post(url, json=token_body(), headers=headers), 422)["field"] == "gateway"


# -- products and subscriptions ------------------------------------------------------------


def test_a_product_is_created_listed_and_its_code_is_unique(client: TestClient, shop: Shop) -> None:
    product = create(
        client,
        shop,
        "/v1/products",
        {"code": "pro", "name": "Pro", "price_minor": 4900, "currency": "eur"},
    )
    assert (product["currency"], product["price_minor"]) == ("EUR", 4900)
    listed = client.get("/v1/products", headers=bearer(shop, "read")).json()["data"]
    assert [p["code"] for p in listed] == ["plan", "pro"]
    again = {"code": "pro", "name": "Pro 2", "price_minor": 1, "currency": "EUR"}
    assert (
        problem(client.post("/v1/products", json=again, headers=bearer(shop)), 422)["field"]
        == "code"
    )
    bad_price = {**again, "code": "neg", "price_minor": -1}
    assert (
        problem(client.post("/v1/products", json=bad_price, headers=bearer(shop)), 422)["field"]
        == "price_minor"
    )


def test_a_subscription_is_created_with_its_items_and_listed_by_status(
    client: TestClient, shop: Shop
) -> None:
    customer_id = shop.customer()
    sub = create(
        client,
        shop,
        "/v1/subscriptions",
        {
            "customer_id": customer_id,
            "items": [{"product_id": shop.product_id, "quantity": 2}],
            "interval_unit": "week",
            "interval_count": 2,
        },
    )
    assert (sub["status"], sub["amount_minor"], sub["interval_unit"]) == ("active", 5000, "week")
    assert [(i["product_id"], i["quantity"]) for i in sub["items"]] == [(shop.product_id, 2)]

    headers = bearer(shop, "read")
    active = client.get("/v1/subscriptions", params={"status": "active"}, headers=headers)
    assert [s["id"] for s in active.json()["data"]] == [sub["id"]]
    canceled = client.get("/v1/subscriptions", params={"status": "canceled"}, headers=headers)
    assert canceled.json()["data"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"starts_at": "2020-01-01T00:00:00Z"}, "starts_at"),
        ({"starts_at": "2026-04-01T00:00:00"}, "starts_at"),
        ({"items": [{"product_id": 999}]}, "items[0].product_id"),
        ({"items": [{"product_id": 1, "quantity": 0}]}, "items[0].quantity"),
        ({"items": []}, "items"),
        ({"interval_unit": "month", "interval_count": 37}, "interval_count"),
        ({"collection": "cash"}, "collection"),
    ],
)
def test_a_wrong_subscription_field_is_422_naming_it(
    client: TestClient, shop: Shop, change: dict[str, Any], field: str
) -> None:
    body = {"customer_id": shop.customer(), "items": [{"product_id": shop.product_id}], **change}
    response = client.post("/v1/subscriptions", json=body, headers=bearer(shop))
    assert problem(response, 422)["field"] == field
    assert shop.all(tables.subscriptions) == []


def test_a_subscription_for_an_unknown_customer_is_404(client: TestClient, shop: Shop) -> None:
    body = {"customer_id": 999, "items": [{"product_id": shop.product_id}]}
    problem(client.post("/v1/subscriptions", json=body, headers=bearer(shop)), 404)


def test_a_paused_subscription_is_not_renewed_and_resumes_at_the_next_period(
    client: TestClient, shop: Shop
) -> None:
    subscription_id = shop.subscribe(shop.customer())
    shop.run()  # period 1 billed and paid
    url = f"/v1/subscriptions/{subscription_id}"

    paused = client.post(f"{url}/pause", headers=bearer(shop))
    assert paused.json()["status"] == "paused"
    problem(client.post(f"{url}/pause", headers=bearer(shop)), 409)
    shop.advance(45)
    shop.run()
    assert len(shop.all(tables.invoices, subscription_id=subscription_id)) == 1

    resumed = client.post(f"{url}/resume", headers=bearer(shop)).json()
    assert resumed["status"] == "active"
    assert at(resumed["next_charge_at"]) > shop.now  # the paused months are not billed
    assert resumed["periods_billed"] == 2
    shop.advance(20)
    shop.run()
    invoices = shop.all(tables.invoices, subscription_id=subscription_id)
    assert [(i.period, i.status) for i in invoices] == [(0, "paid"), (2, "paid")]


def test_a_canceled_subscription_stays_canceled(client: TestClient, shop: Shop) -> None:
    subscription_id = shop.subscribe(shop.customer())
    url = f"/v1/subscriptions/{subscription_id}"
    canceled = client.post(f"{url}/cancel", headers=bearer(shop)).json()
    assert canceled["status"] == "canceled"
    assert at(canceled["canceled_at"]) == shop.now
    for action in ("cancel", "pause", "resume"):
        problem(client.post(f"{url}/{action}", headers=bearer(shop)), 409)
    states = [e.data for e in shop.all(tables.events, type="subscription.state_changed")]
    assert states == [{"previous": "active", "current": "canceled"}]


# -- the site ----------------------------------------------------------------------------


def test_the_site_is_shown_to_a_read_key_and_changed_by_an_admin_key(
    client: TestClient, shop: Shop
) -> None:
    site = client.get("/v1/site", headers=bearer(shop, "read")).json()
    assert (site["slug"], site["mode"]) == ("shop", "sandbox")
    change = {
        "name": "Shop & Co",
        "support_email": "help@shop.test",
        "time_zone": "Europe/Paris",
        "locale": "fr",
        "currency": "eur",
    }
    problem(client.patch("/v1/site", json=change, headers=bearer(shop, "write")), 403)

    changed = client.patch("/v1/site", json=change, headers=bearer(shop, "admin"))

    assert changed.status_code == 200, changed.text
    assert {k: changed.json()[k] for k in change} == {**change, "currency": "EUR"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": " "}, "name"),
        ({"support_email": "help"}, "support_email"),
        ({"time_zone": "Nowhere/City"}, "time_zone"),
        ({"locale": "français"}, "locale"),
        ({"currency": "EURO"}, "currency"),
        ({"slug": "other"}, "slug"),
    ],
)
def test_a_wrong_site_setting_is_422_naming_it(
    client: TestClient, shop: Shop, change: dict[str, Any], field: str
) -> None:
    response = client.patch("/v1/site", json=change, headers=bearer(shop, "admin"))
    assert problem(response, 422)["field"] == field
    assert shop.one(tables.sites, id=shop.site_id).name == "shop Inc."
