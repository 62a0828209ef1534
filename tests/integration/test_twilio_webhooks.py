"""Twilio's inbound SMS webhook, signed and checked with the SDK's validator on both sides."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from dunwell.bootstrap import App
from dunwell.services.channel_config import save_channel_config
from dunwell.store import tables
from tests.integration.factories import Shop

TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "https://dunwell.example"
CUSTOMER = "+14155552671"


@pytest.fixture
def shop(app: App) -> Shop:
    app.settings = replace(app.settings, public_url=PUBLIC)
    shop = Shop.create(app)
    with app.begin() as conn:
        save_channel_config(
            conn,
            shop.site_id,
            "sms",
            "twilio",
            {"account_sid": "AC" + "a" * 32, "from_number": "+14155550000"},
            TOKEN,
            app.secret_box(),
            shop.now,
        )
    shop.customer(None, phone=CUSTOMER)
    return shop


def _post(
    client: TestClient, params: dict[str, str], *, url: str | None = None, token: str = TOKEN
) -> Any:
    path = "/twilio/shop/sms"
    signature = RequestValidator(token).compute_signature(url or PUBLIC + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def _sms(sid: str, body: str, **extra: str) -> dict[str, str]:
    return {
        "MessageSid": sid,
        "AccountSid": "AC" + "a" * 32,
        "From": CUSTOMER,
        "To": "+14155550000",
        "Body": body,
        **extra,
    }


def test_a_signed_stop_opts_the_number_out_and_answers_in_twiml(
    shop: Shop, client: TestClient
) -> None:
    response = _post(client, _sms("SM" + "1" * 32, "STOP"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    assert "<Message>" in response.text and "shop Inc." in response.text
    assert shop.one(tables.sms_opt_outs, phone=CUSTOMER).opted_out is True
    assert shop.one(tables.inbound_messages, provider_sid="SM" + "1" * 32).keyword == "opt_out"


def test_a_forged_signature_is_refused_and_stores_nothing(shop: Shop, client: TestClient) -> None:
    response = _post(client, _sms("SM" + "2" * 32, "STOP"), token="f" * 32)
    assert response.status_code == 403
    assert shop.all(tables.inbound_messages) == []
    assert shop.all(tables.sms_opt_outs) == []


def test_a_signature_for_the_internal_url_is_refused_behind_a_proxy(
    shop: Shop, client: TestClient
) -> None:
    response = _post(client, _sms("SM" + "3" * 32, "HELP"), url="http://testserver/twilio/shop/sms")
    assert response.status_code == 403


def test_an_altered_body_breaks_the_signature(shop: Shop, client: TestClient) -> None:
    params = _sms("SM" + "4" * 32, "hello")
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/shop/sms", params)
    response = client.post(
        "/twilio/shop/sms",
        data={**params, "Body": "STOP"},
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status_code == 403
    assert shop.all(tables.sms_opt_outs) == []


def test_a_replayed_request_changes_nothing_and_answers_nothing(
    shop: Shop, client: TestClient
) -> None:
    params = _sms("SM" + "5" * 32, "STOP")
    assert "<Message>" in _post(client, params).text
    with shop.app.begin() as conn:  # the customer opts back in meanwhile
        conn.execute(tables.sms_opt_outs.update().values(opted_out=False))
    again = _post(client, params)
    assert again.status_code == 200
    assert "<Message>" not in again.text
    assert shop.one(tables.sms_opt_outs, phone=CUSTOMER).opted_out is False
    assert len(shop.all(tables.inbound_messages)) == 1


def test_advanced_opt_out_is_honoured_and_twilio_sends_the_answer(
    shop: Shop, client: TestClient
) -> None:
    response = _post(client, _sms("SM" + "6" * 32, "Stop it", OptOutType="STOP"))
    assert response.status_code == 200
    assert "<Message>" not in response.text
    assert shop.one(tables.sms_opt_outs, phone=CUSTOMER).opted_out is True


def test_a_card_number_in_a_text_is_never_stored(shop: Shop, client: TestClient) -> None:
    _post(client, _sms("SM" + "7" * 32, "my card is 4111 1111 1111 1111 exp 12/30"))
    stored = shop.one(tables.inbound_messages, provider_sid="SM" + "7" * 32).body
    assert "4111" not in stored and "[card number removed]" in stored


def test_an_unknown_site_gets_the_same_403(client: TestClient, shop: Shop) -> None:
    params = _sms("SM" + "8" * 32, "STOP")
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + "/twilio/nope/sms", params)
    response = client.post(
        "/twilio/nope/sms", data=params, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403
