"""Texts whose webhook never reached Dunwell, read back through Twilio's API (real SDK, local fake).

Twilio posts an inbound text once; these texts exist only in Twilio's
message log, as the fake's ``receive`` leaves them. The worker's catch-up
stage must find them, store each once, and apply keywords as the webhook
would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select, update
from twilio.request_validator import RequestValidator

from dunwell.api.app import create_app
from dunwell.bootstrap import App
from dunwell.channels.registry import ChannelRegistry, TransportOptions
from dunwell.channels.twilio_sms import (
    SERVICE_NUMBERS_LISTED_ONE_BY_ONE,
    TwilioConfig,
    TwilioSmsTransport,
)
from dunwell.clock import FixedClock
from dunwell.services import sms_credits, twilio_catch_up
from dunwell.services.report_catch_up import REPORT_WAIT, catch_up_reports
from dunwell.services.twilio_catch_up import GRACE, MAX_BACKLOG, SLICE, catch_up_with_twilio
from dunwell.store import tables
from tests.integration.factories import INSUFFICIENT, Shop
from tests.integration.fake_twilio import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    MESSAGING_SERVICE_SID,
    POOL_NUMBER,
    FakeTwilioServer,
    save_fake_twilio,
)
from tests.integration.test_metrics import scrape, value

CUSTOMER = "+447400123456"
STRANGER = "+447400999888"
EVERY = timedelta(seconds=300)
PUBLIC_URL = "http://dunwell.test"


@pytest.fixture
def twilio(app: App) -> Iterator[tuple[Shop, FakeTwilioServer]]:
    app.settings = replace(app.settings, public_url=PUBLIC_URL, twilio_catch_up_seconds=300)
    with FakeTwilioServer(now=app.clock.now) as server:
        app.channels = ChannelRegistry(
            app.engine, app.clock.now, TransportOptions(twilio_api_base=server.url)
        )
        shop = Shop.create(app)
        _save_twilio(shop)
        yield shop, server


def _save_twilio(shop: Shop, config: dict[str, str] | None = None) -> None:
    with shop.app.begin() as conn:
        save_fake_twilio(conn, shop.site_id, shop.app.secret_box(), shop.now, config)


def _later(app: App, by: timedelta) -> None:
    clock = app.clock
    assert isinstance(clock, FixedClock)
    clock.set(clock.now() + by)


def _stored(shop: Shop) -> dict[str, str]:
    return {row.provider_sid: row.body for row in shop.all(tables.inbound_messages)}


def _reading(shop: Shop) -> Any:
    (row,) = shop.all(tables.twilio_catch_up, site_id=shop.site_id)
    return row


def _post_signed(client: TestClient, path: str, params: dict[str, str]) -> Response:
    """Post Twilio's form to ``path`` as Twilio does, signed with the site's token."""
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def _webhook_got(shop: Shop, text: Any) -> Response:
    """The inbound webhook's post of a text the fake received, as Twilio sends it."""
    params = {
        "MessageSid": text.sid,
        "AccountSid": ACCOUNT_SID,
        "From": text.from_,
        "To": text.to,
        "Body": text.body,
    }
    with TestClient(create_app(shop.app)) as client:
        return _post_signed(client, "/twilio/shop/sms", params)


def _failing_sites(shop: Shop) -> float:
    """``dunwell_twilio_catch_up_failing`` as ``GET /metrics`` reports it."""
    with TestClient(create_app(shop.app)) as client:
        return value(scrape(client), "dunwell_twilio_catch_up_failing")


def _balance(shop: Shop) -> int:
    (row,) = shop.all(tables.sms_credits, site_id=shop.site_id)
    return int(row.balance)


def _listings(server: FakeTwilioServer) -> int:
    return sum(1 for r in server.fake.requests if r.method == "GET")


