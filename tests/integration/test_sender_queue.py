"""Texts wait for the next window when the sender's queue at the provider could not get
them out in this one; Twilio drops, and Dunwell queues again, a text that outstays it."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, update

from dunwell.bootstrap import App
from dunwell.services.collection import process_due_cycles
from dunwell.services.delivery import deliver_due_messages
from dunwell.services.sender_queue import load_queues, save_queues
from dunwell.services.sms_settings import update_sms_settings
from dunwell.store import tables
from tests.integration.factories import INSUFFICIENT, Shop
from tests.integration.fake_twilio import FakeMessage, FakeTwilioServer

# Numbers in London, where 20:00 UTC is 20:00 local in March (the window ends at 20:30).
MOBILES = [f"+4474001234{n:02d}" for n in range(5)]
EIGHT_PM = 11 / 24  # the shop's clock starts at 09:00 UTC
NEXT_MORNING = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)


def _sender_rate(shop: Shop, segments_per_second: float) -> None:
    with shop.app.begin() as conn:
        update_sms_settings(
            conn, shop.site_id, {"sender_segments_per_second": segments_per_second}, shop.now
        )


def _texts(shop: Shop, invoices: list[int]) -> list[Any]:
    return [m for invoice in invoices for m in shop.outbox_of(invoice) if m.channel == "sms"]


def _clears_at(shop: Shop) -> datetime:
    return shop.one(tables.sms_sender_queues, site_id=shop.site_id).clears_at


def _failing(shop: Shop, phone: str) -> int:
    return shop.invoice(shop.customer(INSUFFICIENT, phone=phone), 4900)


def test_texts_the_sender_cannot_get_out_before_the_window_closes_wait_for_the_next_one(
    app: App,
) -> None:
    shop = Shop.create(app)
    _sender_rate(shop, 1 / 600)  # ten minutes a segment
    shop.advance(EIGHT_PM)
    eight_pm = shop.now
    invoices = [_failing(shop, phone) for phone in MOBILES]
    shop.run()
    texts = _texts(shop, invoices)
    (segments,) = {t.segments for t in texts}  # the same words for everyone
    fits = 1800 // (600 * segments)  # half an hour left in the window
    assert 1 <= fits < len(texts)
    assert [t.status for t in texts] == ["delivered"] * fits + ["pending"] * (len(texts) - fits)
    for held in texts[fits:]:
        assert held.held_reason == "sender_queue"
        assert held.next_attempt_at == NEXT_MORNING  # 08:00 in London
        assert held.attempts == 0  # holding is not an attempt
    assert _clears_at(shop) == eight_pm + timedelta(seconds=600 * segments * fits)
    phone = shop.all(tables.sandbox_messages, site_id=shop.site_id, channel="sms")
    assert len(phone) == fits
    shop.advance(12 / 24)
    shop.run()
    assert [t.status for t in _texts(shop, invoices)] == ["delivered"] * len(texts)
    # The queue had emptied overnight: the morning's texts start it afresh.
    assert _clears_at(shop) == NEXT_MORNING + timedelta(
        seconds=600 * segments * (len(texts) - fits)
    )


def test_a_text_waits_while_the_queue_holds_more_than_the_ten_hours_twilio_takes(
    app: App,
) -> None:
    shop = Shop.create(app)
    with app.begin() as conn:
        conn.execute(
            insert(tables.sms_sender_queues).values(
                site_id=shop.site_id,
                clears_at=shop.now + timedelta(hours=10),
                updated_at=shop.now,
            )
        )
    invoice = _failing(shop, MOBILES[0])
    shop.run()
    (text,) = _texts(shop, [invoice])
    # It would leave at 19:00 and a bit, inside the window, but Twilio would refuse it.
    assert (text.status, text.held_reason) == ("pending", "sender_queue")
    assert text.next_attempt_at == shop.now + timedelta(seconds=text.segments)
    shop.advance(1 / 1440)
    shop.run()
    (text,) = _texts(shop, [invoice])
    assert text.status == "delivered"


def test_two_workers_admitting_one_sites_texts_add_to_its_queue_one_after_the_other(
    app: App,
) -> None:
    """The second worker's claim waits for the first one's, then sees its texts."""
    shop = Shop.create(app)
    now, rates = {shop.site_id: shop.now}, {shop.site_id: 1.0}
    seen: list[datetime] = []

    def admit(segments: int, meanwhile: threading.Thread | None = None) -> None:
        with app.begin() as conn:
            queues = load_queues(conn, rates, now)
            seen.append(queues[shop.site_id].clears_at)
            if meanwhile is not None:
                meanwhile.start()
                time.sleep(0.3)  # long enough for the other to reach the row
            queues[shop.site_id].add(now[shop.site_id], segments)
            save_queues(conn, queues.values(), now)

    admit(0)  # the site's row exists from here on
    other = threading.Thread(target=admit, args=(3,))
    admit(5, meanwhile=other)
    other.join(timeout=10)
    start = now[shop.site_id]
    assert seen == [start, start, start + timedelta(seconds=5)]
    assert _clears_at(shop) == start + timedelta(seconds=8)


def test_twilio_is_given_the_time_left_in_the_window_as_the_validity_period(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    _failing(shop, MOBILES[0])
    shop.run()  # 09:00 in London: 11.5 hours left, more than Twilio takes
    shop.advance(9 / 24)
    _failing(shop, MOBILES[1])
    shop.run()  # 18:00: two and a half hours left
    morning, evening = server.messages
    assert morning.validity_period == 36_000
    assert evening.validity_period is not None
    assert 2.5 * 3600 - 5 <= evening.validity_period <= 2.5 * 3600


def test_a_text_twilio_could_not_hand_over_is_taken_off_the_queue(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    server.fail_next(status=503)
    invoice = _failing(shop, MOBILES[0])
    shop.run()
    (text,) = _texts(shop, [invoice])
    assert (text.status, text.error_code) == ("pending", "http-503")
    assert _clears_at(shop) == shop.now  # counted when admitted, given back after the 503
    shop.advance(1 / 1440)  # the first retry comes a minute later
    shop.run()
    (text,) = _texts(shop, [invoice])
    assert text.status == "sent"
    assert _clears_at(shop) == shop.now + timedelta(seconds=text.segments)


def test_texts_put_back_at_the_batch_deadline_are_taken_off_the_queue(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    for phone in MOBILES[:3]:
        _failing(shop, phone)
    process_due_cycles(shop.app, "worker-1", limit=500)  # queues the day's messages
    settings = shop.app.settings
    shop.app.settings = replace(settings, lease_seconds=0)  # no time to start any

    deliver_due_messages(shop.app, "worker-1", limit=200)

    texts = shop.all(tables.outbox, channel="sms")
    assert server.messages == [] and {t.status for t in texts} == {"pending"}
    assert _clears_at(shop) == shop.now
    shop.app.settings = settings
    shop.run()
    assert len(server.messages) == 3
    assert _clears_at(shop) == shop.now + timedelta(seconds=sum(t.segments for t in texts))


def test_a_text_twilio_dropped_at_the_end_of_its_validity_goes_out_in_the_next_window(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    invoice, first = _one_text_through_twilio(shop, server)
    balance_after_sending = shop.sms_balance()
    shop.advance(11.5 / 24)  # 20:30: the window has closed with the text still queued
    assert server.post_status(first.sid, "failed", error_code=30036) == 204
    (text,) = _texts(shop, [invoice])
    assert (text.status, text.error_code) == ("pending", "30036")
    assert "send window closed" in text.last_error
    assert shop.sms_balance() == balance_after_sending + text.segments  # not sent, not paid
    assert "message.failed" not in _event_types(shop)
    assert server.post_status(first.sid, "failed", error_code=30036) == 204  # again: no change
    assert shop.sms_balance() == balance_after_sending + text.segments
    shop.run()
    (text,) = _texts(shop, [invoice])
    assert (text.status, text.held_reason) == ("pending", "quiet_hours")
    assert text.next_attempt_at == NEXT_MORNING
    shop.advance(11.5 / 24)  # 08:00 the next day
    shop.run()
    first_again, second = server.messages
    assert first_again.sid == first.sid and second.body == first.body
    (text,) = _texts(shop, [invoice])
    assert (text.status, text.provider_id) == ("sent", second.sid)
    ledger = shop.all(tables.sms_credit_ledger, outbox_id=text.id)
    assert [(row.reason, row.charge_no) for row in ledger] == [
        ("debit", 0),
        ("refund", 0),
        ("debit", 1),
    ]


def test_a_text_that_keeps_expiring_fails_once_its_tries_are_used_up(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    invoice, sent = _one_text_through_twilio(shop, server)
    (text,) = _texts(shop, [invoice])
    with shop.app.begin() as conn:  # as after ten earlier expiries
        conn.execute(update(tables.outbox).where(tables.outbox.c.id == text.id).values(attempts=11))
    server.post_status(sent.sid, "failed", error_code=30036)
    (text,) = _texts(shop, [invoice])
    assert (text.status, text.error_code) == ("failed", "30036")
    assert "message.failed" in _event_types(shop)


def test_other_failures_reported_by_twilio_still_fail_the_text(
    twilio: tuple[Shop, FakeTwilioServer],
) -> None:
    shop, server = twilio
    invoice, sent = _one_text_through_twilio(shop, server)
    server.post_status(sent.sid, "failed", error_code=30007)  # filtered as spam
    (text,) = _texts(shop, [invoice])
    assert (text.status, text.error_code) == ("failed", "30007")
    assert "message.failed" in _event_types(shop)


def _one_text_through_twilio(shop: Shop, server: FakeTwilioServer) -> tuple[int, FakeMessage]:
    invoice = _failing(shop, MOBILES[0])
    shop.run()
    (sent,) = server.messages
    return invoice, sent


def _event_types(shop: Shop) -> list[str]:
    return [e.type for e in shop.all(tables.events, site_id=shop.site_id)]
