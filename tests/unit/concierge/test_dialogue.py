"""The dialogue as a pure function: what it asks, what it proposes, when it acts."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from dunwell.concierge.dialogue import respond
from dunwell.concierge.intents import Intent
from dunwell.concierge.model import Action, ActionResult, Context, Debt, Item, Order, State
from dunwell.concierge.reports import report
from dunwell.services.concierge_settings import ACTIONS

ALL_ACTIONS = frozenset(ACTIONS)
ORDER = Order(
    subscription_id=7,
    next_date=date(2026, 12, 1),
    following_date=date(2027, 1, 1),
    items=(Item(70, "Dark Roast 12oz", 2),),
    total="$36.00",
)
CTX = Context(
    today=date(2026, 11, 22),
    company="Bean Club",
    first_name="Ada",
    known_customer=True,
    order=ORDER,
    debt=None,
    allowed_products=("Dark Roast 12oz", "Decaf 12oz", "Ceramic Mug"),
    allowed_actions=ALL_ACTIONS,
    customer_page_url="https://shop.test/portal/t",
    billing_url="https://shop.test/billing/t",
)


def say(
    intent: Intent, state: State | None = None, ctx: Context = CTX, text: str = "", **slots: Any
):  # type: ignore[no-untyped-def]
    return respond(state or State(), intent, dict(slots), text, ctx)


def test_skip_states_the_exact_change_and_waits_for_a_yes() -> None:
    out = say(Intent.SKIP_ORDER)
    assert out.action is None
    assert "Dec 1" in out.replies[0] and "Jan 1" in out.replies[0]
    assert out.state.awaiting == "confirmation"
    assert out.state.proposal is not None and out.state.proposal.action == "skip"


def test_yes_turns_the_proposal_into_the_action() -> None:
    asked = say(Intent.SKIP_ORDER).state
    out = say(Intent.CONFIRM, asked)
    # With the date of the order asked about, checked again before the skip.
    params = {"subscription_id": 7, "next": "2027-01-01", "order_date": "2026-12-01"}
    assert out.action == Action("skip", params)
    assert out.state.awaiting is None and out.state.proposal is None


def test_no_changes_nothing_and_ends_the_conversation_as_declined() -> None:
    asked = say(Intent.DELAY_ORDER, delay="P2W").state
    out = say(Intent.DENY, asked)
    assert out.action is None
    assert out.outcome == "declined" and out.close
    assert "nothing has changed" in out.replies[0]


def test_a_delay_without_a_span_proposes_one_month() -> None:
    out = say(Intent.DELAY_ORDER)
    assert out.state.proposal is not None
    assert out.state.proposal.params["date"] == "2027-01-01"
    assert "a month" in out.replies[0]


def test_a_delay_keeps_the_customers_unit() -> None:
    out = say(Intent.DELAY_ORDER, delay="P2W")
    assert out.state.proposal is not None
    assert out.state.proposal.params["date"] == "2026-12-15"
    assert "2 weeks" in out.replies[0]


def test_cancelling_an_order_is_offered_as_a_one_month_delay() -> None:
    out = say(Intent.CANCEL_ORDER)
    assert out.state.proposal is not None
    assert out.state.proposal.action == "move_date"
    assert out.state.proposal.params["reason"] == "cancel_order"
    assert out.state.proposal.params["date"] == "2027-01-01"


def test_a_new_request_replaces_the_pending_question() -> None:
    asked = say(Intent.SKIP_ORDER).state
    out = say(Intent.DELAY_ORDER, asked, delay="P1W")
    assert out.state.proposal is not None and out.state.proposal.params["date"] == "2026-12-08"


def test_change_date_refuses_today_and_the_same_date_and_asks_when_missing() -> None:
    assert "after today" in say(Intent.CHANGE_DATE, date="2026-11-22").replies[0]
    assert "already" in say(Intent.CHANGE_DATE, date="2026-12-01").replies[0]
    assert "Which date" in say(Intent.CHANGE_DATE).replies[0]
    far = say(Intent.CHANGE_DATE, date="2028-01-01")
    assert "a year" in far.replies[0] and far.state.proposal is None


def test_ship_now_states_what_is_charged_today() -> None:
    out = say(Intent.SHIP_NOW)
    assert "$36.00" in out.replies[0] and "2 x Dark Roast 12oz" in out.replies[0]


def test_adding_a_product_outside_the_allowed_collection_gives_the_page_link() -> None:
    ctx = replace(CTX, allowed_products=("Decaf 12oz",))
    out = say(Intent.ADD_PRODUCT, ctx=ctx, product="Ceramic Mug", quantity=1)
    assert out.state.proposal is None
    assert "https://shop.test/portal/t" in out.replies[0]


def test_adding_a_product_is_for_the_next_order_only() -> None:
    out = say(Intent.ADD_PRODUCT, product="Ceramic Mug", quantity=2)
    assert out.state.proposal is not None
    assert out.state.proposal.params == {
        "subscription_id": 7,
        "product": "Ceramic Mug",
        "quantity": 2,
        "order_date": "2026-12-01",
    }
    assert "this order only" in out.replies[0]


def test_adding_a_product_already_in_the_order_becomes_a_quantity_change() -> None:
    out = say(Intent.ADD_PRODUCT, product="Dark Roast 12oz", quantity=1)
    assert out.state.proposal is not None
    assert out.state.proposal.action == "change_quantity"
    assert out.state.proposal.params["quantity"] == 3


def test_a_swap_names_both_products() -> None:
    out = say(Intent.SWAP_PRODUCT, to="Decaf 12oz")
    assert out.state.proposal is not None
    assert out.state.proposal.params["from"] == "Dark Roast 12oz"
    assert "Swap Dark Roast 12oz for Decaf 12oz" in out.replies[0]


def test_a_swap_with_several_items_and_none_named_asks_which() -> None:
    items = (Item(70, "Dark Roast 12oz", 1), Item(71, "Ceramic Mug", 1))
    ctx = replace(CTX, order=replace(ORDER, items=items))
    out = say(Intent.SWAP_PRODUCT, ctx=ctx, to="Decaf 12oz")
    assert out.state.proposal is None
    assert "Dark Roast 12oz or Ceramic Mug" in out.replies[0]


def test_quantity_zero_on_the_only_item_is_a_cancellation_request() -> None:
    out = say(Intent.CHANGE_QUANTITY, product="Dark Roast 12oz", quantity=0)
    assert "https://shop.test/portal/t" in out.replies[0]
    assert "Instead of cancelling" in out.replies[0]
    assert out.state.proposal is not None and out.state.proposal.params["reason"] == "retention"


def test_quantity_zero_with_other_items_removes_that_item() -> None:
    items = (Item(70, "Dark Roast 12oz", 1), Item(71, "Ceramic Mug", 1))
    ctx = replace(CTX, order=replace(ORDER, items=items))
    out = say(Intent.CHANGE_QUANTITY, ctx=ctx, product="Ceramic Mug", quantity=0)
    assert out.state.proposal is not None
    assert out.state.proposal.params["item_id"] == 71
    assert out.replies[0].startswith("Remove Ceramic Mug")


def test_cancel_subscription_offers_a_delay_and_the_link() -> None:
    out = say(Intent.CANCEL_SUBSCRIPTION)
    assert "https://shop.test/portal/t" in out.replies[0]
    assert out.state.awaiting == "confirmation"


def test_an_action_turned_off_sends_the_customer_page_link() -> None:
    ctx = replace(CTX, allowed_actions=ALL_ACTIONS - {"swap_product"})
    out = say(Intent.SWAP_PRODUCT, ctx=ctx, to="Decaf 12oz")
    assert out.state.proposal is None and "https://shop.test/portal/t" in out.replies[0]


@pytest.mark.parametrize("intent", [Intent.CHANGE_FREQUENCY, Intent.CHANGE_ADDRESS])
def test_frequency_and_address_changes_go_to_the_customer_page(intent: Intent) -> None:
    out = say(intent)
    assert "https://shop.test/portal/t" in out.replies[0] and out.close


def test_payment_updates_get_the_signed_billing_link_only() -> None:
    out = say(Intent.UPDATE_PAYMENT)
    assert "https://shop.test/billing/t" in out.replies[0]
    assert "never text card numbers" in out.replies[0]


def test_retry_and_promise_with_nothing_owed_say_so() -> None:
    assert "no unpaid" in say(Intent.RETRY_PAYMENT).replies[0]
    assert "no unpaid" in say(Intent.PROMISE_TO_PAY, date="2026-11-27").replies[0]


def test_retry_payment_charges_at_once_without_a_question() -> None:
    ctx = replace(CTX, debt=Debt(55, "7-0003", "$36.00"))
    out = say(Intent.RETRY_PAYMENT, ctx=ctx)
    assert out.action == Action("retry_payment", {"invoice_id": 55})


def test_a_promise_without_a_date_asks_for_one_and_then_takes_it() -> None:
    ctx = replace(CTX, debt=Debt(55, "7-0003", "$36.00"))
    asked = say(Intent.PROMISE_TO_PAY, ctx=ctx)
    assert asked.state.awaiting == "promise_date" and asked.action is None
    out = say(Intent.PROMISE_TO_PAY, asked.state, ctx=ctx, date="2026-11-27")
    assert out.action == Action("promise_to_pay", {"invoice_id": 55, "date": "2026-11-27"})


def test_two_texts_not_understood_in_a_row_escalate() -> None:
    first = say(Intent.UNKNOWN)
    assert first.action is None and "didn't quite get" in first.replies[0]
    second = say(Intent.UNKNOWN, first.state)
    assert second.action == Action("escalate", {"reason": "not_understood"})
    assert second.outcome == "escalated"


def test_an_understood_text_resets_the_misunderstanding_count() -> None:
    first = say(Intent.UNKNOWN)
    middle = say(Intent.ORDER_STATUS, first.state)
    assert middle.state.misunderstood == 0
    assert say(Intent.UNKNOWN, middle.state).action is None


def test_asking_for_a_person_escalates_at_once() -> None:
    out = say(Intent.TALK_TO_HUMAN)
    assert out.action == Action("escalate", {"reason": "asked_for_person"})
    assert "a person will reply" in out.replies[0]


def test_an_unknown_number_is_never_escalated() -> None:
    ctx = replace(CTX, known_customer=False, order=None)
    first = say(Intent.UNKNOWN, ctx=ctx)
    assert say(Intent.UNKNOWN, first.state, ctx=ctx).action is None


def test_a_rating_is_recorded_only_when_asked_for() -> None:
    asked = State(awaiting="survey_rating")
    out = say(Intent.SURVEY_RATING, asked, rating=4)
    assert out.action == Action("record_survey", {"survey": "sentiment", "rating": 4})
    assert say(Intent.SURVEY_RATING, rating=4).action is None


def test_the_adjustment_survey_takes_free_text() -> None:
    out = say(Intent.UNKNOWN, State(awaiting="adjustment_reason"), text="  going on holiday ")
    assert out.action == Action(
        "record_survey", {"survey": "adjustment", "reason": "going on holiday"}
    )


def test_a_completed_skip_reports_the_new_date_and_asks_the_adjustment_survey() -> None:
    ctx = replace(CTX, surveys=frozenset({"adjustment", "sentiment"}))
    out = report(State(), Action("skip", {}), ActionResult(True, {"next_date": "2027-01-01"}), ctx)
    assert out.replies[0] == "Done! Your order is skipped. Your next order is on Fri, Jan 1."
    assert out.state.awaiting == "adjustment_reason" and not out.close


def test_a_completed_swap_asks_the_sentiment_survey_when_on() -> None:
    ctx = replace(CTX, surveys=frozenset({"sentiment"}))
    action = Action("swap_product", {"from": "A", "to": "B"})
    out = report(State(), action, ActionResult(True, {}), ctx)
    assert out.state.awaiting == "survey_rating" and len(out.replies) == 2


def test_a_refused_change_is_reported_with_the_ledgers_reason() -> None:
    out = report(State(), Action("skip", {}), ActionResult(False, error="This is closed."), CTX)
    assert out.replies == ("Sorry, I couldn't do that: This is closed.",)
    assert out.outcome == "failed"


def test_a_declined_retry_gives_the_reason_and_the_billing_link() -> None:
    facts = {"outcome": "declined", "reason": "the card has expired"}
    out = report(State(), Action("retry_payment", {}), ActionResult(True, facts), CTX)
    assert (
        "the card has expired" in out.replies[0] and "https://shop.test/billing/t" in out.replies[0]
    )


def test_a_promise_clamped_to_the_last_day_says_so() -> None:
    action = Action("promise_to_pay", {"invoice_id": 1, "date": "2026-12-20"})
    out = report(State(), action, ActionResult(True, {"retry_date": "2026-12-10"}), CTX)
    assert "latest we can wait is Thu, Dec 10" in out.replies[0]


def test_state_survives_a_round_trip_through_json() -> None:
    state = say(Intent.SKIP_ORDER).state
    assert State.from_dict(state.to_dict()) == state
    assert State.from_dict({"awaiting": 3, "proposal": "x", "misunderstood": "a"}) == State()
