"""Templates, messages, settings and the sandbox phone through the REST API."""

from __future__ import annotations

from fastapi.testclient import TestClient

from dunwell.store import tables
from tests.integration.factories import INSUFFICIENT, Shop
from tests.integration.test_api_core import bearer, problem

MOBILE = "+447400123456"


def test_a_template_with_a_typo_is_refused_with_its_line_and_column(
    shop: Shop, client: TestClient
) -> None:
    response = client.put(
        "/v1/templates/gentle/email/en",
        json={"subject": "Hi", "body_text": "Hello\n{{ customer.frist_name }}"},
        headers=bearer(shop),
    )
    body = problem(response, 422)
    assert body["field"] == "body_text"
    assert "line 2" in body["detail"] and "frist_name" in body["detail"]


def test_a_saved_template_can_be_previewed_in_its_locale_and_used_by_a_policy(
    shop: Shop, client: TestClient
) -> None:
    auth = bearer(shop, "admin")
    for locale, text in (
        ("en", "Hi {{ customer.first_name }}"),
        ("fr", "Salut {{ customer.first_name }}"),
    ):
        saved = client.put(
            f"/v1/templates/gentle/sms/{locale}", json={"body_text": text}, headers=auth
        )
        assert saved.status_code == 200, saved.text
    preview = client.post(
        "/v1/templates/gentle/preview", json={"channel": "sms", "locale": "fr"}, headers=auth
    ).json()
    assert preview["body_text"].startswith("Salut Ada")
    assert preview["body_text"].endswith("Reply STOP to opt out")
    assert preview["segments"] == 1 and preview["encoding"] == "GSM-7"
    policy = {"steps": [{"day": 1, "retry": True, "sms_template": "gentle"}]}
    assert (
        client.post(
            "/v1/dunning_policies/automatic", json={"policy": policy}, headers=auth
        ).status_code
        == 200
    )
    refused = problem(client.delete("/v1/templates/gentle", headers=auth), 409)
    assert "automatic policy v2: day 1 sms" in refused["detail"]


def test_a_policy_naming_a_missing_template_is_refused(shop: Shop, client: TestClient) -> None:
    policy = {"steps": [{"day": 2, "email_template": "nope"}]}
    body = problem(
        client.post(
            "/v1/dunning_policies/automatic", json={"policy": policy}, headers=bearer(shop, "admin")
        ),
        422,
    )
    assert body["field"] == "steps[0].email_template" and "'nope'" in body["detail"]


def test_base_templates_cannot_be_deleted(shop: Shop, client: TestClient) -> None:
    body = problem(client.delete("/v1/templates/payment_declined", headers=bearer(shop)), 409)
    assert "base template" in body["detail"]


def test_a_test_send_reaches_the_sandbox_phone_and_is_listed_with_its_attempts(
    shop: Shop, client: TestClient
) -> None:
    auth = bearer(shop)
    queued = client.post(
        "/v1/templates/payment_declined/test",
        json={"channel": "sms", "to": MOBILE},
        headers=auth,
    )
    assert queued.status_code == 202, queued.text
    shop.run()
    message = client.get(f"/v1/messages/{queued.json()['message_id']}", headers=auth).json()
    assert message["status"] == "delivered"
    assert [a["outcome"] for a in message["delivery_attempts"]] == ["sent"]
    phone = client.get("/v1/sandbox/phone", headers=auth).json()["data"]
    assert [(m["to_addr"], m["body_text"]) for m in phone] == [(MOBILE, message["body_text"])]
    listed = client.get("/v1/messages?channel=sms&status=delivered", headers=auth).json()["data"]
    assert [m["id"] for m in listed] == [message["id"]]


def test_a_sandbox_reply_of_stop_is_answered_and_blocks_the_next_text(
    shop: Shop, client: TestClient
) -> None:
    auth = bearer(shop)
    invoice = shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    answer = client.post(
        "/v1/sandbox/phone/reply", json={"from": MOBILE, "body": "stop"}, headers=auth
    ).json()
    assert answer["keyword"] == "opt_out" and "unsubscribed" in answer["reply"]
    shop.run()
    texts = [m for m in shop.outbox_of(invoice) if m.channel == "sms"]
    assert [(t.status, t.last_error) for t in texts] == [("blocked", "opted_out")]


