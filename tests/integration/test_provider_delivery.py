"""Dunning messages through real SMTP (aiosmtpd) and the real Twilio SDK (local fake)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import insert, update
from sqlalchemy.exc import DBAPIError

from dunwell.bootstrap import App
from dunwell.channels.registry import ChannelRegistry, TransportOptions
from dunwell.clock import FixedClock
from dunwell.services.channel_config import save_channel_config
from dunwell.services.collection import process_due_cycles
from dunwell.services.delivery import deliver_due_messages
from dunwell.services.message_render import MessageRenderer
from dunwell.services.messages import resend_message
from dunwell.services.sites import site_now
from dunwell.store import tables
from tests.integration.db_faults import (
    REFUSAL,
    allow_finishing_attempts,
    refuse_finishing_attempts,
)
from tests.integration.factories import INSUFFICIENT, Shop
from tests.integration.fake_twilio import FakeTwilioServer
from tests.integration.smtp_server import SmtpServer

MOBILE = "+447400123456"


def _sms(shop: Shop, invoice_id: int) -> object:
    (row,) = [m for m in shop.outbox_of(invoice_id) if m.channel == "sms"]
    return row


def test_a_dunning_text_goes_through_twilio_and_its_delivery_report_is_recorded(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    invoice = shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()
    sms = _sms(shop, invoice)
    (sent,) = server.messages
    assert sent.to == MOBILE and sent.body == sms.body_text
    assert sent.body.endswith("Reply STOP to opt out")
    assert (sms.status, sms.provider_id) == ("sent", sent.sid)
    assert server.post_status(sent.sid, "sent") == 204
    assert server.post_status(sent.sid, "delivered") == 204
    assert server.post_status(sent.sid, "sent") == 204  # late and out of order: ignored
    row = _sms(shop, invoice)
    assert (row.status, row.provider_status) == ("delivered", "delivered")


def test_an_undelivered_report_fails_the_text_and_gives_its_credits_back(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    invoice = shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()
    before = shop.sms_balance()
    (sent,) = server.messages
    server.post_status(sent.sid, "undelivered", error_code=30003)
    row = _sms(shop, invoice)
    assert (row.status, row.error_code) == ("failed", "30003")
    assert shop.sms_balance() == before + row.segments


def test_a_text_resent_after_an_undelivered_report_is_charged_again(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    invoice = shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()
    (sent,) = server.messages
    server.post_status(sent.sid, "undelivered", error_code=30003)
    sms = _sms(shop, invoice)
    with shop.app.begin() as conn:
        resend_message(conn, shop.site_id, sms.id, MessageRenderer(shop.app.links), shop.now)
    shop.run()
    assert len(server.messages) == 2
    ledger = shop.all(tables.sms_credit_ledger, outbox_id=sms.id)
    assert [(row.reason, row.charge_no) for row in ledger] == [
        ("debit", 0),
        ("refund", 0),
        ("debit", 1),
    ]
    assert _sms(shop, invoice).status == "sent"


def test_an_invalid_number_fails_at_once_and_is_not_retried(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    server.fail_for(MOBILE, status=400, code=21211)
    invoice = shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()
    shop.advance(1)
    shop.run()
    row = _sms(shop, invoice)
    assert (row.status, row.error_code) == ("failed", "21211")
    attempts = shop.all(tables.message_attempts, outbox_id=row.id)
    assert [a.outcome for a in attempts] == ["permanent"]


def test_a_twilio_outage_is_retried_with_backoff_and_then_sent_once(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    server.fail_next(2, status=503)
    invoice = shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()
    row = _sms(shop, invoice)
    assert row.status == "pending" and row.error_code == "http-503"
    assert row.next_attempt_at == shop.now + timedelta(minutes=1)
    shop.advance(1 / 1440)
    shop.run()
    assert _sms(shop, invoice).next_attempt_at == shop.now + timedelta(minutes=5)
    shop.advance(5 / 1440)
    shop.run()
    row = _sms(shop, invoice)
    assert row.status == "sent"
    attempts = shop.all(tables.message_attempts, outbox_id=row.id)
    assert [a.outcome for a in attempts] == ["transient", "transient", "sent"]
    assert len(server.messages) == 1


def _failing_customers(shop: Shop, phones: list[str]) -> None:
    for n, phone in enumerate(phones):
        shop.invoice(shop.customer(INSUFFICIENT, phone=phone, email=f"c{n}@x.test"), 4900)


def test_texts_go_to_twilio_side_by_side_and_each_number_keeps_its_order(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    """Twilio answers in 0.2 s here: one text after another would take 2.6 s."""
    shop, server = twilio
    server.fake.delay = 0.2
    shared = "+447400123499"
    phones = [f"+4474001234{n:02d}" for n in range(12)]
    _failing_customers(shop, [*phones, shared])
    second = shop.customer(INSUFFICIENT, phone=shared, email="second@x.test")
    shop.invoice(second, 2500)  # a second text to the same number, in the same batch
    shop.run()
    texts = shop.all(tables.outbox, channel="sms")
    assert len(texts) == 14 and {t.status for t in texts} == {"sent"}
    assert sorted(m.to for m in server.messages) == sorted([*phones, shared, shared])
    assert 1 < server.fake.most_in_flight <= shop.app.settings.delivery_concurrency
    # The shared number's texts went one after the other, in the order queued.
    assert [event for event, to in server.fake.sends if to == shared] == [
        "accepted",
        "answered",
        "accepted",
        "answered",
    ]
    bodies = [m.body for m in server.messages if m.to == shared]
    queued = sorted((t for t in texts if t.recipient == shared), key=lambda t: t.id)
    assert bodies == [t.body_text for t in queued]


def test_one_lane_sends_one_text_at_a_time(twilio: tuple[Shop, FakeTwilioServer]) -> None:
    shop, server = twilio
    shop.app.settings = replace(shop.app.settings, delivery_concurrency=1)
    server.fake.delay = 0.05
    _failing_customers(shop, [f"+4474001234{n:02d}" for n in range(4)])
    shop.run()
    assert len(server.messages) == 4
    assert server.fake.most_in_flight == 1


def test_texts_go_out_over_as_many_requests_as_twilio_takes_at_once(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    """An account limited to 2 requests at once: the lanes it turns away hand
    their texts to the others, and every text goes out in this batch."""
    shop, server = twilio
    server.fake.delay = 0.05
    server.fake.max_in_flight = 2
    phones = [f"+4474001234{n:02d}" for n in range(12)]
    _failing_customers(shop, phones)
    shop.run()
    assert server.fake.turned_away >= 1  # the limit was reached
    assert sorted(m.to for m in server.messages) == sorted(phones)
    texts = shop.all(tables.outbox, channel="sms")
    assert {t.status for t in texts} == {"sent"}
    outcomes = {a.outcome for a in shop.all(tables.message_attempts) if a.provider == "twilio"}
    assert outcomes == {"sent"}


def test_a_text_whose_answer_never_came_is_looked_up_not_sent_again(
    app: App, twilio: tuple[Shop, FakeTwilioServer]
) -> None:
    """Twilio takes the text but answers after the client gave up: in doubt.
    The retry asks Twilio first; when Twilio cannot be asked, it stays in doubt."""
    shop, server = twilio
    app.channels = ChannelRegistry(
        app.engine,
        app.clock.now,
        TransportOptions(twilio_api_base=server.url, twilio_timeout=0.3),
    )
    server.fake.delay = 0.8
    invoice = shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()
    (taken,) = server.messages
    row = _sms(shop, invoice)
    assert (row.status, row.error_code) == ("pending", "twilio-unreachable")
    server.fake.delay = 0
    server.fail_next_list(1)  # the lookup fails once: still in doubt, still not sent
    shop.advance(1 / 1440)
    shop.run()
    assert _sms(shop, invoice).status == "pending"
    shop.advance(5 / 1440)
    shop.run()
    row = _sms(shop, invoice)
    assert (row.status, row.provider_id) == ("sent", taken.sid)
    assert len(server.messages) == 1
    outcomes = [a.outcome for a in shop.all(tables.message_attempts, outbox_id=row.id)]
    assert outcomes == ["unknown", "unknown", "reconciled"]


def test_when_every_lane_is_turned_away_the_batch_waits_without_trying_each_text(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    """One lane; Twilio answers 429 to everything. The first text is tried and
    the second waits untried; it was in doubt, and stays so: the retry finds
    it at Twilio instead of sending it again."""
    shop, server = twilio
    shop.app.settings = replace(shop.app.settings, delivery_concurrency=1)
    server.fake.max_in_flight = 0
    first = shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()  # the first text waits a minute for its retry
    server.fake.max_in_flight = None
    second = shop.invoice(shop.customer(INSUFFICIENT, phone="+447400123457"), 2500)
    shop.run()
    (taken,) = server.messages
    doubtful = _sms(shop, second)
    _died_before_recording(shop, doubtful.id)
    server.fake.max_in_flight = 0
    refused = server.fake.turned_away
    shop.advance(1 / 1440)
    shop.run()
    assert server.fake.turned_away == refused + 1  # only the first text was tried
    outcomes = [a.outcome for a in shop.all(tables.message_attempts, outbox_id=doubtful.id)]
    assert outcomes == ["unknown", "unknown"]
    assert _sms(shop, first).status == _sms(shop, second).status == "pending"
    server.fake.max_in_flight = None
    shop.advance(5 / 1440)
    shop.run()
    assert _sms(shop, first).status == "sent"
    row = _sms(shop, second)
    assert (row.status, row.provider_id) == ("sent", taken.sid)
    assert sorted(m.to for m in server.messages) == sorted([MOBILE, "+447400123457"])


def test_a_relay_that_turns_every_connection_away_is_tried_once_per_lane(app: App) -> None:
    with SmtpServer() as server:
        server.max_connections = 0
        shop = Shop.create(app)
        _save_smtp(shop, server)
        _failing_customers(shop, [f"+4474001234{n:02d}" for n in range(12)])
        shop.run()
        turned_away = server.turned_away
    assert 1 <= turned_away <= app.settings.delivery_concurrency  # not one per email
    emails = shop.all(tables.outbox, channel="email")
    assert len(emails) == 12 and {m.status for m in emails} == {"pending"}
    assert {m.error_code for m in emails} == {"smtp-421"}


def _died_before_recording(shop: Shop, outbox_id: int) -> None:
    """Leave the rows as a worker that sent the message and died leaves them:
    its attempt open, the message ``sending`` under a lease that has expired."""
    expired = shop.app.clock.now() - timedelta(seconds=1)
    with shop.app.begin() as conn:
        attempts = tables.message_attempts
        conn.execute(
            update(attempts)
            .where(attempts.c.outbox_id == outbox_id)
            .values(outcome=None, provider_id=None, finished_at=None)
        )
        conn.execute(
            update(tables.outbox)
            .where(tables.outbox.c.id == outbox_id)
            .values(status="sending", lease_owner="dead", lease_until=expired)
        )


def _save_smtp(shop: Shop, server: SmtpServer, *, secret: str | None = None, **extra: str) -> None:
    """The shop sends email through ``server``, from billing@shop.example;
    with ``secret``, it logs in as billing with that password."""
    config = {"host": "127.0.0.1", "port": server.port, "security": "none"}
    if secret:
        config["username"] = "billing"
    with shop.app.begin() as conn:
        save_channel_config(
            conn,
            shop.site_id,
            "email",
            "smtp",
            {**config, "from_addr": "billing@shop.example", **extra},
            secret,
            shop.app.secret_box(),
            site_now(conn, shop.site_id, shop.app.clock),
        )


def test_emails_to_a_relay_go_out_over_several_connections_each_once(app: App) -> None:
    with SmtpServer() as server:
        shop = Shop.create(app)
        _save_smtp(shop, server)
        _failing_customers(shop, [f"+4474001234{n:02d}" for n in range(12)])
        shop.run()
        received = sorted(m.message["To"] for m in server.messages)
        # Less the one aiosmtpd's controller opens to check the server is up.
        connections = server.connections - 1
    assert received == sorted(f"c{n}@x.test" for n in range(12))
    assert 1 < connections <= app.settings.delivery_concurrency  # one per lane
    assert {m.status for m in shop.all(tables.outbox, channel="email")} == {"sent"}


def test_emails_go_out_over_the_connections_a_relay_allows(app: App) -> None:
    """A relay that takes 2 connections from a client: 8 lanes try, those it
    turns away hand their emails over, and every email goes out in this batch."""
    with SmtpServer() as server:
        server.max_connections = 2
        server.delay = 0.05
        shop = Shop.create(app)
        _save_smtp(shop, server)
        _failing_customers(shop, [f"+4474001234{n:02d}" for n in range(12)])
        shop.run()
        received = sorted(m.message["To"] for m in server.messages)
        turned_away = server.turned_away
    assert turned_away >= 1  # the limit was reached
    assert received == sorted(f"c{n}@x.test" for n in range(12))  # each once
    assert {m.status for m in shop.all(tables.outbox, channel="email")} == {"sent"}
    outcomes = {a.outcome for a in shop.all(tables.message_attempts) if a.provider == "smtp"}
    assert outcomes == {"sent"}


def test_an_email_whose_answer_never_came_is_recorded_in_doubt_and_resent_as_the_same(
    app: App,
) -> None:
    """SMTP cannot be asked whether the relay took it: the retry sends it
    again, with the same Message-ID, and the attempt says why."""
    app.channels = ChannelRegistry(app.engine, app.clock.now, TransportOptions(smtp_timeout=0.3))
    with SmtpServer() as server:
        server.delay = 1.0
        shop = Shop.create(app)
        _save_smtp(shop, server)
        invoice = shop.invoice(shop.customer(INSUFFICIENT), 4900)
        shop.run()
        (row,) = [m for m in shop.outbox_of(invoice) if m.channel == "email"]
        assert (row.status, row.error_code) == ("pending", "smtp-timeout")
        server.delay = 0
        shop.advance(1 / 1440)
        shop.run()
        ids = [m.message["Message-ID"] for m in server.messages]
    (row,) = [m for m in shop.outbox_of(invoice) if m.channel == "email"]
    assert row.status == "sent"
    assert len(ids) == 2 and len(set(ids)) == 1
    outcomes = [a.outcome for a in shop.all(tables.message_attempts, outbox_id=row.id)]
    assert outcomes == ["unknown", "sent"]


@pytest.mark.parametrize(
    ("site_name", "shown"),
    [
        ('Bob\'s "Best" Shop', 'Bob\'s "Best" Shop'),
        ("Acme Tools\\", "Acme Tools\\"),
        ("Acme\r\nLtd", "Acme Ltd"),
        ("Café, Crème & Co.", "Café, Crème & Co."),
    ],
    ids=["quotes", "backslash", "line-break", "accents-and-comma"],
)
def test_the_site_name_in_from_is_quoted_so_the_header_and_envelope_stay_whole(
    app: App, site_name: str, shown: str
) -> None:
    # The name is the merchant's text: pasted between quotes as it was, a
    # quote or backslash broke the header and the envelope sender read
    # from it, and a line break failed every email of the site.
    with SmtpServer() as server:
        shop = Shop.create(app)
        with app.begin() as conn:
            conn.execute(
                update(tables.sites).where(tables.sites.c.id == shop.site_id).values(name=site_name)
            )
        _save_smtp(shop, server)
        shop.invoice(shop.customer(INSUFFICIENT), 4900)
        shop.run()
        (received,) = server.messages
    assert received.mail_from == "billing@shop.example"
    sender = received.message["From"]
    assert (sender.addresses[0].display_name, sender.addresses[0].addr_spec) == (
        shown,
        "billing@shop.example",
    )


def test_dunning_email_goes_through_smtp_with_both_parts_and_stable_headers(app: App) -> None:
    with SmtpServer() as server:
        shop = Shop.create(app)
        _save_smtp(shop, server, reply_to="help@shop.example")
        invoice = shop.invoice(shop.customer(INSUFFICIENT, first_name="Zoë"), 4900)
        shop.run()
        (received,) = server.messages
    (row,) = [m for m in shop.outbox_of(invoice) if m.channel == "email"]
    message = received.message
    assert message["To"] == "ada@x.test"
    assert message["From"] == '"shop Inc." <billing@shop.example>'
    assert message["Reply-To"] == "help@shop.example"
    assert message["Subject"] == row.subject
    assert message["Message-ID"] == f"<outbox-{row.id}.site-{shop.site_id}@shop.example>"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Zoë" in text and "$49.00" in text
    assert "Zoë" in html and "<" in html
    assert row.status == "sent"


def test_a_text_sent_before_two_crashes_in_a_row_is_found_not_sent_again(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    """Worker A sends and dies before recording; worker B marks A's attempt in doubt,
    opens its own and dies before asking Twilio; worker C must look back to A's send."""
    shop, server = twilio
    invoice = shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()
    (sent,) = server.messages
    sms = _sms(shop, invoice)
    clock = shop.app.clock
    assert isinstance(clock, FixedClock)
    # The state those two deaths leave, as the rows record it.
    (first,) = shop.all(tables.message_attempts, outbox_id=sms.id)
    clock.set(clock.now() + timedelta(minutes=2))
    with shop.app.begin() as conn:
        attempts = tables.message_attempts
        conn.execute(
            update(attempts)
            .where(attempts.c.id == first.id)
            .values(outcome="unknown", provider_id=None, finished_at=clock.now())
        )
        conn.execute(
            insert(attempts).values(
                site_id=shop.site_id,
                outbox_id=sms.id,
                attempt_no=2,
                provider="twilio",
                started_at=clock.now(),
            )
        )
        conn.execute(
            update(tables.outbox)
            .where(tables.outbox.c.id == sms.id)
            .values(
                status="sending",
                provider_id=None,
                sent_at=None,
                lease_owner="worker-b",
                lease_until=clock.now(),
            )
        )
    clock.set(clock.now() + timedelta(minutes=1))  # B's lease has expired
    shop.run()
    assert len(server.messages) == 1
    row = _sms(shop, invoice)
    assert (row.status, row.provider_id) == ("sent", sent.sid)
    outcomes = [a.outcome for a in shop.all(tables.message_attempts, outbox_id=sms.id)]
    assert outcomes == ["unknown", "unknown", "reconciled"]


