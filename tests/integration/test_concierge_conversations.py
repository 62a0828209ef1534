"""Whole conversations with the concierge, through the signed Twilio webhook and the sandbox phone.

Each test is a customer texting and reading the answers, then a look at the
ledger: a change happens only after a yes, a no changes nothing, payments
are charged for real by the sandbox gateway, and a person gets what the
concierge cannot handle.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from dunwell.api.app import create_app
from dunwell.bootstrap import App
from dunwell.channels.registry import ChannelRegistry, TransportOptions
from dunwell.domain.states import Collection
from dunwell.services import api_keys, ledger
from dunwell.services import subscription_changes as changes
from dunwell.services.concierge_settings import update_concierge_settings
from dunwell.services.sites import site_now
from dunwell.store import tables
from tests.integration.concierge_phone import Phone, SandboxPhone, TwilioPhone
from tests.integration.factories import DECLINE_ALWAYS, GOOD, INSUFFICIENT, LOST, RECOVERS, Shop
from tests.integration.fake_twilio import FakeTwilioServer, save_fake_twilio

PUBLIC = "https://dunwell.example"
NUMBER = "+14155552671"  # San Francisco: 01:00 local at the test start, quiet hours


@dataclass
class Store:
    shop: Shop
    customer_id: int
    subscription_id: int
    phone: Phone
    client: TestClient
    headers: dict[str, str]

    def subscription(self) -> object:
        return self.shop.one(tables.subscriptions, id=self.subscription_id)

    def items(self) -> list[tuple[str, int, int | None]]:
        rows = self.shop.all(tables.subscription_items, subscription_id=self.subscription_id)
        names = {p.id: p.name for p in self.shop.all(tables.products)}
        return [(names[r.product_id], r.quantity, r.one_time_period) for r in rows]

    def conversation(self) -> object:
        return self.shop.all(tables.conversations)[-1]

    def settings(self, **changes: object) -> None:
        with self.shop.app.begin() as conn:
            update_concierge_settings(conn, self.shop.site_id, changes, self.shop.now)


@pytest.fixture(params=["twilio", "sandbox"])
def store(request: pytest.FixtureRequest, app: App) -> Iterator[Store]:
    app.settings = replace(app.settings, public_url=PUBLIC)
    with FakeTwilioServer(now=app.clock.now) as server:
        app.channels = ChannelRegistry(
            app.engine, app.clock.now, TransportOptions(twilio_api_base=server.url)
        )
        shop = Shop.create(app, price_minor=1800)
        with app.begin() as conn:
            now = site_now(conn, shop.site_id, app.clock)
            conn.execute(
                tables.products.update()
                .where(tables.products.c.id == shop.product_id)
                .values(name="Dark Roast Coffee 12oz")
            )
            ledger.create_product(
                conn, shop.site_id, "decaf", "Decaf Coffee 12oz", 1900, "USD", now
            )
            ledger.create_product(conn, shop.site_id, "mug", "Ceramic Mug", 1200, "USD", now)
            conn.execute(
                tables.sites.update()
                .where(tables.sites.c.id == shop.site_id)
                .values(support_email="help@shop.test")
            )
            key = api_keys.create_key(conn, shop.site_id, "test", "admin", now)
            if request.param == "twilio":
                save_fake_twilio(conn, shop.site_id, app.secret_box(), now)
        customer = shop.customer(GOOD, phone=NUMBER, first_name="Ada", last_name="Lovelace")
        subscription = shop.subscribe(customer, starts_at=shop.now + timedelta(days=9))
        headers = {"Authorization": f"Bearer {key}"}
        with TestClient(create_app(app)) as client:
            phone: Phone
            if request.param == "twilio":
                phone = TwilioPhone(shop, client, server, PUBLIC, NUMBER)
            else:
                phone = SandboxPhone(shop, client, headers, NUMBER)
            yield Store(shop, customer, subscription, phone, client, headers)


def local_day(at: datetime) -> str:
    return at.astimezone(UTC).date().isoformat()


# -- order changes: stated, confirmed, applied -----------------------------------


def test_skip_is_confirmed_then_applied(store: Store) -> None:
    (question,) = store.phone.text("please skip my next order")
    assert "Skip your order on Wed, Mar 11" in question and "Sat, Apr 11" in question
    assert local_day(store.subscription().next_charge_at) == "2026-03-11"  # not yet
    (done,) = store.phone.text("yes")
    assert done == "Done! Your order is skipped. Your next order is on Sat, Apr 11."
    assert local_day(store.subscription().next_charge_at) == "2026-04-11"
    assert store.conversation().outcome == "completed"


def test_a_yes_to_a_question_about_an_order_that_changed_since_changes_nothing(
    store: Store,
) -> None:
    # Asked to skip the Mar 11 order; meanwhile the customer skips it on the
    # customer page. A yes must not skip the April order as well.
    (question,) = store.phone.text("please skip my next order")
    assert "Skip your order on Wed, Mar 11" in question
    with store.shop.app.begin() as conn:
        who = changes.Changer(
            store.shop.site_id, store.customer_id, store.shop.now, source="customer"
        )
        changes.skip_next_order(conn, who, store.subscription_id)
    assert local_day(store.subscription().next_charge_at) == "2026-04-11"

    (answer,) = store.phone.text("yes")

    assert "changed since I asked, so nothing was done" in answer
    assert local_day(store.subscription().next_charge_at) == "2026-04-11"
    assert store.conversation().outcome == "failed"


@pytest.mark.parametrize("order_moved", [False, True], ids=["unchanged", "moved"])
def test_no_nudge_about_an_order_that_changed_since_the_question(
    store: Store, order_moved: bool
) -> None:
    # The reminder repeats the question; once the order it asked about was
    # skipped elsewhere, its yes would only be refused, so none is sent.
    (question,) = store.phone.text("please skip my next order")
    assert "Skip your order on Wed, Mar 11" in question
    if order_moved:
        with store.shop.app.begin() as conn:
            who = changes.Changer(
                store.shop.site_id, store.customer_id, store.shop.now, source="customer"
            )
            changes.skip_next_order(conn, who, store.subscription_id)
    store.shop.advance(0.25)  # six hours: past the two-hour nudge, out of quiet hours
    store.shop.run()

    nudges = store.shop.all(tables.outbox, template="concierge_nudge")
    assert len(nudges) == (0 if order_moved else 1)
    assert store.conversation().nudge_at is None  # due, and dealt with either way


def test_a_no_changes_nothing(store: Store) -> None:
    (question,) = store.phone.text("can you push my order back 2 weeks")
    assert "from Wed, Mar 11 to Wed, Mar 25" in question
    (answer,) = store.phone.text("no")
    assert "nothing has changed" in answer
    assert local_day(store.subscription().next_charge_at) == "2026-03-11"
    assert store.conversation().outcome == "declined"


def test_a_date_change_moves_the_next_order(store: Store) -> None:
    (question,) = store.phone.text("move my order to the 20th")
    assert "to Fri, Mar 20" in question
    (done,) = store.phone.text("ok do it")
    assert "Fri, Mar 20" in done
    assert local_day(store.subscription().next_charge_at) == "2026-03-20"


def test_cancelling_an_order_delays_it_a_month_after_a_yes(store: Store) -> None:
    (question,) = store.phone.text("cancel my next order")
    assert "can't cancel a single order" in question and "Sat, Apr 11" in question
    store.phone.text("yes please")
    assert local_day(store.subscription().next_charge_at) == "2026-04-11"


def test_ship_now_bills_the_order_at_once(store: Store) -> None:
    (question,) = store.phone.text("can you ship my order now?")
    assert "1 x Dark Roast Coffee 12oz, $18.00" in question
    texts = store.phone.text("yes")
    assert texts[0].startswith("Done! We're processing your order now")
    invoice = store.shop.one(tables.invoices, subscription_id=store.subscription_id, period=0)
    assert (invoice.status, invoice.amount_paid_minor) == ("paid", 1800)


def test_a_product_added_by_text_is_billed_in_the_next_order_only(store: Store) -> None:
    (question,) = store.phone.text("add a ceramic mug to my next order")
    assert "Add 1 x Ceramic Mug" in question and "this order only" in question
    store.phone.text("yes")
    assert ("Ceramic Mug", 1, 0) in store.items()
    store.shop.advance(9)
    store.shop.run()
    first = store.shop.one(tables.invoices, subscription_id=store.subscription_id, period=0)
    assert first.amount_due_minor == 1800 + 1200
    store.shop.advance(31)
    store.shop.run()
    second = store.shop.one(tables.invoices, subscription_id=store.subscription_id, period=1)
    assert second.amount_due_minor == 1800


def test_a_swap_replaces_the_item(store: Store) -> None:
    (question,) = store.phone.text("swap my dark roast for decaf")
    assert "Swap Dark Roast Coffee 12oz for Decaf Coffee 12oz" in question
    store.phone.text("yes")
    assert store.items() == [("Decaf Coffee 12oz", 1, None)]


def test_a_quantity_change_is_applied(store: Store) -> None:
    (question,) = store.phone.text("send 3 bags of the dark roast from now on")
    assert "from 1 to 3" in question
    store.phone.text("yes")
    assert store.items() == [("Dark Roast Coffee 12oz", 3, None)]


def test_a_product_outside_the_allowed_collection_gets_the_page_link(store: Store) -> None:
    with store.shop.app.begin() as conn:
        from dunwell.services.portal_rules import set_portal_rules

        set_portal_rules(conn, store.shop.site_id, {"swap_products": ["decaf"]}, store.shop.now)
    (answer,) = store.phone.text("add a ceramic mug to my next order")
    assert "can't be added by text" in answer and f"{PUBLIC}/portal/" in answer
    assert ("Ceramic Mug", 1, 0) not in store.items()


def test_an_action_turned_off_sends_the_customer_page(store: Store) -> None:
    store.settings(allow_skip=False)
    (answer,) = store.phone.text("skip my next order")
    assert "account page" in answer and f"{PUBLIC}/portal/" in answer


# -- requests that need the customer page ------------------------------------------


def test_cancelling_the_subscription_is_met_with_an_offer_and_the_link(store: Store) -> None:
    (offer,) = store.phone.text("I want to cancel my subscription")
    assert "Instead of cancelling" in offer and f"{PUBLIC}/portal/" in offer
    store.phone.text("no thanks")
    assert store.subscription().status == "active"


def test_an_address_change_gets_the_customer_page(store: Store) -> None:
    (answer,) = store.phone.text("I moved, can you change my shipping address?")
    assert f"{PUBLIC}/portal/" in answer


def test_a_card_number_in_a_text_is_never_stored_and_the_billing_link_is_sent(store: Store) -> None:
    (answer,) = store.phone.text("my new card is 4242 4242 4242 4242 exp 12/30")
    assert f"{PUBLIC}/billing/" in answer and "never text card numbers" in answer
    for row in store.shop.all(tables.conversation_turns) + store.shop.all(tables.inbound_messages):
        text = getattr(row, "body", "")
        assert "4242 4242 4242 4242" not in text and "4242424242424242" not in text


# -- payments ----------------------------------------------------------------------


def _past_due(store: Store, card: str) -> int:
    store.shop.change_card(store.customer_id, card)
    invoice = store.shop.invoice(store.customer_id, 2400)
    store.shop.run()
    row = store.shop.one(tables.invoices, id=invoice)
    assert row.status == "past_due"
    return invoice


def test_retry_payment_charges_now_and_reports_success(store: Store) -> None:
    invoice = _past_due(store, RECOVERS)
    store.shop.advance(1)
    store.shop.run()  # the second decline; the third charge will succeed
    texts = store.phone.text("I added money, please try my card again")
    assert "Your payment of $24.00 went through" in texts[-1]
    assert store.shop.one(tables.invoices, id=invoice).status == "paid"


def test_retry_payment_on_a_manual_invoice_answers_with_the_page_and_charges_nothing(
    store: Store,
) -> None:
    # A manual invoice is paid by the customer, never charged: the answer
    # says so instead of the text failing and going unanswered.
    invoice = store.shop.invoice(
        store.customer_id, 2400, collection=Collection.MANUAL, net_terms_days=0
    )
    store.shop.run()
    assert store.shop.one(tables.invoices, id=invoice).status == "past_due"

    (answer,) = store.phone.text("please try my card again")

    assert "paid to us directly" in answer and f"{PUBLIC}/portal/" in answer
    assert store.shop.all(tables.payment_attempts, invoice_id=invoice) == []
    (text,) = store.shop.all(tables.inbound_messages, body="please try my card again")
    assert text.answered_at is not None and text.concierge_attempts == 0


def test_retry_payment_reports_a_decline_with_the_billing_link(store: Store) -> None:
    invoice = _past_due(store, DECLINE_ALWAYS)
    texts = store.phone.text("charge my card again now")
    assert "didn't go through" in texts[-1] and f"{PUBLIC}/billing/" in texts[-1]
    assert store.shop.one(tables.invoices, id=invoice).status == "past_due"


def test_a_card_the_bank_refused_outright_is_not_charged_again_by_text(store: Store) -> None:
    invoice = _past_due(store, LOST)
    attempts = len(store.shop.attempts_of(invoice))
    texts = store.phone.text("please try my card again")
    assert "won't accept this card again" in texts[-1] and f"{PUBLIC}/billing/" in texts[-1]
    assert len(store.shop.attempts_of(invoice)) == attempts


def test_a_promise_to_pay_schedules_the_retry_and_holds_reminders(store: Store) -> None:
    invoice = _past_due(store, INSUFFICIENT)
    (answer,) = store.phone.text("i get paid friday, can you wait till then")
    assert "try your card again on Fri, Mar 6" in answer
    cycle = store.shop.cycle_of(invoice)
    assert cycle.retry_at is not None and cycle.retry_at.date().isoformat() == "2026-03-06"
    waiting = [m for m in store.shop.outbox_of(invoice) if m.status == "pending"]
    assert all(m.next_attempt_at >= cycle.retry_at for m in waiting)


# -- people -----------------------------------------------------------------------


def test_asking_for_a_person_escalates_and_the_concierge_then_stays_quiet(store: Store) -> None:
    (answer,) = store.phone.text("can I talk to a real person please")
    assert "a person will reply" in answer
    (escalation,) = store.shop.all(tables.escalations)
    assert escalation.status == "emailed"
    email = store.shop.one(tables.outbox, id=escalation.email_outbox_id)
    assert email.recipient == "help@shop.test" and "talk to a real person" in email.body_text
    assert store.phone.text("hello?") == []
    assert store.conversation().status == "escalated"


def test_two_texts_not_understood_escalate(store: Store) -> None:
    (first,) = store.phone.text("the purple elephant sings at noon")
    assert "didn't quite get that" in first
    (second,) = store.phone.text("banana telephone")
    assert "a person will reply" in second
    assert store.shop.one(tables.escalations).reason == "not_understood"


def test_a_merchant_reply_reaches_the_customer(store: Store) -> None:
    store.phone.text("I need to talk to someone")
    conversation = store.conversation()
    response = store.client.post(
        f"/v1/conversations/{conversation.id}/reply",
        json={"body": "Hi Ada, this is Sam from the shop."},
        headers=store.headers,
    )
    assert response.status_code == 201
    # The merchant's text arrives; the concierge stays out of it.
    assert store.phone.text("thanks Sam") == ["Hi Ada, this is Sam from the shop."]
    turns = store.shop.all(tables.conversation_turns, conversation_id=conversation.id)
    assert [t.author for t in turns] == ["customer", "concierge", "merchant", "customer"]


def test_stop_in_words_opts_out_and_confirms_once(store: Store) -> None:
    (answer,) = store.phone.text("please stop texting me")
    assert "unsubscribed" in answer
    assert store.shop.one(tables.sms_opt_outs, phone=NUMBER).opted_out is True


def test_stop_ends_a_pending_question_so_a_later_yes_opts_back_in(store: Store) -> None:
    # Carriers read YES after STOP as an opt-in; if the concierge read it as
    # the answer to its question, it would skip an order the customer walked
    # away from and keep the number opted out while the carrier opts it in.
    (question,) = store.phone.text("please skip my next order")
    assert "Skip your order on Wed, Mar 11" in question
    # Keyword answers go back in the webhook's TwiML with Twilio, so only
    # the sandbox phone shows them here.
    store.phone.text("STOP")
    assert store.conversation().status == "closed"

    answers = store.phone.text("YES")

    assert not any("skipped" in answer for answer in answers)
    assert local_day(store.subscription().next_charge_at) == "2026-03-11"
    assert store.shop.one(tables.sms_opt_outs, phone=NUMBER).opted_out is False
    types = [e.type for e in store.shop.all(tables.events) if e.type.startswith("sms.opted")]
    assert types == ["sms.opted_out", "sms.opted_in"]


def test_a_switched_off_concierge_stays_silent(store: Store) -> None:
    store.settings(enabled=False)
    assert store.phone.text("skip my next order") == []
    assert store.shop.one(tables.inbound_messages).answered_at is not None


# -- answers, surveys, the inbox, figures, the LLM ------------------------------------


def test_order_status_and_frequency_are_answered_without_a_change(store: Store) -> None:
    (status,) = store.phone.text("when is my next order coming?")
    assert "Wed, Mar 11: 1 x Dark Roast Coffee 12oz ($18.00)" in status
    (frequency,) = store.phone.text("can I get it every 6 weeks instead")
    assert "how often your orders come" in frequency and f"{PUBLIC}/portal/" in frequency


def test_after_a_delay_the_adjustment_survey_records_the_reason(store: Store) -> None:
    store.settings(send_adjustment_survey=True, send_sentiment_survey=True)
    store.phone.text("delay my order a week")
    done, question = store.phone.text("yes")
    assert done.startswith("Done!") and "why you changed your order" in question
    (thanks,) = store.phone.text("we are going on holiday")
    assert "Thank you" in thanks
    turns = store.shop.all(tables.conversation_turns)
    survey = [t for t in turns if t.action == "record_survey"]
    assert survey[0].action_result == {"survey": "adjustment", "reason": "we are going on holiday"}
    assert store.conversation().status == "closed"


def test_the_sentiment_survey_feeds_the_figures(store: Store) -> None:
    store.settings(send_sentiment_survey=True)
    store.phone.text("swap my dark roast for decaf")
    _, question = store.phone.text("yes")
    assert "1 (poor) to 5 (great)" in question
    store.phone.text("5")
    figures = store.client.get("/v1/concierge/figures", headers=store.headers).json()
    assert figures["actions_completed"] == {"swap_product": 1}
    assert figures["sentiment"]["responses"] == 1 and figures["sentiment"]["average"] == 5
    assert figures["conversations"]["settled_without_person"] == 1
    assert figures["conversations"]["self_service_rate"] == 1.0


def test_an_invoice_paid_through_the_concierge_counts_as_recovered(store: Store) -> None:
    _past_due(store, RECOVERS)
    store.shop.advance(1)
    store.shop.run()
    store.phone.text("retry my card please")
    store.phone.text("talk to a human")
    figures = store.client.get("/v1/concierge/figures", headers=store.headers).json()
    assert figures["recovered"] == {"invoices": 1, "amounts": {"USD": 2400}}
    assert figures["escalations"] == 1
    assert figures["actions_completed"] == {"retry_payment": 1}


def test_the_inbox_finds_a_conversation_by_name_email_or_phone(store: Store) -> None:
    store.phone.text("skip my next order")
    for query in ("lovelace", "ADA@x.test", "415 555 2671", "(415) 555-2671"):
        found = store.client.get(
            "/v1/conversations", params={"q": query}, headers=store.headers
        ).json()["data"]
        assert [c["customer_id"] for c in found] == [store.customer_id], query
        assert found[0]["last_turn"]["author"] == "concierge"
    nobody = store.client.get("/v1/conversations", params={"q": "grace"}, headers=store.headers)
    assert nobody.json()["data"] == []
    history = store.client.get(
        f"/v1/customers/{store.customer_id}/conversations", headers=store.headers
    ).json()
    [conversation] = history["conversations"]
    first = conversation["turns"][0]
    assert (first["intent"], first["understood_by"]) == ("skip_order", "rules")


def test_an_unsure_text_is_read_by_the_llm_when_one_is_configured(store: Store) -> None:
    from dunwell.concierge.llm import LlmConfig, LlmUnderstander
    from tests.integration.fake_llm import FakeLlmServer, Reply

    with FakeLlmServer() as server:
        store.shop.app.llm = LlmUnderstander(LlmConfig(server.base_url, "small-model", "sk-test"))
        server.script(Reply('{"intent": "order_status", "slots": {}}'))
        try:
            (answer,) = store.phone.text("yo whats the deal w my stuff")
        finally:
            store.shop.app.llm.close()
            store.shop.app.llm = None
    assert "Your next order is on Wed, Mar 11" in answer
    (request,) = server.requests
    assert request.headers["authorization"] == "Bearer sk-test"
    turn = store.shop.all(tables.conversation_turns)[0]
    assert (turn.intent, turn.understood_by) == ("order_status", "llm")