def test_a_failed_message_can_be_resent_but_a_delivered_one_cannot(
    shop: Shop, client: TestClient
) -> None:
    auth = bearer(shop)
    queued = client.post(
        "/v1/templates/payment_declined/test",
        json={"channel": "email", "to": "zed@x.test"},
        headers=auth,
    ).json()
    shop.run()
    refused = problem(client.post(f"/v1/messages/{queued['message_id']}/resend", headers=auth), 409)
    assert "only failed" in refused["detail"]


def test_sms_settings_are_validated_field_by_field(shop: Shop, client: TestClient) -> None:
    auth = bearer(shop, "admin")
    wide = problem(
        client.patch("/v1/settings/sms", json={"window_end": "22:00"}, headers=auth), 422
    )
    assert wide["field"] == "window_end"
    no_stop = problem(
        client.patch("/v1/settings/sms", json={"opt_out_line": "Thanks!"}, headers=auth), 422
    )
    assert no_stop["field"] == "opt_out_line"
    ok = client.patch("/v1/settings/sms", json={"frequency_cap": 2}, headers=auth)
    assert ok.status_code == 200 and ok.json()["frequency_cap"] == 2
    assert ok.json()["sender_segments_per_second"] == 1.0  # a US long code, the default
    for rate, detail in [
        (0, "must be above 0"),
        (-3, "must be above 0"),
        (20_000, "at most 10000"),
        (10**400, "at most 10000"),
        ("fast", "must be a number"),
        (True, "must be a number"),
    ]:
        refused = problem(
            client.patch(
                "/v1/settings/sms", json={"sender_segments_per_second": rate}, headers=auth
            ),
            422,
        )
        assert refused["field"] == "sender_segments_per_second", rate
        assert detail in refused["detail"], rate
    infinite = client.patch(  # JSON's 1e400 reads as infinity
        "/v1/settings/sms",
        content=b'{"sender_segments_per_second": 1e400}',
        headers={**auth, "content-type": "application/json"},
    )
    assert problem(infinite, 422)["field"] == "sender_segments_per_second"
    toll_free = client.patch(
        "/v1/settings/sms", json={"sender_segments_per_second": 3}, headers=auth
    )
    assert toll_free.json()["sender_segments_per_second"] == 3.0
    assert toll_free.json()["frequency_cap"] == 2  # the refused changes left nothing behind


def test_provider_secrets_are_encrypted_at_rest_and_never_shown(
    shop: Shop, client: TestClient
) -> None:
    auth = bearer(shop, "admin")
    token = "0123456789abcdef0123456789abcdef"
    saved = client.put(
        "/v1/settings/channels/sms",
        json={
            "provider": "twilio",
            "secret": token,
            "config": {"account_sid": "AC" + "b" * 32, "from_number": "+14155550000"},
        },
        headers=auth,
    )
    assert saved.status_code == 200, saved.text
    assert token not in saved.text and saved.json()["secret_set"] is True
    assert token not in client.get("/v1/settings/channels/sms", headers=auth).text
    (row,) = shop.all(tables.site_channels)
    assert row.secret and token not in row.secret
    bad = problem(
        client.put(
            "/v1/settings/channels/sms",
            json={"provider": "twilio", "config": {"account_sid": "nope"}},
            headers=auth,
        ),
        422,
    )
    assert bad["field"] == "account_sid"


def test_a_preview_with_a_customer_s_data_carries_a_billing_link_that_opens_nothing(
    shop: Shop, client: TestClient
) -> None:
    # A preview is read by whoever may edit templates, and a test send goes
    # to any address typed in: the link has a real link's length (the
    # segment count is right) but has expired when it is made.
    customer = shop.customer(INSUFFICIENT, phone=MOBILE)
    shop.invoice(customer, 5000)
    shop.run()
    preview = client.post(
        "/v1/templates/payment_declined/preview",
        json={"channel": "sms", "customer_id": customer},
        headers=bearer(shop),
    )
    assert preview.status_code == 200, preview.text
    body = preview.json()["body_text"]
    link = next(word for word in body.split() if "/billing/" in word)
    path = "/billing/" + link.rstrip(".,").rsplit("/billing/", 1)[1]
    sent = next(m for m in shop.all(tables.outbox, customer_id=customer) if m.channel == "sms")
    real = next(word for word in sent.body_text.split() if "/billing/" in word)

    assert client.get(path).status_code == 410
    assert len(link) == len(real)