def test_emails_no_lane_reaches_within_the_lease_wait_untouched_for_the_next_batch(
    app: App,
) -> None:
    with SmtpServer() as server:
        shop = Shop.create(app)
        _save_smtp(shop, server)
        _failing_customers(shop, [f"+4474001234{n:02d}" for n in range(8)])
        process_due_cycles(app, "worker-1", limit=500)  # queues the day's messages
        # A one-second lease, shorter than an email may take (the 30-second
        # timeout), leaves a quarter of a second to start emails that take
        # 0.2 s each, one lane after another: eight cannot all go out.
        app.settings = replace(app.settings, lease_seconds=1, delivery_concurrency=1)
        server.delay = 0.2

        deliver_due_messages(app, "worker-1", limit=200)

        emails = shop.all(tables.outbox, channel="email")
        sent = [m for m in emails if m.status == "sent"]
        waiting = [m for m in emails if m.status != "sent"]
        assert sent and waiting
        for message in waiting:
            assert (message.status, message.attempts, message.lease_owner) == ("pending", 0, None)
            assert message.next_attempt_at <= shop.now  # due at once
            assert shop.all(tables.message_attempts, outbox_id=message.id) == []

        shop.run()
        received = sorted(m.message["To"] for m in server.messages)

    assert received == sorted(f"c{n}@x.test" for n in range(8))  # each once
    for message in shop.all(tables.outbox, channel="email"):
        attempts = shop.all(tables.message_attempts, outbox_id=message.id)
        assert [(a.attempt_no, a.outcome) for a in attempts] == [(1, "sent")]