def test_a_site_is_first_read_from_the_moment_it_is_seen(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    before = shop.app.clock.now() - GRACE - timedelta(seconds=1)
    server.receive(CUSTOMER, "texted before Dunwell knew the site", at=before)
    assert catch_up_with_twilio(shop.app) == 0
    assert _reading(shop).synced_until == shop.app.clock.now() - GRACE
    assert _listings(server) == 0
    _later(shop.app, EVERY)
    # The old text is before the reading point: history is not imported.
    assert catch_up_with_twilio(shop.app) == 0
    assert _stored(shop) == {}


def test_texts_twilio_received_but_never_posted_are_stored_once_and_keywords_applied(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    customer = shop.customer(phone=CUSTOMER)
    catch_up_with_twilio(shop.app)  # first sight
    _later(shop.app, timedelta(seconds=30))
    stop = server.receive(STRANGER, "STOP")
    question = server.receive(CUSTOMER, "can I pay on friday?")
    server.receive(STRANGER, "sent from Dunwell's number, not to it", to=CUSTOMER)
    _later(shop.app, EVERY)
    assert catch_up_with_twilio(shop.app) == 2
    assert _stored(shop) == {stop.sid: "STOP", question.sid: "can I pay on friday?"}
    (opt_out,) = shop.all(tables.sms_opt_outs, site_id=shop.site_id)
    assert (opt_out.phone, opt_out.opted_out) == (STRANGER, True)
    text = shop.one(tables.inbound_messages, provider_sid=question.sid)
    assert text.customer_id == customer and text.answered_at is None  # the concierge's queue
    assert _reading(shop).synced_until == shop.app.clock.now() - GRACE
    assert _reading(shop).last_error is None
    # The next read overlaps nothing new: nothing is stored twice.
    server.receive(CUSTOMER, "hello?", at=shop.app.clock.now() - GRACE - timedelta(seconds=1))
    _later(shop.app, EVERY)
    assert catch_up_with_twilio(shop.app) == 0
    assert len(_stored(shop)) == 2


def test_a_late_stop_does_not_undo_a_newer_start_the_webhook_stored(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    """STOP lost at 10:00, START posted at 10:01, the STOP found at 10:05: START stands."""
    shop, server = twilio
    # Live, as a site texting through Twilio is: the webhook's now is the
    # real time, which Twilio's log is compared with (no test clock).
    with shop.app.begin() as conn:
        conn.execute(
            update(tables.sites).where(tables.sites.c.id == shop.site_id).values(clock_now=None)
        )
    catch_up_with_twilio(shop.app)
    _later(shop.app, timedelta(seconds=30))
    lost_stop = server.receive(CUSTOMER, "STOP")
    _later(shop.app, timedelta(minutes=1))
    start = server.receive(CUSTOMER, "START")
    assert _webhook_got(shop, start).status_code == 200
    _later(shop.app, EVERY)
    assert catch_up_with_twilio(shop.app) == 1
    assert set(_stored(shop)) == {lost_stop.sid, start.sid}
    (consent,) = shop.all(tables.sms_opt_outs, site_id=shop.site_id)
    assert (consent.opted_out, consent.updated_at) == (False, start.date_sent)
    # The STOP is still history, stored at the time Twilio received it.
    (stopped,) = shop.all(tables.events, type="sms.opted_out")
    assert stopped.occurred_at == lost_stop.date_sent
    found = shop.one(tables.inbound_messages, provider_sid=lost_stop.sid)
    assert found.received_at == lost_stop.date_sent < shop.app.clock.now() - GRACE


def test_a_text_the_webhook_stored_is_not_stored_again(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    catch_up_with_twilio(shop.app)
    _later(shop.app, timedelta(seconds=30))
    posted = server.receive(CUSTOMER, "HELP")
    lost = server.receive(CUSTOMER, "is my card ok?")
    answer = _webhook_got(shop, posted)
    assert answer.status_code == 200 and "<Message>" in answer.text
    _later(shop.app, EVERY)
    assert catch_up_with_twilio(shop.app) == 1
    assert _stored(shop) == {posted.sid: "HELP", lost.sid: "is my card ok?"}


def test_texts_younger_than_the_grace_are_left_for_their_webhook(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    catch_up_with_twilio(shop.app)
    _later(shop.app, EVERY)
    recent = server.receive(CUSTOMER, "just sent", at=shop.app.clock.now() - timedelta(seconds=30))
    assert catch_up_with_twilio(shop.app) == 0
    _later(shop.app, EVERY)
    assert catch_up_with_twilio(shop.app) == 1
    assert list(_stored(shop)) == [recent.sid]


def test_a_failed_read_keeps_the_reading_point_and_the_next_check_catches_up(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    catch_up_with_twilio(shop.app)
    start = _reading(shop).synced_until
    _later(shop.app, timedelta(seconds=30))
    lost = server.receive(CUSTOMER, "STOP")
    _later(shop.app, EVERY)
    server.fail_next_list(1, status=503)
    assert catch_up_with_twilio(shop.app) == 0
    reading = _reading(shop)
    assert reading.synced_until == start
    assert reading.last_error.startswith("Twilio:")
    assert _failing_sites(shop) == 1
    assert catch_up_with_twilio(shop.app) == 0  # not due again yet: no second request
    assert _listings(server) == 1
    _later(shop.app, EVERY)
    assert catch_up_with_twilio(shop.app) == 1
    assert list(_stored(shop)) == [lost.sid]
    assert _reading(shop).last_error is None
    assert _failing_sites(shop) == 0


def test_only_one_worker_reads_a_due_inbox(twilio: tuple[Shop, FakeTwilioServer]) -> None:
    shop, server = twilio
    catch_up_with_twilio(shop.app)
    _later(shop.app, EVERY)
    server.receive(CUSTOMER, "anyone there?", at=shop.app.clock.now() - GRACE * 2)
    assert catch_up_with_twilio(shop.app) == 1
    assert catch_up_with_twilio(shop.app) == 0  # the second worker finds it taken
    assert _listings(server) == 1


def test_a_long_outage_is_read_slice_by_slice_pass_after_pass(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    catch_up_with_twilio(shop.app)
    first = shop.app.clock.now()
    texts = [
        server.receive(CUSTOMER, f"text {n}", at=first + timedelta(minutes=40 * n))
        for n in range(4)
    ]
    _later(shop.app, timedelta(hours=3))
    assert catch_up_with_twilio(shop.app) == 2  # the first hour (and the grace before it)
    assert _reading(shop).synced_until == first - GRACE + SLICE
    # Still behind: due again at once, without waiting for the next check.
    assert catch_up_with_twilio(shop.app) == 1
    assert catch_up_with_twilio(shop.app) == 1
    assert _reading(shop).synced_until == shop.app.clock.now() - GRACE
    assert catch_up_with_twilio(shop.app) == 0  # caught up: not due until the next check
    assert _listings(server) == 3
    assert set(_stored(shop)) == {t.sid for t in texts}


def test_texts_older_than_the_backlog_are_skipped(twilio: tuple[Shop, FakeTwilioServer]) -> None:
    shop, server = twilio
    catch_up_with_twilio(shop.app)
    first = shop.app.clock.now()
    server.receive(CUSTOMER, "a question from long ago", at=first + timedelta(minutes=1))
    _later(shop.app, timedelta(days=3))
    recent = server.receive(CUSTOMER, "STOP", at=shop.app.clock.now() - MAX_BACKLOG + SLICE / 2)
    assert catch_up_with_twilio(shop.app) == 1
    assert list(_stored(shop)) == [recent.sid]


def test_a_read_with_more_texts_than_it_stores_goes_on_from_the_last_one(
    twilio: tuple[Shop, FakeTwilioServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    shop, server = twilio
    monkeypatch.setattr(twilio_catch_up, "MAX_TEXTS", 2)
    catch_up_with_twilio(shop.app)
    at = shop.app.clock.now()
    texts = [server.receive(CUSTOMER, f"text {n}", at=at + timedelta(seconds=n)) for n in range(3)]
    _later(shop.app, EVERY)
    assert catch_up_with_twilio(shop.app) == 2
    assert _reading(shop).synced_until == texts[1].date_sent
    assert catch_up_with_twilio(shop.app) == 1  # due again at once
    assert set(_stored(shop)) == {t.sid for t in texts}


def _service_texts(shop: Shop, server: FakeTwilioServer) -> str:
    """Texts to, from and beside a Messaging Service; returns the SID of the one to store."""
    _save_twilio(shop, {"account_sid": ACCOUNT_SID, "messaging_service_sid": MESSAGING_SERVICE_SID})
    catch_up_with_twilio(shop.app)
    _later(shop.app, timedelta(seconds=30))
    ours = server.receive(
        CUSTOMER, "STOP", to=POOL_NUMBER, messaging_service_sid=MESSAGING_SERVICE_SID
    )
    server.receive(CUSTOMER, "to a number outside the service", to="+15005550011")
    sent = server.receive(
        POOL_NUMBER,
        "a text the service sent",
        to=CUSTOMER,
        messaging_service_sid=MESSAGING_SERVICE_SID,
    )
    sent.direction = "outbound-api"
    _later(shop.app, EVERY)
    server.fake.requests.clear()
    return ours.sid


def _message_listings(server: FakeTwilioServer) -> list[dict[str, str]]:
    return [r.query for r in server.fake.requests if r.path.endswith("/Messages.json")]


def test_through_a_messaging_service_only_the_texts_to_its_numbers_are_read(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    server.fake.services[MESSAGING_SERVICE_SID]["ShortCodes"] = ["89898"]
    ours = _service_texts(shop, server)
    assert catch_up_with_twilio(shop.app) == 1
    assert list(_stored(shop)) == [ours]
    # One listing per sender of the service, never the whole account.
    assert sorted(q.get("To", "") for q in _message_listings(server)) == ["+15005550010", "89898"]


def test_a_service_with_a_large_pool_reads_the_account_and_keeps_only_its_texts(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    pool = [f"+1500555{n:04d}" for n in range(10, 10 + SERVICE_NUMBERS_LISTED_ONE_BY_ONE + 1)]
    server.fake.services[MESSAGING_SERVICE_SID]["PhoneNumbers"] = pool
    ours = _service_texts(shop, server)
    assert catch_up_with_twilio(shop.app) == 1
    assert list(_stored(shop)) == [ours]
    assert ["To" in q for q in _message_listings(server)] == [False]  # one read of the account


def test_a_service_twilio_does_not_know_is_a_noted_error(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    server.fake.services.clear()
    _service_texts(shop, server)
    assert catch_up_with_twilio(shop.app) == 0
    assert _stored(shop) == {}
    assert f"Twilio has no Messaging Service {MESSAGING_SERVICE_SID}" in (
        _reading(shop).last_error or ""
    )


def test_reading_is_off_when_the_setting_is_zero(twilio: tuple[Shop, FakeTwilioServer]) -> None:
    shop, server = twilio
    shop.app.settings = replace(shop.app.settings, twilio_catch_up_seconds=0)
    server.receive(CUSTOMER, "STOP")
    _later(shop.app, EVERY)
    assert catch_up_with_twilio(shop.app) == 0
    assert shop.all(tables.twilio_catch_up) == []


def test_a_sandbox_site_is_never_read(app: App) -> None:
    shop = Shop.create(app)
    _later(app, EVERY)
    assert catch_up_with_twilio(app) == 0
    assert shop.all(tables.twilio_catch_up) == []


def test_the_worker_stores_a_lost_text_and_answers_it_in_the_same_pass(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    shop.customer(phone=CUSTOMER)
    shop.run()
    _later(shop.app, timedelta(seconds=30))
    lost = server.receive(CUSTOMER, "HELP me with my bill please")
    _later(shop.app, EVERY)
    shop.run()
    text = shop.one(tables.inbound_messages, provider_sid=lost.sid)
    assert text.answered_at is not None  # the concierge stage took it in the same run
    with shop.app.connect() as conn:
        turns = conn.execute(select(tables.conversation_turns)).all()
    assert turns, "the concierge recorded the conversation"


def _texted(server: FakeTwilioServer, to: str) -> list[str]:
    """The bodies of the texts sent to ``to`` through Twilio's API, oldest first."""
    return [m.body for m in server.messages if m.to == to and m.direction == "outbound-api"]


def _answers(shop: Shop) -> list[Any]:
    return [r for r in shop.all(tables.outbox, channel="sms") if r.template is None]


def _with_credits(shop: Shop) -> None:
    with shop.app.begin() as conn:
        sms_credits.top_up(conn, shop.site_id, 50, shop.now)


def test_a_late_help_is_answered_by_text_even_to_a_number_that_opted_out(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    """No webhook to answer in: the answer goes out through the outbox, once."""
    shop, server = twilio
    _with_credits(shop)
    customer = shop.customer(phone=CUSTOMER)
    catch_up_with_twilio(shop.app)
    _later(shop.app, timedelta(seconds=30))
    stop = server.receive(CUSTOMER, "STOP")
    assert "<Message>" in _webhook_got(shop, stop).text  # opted out, answered in TwiML
    lost = server.receive(CUSTOMER, "HELP")
    _later(shop.app, EVERY)
    shop.run()  # reads the HELP back and delivers its answer in the same pass
    (answer,) = _answers(shop)
    assert (answer.kind, answer.customer_id, answer.status) == ("help_reply", customer, "sent")
    assert answer.payload["keyword"] == "help"
    assert answer.payload["inbound_id"] == _inbound_id(shop, lost)
    assert _texted(server, CUSTOMER) == [answer.body_text]
    assert "billing alerts. Help: " in answer.body_text  # the site's HELP answer
    (consent,) = shop.all(tables.sms_opt_outs, site_id=shop.site_id)
    assert consent.opted_out  # HELP changes no consent
    # Read again (a failed read is retried over the same window): not answered twice.
    with shop.app.begin() as conn:
        conn.execute(update(tables.twilio_catch_up).values(synced_until=lost.date_sent))
    _later(shop.app, EVERY)
    shop.run()
    assert len(_answers(shop)) == 1 and len(_texted(server, CUSTOMER)) == 1


def _inbound_id(shop: Shop, text: Any) -> int:
    return int(shop.one(tables.inbound_messages, provider_sid=text.sid).id)


def test_a_late_start_is_answered_unless_a_newer_stop_overruled_it(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    _with_credits(shop)
    with shop.app.begin() as conn:  # live: the webhook's now is the real time
        conn.execute(
            update(tables.sites).where(tables.sites.c.id == shop.site_id).values(clock_now=None)
        )
    catch_up_with_twilio(shop.app)
    _later(shop.app, timedelta(seconds=30))
    server.receive(CUSTOMER, "START")
    overruled = server.receive(STRANGER, "start")
    _later(shop.app, timedelta(minutes=1))
    assert _webhook_got(shop, server.receive(STRANGER, "STOP")).status_code == 200
    _later(shop.app, EVERY)
    shop.run()
    answers = {row.recipient: row for row in _answers(shop)}
    assert answers[CUSTOMER].kind == "reply" and answers[CUSTOMER].status == "sent"
    assert _texted(server, CUSTOMER) == [answers[CUSTOMER].body_text]
    assert "resubscribed" in answers[CUSTOMER].body_text
    # The STOP the webhook stored after it stands; "you are resubscribed" would be a lie.
    assert (answers[STRANGER].status, answers[STRANGER].last_error) == ("blocked", "opted_out")
    assert _texted(server, STRANGER) == []
    assert _inbound_id(shop, overruled) == answers[STRANGER].payload["inbound_id"]


def test_a_late_stop_opts_out_without_a_confirmation(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    """The FCC allows an opt-out's confirmation only within five minutes of it."""
    shop, server = twilio
    _with_credits(shop)
    catch_up_with_twilio(shop.app)
    _later(shop.app, timedelta(seconds=30))
    server.receive(CUSTOMER, "STOP")
    _later(shop.app, EVERY)
    shop.run()
    (consent,) = shop.all(tables.sms_opt_outs, site_id=shop.site_id)
    assert consent.opted_out
    assert _answers(shop) == [] and _texted(server, CUSTOMER) == []


def test_the_twilio_listing_keeps_inbound_texts_in_the_window_oldest_first(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    now = shop.app.clock.now()
    later = server.receive(CUSTOMER, "second", at=now + timedelta(seconds=20))
    earlier = server.receive(STRANGER, "first", at=now + timedelta(seconds=10))
    server.receive(CUSTOMER, "outside", at=now + timedelta(seconds=40))
    server.receive(CUSTOMER, "before", at=now - timedelta(seconds=1))
    config = TwilioConfig(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, from_number=FROM_NUMBER, api_base=server.url
    )
    with TwilioSmsTransport(config) as transport:
        found = transport.received(now, now + timedelta(seconds=30), 10)
    assert [(t.sid, t.from_phone, t.to_phone, t.body) for t in found] == [
        (earlier.sid, STRANGER, FROM_NUMBER, "first"),
        (later.sid, CUSTOMER, FROM_NUMBER, "second"),
    ]
    assert found[0].received_at == earlier.date_sent


# -- delivery reports ------------------------------------------------------------------

THIRD = "+447400555666"


def _report(client: TestClient, sid: str, status: str) -> int:
    """A status callback as Twilio posts it."""
    params = {"AccountSid": ACCOUNT_SID, "MessageSid": sid, "MessageStatus": status}
    return _post_signed(client, "/twilio/shop/status", params).status_code


def _texts_sent(shop: Shop) -> dict[str, Any]:
    """Each customer's dunning text in the outbox, by phone number."""
    return {row.recipient: row for row in shop.all(tables.outbox, channel="sms")}


def _fetched(server: FakeTwilioServer) -> list[str]:
    return sorted(
        r.path.rsplit("/", 1)[1].removesuffix(".json")
        for r in server.fake.requests
        if r.method == "GET" and "/Messages/" in r.path
    )


def _three_texts_sent(shop: Shop) -> None:
    for n, phone in enumerate((CUSTOMER, STRANGER, THIRD)):
        shop.invoice(shop.customer(INSUFFICIENT, phone=phone, email=f"c{n}@x.test"), 4900)
    shop.run()
    assert {row.status for row in _texts_sent(shop).values()} == {"sent"}


def test_delivery_reports_that_never_came_are_read_back_and_applied(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    with shop.app.begin() as conn:
        sms_credits.top_up(conn, shop.site_id, 50, shop.now)
    _three_texts_sent(shop)
    sent = {m.to: m for m in server.messages}
    with TestClient(create_app(shop.app)) as client:
        assert _report(client, sent[THIRD].sid, "sent") == 204  # this one got its callback
    credits = _balance(shop)
    server.set_status(sent[CUSTOMER].sid, "undelivered", 30003)
    server.set_status(sent[STRANGER].sid, "delivered")
    server.set_status(sent[THIRD].sid, "delivered")  # Twilio knows; Dunwell is not asked
    shop.advance(days=(REPORT_WAIT + timedelta(minutes=1)) / timedelta(days=1))
    _later(shop.app, EVERY)
    assert catch_up_with_twilio(shop.app) == 2
    texts = _texts_sent(shop)
    assert (texts[CUSTOMER].status, texts[CUSTOMER].error_code) == ("failed", "30003")
    assert texts[STRANGER].status == "delivered"
    assert (texts[THIRD].status, texts[THIRD].provider_status) == ("sent", "sent")
    assert _fetched(server) == sorted([sent[CUSTOMER].sid, sent[STRANGER].sid])
    assert _balance(shop) == credits + texts[CUSTOMER].segments  # the failed text's credits
    failed = shop.all(tables.events, type="message.failed")
    assert [e.data["message_id"] for e in failed] == [texts[CUSTOMER].id]
    # Asked once: the next check has nothing left to ask about.
    _later(shop.app, EVERY)
    assert catch_up_with_twilio(shop.app) == 0
    assert len(_fetched(server)) == 2


def test_a_text_younger_than_the_report_wait_is_not_asked_about(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    _three_texts_sent(shop)
    shop.advance(days=(REPORT_WAIT - timedelta(minutes=1)) / timedelta(days=1))
    _later(shop.app, EVERY)
    assert catch_up_with_twilio(shop.app) == 0
    assert _fetched(server) == []


def test_when_twilio_cannot_be_asked_nothing_changes_and_the_error_shows(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    _three_texts_sent(shop)
    for message in server.messages:
        server.set_status(message.sid, "delivered")
    shop.advance(days=(REPORT_WAIT + timedelta(minutes=1)) / timedelta(days=1))
    _later(shop.app, EVERY)
    server.fail_next_fetch(1, status=500)
    assert catch_up_with_twilio(shop.app) == 0
    assert {row.status for row in _texts_sent(shop).values()} == {"sent"}
    assert _reading(shop).last_error.startswith("Twilio:")
    _later(shop.app, EVERY)
    assert catch_up_with_twilio(shop.app) == 3
    assert {row.status for row in _texts_sent(shop).values()} == {"delivered"}
    assert _reading(shop).last_error is None


def test_texts_twilio_keeps_queued_are_asked_about_in_turn(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    """More texts waiting than one check asks about: each check goes on after the last."""
    shop, server = twilio
    _three_texts_sent(shop)
    in_order = [row.provider_id for row in sorted(_texts_sent(shop).values(), key=_sent_order)]
    # The three went out in one delivery batch: one sent_at, ordered by id.
    assert len({row.sent_at for row in _texts_sent(shop).values()}) == 1
    shop.advance(days=(REPORT_WAIT + timedelta(minutes=1)) / timedelta(days=1))
    inbox = TwilioSmsTransport(
        TwilioConfig(
            account_sid=ACCOUNT_SID,
            auth_token=AUTH_TOKEN,
            from_number=FROM_NUMBER,
            api_base=server.url,
        )
    )
    asked: list[list[str]] = []
    with inbox:
        for _check in range(3):
            before = len(_fetched_in_order(server))
            assert catch_up_reports(shop.app, shop.site_id, inbox, limit=2) == 0  # still queued
            asked.append(_fetched_in_order(server)[before:])
        # The last of them is delivered meanwhile; its turn comes at the next check.
        server.set_status(in_order[2], "delivered")
        assert catch_up_reports(shop.app, shop.site_id, inbox, limit=2) == 1
    assert asked == [in_order[:2], in_order[2:], in_order[:2]]
    assert _texts_sent(shop)[THIRD].status == "delivered"


def _sent_order(row: Any) -> tuple[Any, int]:
    return (row.sent_at, row.id)


def _fetched_in_order(server: FakeTwilioServer) -> list[str]:
    """The MessageSids asked about, in the order they were asked."""
    return [
        r.path.rsplit("/", 1)[1].removesuffix(".json")
        for r in server.fake.requests
        if r.method == "GET" and "/Messages/" in r.path
    ]
