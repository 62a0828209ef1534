"""The rules every ``/v1`` request is held to, route by route.

Text that no database can store, text longer than its column, a card
number in any field, a misspelt field, a number or a consent flag sent as
text, a currency no message can format: each is a 422 naming the field,
and nothing is stored. Every test runs on SQLite and on PostgreSQL (the
``app`` fixture); PostgreSQL is where a NUL used to become a 500.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from dunwell.bootstrap import App
from dunwell.services import sms_credits
from dunwell.services.sms_settings import update_sms_settings
from dunwell.store import tables
from tests.integration.factories import INSUFFICIENT, Shop
from tests.integration.test_api_core import bearer, problem

MOBILE = "+447400123456"
#: A valid German mobile whose 13 digits pass the Luhn check, like a card's.
LUHN_MOBILE = "+4915110000002"
PAN = "4242424242424242"
PAN_SPACED = "4242 4242 4242 4242"
MAX_BALANCE = 2**31 - 1


def row_counts(app: App) -> dict[str, int]:
    with app.connect() as conn:
        return {
            name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for name, table in tables.metadata.tables.items()
        }


def stored_anywhere(app: App, needle: str) -> list[str]:
    """The tables with a row whose text holds ``needle``."""
    with app.connect() as conn:
        return [
            name
            for name, table in tables.metadata.tables.items()
            if any(needle in str(tuple(row)) for row in conn.execute(select(table)))
        ]


def send(client: TestClient, method: str, path: str, payload: Any, headers: dict[str, str]) -> Any:
    if method in ("GET", "DELETE"):
        return client.request(method, path, params=payload, headers=headers)
    # Encoded here, escaping to ASCII, so that a lone surrogate can be sent.
    content = json.dumps(payload).encode()
    headers = {**headers, "content-type": "application/json"}
    return client.request(method, path, content=content, headers=headers)


def refused(client: TestClient, shop: Shop, method: str, path: str, payload: Any) -> dict[str, Any]:
    """Send as an admin; the 422 problem, once checked that no table gained or lost a row."""
    headers = bearer(shop, "admin")  # a new API key row, before the count
    before = row_counts(shop.app)
    body = problem(send(client, method, path, payload, headers), 422)
    assert row_counts(shop.app) == before
    return body


# -- text that no database can store, or longer than its column ----------------------------

UNSTORABLE: list[tuple[str, str, Any, str]] = [
    ("PUT", "/v1/templates/my_tpl/sms/en", {"body_text": "hi\x00there"}, "body_text"),
    ("PUT", "/v1/templates/my_tpl/sms/en", {"body_text": "hi \ud800"}, "body_text"),
    (
        "PUT",
        "/v1/templates/my_tpl/email/en",
        # Renders short, so no render limit stops it.
        {"subject": "s", "body_text": "{% comment %}" + "x" * 100_000 + "{% endcomment %}"},
        "body_text",
    ),
    (
        "PUT",
        "/v1/templates/my_tpl/email/en",
        {"body_text": "hi", "subject": "s\x00"},
        "subject",
    ),
    ("POST", "/v1/templates/my%00tpl/preview", {"channel": "sms"}, "name"),
    (
        "POST",
        "/v1/templates/payment_declined/test",
        {"channel": "email", "to": "a@b.test\x00"},
        "to",
    ),
    (
        "POST",
        "/v1/templates/payment_declined/test",
        {"channel": "email", "to": "a" * 400 + "@b.test"},
        "to",
    ),
    (
        "POST",
        "/v1/templates/payment_declined/preview",
        {"channel": "sms", "locale": "x" * 17},
        "locale",
    ),
    ("POST", "/v1/sandbox/phone/reply", {"from": MOBILE, "body": "hi\x00"}, "body"),
    ("POST", "/v1/sandbox/phone/reply", {"from": MOBILE, "body": "x" * 1601}, "body"),
    ("POST", "/v1/sandbox/phone/reply", {"from": "g" * 100, "body": "hi"}, "from"),
    ("GET", "/v1/conversations", {"q": "\x00"}, "q"),
    ("GET", "/v1/sandbox/mailbox", {"to": "\x00"}, "to"),
    ("GET", "/v1/sandbox/phone", {"number": "\x00"}, "number"),
    ("GET", "/v1/templates", {"name": "\x00"}, "name"),
    ("DELETE", "/v1/templates/my_tpl", {"locale": "\x00"}, "locale"),
    ("POST", "/v1/dunning_policies/automatic", {"policy": {}, "note": "n\x00"}, "note"),
    ("POST", "/v1/dunning_policies/automatic", {"policy": {}, "note": "n" * 501}, "note"),
    (
        "POST",
        "/v1/dunning_policies/automatic",
        {"policy": {"final": {"subscription_action": "downgrade", "downgrade_plan": "x\x00"}}},
        "final.downgrade_plan",
    ),
    (
        "POST",
        "/v1/dunning_policies/automatic",
        {"policy": {"steps": [{"day": 1, "email_template": "x\x00"}]}},
        "steps[0].email_template",
    ),
    ("POST", "/v1/sms/credits/top-up", {"credits": 5, "note": "n\x00"}, "note"),
    ("PATCH", "/v1/settings/sms", {"stop_reply": "x\x00"}, "stop_reply"),
    ("PATCH", "/v1/settings/concierge", {"escalation_email": "a\x00@b.test"}, "escalation_email"),
    ("PATCH", "/v1/settings/concierge", {"helpdesk_api_key": "k\x00"}, "helpdesk_api_key"),
    (
        "PUT",
        "/v1/settings/channels/email",
        {"provider": "smtp", "config": {"host": "x\x00", "port": 25, "from_addr": "a@b.test"}},
        "host",
    ),
    ("PUT", "/v1/settings/stripe", {"webhook_secret": "whsec_\x00"}, "webhook_secret"),
]


@pytest.mark.parametrize(
    ("method", "path", "payload", "field"),
    UNSTORABLE,
    ids=[f"{m} {p.split('/v1/')[1][:30]} {f}" for m, p, _, f in UNSTORABLE],
)
def test_text_no_database_can_store_or_too_long_for_its_column_is_422_naming_the_field(
    client: TestClient, shop: Shop, method: str, path: str, payload: Any, field: str
) -> None:
    assert refused(client, shop, method, path, payload)["field"] == field


def test_a_webhook_slug_no_site_can_have_is_answered_like_an_unknown_site(
    client: TestClient, shop: Shop
) -> None:
    # A NUL in the slug reached the database's lookup: 500 on PostgreSQL.
    stripe = client.post("/stripe/%00/webhook", content=b"{}")
    assert problem(stripe, 400)["title"] == "Invalid signature"
    twilio = client.post("/twilio/sh%00p/sms", data={"MessageSid": "SM1", "From": MOBILE})
    assert twilio.status_code == 403


# -- card numbers ----------------------------------------------------------------------------

CARDS: list[tuple[str, str, Any, str]] = [
    ("POST", "/v1/customers", {"first_name": "Ada", "last_name": PAN_SPACED}, "last_name"),
    ("POST", "/v1/customers", {"first_name": "Ada", "email": f"{PAN}@x.test"}, "email"),
    ("PATCH", "/v1/customers/{customer}", {"last_name": PAN}, "last_name"),
    (
        "POST",
        "/v1/products",
        {"code": "c1", "name": f"plan {PAN}", "price_minor": 1, "currency": "USD"},
        "name",
    ),
    ("PUT", "/v1/templates/cardy/sms/en", {"body_text": f"your card {PAN}"}, "body_text"),
    ("POST", "/v1/dunning_policies/automatic", {"policy": {}, "note": PAN}, "note"),
    (
        "POST",
        "/v1/dunning_policies/automatic",
        {"policy": {"steps": [{"day": 1, "email_template": PAN}]}},
        "steps[0].email_template",
    ),
    ("POST", "/v1/sms/credits/top-up", {"credits": 1, "note": PAN}, "note"),
    ("PATCH", "/v1/site", {"name": f"Shop {PAN}"}, "name"),
    ("PATCH", "/v1/settings/sms", {"help_contact": PAN_SPACED}, "help_contact"),
    (
        "POST",
        "/v1/webhook_endpoints",
        {"url": "http://127.0.0.1:9/h", "description": PAN},
        "description",
    ),
    ("POST", "/v1/conversations/1/reply", {"body": f"we charged {PAN}"}, "body"),
    (
        "POST",
        "/v1/templates/payment_declined/test",
        {"channel": "email", "to": f"{PAN}@x.test"},
        "to",
    ),
    ("GET", "/v1/conversations", {"q": PAN_SPACED}, "q"),
]


@pytest.mark.parametrize(
    ("method", "path", "payload", "field"),
    CARDS,
    ids=[f"{m} {p.split('/v1/')[1][:24]} {f}" for m, p, _, f in CARDS],
)
def test_a_card_number_in_any_field_is_422_and_neither_stored_nor_repeated(
    client: TestClient, shop: Shop, method: str, path: str, payload: Any, field: str
) -> None:
    customer_id = shop.customer(first_name="Ada", phone=MOBILE)
    client.post(  # a conversation to reply to
        "/v1/sandbox/phone/reply",
        json={"from": MOBILE, "body": "talk to a person"},
        headers=bearer(shop),
    )
    headers = bearer(shop, "admin")
    before = row_counts(shop.app)

    response = send(client, method, path.format(customer=customer_id), payload, headers)

    body = problem(response, 422)
    assert body["field"] == field
    assert "card number" in body["detail"]
    assert "4242" not in response.text
    assert row_counts(shop.app) == before
    assert stored_anywhere(shop.app, PAN) == stored_anywhere(shop.app, PAN_SPACED) == []


def test_an_unknown_field_named_like_a_card_number_is_not_repeated(
    client: TestClient, shop: Shop
) -> None:
    response = client.post(
        "/v1/customers", json={"first_name": "Ada", PAN: "x"}, headers=bearer(shop)
    )
    problem(response, 422)
    assert "4242" not in response.text


def test_identifiers_from_other_systems_may_be_long_numbers_that_pass_luhn(
    client: TestClient, shop: Shop
) -> None:
    # A 13-digit Shopify customer id, an EAN-13 product code or a Discord
    # webhook's 19-digit id passes the card check one time in ten: ids and
    # URLs are not free text, so they are not read as card numbers.
    headers = bearer(shop, "admin")
    customer = client.post(
        "/v1/customers", json={"first_name": "Ada", "external_id": PAN}, headers=headers
    )
    assert customer.status_code == 201, customer.text
    found = client.get("/v1/customers", params={"external_id": PAN}, headers=headers)
    assert [c["id"] for c in found.json()["data"]] == [customer.json()["id"]]
    product = {"code": PAN, "name": "Plan", "price_minor": 1, "currency": "USD"}
    assert client.post("/v1/products", json=product, headers=headers).status_code == 201
    hook = {"url": f"http://127.0.0.1:9/api/webhooks/{PAN}/token"}
    assert client.post("/v1/webhook_endpoints", json=hook, headers=headers).status_code == 201


def test_a_phone_number_whose_digits_pass_the_luhn_check_is_still_a_phone_number(
    client: TestClient, shop: Shop
) -> None:
    created = client.post(
        "/v1/customers", json={"first_name": "Jo", "phone": LUHN_MOBILE}, headers=bearer(shop)
    )
    assert created.status_code == 201, created.text
    assert created.json()["phone"] == LUHN_MOBILE

    texted = client.post(
        "/v1/sandbox/phone/reply", json={"from": LUHN_MOBILE, "body": "hi"}, headers=bearer(shop)
    )
    assert texted.status_code == 200, texted.text
    found = client.get("/v1/sandbox/phone", params={"number": LUHN_MOBILE}, headers=bearer(shop))
    assert found.status_code == 200 and found.json()["data"]


# -- misspelt fields -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "payload", "field"),
    [
        ("POST", "/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/h", "evnets": []}, "evnets"),
        ("PUT", "/v1/templates/tt/sms/en", {"body_text": "hi", "subjet": "x"}, "subjet"),
        ("POST", "/v1/clock/advance", {"by": "1d", "dry_run": True}, "dry_run"),
        ("POST", "/v1/sms/credits/top-up", {"credits": 1, "nte": "x"}, "nte"),
        ("PUT", "/v1/settings/stripe", {"webhook_secret": None, "x": 1}, "x"),
        ("POST", "/v1/dunning_policies/automatic", {"policy": {"max_attemps": 2}}, "max_attemps"),
        (
            "POST",
            "/v1/dunning_policies/automatic",
            {"policy": {"steps": [{"day": 1, "retry": True, "emial_template": "x"}]}},
            "steps[0].emial_template",
        ),
        (
            "POST",
            "/v1/dunning_policies/automatic",
            {"policy": {"final": {"subscription_actoin": "pause"}}},
            "final.subscription_actoin",
        ),
        ("POST", "/v1/dunning_policies/automatic", {"policy": {}, "notes": "x"}, "notes"),
    ],
)
def test_a_misspelt_field_is_422_naming_it_and_nothing_changes(
    client: TestClient, shop: Shop, method: str, path: str, payload: Any, field: str
) -> None:
    assert refused(client, shop, method, path, payload)["field"] == field


def test_a_misspelt_change_to_a_webhook_endpoint_is_refused(client: TestClient, shop: Shop) -> None:
    headers = bearer(shop, "admin")
    endpoint = client.post(
        "/v1/webhook_endpoints", json={"url": "http://127.0.0.1:9/h"}, headers=headers
    ).json()
    url = f"/v1/webhook_endpoints/{endpoint['id']}"

    assert (
        problem(client.patch(url, json={"enabeld": False}, headers=headers), 422)["field"]
        == "enabeld"
    )
    assert client.get(url, headers=headers).json()["enabled"] is True


# -- numbers, flags and currencies -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "payload", "field"),
    [
        (
            "POST",
            "/v1/products",
            {"code": "f", "name": "F", "price_minor": 10.0, "currency": "USD"},
            "price_minor",
        ),
        (
            "POST",
            "/v1/products",
            {"code": "s", "name": "S", "price_minor": "100", "currency": "USD"},
            "price_minor",
        ),
        ("POST", "/v1/sms/credits/top-up", {"credits": "5"}, "credits"),
        ("POST", "/v1/sms/credits/top-up", {"credits": True}, "credits"),
        (
            "POST",
            "/v1/customers",
            {"first_name": "M", "marketing_sms_opt_in": "yes"},
            "marketing_sms_opt_in",
        ),
        (
            "POST",
            "/v1/customers",
            {"first_name": "M", "marketing_sms_opt_in": 1},
            "marketing_sms_opt_in",
        ),
        ("POST", "/v1/webhook_endpoints", {"url": "http://127.0.0.1:9/h", "enabled": 0}, "enabled"),
        ("POST", "/v1/sandbox/phone/reply", {"from": "garbage", "body": "hello"}, "from"),
        ("POST", "/v1/sandbox/phone/reply", {"from": "+1 800 555 0100", "body": "hi"}, "from"),
    ],
    ids=[
        "price as a float",
        "price as text",
        "credits as text",
        "credits as true",
        "consent as yes",
        "consent as 1",
        "enabled as 0",
        "from is no number",
        "from is toll-free",
    ],
)
def test_a_number_flag_or_phone_of_the_wrong_kind_is_422_naming_the_field(
    client: TestClient, shop: Shop, method: str, path: str, payload: Any, field: str
) -> None:
    assert refused(client, shop, method, path, payload)["field"] == field


def test_the_sandbox_phone_reads_the_sender_like_a_customers_phone_field(
    client: TestClient, shop: Shop
) -> None:
    customer_id = shop.customer(phone=MOBILE)
    texted = client.post(
        "/v1/sandbox/phone/reply",
        json={"from": "+44 7400 123456", "body": "hello"},
        headers=bearer(shop),
    )
    assert texted.status_code == 200, texted.text
    assert texted.json()["phone"] == MOBILE
    assert texted.json()["customer_id"] == customer_id


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("POST", "/v1/products", {"code": "q", "name": "Q", "price_minor": 1, "currency": "QQQ"}),
        ("POST", "/v1/products", {"code": "x", "name": "X", "price_minor": 1, "currency": "XXX"}),
        ("POST", "/v1/products", {"code": "g", "name": "G", "price_minor": 1, "currency": "XAU"}),
        ("PATCH", "/v1/site", {"currency": "ZZZ"}),
    ],
    ids=["made up", "no currency", "gold", "site default"],
)
def test_a_currency_messages_cannot_format_is_422_naming_the_field(
    client: TestClient, shop: Shop, method: str, path: str, payload: dict[str, Any]
) -> None:
    body = refused(client, shop, method, path, payload)
    assert body["field"] == "currency"
    assert "ISO 4217" in body["detail"]
    assert shop.one(tables.sites, id=shop.site_id).currency == "USD"


def test_a_currency_in_lower_case_is_read_in_upper_case(client: TestClient, shop: Shop) -> None:
    product = client.post(
        "/v1/products",
        json={"code": "eu", "name": "EU", "price_minor": 900, "currency": "eur"},
        headers=bearer(shop),
    )
    assert product.status_code == 201, product.text
    assert product.json()["currency"] == "EUR"
    site = client.patch("/v1/site", json={"currency": "jpy"}, headers=bearer(shop, "admin"))
    assert site.json()["currency"] == "JPY"


# -- field names -------------------------------------------------------------------------------


def test_a_field_called_body_is_named_body(client: TestClient, shop: Shop) -> None:
    wrong = client.post("/v1/sandbox/phone/reply", json={"from": MOBILE}, headers=bearer(shop))
    assert problem(wrong, 422)["field"] == "body"
    typed = client.post(
        "/v1/sandbox/phone/reply", json={"from": MOBILE, "body": []}, headers=bearer(shop)
    )
    assert problem(typed, 422)["field"] == "body"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "field"),
    [
        ("GET", "/v1/invoices", {"params": {"limit": 0}}, "limit"),
        ("POST", "/v1/invoices/1/bogus", {}, "action"),
        ("POST", "/v1/customers", {"json": [1, 2]}, "body"),
        ("POST", "/v1/customers", {"content": b"{not json"}, "body"),
    ],
    ids=["query", "path", "not an object", "not JSON"],
)
def test_a_parameter_is_named_without_where_it_was_sent(
    client: TestClient, shop: Shop, method: str, path: str, kwargs: dict[str, Any], field: str
) -> None:
    headers = {**bearer(shop), "content-type": "application/json"}
    response = client.request(method, path, headers=headers, **kwargs)
    assert problem(response, 422)["field"] == field


# -- the test clock ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "by", ["99999999999d", "3000000d", "9" * 60 + "d", "100000d", "30000d", "0" * 5000 + "1d"]
)
def test_a_clock_advance_past_2100_is_422_naming_by_and_the_clock_stays(
    client: TestClient, shop: Shop, by: str
) -> None:
    start = shop.now
    response = client.post("/v1/clock/advance", json={"by": by}, headers=bearer(shop))
    assert problem(response, 422)["field"] == "by"
    assert shop.now == start


def test_the_clock_moves_up_to_the_end_of_2100(client: TestClient, shop: Shop) -> None:
    # 2026-03-02 09:00 plus 27,332 days is 2100-12-31 09:00.
    moved = client.post("/v1/clock/advance", json={"by": "27332d"}, headers=bearer(shop))
    assert moved.status_code == 200, moved.text
    assert moved.json()["now"].startswith("2100-12-31")
    assert client.post("/v1/customers", json={"first_name": "Z"}, headers=bearer(shop)).is_success
    over = client.post("/v1/clock/advance", json={"by": "1d"}, headers=bearer(shop))
    assert problem(over, 422)["field"] == "by"


# -- SMS credits ---------------------------------------------------------------------------------


def test_a_top_up_past_the_largest_balance_is_422_naming_credits(
    client: TestClient, shop: Shop
) -> None:
    headers = bearer(shop, "admin")
    balance = client.get("/v1/sms/credits", headers=headers).json()["balance"]

    over = client.post("/v1/sms/credits/top-up", json={"credits": MAX_BALANCE}, headers=headers)

    assert problem(over, 422)["field"] == "credits"
    assert client.get("/v1/sms/credits", headers=headers).json()["balance"] == balance
    full = client.post(
        "/v1/sms/credits/top-up", json={"credits": MAX_BALANCE - balance}, headers=headers
    )
    assert full.json() == {"balance": MAX_BALANCE}
    problem(client.post("/v1/sms/credits/top-up", json={"credits": 1}, headers=headers), 422)


def test_a_top_up_leaves_room_for_the_refund_of_every_text_paid_for(
    client: TestClient, shop: Shop
) -> None:
    shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()
    (sms,) = [m for m in shop.all(tables.outbox, site_id=shop.site_id) if m.channel == "sms"]
    charged = 1000 - shop.sms_balance()
    assert charged > 0
    headers = bearer(shop, "admin")

    # The balance alone has room for this; the refund still due would not.
    room_for_balance = MAX_BALANCE - shop.sms_balance()
    refused = client.post(
        "/v1/sms/credits/top-up", json={"credits": room_for_balance}, headers=headers
    )
    assert problem(refused, 422)["field"] == "credits"
    topped = client.post(
        "/v1/sms/credits/top-up", json={"credits": room_for_balance - charged}, headers=headers
    )
    assert topped.status_code == 200, topped.text

    with shop.app.begin() as conn:
        sms_credits.refund_message(conn, shop.site_id, sms.id, shop.now)
    assert shop.sms_balance() == MAX_BALANCE


def test_an_auto_refill_is_cut_to_the_room_left_instead_of_failing_the_send(
    shop: Shop,
) -> None:
    with shop.app.begin() as conn:
        sms_credits.balances(conn, [shop.site_id], shop.now)
        update_sms_settings(
            conn,
            shop.site_id,
            {"auto_refill_threshold": MAX_BALANCE, "auto_refill_amount": MAX_BALANCE},
            shop.now,
        )
    shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()

    (sms,) = [m for m in shop.all(tables.outbox, site_id=shop.site_id) if m.channel == "sms"]
    assert sms.status == "delivered"
    ledger = shop.all(tables.sms_credit_ledger, site_id=shop.site_id)
    assert [r.reason for r in ledger] == ["top_up", "debit", "auto_refill"]
    # Room is kept for the refund of the text's charge, should it fail after all.
    assert shop.sms_balance() == MAX_BALANCE + ledger[1].delta
