"""Dunning messages from the step to the sandbox mailbox and phone, through the real worker."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from dunwell.bootstrap import App
from dunwell.services import invoice_actions, sms_credits
from dunwell.services.sandbox_phone import reply_as_customer
from dunwell.store import tables
from tests.integration.factories import INSUFFICIENT, Shop

UK_MOBILE = "+447400123456"


def _failing_customer(shop: Shop, **fields: object) -> tuple[int, int]:
    fields.setdefault("phone", UK_MOBILE)
    customer = shop.customer(INSUFFICIENT, **fields)
    invoice = shop.invoice(customer, 4900)
    return customer, invoice


def _messages(shop: Shop, invoice_id: int, channel: str) -> list[object]:
    return [m for m in shop.outbox_of(invoice_id) if m.channel == channel]


def _sandbox(shop: Shop, channel: str) -> list[object]:
    return shop.all(tables.sandbox_messages, site_id=shop.site_id, channel=channel)


def test_a_failed_payment_sends_the_rendered_email_and_text_to_the_sandbox_once(app: App) -> None:
    shop = Shop.create(app)
    _customer, invoice = _failing_customer(shop)
    shop.run()
    email = _messages(shop, invoice, "email")
    sms = _messages(shop, invoice, "sms")
    assert [m.status for m in email] == ["delivered"]
    assert [m.status for m in sms] == ["delivered"]
    assert "$49.00" in email[0].body_text and email[0].subject
    assert "/billing/" in email[0].body_text
    assert sms[0].body_text.endswith("Reply STOP to opt out")
    assert sms[0].segments >= 1 and sms[0].encoding in ("GSM-7", "UCS-2")
    mailbox, phone = _sandbox(shop, "email"), _sandbox(shop, "sms")
    assert [m.to_addr for m in mailbox] == ["ada@x.test"]
    assert [m.to_addr for m in phone] == [UK_MOBILE]
    assert phone[0].body_text == sms[0].body_text
    attempts = shop.all(tables.message_attempts, outbox_id=email[0].id)
    assert [(a.attempt_no, a.outcome) for a in attempts] == [(1, "sent")]
    shop.run()  # nothing is sent twice
    assert len(_sandbox(shop, "email")) == 1 and len(_sandbox(shop, "sms")) == 1


def test_the_customer_locale_picks_the_template_language_and_the_money_format(app: App) -> None:
    shop = Shop.create(app)
    _customer, invoice = _failing_customer(shop, locale="fr")
    shop.run()
    (email,) = _messages(shop, invoice, "email")
    assert email.locale == "fr"
    assert "49,00" in email.body_text  # French decimal comma
    _other, invoice_en = _failing_customer(shop, locale="ja")  # no Japanese variant
    shop.run()
    (fallback,) = _messages(shop, invoice_en, "email")
    assert fallback.locale == "en"


def test_a_customer_without_a_phone_gets_the_email_and_a_skipped_text(app: App) -> None:
    shop = Shop.create(app)
    customer = shop.customer(INSUFFICIENT)
    invoice = shop.invoice(customer, 4900)
    shop.run()
    (sms,) = _messages(shop, invoice, "sms")
    assert sms.status == "skipped" and "phone" in sms.last_error
    assert [m.status for m in _messages(shop, invoice, "email")] == ["delivered"]


def test_stop_blocks_every_later_text_but_never_the_emails(app: App) -> None:
    shop = Shop.create(app)
    _customer, invoice = _failing_customer(shop)
    shop.run()
    with app.begin() as conn:
        result = reply_as_customer(conn, shop.site_id, UK_MOBILE, "Stop", shop.now)
    assert result.keyword is not None and result.keyword.value == "opt_out"
    assert result.reply is not None and "shop Inc." in result.reply
    shop.run_days(7)  # day 7 has another email and text
    texts = _messages(shop, invoice, "sms")
    assert [t.status for t in texts] == ["delivered", "blocked"]
    assert texts[1].last_error == "opted_out"
    assert all(m.status == "delivered" for m in _messages(shop, invoice, "email"))
    with app.begin() as conn:
        reply_as_customer(conn, shop.site_id, UK_MOBILE, "START", shop.now)
    assert shop.one(tables.sms_opt_outs, phone=UK_MOBILE).opted_out is False


def test_a_text_due_at_night_local_time_waits_for_the_morning(app: App) -> None:
    shop = Shop.create(app)
    # 09:00 UTC is 01:00 in Los Angeles, the zone of a 415 number.
    _customer, invoice = _failing_customer(shop, phone="+1 415 555 0134")
    shop.run()
    (sms,) = _messages(shop, invoice, "sms")
    assert sms.status == "pending" and sms.held_reason == "quiet_hours"
    assert sms.next_attempt_at.hour == 16  # 08:00 PST
    assert [m.status for m in _messages(shop, invoice, "email")] == ["delivered"]
    shop.advance(0.25)  # 15:00 UTC: still 07:00 there
    shop.run()
    assert _messages(shop, invoice, "sms")[0].status == "pending"
    shop.advance(1 / 24)
    shop.run()
    assert _messages(shop, invoice, "sms")[0].status == "delivered"


def test_texts_are_held_at_zero_credits_and_released_by_a_top_up(app: App) -> None:
    shop = Shop.create(app)
    with app.begin() as conn:
        sms_credits.balances(conn, [shop.site_id], shop.now)
        conn.execute(
            update(tables.sms_credits)
            .where(tables.sms_credits.c.site_id == shop.site_id)
            .values(balance=0)
        )
    _customer, invoice = _failing_customer(shop)
    shop.run()
    (sms,) = _messages(shop, invoice, "sms")
    assert (sms.status, sms.held_reason) == ("pending", "no_credits")
    assert [m.status for m in _messages(shop, invoice, "email")] == ["delivered"]
    with app.begin() as conn:
        sms_credits.top_up(conn, shop.site_id, 10, shop.now)
    shop.run()
    assert _messages(shop, invoice, "sms")[0].status == "delivered"
    with app.connect() as conn:
        balance = conn.execute(
            select(tables.sms_credits.c.balance).where(tables.sms_credits.c.site_id == shop.site_id)
        ).scalar_one()
    assert balance == 10 - sms.segments


def test_a_live_site_without_a_provider_keeps_its_messages_waiting(app: App) -> None:
    shop = Shop.create(app)
    with app.begin() as conn:
        conn.execute(
            update(tables.sites).where(tables.sites.c.id == shop.site_id).values(mode="live")
        )
    _customer, invoice = _failing_customer(shop)
    shop.worker.run_once()
    (email,) = _messages(shop, invoice, "email")
    assert email.status == "pending" and email.error_code == "not_configured"
    assert email.next_attempt_at > shop.now
    assert _sandbox(shop, "email") == []


def test_the_frequency_cap_defers_the_fourth_text_in_a_day(app: App) -> None:
    shop = Shop.create(app)
    customer = shop.customer(INSUFFICIENT, phone=UK_MOBILE)
    invoices = [shop.invoice(customer, 1000 + i) for i in range(4)]
    shop.run()
    texts = [_messages(shop, i, "sms")[0] for i in invoices]
    assert sorted(t.status for t in texts) == ["delivered", "delivered", "delivered", "pending"]
    held = next(t for t in texts if t.status == "pending")
    assert held.held_reason == "frequency_cap"
    first_sent = min(t.sent_at for t in texts if t.sent_at)
    assert held.next_attempt_at >= first_sent + timedelta(hours=24)


def test_a_reminder_held_overnight_is_withdrawn_when_the_invoice_is_paid_meanwhile(
    app: App,
) -> None:
    shop = Shop.create(app)
    _customer, invoice = _failing_customer(shop, phone="+1 415 555 0134")
    shop.run()
    assert _messages(shop, invoice, "sms")[0].held_reason == "quiet_hours"
    shop.act(invoice_actions.mark_paid, invoice)
    shop.advance(0.5)
    shop.run()
    (sms,) = _messages(shop, invoice, "sms")
    assert sms.status == "canceled" and "settled" in sms.last_error
    assert _sandbox(shop, "sms") == []