def test_a_text_in_doubt_put_back_at_the_deadline_stays_in_doubt(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    """Its worker died after Twilio took it. The next batch has no time left
    to start it (a lease of 0 s): it is put back still in doubt, and the
    batch after finds it at Twilio instead of sending it again."""
    shop, server = twilio
    invoice = shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()
    (taken,) = server.messages
    doubtful = _sms(shop, invoice)
    _died_before_recording(shop, doubtful.id)
    settings = shop.app.settings
    shop.app.settings = replace(settings, lease_seconds=0)

    deliver_due_messages(shop.app, "worker-1", limit=200)

    row = _sms(shop, invoice)
    assert (row.status, row.attempts, row.lease_owner) == ("pending", doubtful.attempts, None)
    outcomes = [a.outcome for a in shop.all(tables.message_attempts, outbox_id=row.id)]
    assert outcomes == ["unknown"]  # no attempt of its own: it was not tried
    shop.app.settings = settings
    shop.run()
    row = _sms(shop, invoice)
    assert (row.status, row.provider_id) == ("sent", taken.sid)
    assert len(server.messages) == 1
    outcomes = [a.outcome for a in shop.all(tables.message_attempts, outbox_id=row.id)]
    assert outcomes == ["unknown", "reconciled"]


def test_one_address_s_emails_stop_at_the_deadline_and_the_rest_keeps_its_order(
    app: App,
) -> None:
    """Six invoices of one customer queue six emails to one address: one
    chain. With a quarter of a second to start emails that take 0.2 s each,
    the chain is cut short between messages, not only before its first, so
    the last email started ends within the lease; the rest goes next batch,
    still in the order it was queued."""
    with SmtpServer() as server:
        shop = Shop.create(app)
        _save_smtp(shop, server)
        customer = shop.customer(INSUFFICIENT, phone="+447400123400", email="one@x.test")
        for _ in range(6):
            shop.invoice(customer, 4900)
        process_due_cycles(app, "worker-1", limit=500)
        app.settings = replace(app.settings, lease_seconds=1, delivery_concurrency=1)
        server.delay = 0.2

        deliver_due_messages(app, "worker-1", limit=200)

        emails = sorted(shop.all(tables.outbox, channel="email"), key=lambda m: m.id)
        sent = [m for m in emails if m.status == "sent"]
        assert 1 <= len(sent) <= 2  # started at 0 s and perhaps 0.2 s, not at 0.4 s
        assert emails[: len(sent)] == sent  # the first ones, in order
        for message in emails[len(sent) :]:
            assert (message.status, message.attempts, message.lease_owner) == ("pending", 0, None)
            assert shop.all(tables.message_attempts, outbox_id=message.id) == []

        shop.run()
        received = [m.message["Message-ID"] for m in server.messages]

    emails = sorted(shop.all(tables.outbox, channel="email"), key=lambda m: m.id)
    assert [m.status for m in emails] == ["sent"] * 6
    # Message-ID "<outbox-{id}.site-...>": each once, in the order queued.
    sent_ids = [int(r.removeprefix("<outbox-").split(".")[0]) for r in received]
    assert sent_ids == [m.id for m in emails]


def test_when_recording_fails_the_messages_no_lane_started_are_put_back_at_once(
    app: App,
) -> None:
    """The database refuses to record the first message sent: its lane fails,
    and the batch with it. That message stays leased, in doubt, as after a
    crash; every message no lane started is due at once, not after the lease."""
    with SmtpServer() as server:
        shop = Shop.create(app)
        _save_smtp(shop, server)
        _failing_customers(shop, [f"+4474001234{n:02d}" for n in range(4)])
        process_due_cycles(app, "worker-1", limit=500)  # four emails and four texts
        app.settings = replace(app.settings, delivery_concurrency=1)
        refuse_finishing_attempts(app, "message_attempts")

        with pytest.raises(DBAPIError, match=REFUSAL):
            deliver_due_messages(app, "worker-1", limit=200)

        messages = shop.all(tables.outbox)
        (in_doubt,) = [m for m in messages if m.lease_owner is not None]
        assert (in_doubt.status, in_doubt.attempts) == ("sending", 1)
        put_back = [m for m in messages if m.lease_owner is None]
        assert len(put_back) == 7
        for message in put_back:
            assert (message.status, message.attempts) == ("pending", 0)
            assert shop.all(tables.message_attempts, outbox_id=message.id) == []

        allow_finishing_attempts(app, "message_attempts")
        deliver_due_messages(app, "worker-1", limit=200)  # without waiting for the lease

        sent = [m for m in shop.all(tables.outbox) if m.status in ("sent", "delivered")]
        assert sorted(m.id for m in sent) == sorted(m.id for m in put_back)
        received = sorted(m.message["To"] for m in server.messages)
    # Each email once, the one in doubt (if it was an email) included.
    assert received == sorted(f"c{n}@x.test" for n in range(4))


def _held_after_an_outage(shop: Shop, server: FakeTwilioServer) -> tuple[int, int]:
    """A dunning text debited, then sent back to wait by a Twilio 503; (invoice, text id)."""
    server.fail_next(1, status=503)
    invoice = shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()
    row = _sms(shop, invoice)
    assert row.status == "pending" and row.error_code == "http-503"
    assert _charges(shop, row.id) == [("debit", -row.segments)]  # kept for the retry
    return invoice, row.id


def _charges(shop: Shop, outbox_id: int) -> list[tuple[str, int]]:
    ledger = shop.all(tables.sms_credit_ledger, outbox_id=outbox_id)
    return [(row.reason, row.delta) for row in sorted(ledger, key=lambda r: r.id)]


def test_a_debited_text_blocked_before_its_retry_gets_its_credits_back(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    from dunwell.services.inbound_sms import record_opt_out

    shop, server = twilio
    _invoice, sms_id = _held_after_an_outage(shop, server)
    with shop.app.begin() as conn:
        record_opt_out(conn, shop.site_id, MOBILE, None, "test", shop.now)
    shop.advance(1 / 1440)
    shop.run()
    row = shop.one(tables.outbox, id=sms_id)
    assert (row.status, row.last_error) == ("blocked", "opted_out")
    assert _charges(shop, sms_id) == [("debit", -row.segments), ("refund", row.segments)]
    assert server.messages == []


def test_a_debited_text_withdrawn_once_the_invoice_is_paid_gets_its_credits_back(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    from dunwell.services import invoice_actions

    shop, server = twilio
    invoice, sms_id = _held_after_an_outage(shop, server)
    shop.act(invoice_actions.mark_paid, invoice)
    shop.advance(1 / 1440)
    shop.run()
    row = shop.one(tables.outbox, id=sms_id)
    assert row.status == "canceled"
    assert _charges(shop, sms_id) == [("debit", -row.segments), ("refund", row.segments)]
    assert [m.body for m in server.messages if m.body == row.body_text] == []
