"""The texts the concierge starts: who gets each, once, with what, and only when the site asks."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from dunwell.bootstrap import App
from dunwell.concierge.outbound import Text
from dunwell.domain.intervals import IntervalUnit
from dunwell.services import invoice_actions, ledger_queries
from dunwell.services.concierge_outbound import (
    load_outbound_sites,
    queue_once,
    send_concierge_messages,
)
from dunwell.services.concierge_settings import update_concierge_settings
from dunwell.services.conversations import current_conversation, save_state
from dunwell.services.hosted_links import open_link
from dunwell.store import tables
from tests.integration.factories import GOOD, INSUFFICIENT, Shop

MOBILE = "+447400123456"
OTHER_MOBILE = "+447400654321"
EMAIL_ONLY_POLICY: dict[str, Any] = {
    "retry_interval_hours": 72,
    "max_attempts": 2,
    "final_day": 10,
    "steps": [{"day": 1, "email_template": "payment_declined"}],
    "final": {"subscription_action": "cancel", "invoice_outcome": "fail"},
}


def _turn_on(shop: Shop, **switches: Any) -> None:
    with shop.app.begin() as conn:
        update_concierge_settings(conn, shop.site_id, switches, shop.now)


def _send(shop: Shop) -> int:
    return send_concierge_messages(shop.app)


def _texts(shop: Shop, template: str) -> list[Any]:
    return shop.all(tables.outbox, site_id=shop.site_id, template=template)


def _conversation_of(shop: Shop, outbox_id: int) -> Any:
    turn = shop.one(tables.conversation_turns, outbox_id=outbox_id)
    return shop.one(tables.conversations, id=turn.conversation_id)


def _cancel(shop: Shop, subscription_id: int) -> None:
    with shop.app.begin() as conn:
        ledger_queries.cancel_subscription(conn, shop.site_id, subscription_id, shop.now)


def _opens_for(shop: Shop, body: str, page: str) -> Any:
    """Whom the signed link at the end of ``body`` opens ``page`` for."""
    token = body.split(f"/{page}/")[1].split()[0]
    with shop.app.connect() as conn:
        return open_link(conn, shop.app.links(), token, shop.app.clock.now())


def _ask(shop: Shop, phone: str, state: dict[str, Any], nudge_in: timedelta) -> int:
    """Open a conversation as the dialogue leaves it after asking a question."""
    with shop.app.begin() as conn:
        conversation = current_conversation(conn, shop.site_id, phone, None, shop.now)
        save_state(conn, conversation, state, shop.now, nudge_at=shop.now + nudge_in)
    return conversation.id


QUESTION = {
    "awaiting": "confirmation",
    "question": "Skip your order on Thu, Mar 12? Reply YES or NO.",
}


# -- every kind: off by default ------------------------------------------------------------------


def test_nothing_is_sent_while_the_messages_are_off_and_each_kind_once_turned_on(
    app: App,
) -> None:
    shop = Shop.create(app)
    shop.save_policy(EMAIL_ONLY_POLICY)
    shop.subscribe(shop.customer(GOOD, phone=MOBILE))  # welcome, then order processed
    shop.subscribe(shop.customer(phone=OTHER_MOBILE), starts_at=shop.now + timedelta(days=3))
    shop.invoice(shop.customer(INSUFFICIENT, phone="+447400111222"), 4900)  # failed payment
    leaving = shop.subscribe(shop.customer(phone="+447400333444"))
    _cancel(shop, leaving)  # cancellation prevention
    shop.run()
    assert not [m for m in shop.all(tables.outbox) if (m.template or "").startswith("concierge")]
    _turn_on(
        shop,
        send_welcome=True,
        send_upcoming_reminder=True,
        send_order_processed=True,
        send_failed_payment=True,
        send_cancellation_prevention=True,
    )
    assert _send(shop) == 6
    sent = [m.template for m in shop.all(tables.outbox) if m.channel == "sms"]
    assert sorted(sent) == [
        "concierge_cancellation",
        "concierge_failed_payment",
        "concierge_order_processed",
        "concierge_upcoming_order",
        "concierge_welcome",
        "concierge_welcome",
    ]


# -- welcome -------------------------------------------------------------------------------------


def test_a_new_subscription_gets_one_welcome_text_in_a_conversation(app: App) -> None:
    shop = Shop.create(app)
    _turn_on(shop, send_welcome=True)
    shop.subscribe(shop.customer(phone=MOBILE, first_name="Grace"))
    assert _send(shop) == 1
    assert _send(shop) == 0
    (text,) = _texts(shop, "concierge_welcome")
    assert text.recipient == MOBILE and text.kind == "transactional" and text.status == "pending"
    assert text.body_text.startswith("Hi Grace, welcome to shop Inc.!")
    assert "skip" in text.body_text and text.body_text.endswith("Reply STOP to opt out")
    assert _conversation_of(shop, text.id).phone == MOBILE


def test_no_welcome_goes_out_while_the_setting_or_the_concierge_is_off(app: App) -> None:
    shop = Shop.create(app)
    shop.subscribe(shop.customer(phone=MOBILE))
    assert _send(shop) == 0  # nothing saved: every message the concierge starts is off
    _turn_on(shop, send_welcome=True, enabled=False)
    assert _send(shop) == 0
    assert _texts(shop, "concierge_welcome") == []


def test_customers_without_a_phone_number_get_no_text(app: App) -> None:
    shop = Shop.create(app)
    _turn_on(shop, send_welcome=True, send_cancellation_prevention=True)
    subscription = shop.subscribe(shop.customer())
    _cancel(shop, subscription)
    assert _send(shop) == 0
    assert shop.all(tables.outbox, site_id=shop.site_id, channel="sms") == []


def test_a_subscription_older_than_two_days_gets_no_welcome_when_the_setting_is_turned_on(
    app: App,
) -> None:
    shop = Shop.create(app)
    shop.subscribe(shop.customer(phone=MOBILE))
    shop.advance(2.5)
    _turn_on(shop, send_welcome=True)
    assert _send(shop) == 0


def test_a_subscription_backdated_by_an_import_gets_no_welcome(app: App) -> None:
    shop = Shop.create(app)
    _turn_on(shop, send_welcome=True)
    customer = shop.customer(phone=MOBILE)
    shop.subscribe(customer, starts_at=shop.now - timedelta(days=40))
    assert _send(shop) == 0


# -- upcoming order ------------------------------------------------------------------------------


def test_the_upcoming_order_reminder_goes_out_the_chosen_days_before_with_date_items_and_total(
    app: App,
) -> None:
    shop = Shop.create(app)
    _turn_on(shop, send_upcoming_reminder=True, upcoming_reminder_days=4)
    customer = shop.customer(phone=MOBILE)
    subscription = shop.subscribe(customer, starts_at=shop.now + timedelta(days=10))
    assert _send(shop) == 0  # ten days ahead: too early
    shop.advance(6)
    assert _send(shop) == 1
    assert _send(shop) == 0
    (text,) = _texts(shop, "concierge_upcoming_order")
    assert text.body_text.startswith(
        "shop Inc.: your next order (Plan, $25.00) is coming on Thu, Mar 12. Reply SKIP"
    )
    state = _conversation_of(shop, text.id).state
    assert state == {"topic": "upcoming_order", "subscription_id": subscription}


def test_each_period_gets_its_own_reminder_and_a_skipped_one_is_not_reminded_again(
    app: App,
) -> None:
    shop = Shop.create(app)
    _turn_on(shop, send_upcoming_reminder=True, upcoming_reminder_days=3)
    customer = shop.customer(GOOD, phone=MOBILE)
    shop.subscribe(
        customer, starts_at=shop.now + timedelta(days=3), interval_unit=IntervalUnit.WEEK
    )
    assert _send(shop) == 1
    shop.advance(3)
    shop.run()  # bills period 0; period 1 is due in a week
    shop.advance(4)
    assert _send(shop) == 1
    keys = [t.dedupe_key for t in _texts(shop, "concierge_upcoming_order")]
    assert keys[0].endswith(":0") and keys[1].endswith(":1")


def test_a_reminder_whose_moment_passed_more_than_two_days_ago_is_not_sent(app: App) -> None:
    shop = Shop.create(app)
    _turn_on(shop, send_upcoming_reminder=True, upcoming_reminder_days=7)
    shop.subscribe(shop.customer(phone=MOBILE), starts_at=shop.now + timedelta(days=4))
    assert _send(shop) == 0  # due in 4 days: the 7-day reminder was due 3 days ago


# -- order processed -----------------------------------------------------------------------------


def test_a_paid_renewal_gets_one_order_processed_text_with_amount_and_next_date(app: App) -> None:
    shop = Shop.create(app)
    _turn_on(shop, send_order_processed=True)
    shop.subscribe(shop.customer(GOOD, phone=MOBILE))
    shop.run()  # the worker bills, charges and queues the text in one go
    (text,) = _texts(shop, "concierge_order_processed")
    assert text.body_text.startswith(
        "shop Inc.: your order (Plan) went through, $25.00 paid. Thank you! "
        "Your next order is on Thu, Apr 2."
    )
    assert _send(shop) == 0
    shop.advance(3)
    _turn_on(shop, send_order_processed=False)
    assert _send(shop) == 0


def test_an_order_paid_before_the_window_is_not_announced(app: App) -> None:
    shop = Shop.create(app)
    shop.subscribe(shop.customer(GOOD, phone=MOBILE))
    shop.run()
    shop.advance(2.5)
    _turn_on(shop, send_order_processed=True)
    assert _send(shop) == 0


# -- failed payment ------------------------------------------------------------------------------


def test_a_dunning_email_without_its_own_text_is_joined_by_a_recovery_text(app: App) -> None:
    shop = Shop.create(app)
    shop.save_policy(EMAIL_ONLY_POLICY)
    _turn_on(shop, send_failed_payment=True)
    customer = shop.customer(INSUFFICIENT, phone=MOBILE)
    invoice = shop.invoice(customer, 4900)
    shop.run()
    (email,) = [m for m in shop.outbox_of(invoice) if m.channel == "email"]
    (text,) = _texts(shop, "concierge_failed_payment")
    assert text.dedupe_key == f"concierge:failed:{email.id}"
    assert text.body_text.startswith(
        "shop Inc.: your $49.00 payment failed. Reply RETRY to try again, "
        "tell us when you can pay, or update your card: http://127.0.0.1:8000/billing/"
    )
    opened = _opens_for(shop, text.body_text, "billing")
    assert (opened.customer_id, opened.invoice_id) == (customer, invoice)
    state = _conversation_of(shop, text.id).state
    assert state == {"topic": "failed_payment", "invoice_id": invoice}
    assert _send(shop) == 0


def test_a_dunning_step_that_texts_on_its_own_gets_no_second_text(app: App) -> None:
    shop = Shop.create(app)  # the default policy's first step sends an email and a text
    _turn_on(shop, send_failed_payment=True)
    invoice = shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()
    assert {m.channel for m in shop.outbox_of(invoice)} == {"email", "sms"}
    assert _texts(shop, "concierge_failed_payment") == []


def test_no_recovery_text_for_a_dunning_email_older_than_two_days(app: App) -> None:
    shop = Shop.create(app)
    shop.save_policy(EMAIL_ONLY_POLICY)
    shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()  # the email goes out while the setting is off
    shop.advance(2.5)
    _turn_on(shop, send_failed_payment=True)
    assert _send(shop) == 0


def test_no_recovery_text_once_the_invoice_is_paid(app: App) -> None:
    shop = Shop.create(app)
    shop.save_policy(EMAIL_ONLY_POLICY)
    invoice = shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()
    shop.act(invoice_actions.mark_paid, invoice)
    _turn_on(shop, send_failed_payment=True)
    assert _send(shop) == 0


def test_steps_reached_together_get_one_text_after_the_latest_email(app: App) -> None:
    shop = Shop.create(app)
    steps = [{"day": day, "email_template": "payment_declined"} for day in (1, 2, 3)]
    shop.save_policy({**EMAIL_ONLY_POLICY, "steps": steps})
    invoice = shop.invoice(shop.customer(INSUFFICIENT, phone=MOBILE), 4900)
    shop.run()  # day 1, while the setting is off
    _turn_on(shop, send_failed_payment=True)
    shop.advance(3)
    shop.run()  # days 2 and 3 at once, as after a stopped worker
    emails = [m for m in shop.outbox_of(invoice) if m.channel == "email"]
    assert len(emails) == 3
    (text,) = _texts(shop, "concierge_failed_payment")
    assert text.dedupe_key == f"concierge:failed:{emails[-1].id}"


# -- cancellation prevention ---------------------------------------------------------------------


def test_cancelling_the_last_subscription_gets_one_text_with_the_customer_page_link(
    app: App,
) -> None:
    shop = Shop.create(app)
    _turn_on(shop, send_cancellation_prevention=True)
    customer = shop.customer(phone=MOBILE, first_name="Grace")
    first, second = shop.subscribe(customer), shop.subscribe(customer)
    _cancel(shop, first)
    assert _send(shop) == 0  # another subscription is still running
    _cancel(shop, second)
    assert _send(shop) == 1
    assert _send(shop) == 0
    (text,) = _texts(shop, "concierge_cancellation")
    assert text.dedupe_key == f"concierge:winback:{second}"
    assert text.body_text.startswith("shop Inc.: sorry to see you go, Grace.")
    assert _opens_for(shop, text.body_text, "portal").customer_id == customer


def test_a_subscription_ended_by_dunning_gets_no_cancellation_text(app: App) -> None:
    shop = Shop.create(app)
    shop.save_policy(EMAIL_ONLY_POLICY)
    _turn_on(shop, send_cancellation_prevention=True)
    subscription = shop.subscribe(shop.customer(INSUFFICIENT, phone=MOBILE))
    shop.run_days(11)
    assert shop.one(tables.subscriptions, id=subscription).status == "canceled"
    assert _texts(shop, "concierge_cancellation") == []


# -- nudge ---------------------------------------------------------------------------------------


def test_an_unanswered_question_is_nudged_once_when_its_time_comes(app: App) -> None:
    shop = Shop.create(app)
    conversation = _ask(shop, MOBILE, QUESTION, timedelta(hours=2))
    assert _send(shop) == 0
    shop.advance(0.1)  # 2.4 hours
    assert _send(shop) == 1
    assert _send(shop) == 0
    (text,) = _texts(shop, "concierge_nudge")
    assert text.body_text.startswith("Just checking in: Skip your order on Thu, Mar 12?")
    row = shop.one(tables.conversations, id=conversation)
    assert row.nudge_at is None and row.awaiting == "confirmation"
    assert _conversation_of(shop, text.id).id == conversation


def test_a_question_without_its_wording_gets_the_generic_nudge(app: App) -> None:
    shop = Shop.create(app)
    _ask(shop, MOBILE, {"awaiting": "confirmation"}, timedelta(minutes=30))
    shop.advance(0.1)
    assert _send(shop) == 1
    (text,) = _texts(shop, "concierge_nudge")
    assert text.body_text.startswith("Just checking: reply YES or NO")


def test_no_nudge_once_nothing_is_awaited_or_when_the_site_turned_nudges_off(app: App) -> None:
    shop = Shop.create(app)
    _ask(shop, MOBILE, {"awaiting": None}, timedelta(minutes=30))
    _ask(shop, OTHER_MOBILE, QUESTION, timedelta(minutes=30))
    _turn_on(shop, send_nudge=False)
    shop.advance(0.1)
    assert _send(shop) == 0
    _turn_on(shop, send_nudge=True)
    assert _send(shop) == 1
    (text,) = _texts(shop, "concierge_nudge")
    assert text.recipient == OTHER_MOBILE


def test_a_nudge_missed_by_more_than_two_days_is_dropped(app: App) -> None:
    shop = Shop.create(app)
    conversation = _ask(shop, MOBILE, QUESTION, timedelta(minutes=30))
    shop.advance(3)
    assert _send(shop) == 0
    assert shop.one(tables.conversations, id=conversation).nudge_at is None


# -- once only -----------------------------------------------------------------------------------


def test_a_text_another_worker_queued_first_is_not_queued_again_and_leaves_no_trace(
    app: App,
) -> None:
    shop = Shop.create(app)
    _turn_on(shop, send_welcome=True)
    customer = shop.customer(phone=MOBILE)
    with app.begin() as conn:
        (site,) = load_outbound_sites(conn, app.clock.now())
        row = SimpleNamespace(phone=MOBILE, customer_id=customer)
        first = queue_once(conn, site, row, Text.WELCOME, "Hello", "concierge:welcome:1")
        # The same key for another number: its new conversation must roll back too.
        row = SimpleNamespace(phone=OTHER_MOBILE, customer_id=customer)
        again = queue_once(conn, site, row, Text.WELCOME, "Hello", "concierge:welcome:1")
    assert (first, again) == (1, 0)
    assert len(shop.all(tables.conversation_turns, site_id=shop.site_id)) == 1
    assert len(shop.all(tables.conversations, site_id=shop.site_id)) == 1


# -- every site on its own -----------------------------------------------------------------------


def test_each_site_sends_only_what_it_turned_on_to_its_own_customers(app: App) -> None:
    mine, theirs = Shop.create(app), Shop.create(app, slug="other")
    _turn_on(mine, send_welcome=True)
    _turn_on(theirs, send_cancellation_prevention=True)
    mine.subscribe(mine.customer(phone=MOBILE))
    theirs.subscribe(theirs.customer(phone=OTHER_MOBILE))
    assert send_concierge_messages(app) == 1
    (text,) = _texts(mine, "concierge_welcome")
    assert text.recipient == MOBILE and "shop Inc." in text.body_text
    assert theirs.all(tables.outbox, site_id=theirs.site_id, channel="sms") == []
    assert _conversation_of(mine, text.id).site_id == mine.site_id


def test_each_sandbox_site_is_judged_by_its_own_test_clock(app: App) -> None:
    ahead, behind = Shop.create(app), Shop.create(app, slug="other")
    for shop in (ahead, behind):
        _turn_on(shop, send_welcome=True)
    behind.subscribe(behind.customer(phone=OTHER_MOBILE))
    ahead.subscribe(ahead.customer(phone=MOBILE))
    ahead.advance(3)  # only this site's clock moves past the window
    assert send_concierge_messages(app) == 1
    assert [t.recipient for t in _texts(behind, "concierge_welcome")] == [OTHER_MOBILE]


# -- through the real worker ---------------------------------------------------------------------


def test_the_worker_delivers_the_welcome_to_the_sandbox_phone(app: App) -> None:
    shop = Shop.create(app)
    _turn_on(shop, send_welcome=True)
    shop.subscribe(shop.customer(GOOD, phone=MOBILE, first_name="Grace"))
    shop.run()
    (text,) = _texts(shop, "concierge_welcome")
    assert text.status == "delivered"
    phone = shop.all(tables.sandbox_messages, site_id=shop.site_id, channel="sms")
    assert [(m.to_addr, m.body_text) for m in phone] == [(MOBILE, text.body_text)]
    assert phone[0].body_text.startswith("Hi Grace, welcome to shop Inc.!")
    with app.connect() as conn:
        turns = conn.execute(
            select(tables.conversation_turns.c.direction, tables.conversation_turns.c.author)
        ).all()
    assert [tuple(t) for t in turns] == [("outbound", "concierge")]
