"""Escalations from the concierge to a help desk, or by email, through the real worker."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from dunwell.bootstrap import App
from dunwell.channels.base import TransportError
from dunwell.channels.helpdesk import HelpdeskClient, HelpdeskConfig, NewTicket
from dunwell.clock import FixedClock
from dunwell.services.concierge_settings import update_concierge_settings
from dunwell.services.conversations import add_turn, close_conversation, current_conversation
from dunwell.services.delivery import deliver_due_messages
from dunwell.services.escalation import deliver_due_escalations, escalate
from dunwell.services.sites import advance_clock
from dunwell.store import tables
from tests.integration.factories import Shop
from tests.integration.fake_helpdesk import FakeHelpdeskServer

USERNAME = "ops@shop.test"
API_KEY = "gk-7d1f0c2a9e8b4c6d5f3a1b2c"
PHONE = "+447400123456"
OWNER = "test-escalations"
TURNS = [
    ("inbound", "customer", "Can I pay with card **** **** **** 4242 instead?"),
    ("outbound", "concierge", "Sorry, I did not understand. Reply SKIP, DELAY or HELP."),
    ("inbound", "customer", "I want to talk to a real person please"),
]


@pytest.fixture
def helpdesk() -> Iterator[FakeHelpdeskServer]:
    with FakeHelpdeskServer(username=USERNAME, api_key=API_KEY) as server:
        yield server


def _customer_with_account(shop: Shop, **fields: Any) -> int:
    """A customer with a subscription and an unpaid $49.00 invoice."""
    details = {"first_name": "Ada", "last_name": "Lovelace", "phone": PHONE, **fields}
    customer = shop.customer(**details)
    shop.subscribe(customer)
    shop.invoice(customer, 4900)
    return customer


def _escalation(shop: Shop, customer: int | None, reason: str = "asked_for_person") -> int:
    """A conversation of three turns, escalated; returns the escalation id."""
    with shop.app.begin() as conn:
        now = shop.now
        conversation = current_conversation(conn, shop.site_id, PHONE, customer, now)
        for direction, author, body in TURNS:
            add_turn(conn, conversation, direction, author, body, now)
        return escalate(conn, conversation, reason, now)


def _configure(
    shop: Shop, helpdesk: FakeHelpdeskServer | None, api_key: str = API_KEY, **changes: Any
) -> None:
    if helpdesk is not None:
        changes |= {"helpdesk_url": helpdesk.url, "helpdesk_username": USERNAME}
    with shop.app.begin() as conn:
        update_concierge_settings(
            conn,
            shop.site_id,
            changes,
            shop.now,
            box=shop.app.secret_box(),
            helpdesk_api_key=api_key if helpdesk is not None else None,
        )


def _support_email(shop: Shop, address: str) -> None:
    with shop.app.begin() as conn:
        conn.execute(
            update(tables.sites)
            .where(tables.sites.c.id == shop.site_id)
            .values(support_email=address)
        )


def _deliver(shop: Shop, **options: Any) -> int:
    return deliver_due_escalations(shop.app, OWNER, 10, **options)


def _advance(shop: Shop, minutes: int) -> None:
    with shop.app.begin() as conn:
        advance_clock(conn, shop.site_id, timedelta(minutes=minutes))


def _row(shop: Shop, escalation_id: int) -> Any:
    return shop.one(tables.escalations, id=escalation_id)


def _event_types(shop: Shop) -> list[str]:
    return [
        e.type
        for e in shop.all(tables.events, site_id=shop.site_id)
        if e.type.startswith("concierge.")
    ]


def _basic(username: str, key: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{key}".encode()).decode()


def test_a_configured_help_desk_gets_a_ticket_with_the_customer_and_the_transcript(
    app: App, helpdesk: FakeHelpdeskServer
) -> None:
    shop = Shop.create(app)
    customer = _customer_with_account(shop)
    _configure(shop, helpdesk)
    escalation_id = _escalation(shop, customer)
    assert shop.one(tables.conversations, site_id=shop.site_id).status == "escalated"
    assert _deliver(shop) == 1
    row = _row(shop, escalation_id)
    assert (row.status, row.ticket_id, row.attempts) == ("ticketed", "9001", 1)
    assert row.lease_owner is None and row.last_error is None
    [request] = helpdesk.requests
    assert (request.method, request.path) == ("POST", "/api/tickets")
    assert request.headers["authorization"] == _basic(USERNAME, API_KEY)
    [ticket] = helpdesk.tickets
    assert ticket["customer"] == {"email": "ada@x.test", "name": "Ada Lovelace"}
    assert ticket["subject"] == "SMS from Ada Lovelace needs a person"
    assert ticket["external_id"] == f"dunwell-escalation-{escalation_id}"
    [message] = ticket["messages"]
    assert message["from_agent"] is False and message["sender"] == {"email": "ada@x.test"}
    body = message["body_text"]
    for _direction, _author, text in TURNS:
        assert text in body
    assert "Customer: I want to talk to a real person please" in body
    assert "Concierge: Sorry, I did not understand." in body
    assert "the customer asked for a person" in body
    assert f"Customer id: {customer}" in body and PHONE in body
    assert "active, next charge" in body and "1 x Plan at $25.00" in body
    assert "$49.00 open" in body
    assert "&lt;" not in body and "<li>" in message["body_html"]
    assert _event_types(shop) == [
        "concierge.escalated",
        "concierge.escalation_ticketed",
    ]
    assert _deliver(shop) == 0  # nothing is sent twice


def test_escalating_a_conversation_again_returns_the_escalation_it_already_has(
    app: App,
) -> None:
    shop = Shop.create(app)
    customer = _customer_with_account(shop)
    first = _escalation(shop, customer)
    again = _escalation(shop, customer, reason="not_understood")
    assert again == first
    assert len(shop.all(tables.escalations, site_id=shop.site_id)) == 1
    assert _event_types(shop) == ["concierge.escalated"]


def _first_try_failed(app: App, helpdesk: FakeHelpdeskServer) -> tuple[Shop, int]:
    """A configured shop whose escalation's first ticket try got HTTP 500 just now."""
    shop = Shop.create(app)
    _configure(shop, helpdesk)
    escalation_id = _escalation(shop, _customer_with_account(shop))
    helpdesk.answer(500)
    _deliver(shop)
    return shop, escalation_id


