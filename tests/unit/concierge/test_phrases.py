"""The phrase rules: one intent per kind of request, in the customer's own words."""

from __future__ import annotations

import pytest

from dunwell.concierge.intents import Intent
from tests.unit.concierge.conftest import DARK, MUG, Ask

PHRASES = {
    Intent.SKIP_ORDER: [
        "skip my next order",
        "not this month, thanks",
        "skp my nxt order pls",
        "we still have plenty, don't send the next one",
    ],
    Intent.CANCEL_ORDER: ["cancel my next order", "please cancel just the upcoming order"],
    Intent.CANCEL_SUBSCRIPTION: [
        "cancel my subscription",
        "please close my account",
        "I don't want this anymore, cancel everything",
        "cancle my subscripton",
    ],
    Intent.SHIP_NOW: [
        "ship it now please",
        "we ran out, can you send the next box today?",
        "shp it now",
        "can it go out today?",
        "we need our coffee sooner than that",
    ],
    Intent.CHANGE_FREQUENCY: [
        "every 6 weeks instead please",
        "switch to every other month",
        "can I get it less often",
        "send them weekly",
        "can it come monthly?",
    ],
    Intent.CHANGE_ADDRESS: [
        "I moved, new address is 12 Oak St",
        "please update my shipping address",
    ],
    Intent.UPDATE_PAYMENT: [
        "my card expired",
        "need to switch cards",
        "I have a new card",
        "can I pay with a different card",
        "can I pay by paypal",
    ],
    Intent.RETRY_PAYMENT: [
        "charge me now",
        "I updated my card, try again",
        "ok money's there now, retry it",
    ],
    Intent.ORDER_STATUS: [
        "where is my order?",
        "has my order shipped yet",
        "my package hasn't arrived",
        "wher is my ordr",
    ],
    Intent.TALK_TO_HUMAN: ["can I talk to a real person", "agent please", "please call me"],
}


@pytest.mark.parametrize(
    ("intent", "text"), [(intent, text) for intent, texts in PHRASES.items() for text in texts]
)
def test_a_phrase_is_read_as_its_intent(ask: Ask, intent: Intent, text: str) -> None:
    understanding = ask(text, overdue=intent in (Intent.RETRY_PAYMENT, Intent.UPDATE_PAYMENT))
    assert understanding.intent is intent
    assert understanding.confident


@pytest.mark.parametrize(
    "text",
    [
        "don't cancel my subscription, just skip the next box",
        "please don't cancel, skip it instead",
    ],
)
def test_a_refused_request_does_not_count(ask: Ask, text: str) -> None:
    assert ask(text).intent is Intent.SKIP_ORDER


def test_a_question_about_status_yields_to_a_request(ask: Ask) -> None:
    understanding = ask("where's my order? if it hasn't shipped, push it back a week")
    assert (understanding.intent, understanding.slots) == (Intent.DELAY_ORDER, {"delay": "P1W"})


@pytest.mark.parametrize(
    ("text", "intent", "slots"),
    [
        ("Delay it please, we have too much coffee right now", Intent.DELAY_ORDER, {}),
        ("we have plenty, push it a week", Intent.DELAY_ORDER, {"delay": "P1W"}),
        ("we still have a lot left, cancel this order", Intent.CANCEL_ORDER, {}),
        ("we still have plenty left", Intent.SKIP_ORDER, {}),
    ],
)
def test_having_plenty_is_a_skip_only_when_nothing_else_is_asked(
    ask: Ask, text: str, intent: Intent, slots: dict[str, str]
) -> None:
    understanding = ask(text)
    assert (understanding.intent, understanding.slots) == (intent, slots)
    assert understanding.confident


@pytest.mark.parametrize("text", ["please don't ship it yet, we're away", "don't send it yet"])
def test_not_yet_is_a_delay_without_a_span(ask: Ask, text: str) -> None:
    understanding = ask(text)
    assert (understanding.intent, understanding.slots) == (Intent.DELAY_ORDER, {})


def test_a_cadence_that_only_describes_the_order_or_the_pay_is_no_new_frequency(
    ask: Ask,
) -> None:
    assert ask("send my monthly box today").intent is Intent.SHIP_NOW
    understanding = ask("I get paid monthly, so I'll pay on the 1st", overdue=True)
    assert (understanding.intent, understanding.slots) == (
        Intent.PROMISE_TO_PAY,
        {"date": "2026-12-01"},
    )


@pytest.mark.parametrize(
    ("text", "slots"),
    [("I can pay with my card on friday", {"date": "2026-11-27"}), ("I'll pay by card soon", {})],
)
def test_paying_with_a_card_at_a_time_is_still_a_promise(
    ask: Ask, text: str, slots: dict[str, str]
) -> None:
    understanding = ask(text, overdue=True)
    assert (understanding.intent, understanding.slots) == (Intent.PROMISE_TO_PAY, slots)


def test_a_charge_on_a_day_is_a_promise_only_while_a_payment_is_outstanding(ask: Ask) -> None:
    assert ask("can you charge me on the 30th instead").intent is Intent.CHANGE_DATE
    assert (
        ask("can you charge me on the 30th instead", overdue=True).intent is Intent.PROMISE_TO_PAY
    )


def test_the_charge_date_is_the_orders_date_not_a_payment(ask: Ask) -> None:
    understanding = ask("please set my next charge date to the 30th", overdue=True)
    assert (understanding.intent, understanding.slots) == (
        Intent.CHANGE_DATE,
        {"date": "2026-11-30"},
    )


def test_two_different_requests_leave_the_rules_unsure(ask: Ask) -> None:
    understanding = ask("skip my next order and add a mug", items=(DARK, MUG))
    assert understanding.intent is Intent.SKIP_ORDER
    assert understanding.confident is False


def test_an_unrecognised_text_is_unknown_and_unsure(ask: Ask) -> None:
    understanding = ask("do you ship to alaska?")
    assert (understanding.intent, understanding.slots, understanding.confident) == (
        Intent.UNKNOWN,
        {},
        False,
    )


def test_the_rules_say_they_decided(ask: Ask) -> None:
    assert ask("skip my next order").source == "rules"
