"""Twilio's inbound SMS webhook, signed and checked with the SDK's validator on both sides."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from twilio.request_validator import RequestValidator

from dunwell.api.app import create_app
from dunwell.api.twilio_inbound import TwilioInbound
from dunwell.api.twilio_sites import CACHE_TTL
from dunwell.bootstrap import App
from dunwell.clock import FixedClock
from dunwell.services.channel_config import save_channel_config
from dunwell.services.inbound_writer import Backlog
from dunwell.store import tables
from tests.integration.factories import Shop
from tests.integration.inbound_helpers import writes_held

TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "https://dunwell.example"
CUSTOMER = "+14155552671"


@pytest.fixture
def shop(app: App) -> Shop:
    app.settings = replace(app.settings, public_url=PUBLIC)
    shop = Shop.create(app)
    _save_token(shop, TOKEN)
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


def _save_token(shop: Shop, token: str) -> None:
    with shop.app.begin() as conn:
        save_channel_config(
            conn,
            shop.site_id,
            "sms",
            "twilio",
            {"account_sid": "AC" + "a" * 32, "from_number": "+14155550000"},
            token,
            shop.app.secret_box(),
            shop.now,
        )


def test_a_changed_auth_token_is_taken_up_once_the_cached_one_expires(
    shop: Shop, client: TestClient, clock: FixedClock
) -> None:
    new_token = "f" * 32
    assert _post(client, _sms("SM" + "a" * 32, "HELP")).status_code == 200
    _save_token(shop, new_token)
    # Within the cache's time the old token still rules.
    assert _post(client, _sms("SM" + "b" * 32, "HELP"), token=new_token).status_code == 403
    assert _post(client, _sms("SM" + "c" * 32, "HELP")).status_code == 200
    clock.set(clock.now() + CACHE_TTL)
    assert _post(client, _sms("SM" + "d" * 32, "HELP")).status_code == 403
    assert _post(client, _sms("SM" + "e" * 32, "HELP"), token=new_token).status_code == 200
    assert len(shop.all(tables.inbound_messages)) == 3


def test_a_site_unknown_when_asked_is_found_once_the_answer_expires(
    shop: Shop, client: TestClient, clock: FixedClock
) -> None:
    later = Shop.create(shop.app, slug="later")
    params = _sms("SM" + "f" * 32, "HELP")
    path = "/twilio/later/sms"
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
    headers = {"X-Twilio-Signature": signature}
    assert client.post(path, data=params, headers=headers).status_code == 403  # no Twilio yet
    _save_token(later, TOKEN)
    assert client.post(path, data=params, headers=headers).status_code == 403
    clock.set(clock.now() + CACHE_TTL)
    assert client.post(path, data=params, headers=headers).status_code == 200


# -- many texts at once: one commit, each its own answer ------------------------------


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.005)


async def _apost(client: httpx.AsyncClient, params: dict[str, str]) -> httpx.Response:
    path = "/twilio/shop/sms"
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC + path, params)
    return await client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def _post_together(
    app: App, first: dict[str, str], together: list[dict[str, str]]
) -> list[httpx.Response]:
    """Post ``first``, and while its commit waits, all of ``together``: they share the next one."""
    api = create_app(app)

    def backlog() -> Backlog | None:  # the writer exists once the first text came in
        inbound: TwilioInbound | None = getattr(api.state, "twilio_inbound", None)
        return None if inbound is None else inbound.writer.backlog()

    async def scenario() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=api)
        async with (
            api.router.lifespan_context(api),
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        ):
            with writes_held(app):
                blocker = asyncio.create_task(_apost(client, first))
                await _until(lambda: backlog() == Backlog(queued=0, storing=1))
                rest = [asyncio.create_task(_apost(client, params)) for params in together]
                waiting = Backlog(queued=len(together), storing=1)
                await _until(lambda: backlog() == waiting)
            return [await blocker, *await asyncio.gather(*rest)]

    # In a thread of its own: an earlier test may leave an event loop running
    # in the main thread (Playwright's sync API does), and asyncio.run refuses
    # to start under a running loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, scenario()).result()


def _from(number: int, sid: int, body: str) -> dict[str, str]:
    return {**_sms(f"SM{sid:032d}", body), "From": f"+1415555{number:04d}"}


def test_texts_posted_together_are_each_stored_once_with_their_own_answer(shop: Shop) -> None:
    helps = [_from(1000 + n, n, "HELP") for n in range(5)]
    questions = [_from(2000 + n, 100 + n, "where is my order") for n in range(5)]
    stops = [_from(3000 + n, 200 + n, "STOP") for n in range(5)]
    retried = stops[0]  # Twilio delivering the same text twice, both in one batch
    together = [*helps, *questions, *stops, retried]

    first, *answers = _post_together(shop.app, _sms("SM" + "9" * 32, "hello"), together)

    assert [r.status_code for r in [first, *answers]] == [200] * 17
    texts = [a.text for a in answers]
    assert all("<Message>" in t and "help" in t.lower() for t in texts[:5])
    assert all("<Message>" not in t for t in texts[5:10])
    assert all("<Message>" in t and "unsubscribed" in t for t in texts[10:15])
    assert "<Message>" not in texts[15]  # the repeat answers nothing
    stored = shop.all(tables.inbound_messages)
    assert sorted(m.provider_sid for m in stored) == sorted(
        {p["MessageSid"] for p in [*together, _sms("SM" + "9" * 32, "hello")]}
    )
    assert {o.phone for o in shop.all(tables.sms_opt_outs) if o.opted_out} == {
        s["From"] for s in stops
    }
    assert len(shop.all(tables.events, type="sms.opted_out")) == 5
    shop.run()  # the worker answers whatever the server's concierge did not
    assert all(m.answered_at is not None for m in shop.all(tables.inbound_messages))


# PostgreSQL only: it refuses a NUL character in text, which is the failure
# this needs; SQLite stores one.
@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_a_text_that_cannot_be_stored_gets_a_500_and_its_batch_is_stored(shop: Shop) -> None:
    good = [_from(1000 + n, n, "where is my order") for n in range(3)]
    bad = _from(2000, 99, "nul \x00 inside")

    first, *answers = _post_together(shop.app, _sms("SM" + "9" * 32, "hello"), [*good, bad])

    assert [r.status_code for r in [first, *answers]] == [200, 200, 200, 200, 500]
    assert answers[3].json()["detail"] == "The text could not be stored; send it again"
    assert len(shop.all(tables.inbound_messages)) == 4