def test_a_help_desk_error_is_tried_again_a_minute_later_and_then_makes_the_ticket(
    app: App, helpdesk: FakeHelpdeskServer
) -> None:
    shop, escalation_id = _first_try_failed(app, helpdesk)
    row = _row(shop, escalation_id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "HTTP 500" in row.last_error and "scripted failure" in row.last_error
    assert row.next_attempt_at == shop.now + timedelta(minutes=1)
    assert _deliver(shop) == 0  # not due yet
    _advance(shop, 1)
    assert _deliver(shop) == 1
    row = _row(shop, escalation_id)
    assert (row.status, row.attempts, row.ticket_id) == ("ticketed", 2, "9001")
    assert "HTTP 500" in row.last_error  # the failure stays on record
    # The second try first asks whether the first made the ticket after all.
    assert helpdesk.methods == ["POST", "GET", "POST"] and len(helpdesk.tickets) == 1


def test_three_help_desk_failures_send_the_hand_over_to_the_support_mailbox(
    app: App, helpdesk: FakeHelpdeskServer
) -> None:
    shop = Shop.create(app)
    _support_email(shop, "help@shop.test")
    _configure(shop, helpdesk)
    escalation_id = _escalation(shop, _customer_with_account(shop))
    helpdesk.answer(500, 503, 502)
    _deliver(shop)
    _advance(shop, 1)
    _deliver(shop)
    assert _row(shop, escalation_id).next_attempt_at == shop.now + timedelta(minutes=5)
    _advance(shop, 5)
    _deliver(shop)
    row = _row(shop, escalation_id)
    assert (row.status, row.attempts) == ("emailed", 3)
    assert "HTTP 502" in row.last_error and row.ticket_id is None
    assert helpdesk.methods == ["POST", "GET", "POST", "GET", "POST"]
    assert helpdesk.tickets == []
    email = shop.one(tables.outbox, id=row.email_outbox_id)
    assert (email.channel, email.kind, email.recipient) == (
        "email",
        "transactional",
        "help@shop.test",
    )
    assert email.dedupe_key == f"escalation:{escalation_id}"
    assert email.subject == "SMS from Ada Lovelace needs a person"
    assert "I want to talk to a real person please" in email.body_text
    deliver_due_messages(app, OWNER, 10)
    [mail] = shop.all(tables.sandbox_messages, site_id=shop.site_id, channel="email")
    assert (mail.to_addr, mail.subject) == ("help@shop.test", email.subject)
    assert "$49.00" in mail.body_text
    assert _event_types(shop)[-1] == "concierge.escalation_emailed"


def test_a_refused_api_key_sends_the_email_at_once(app: App, helpdesk: FakeHelpdeskServer) -> None:
    shop = Shop.create(app)
    _support_email(shop, "help@shop.test")
    _configure(shop, helpdesk, api_key="not-the-key")
    escalation_id = _escalation(shop, _customer_with_account(shop))
    _deliver(shop)
    row = _row(shop, escalation_id)
    assert (row.status, row.attempts) == ("emailed", 1)
    assert "HTTP 401" in row.last_error and "bad username or API key" in row.last_error
    assert len(helpdesk.requests) == 1
    assert shop.one(tables.outbox, id=row.email_outbox_id).recipient == "help@shop.test"


def test_a_slow_help_desk_is_a_failure_to_try_again(app: App, helpdesk: FakeHelpdeskServer) -> None:
    shop = Shop.create(app)
    _configure(shop, helpdesk)
    escalation_id = _escalation(shop, _customer_with_account(shop))
    helpdesk.answer(201, delay=1.0)
    _deliver(shop, timeout=0.2)
    row = _row(shop, escalation_id)
    assert row.status == "pending" and "did not answer within 0.2 s" in row.last_error


def test_a_ticket_made_after_the_worker_stopped_waiting_is_found_not_made_again(
    app: App, helpdesk: FakeHelpdeskServer
) -> None:
    shop = Shop.create(app)
    _configure(shop, helpdesk)
    escalation_id = _escalation(shop, _customer_with_account(shop))
    helpdesk.answer(201, delay=0.6)  # made, but after the worker gave up
    _deliver(shop, timeout=0.2)
    assert _row(shop, escalation_id).status == "pending"
    _wait_for(lambda: len(helpdesk.tickets) == 1)
    _advance(shop, 1)
    assert _deliver(shop) == 1
    row = _row(shop, escalation_id)
    assert (row.status, row.ticket_id, row.attempts) == ("ticketed", "9001", 2)
    assert helpdesk.methods == ["POST", "GET"] and len(helpdesk.tickets) == 1
    lookup = helpdesk.requests[1]
    assert f"external_id=dunwell-escalation-{escalation_id}" in lookup.path
    assert lookup.headers["authorization"] == _basic(USERNAME, API_KEY)
    assert _event_types(shop)[-1] == "concierge.escalation_ticketed"


def test_a_worker_that_died_before_recording_its_ticket_leaves_no_second_one(
    app: App, clock: FixedClock, helpdesk: FakeHelpdeskServer
) -> None:
    shop = Shop.create(app)
    _configure(shop, helpdesk)
    escalation_id = _escalation(shop, _customer_with_account(shop))
    _deliver(shop)
    assert _row(shop, escalation_id).ticket_id == "9001"
    # The state a worker leaves when it dies after the help desk's answer and
    # before its commit: claimed once, still leased (to it), no ticket.
    with app.begin() as conn:
        conn.execute(
            update(tables.escalations)
            .where(tables.escalations.c.id == escalation_id)
            .values(
                status="pending",
                ticket_id=None,
                lease_owner="a-dead-worker",
                lease_until=clock.now() + timedelta(seconds=30),
            )
        )
    assert _deliver(shop) == 0  # its lease holds
    clock.set(clock.now() + timedelta(seconds=31))  # leases run on real time
    assert _deliver(shop) == 1
    row = _row(shop, escalation_id)
    assert (row.status, row.ticket_id, row.attempts) == ("ticketed", "9001", 2)
    assert helpdesk.methods == ["POST", "GET"] and len(helpdesk.tickets) == 1


def test_a_help_desk_that_cannot_list_tickets_gets_the_ticket_made_again_and_a_warning(
    app: App, helpdesk: FakeHelpdeskServer, caplog: pytest.LogCaptureFixture
) -> None:
    shop, escalation_id = _first_try_failed(app, helpdesk)
    _advance(shop, 1)
    helpdesk.answer_lookups(403)  # a key that may create tickets but not read them
    with caplog.at_level(logging.WARNING, logger="dunwell.escalation"):
        assert _deliver(shop) == 1
    row = _row(shop, escalation_id)
    assert (row.status, row.ticket_id) == ("ticketed", "9001")
    assert helpdesk.methods == ["POST", "GET", "POST"]
    assert "cannot be asked" in caplog.text and "HTTP 403" in caplog.text
    assert API_KEY not in caplog.text


def test_a_lookup_that_fails_for_now_is_a_failed_try(
    app: App, helpdesk: FakeHelpdeskServer
) -> None:
    shop, escalation_id = _first_try_failed(app, helpdesk)
    _advance(shop, 1)
    helpdesk.answer_lookups(502)
    _deliver(shop)
    row = _row(shop, escalation_id)
    assert (row.status, row.attempts) == ("pending", 2)
    assert "HTTP 502" in row.last_error
    assert row.next_attempt_at == shop.now + timedelta(minutes=5)
    assert helpdesk.methods == ["POST", "GET"] and helpdesk.tickets == []


def _wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the help desk never finished"
        time.sleep(0.02)


def test_without_a_help_desk_the_worker_emails_the_escalation_address_else_the_support_one(
    app: App,
) -> None:
    shop = Shop.create(app)
    _support_email(shop, "help@shop.test")
    customer = _customer_with_account(shop)
    to_support = _escalation(shop, customer)
    shop.run()  # the worker: the escalation, then its email
    _configure(shop, None, escalation_email="people@shop.test")
    with app.begin() as conn:  # a person closed it; the next text starts anew
        [first] = shop.all(tables.conversations, site_id=shop.site_id)
        close_conversation(conn, first.id, "completed", shop.now)
    to_people = _escalation(shop, customer, reason="action_failed")
    shop.run()
    rows = [_row(shop, i) for i in (to_support, to_people)]
    assert [(r.status, r.last_error) for r in rows] == [("emailed", None)] * 2
    recipients = [shop.one(tables.outbox, id=r.email_outbox_id).recipient for r in rows]
    assert recipients == ["help@shop.test", "people@shop.test"]
    mailbox = shop.all(tables.sandbox_messages, site_id=shop.site_id, channel="email")
    subjects = {(m.to_addr, m.subject) for m in mailbox}
    assert ("help@shop.test", "SMS from Ada Lovelace needs a person") in subjects
    assert ("people@shop.test", "SMS from Ada Lovelace needs a person") in subjects


def test_a_customer_without_an_email_is_escalated_by_email_instead_of_a_ticket(
    app: App, helpdesk: FakeHelpdeskServer
) -> None:
    shop = Shop.create(app)
    _configure(shop, helpdesk, escalation_email="people@shop.test")
    escalation_id = _escalation(shop, _customer_with_account(shop, email=None))
    _deliver(shop)
    row = _row(shop, escalation_id)
    assert row.status == "emailed" and "no email address" in row.last_error
    assert helpdesk.requests == []


def test_a_number_with_no_customer_is_escalated_with_its_phone(app: App) -> None:
    shop = Shop.create(app)
    _configure(shop, None, escalation_email="people@shop.test")
    escalation_id = _escalation(shop, None, reason="not_understood")
    _deliver(shop)
    email = shop.one(tables.outbox, id=_row(shop, escalation_id).email_outbox_id)
    assert email.subject == f"SMS from {PHONE} needs a person"
    assert "Not matched to a customer record." in email.body_text
    assert "did not understand the customer twice" in email.body_text


def test_with_no_address_at_all_the_escalation_fails_and_says_why(app: App) -> None:
    shop = Shop.create(app)
    escalation_id = _escalation(shop, _customer_with_account(shop))
    _deliver(shop)
    row = _row(shop, escalation_id)
    assert row.status == "failed" and row.email_outbox_id is None
    assert "no escalation email and no support email" in row.last_error
    assert _event_types(shop)[-1] == "concierge.escalation_failed"
    assert _deliver(shop) == 0


def test_the_api_key_is_stored_encrypted_and_never_logged(
    app: App, helpdesk: FakeHelpdeskServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    shop = Shop.create(app)
    _configure(shop, helpdesk)
    escalation_id = _escalation(shop, _customer_with_account(shop))
    helpdesk.answer(500)
    _deliver(shop)
    _advance(shop, 1)
    _deliver(shop)
    assert _row(shop, escalation_id).status == "ticketed"
    [stored] = shop.all(tables.concierge_settings, site_id=shop.site_id)
    assert API_KEY not in stored.helpdesk_secret and API_KEY not in json.dumps(stored.settings)
    assert app.secret_box().open(stored.helpdesk_secret) == API_KEY
    token = _basic(USERNAME, API_KEY).removeprefix("Basic ")
    assert caplog.records  # the requests were logged, without their credentials
    assert API_KEY not in caplog.text and token not in caplog.text
    assert API_KEY not in (_row(shop, escalation_id).last_error or "")


def test_a_live_site_never_sends_its_api_key_to_a_loopback_address(
    app: App, helpdesk: FakeHelpdeskServer
) -> None:
    shop = Shop.create(app)
    with app.begin() as conn:
        sites = tables.sites
        conn.execute(
            update(sites).where(sites.c.id == shop.site_id).values(mode="live", clock_now=None)
        )
    _configure(shop, helpdesk)
    escalation_id = _escalation(shop, _customer_with_account(shop))
    _deliver(shop)
    row = _row(shop, escalation_id)
    assert row.status == "pending" and "loopback" in row.last_error
    assert helpdesk.requests == []


def test_each_site_escalates_with_its_own_settings_and_data(
    app: App, helpdesk: FakeHelpdeskServer
) -> None:
    shop = Shop.create(app)
    other = Shop.create(app, slug="other")
    _configure(shop, helpdesk)
    _support_email(other, "help@other.test")
    mine = _escalation(shop, _customer_with_account(shop))
    theirs = _escalation(other, _customer_with_account(other, first_name="Grace", email="g@y.test"))
    # One claim takes both sites' escalations, as many as fit in its lease.
    while _deliver(shop):
        pass
    assert _row(shop, mine).status == "ticketed"
    [ticket] = helpdesk.tickets
    assert "Grace" not in json.dumps(ticket)
    row = _row(other, theirs)
    assert row.status == "emailed" and row.site_id == other.site_id
    email = other.one(tables.outbox, id=row.email_outbox_id)
    assert (email.site_id, email.recipient) == (other.site_id, "help@other.test")
    assert "Grace" in email.body_text and "Ada" not in email.body_text
    assert _event_types(other) == ["concierge.escalated", "concierge.escalation_emailed"]


# -- the help-desk client's error classes ----------------------------------------------


def _client(handler: Any) -> HelpdeskClient:
    return HelpdeskClient(
        HelpdeskConfig(
            base_url="https://shop.helpdesk.test/api",
            username=USERNAME,
            api_key=API_KEY,
            transport=httpx.MockTransport(handler),
        )
    )


TICKET = NewTicket(customer_email="ada@x.test", customer_name=None, subject="s", body_text="b")


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        *[(status, True) for status in (301, 400, 401, 403, 404, 422)],
        *[(status, False) for status in (408, 429, 500, 502, 503)],
    ],
)
def test_each_http_error_is_classed_as_permanent_or_worth_another_try(
    status: int, permanent: bool
) -> None:
    client = _client(lambda request: httpx.Response(status, json={"error": {"msg": "no"}}))
    with pytest.raises(TransportError) as raised:
        client.create_ticket(TICKET)
    assert raised.value.permanent is permanent and raised.value.code == f"http-{status}"
    assert API_KEY not in raised.value.message


def test_no_connection_is_worth_another_try_and_an_answer_without_an_id_is_not() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(TransportError) as raised:
        _client(refuse).create_ticket(TICKET)
    assert not raised.value.permanent and raised.value.code == "helpdesk-unreachable"
    with pytest.raises(TransportError) as raised:
        _client(lambda request: httpx.Response(201, json={"ok": True})).create_ticket(TICKET)
    assert raised.value.permanent and raised.value.code == "helpdesk-bad-answer"


def test_the_client_config_never_shows_the_api_key() -> None:
    assert API_KEY not in repr(_client(lambda request: httpx.Response(201)).config)


@pytest.mark.parametrize(
    ("answer", "found"),
    [
        ({"object": "list", "data": []}, None),
        ({"object": "list", "data": [{"id": 12}, {"id": 11}]}, "12"),
        ({"object": "list", "data": [{"id": "t-3"}]}, "t-3"),
    ],
)
def test_a_listing_gives_the_first_tickets_id_or_none(answer: Any, found: str | None) -> None:
    asked: list[httpx.Request] = []

    def listing(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        return httpx.Response(200, json=answer)

    assert _client(listing).find_ticket("dunwell-escalation-7") == found
    [request] = asked
    assert request.method == "GET" and request.url.path.endswith("/tickets")
    assert dict(request.url.params) == {"external_id": "dunwell-escalation-7", "limit": "1"}


@pytest.mark.parametrize(
    "answer", [{"data": {"id": 1}}, {"tickets": []}, [{"id": 1}], {"data": [{"id": True}]}]
)
def test_a_listing_that_is_not_a_list_of_tickets_is_a_permanent_bad_answer(answer: Any) -> None:
    with pytest.raises(TransportError) as raised:
        _client(lambda request: httpx.Response(200, json=answer)).find_ticket("x")
    assert raised.value.permanent and raised.value.code == "helpdesk-bad-answer"
