"""Slots: spans against dates, exact product names, quantities, the only-item rule."""

from __future__ import annotations

from typing import Any

import pytest

from dunwell.concierge.intents import SLOTS, Intent
from tests.unit.concierge.conftest import DARK, DECAF, FILTERS, MUG, Ask


def answer(ask: Ask, text: str, **situation: Any) -> tuple[Intent, dict[str, Any]]:
    understanding = ask(text, **situation)
    return understanding.intent, understanding.slots


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("push it back two weeks", "P2W"),
        ("delay a week", "P1W"),
        ("postpone 14 days", "P14D"),
        ("delay my order a month, we're away", "P1M"),
        ("hold it for 2 months", "P2M"),
        ("Can we push the next delivery out by 3 weeks?", "P3W"),
    ],
)
def test_a_delay_by_a_span_keeps_the_customers_unit(ask: Ask, text: str, span: str) -> None:
    assert answer(ask, text) == (Intent.DELAY_ORDER, {"delay": span})


@pytest.mark.parametrize(
    "text", ["please postpone the next shipment", "push it out a few weeks", "delay it please"]
)
def test_a_delay_without_a_clear_span_leaves_the_span_out(ask: Ask, text: str) -> None:
    assert answer(ask, text) == (Intent.DELAY_ORDER, {})


def test_in_two_weeks_names_a_day_but_push_it_back_two_weeks_is_a_span(ask: Ask) -> None:
    assert answer(ask, "can it come in two weeks") == (Intent.CHANGE_DATE, {"date": "2026-12-06"})
    assert answer(ask, "push it back two weeks") == (Intent.DELAY_ORDER, {"delay": "P2W"})


def test_a_new_date_is_resolved_against_today(ask: Ask) -> None:
    assert answer(ask, "can you push my order to the 15th?") == (
        Intent.CHANGE_DATE,
        {"date": "2026-12-15"},
    )
    assert answer(ask, "bring the delivery forward to friday") == (
        Intent.CHANGE_DATE,
        {"date": "2026-11-27"},
    )


def test_adding_always_carries_a_quantity(ask: Ask) -> None:
    assert answer(ask, "add a mug") == (Intent.ADD_PRODUCT, {"product": MUG, "quantity": 1})
    assert answer(ask, "add 3 mugs") == (Intent.ADD_PRODUCT, {"product": MUG, "quantity": 3})
    assert answer(ask, "could I get two bags of decaf added") == (
        Intent.ADD_PRODUCT,
        {"product": DECAF, "quantity": 2},
    )


@pytest.mark.parametrize(
    ("text", "product", "quantity"),
    [
        ("add two of the decaf", DECAF, 2),
        ("add 2 of the decaf", DECAF, 2),
        ("add 3 of the mugs", MUG, 3),
        ("send me 2 of the decaf too", DECAF, 2),
        ("add two of those mugs", MUG, 2),
    ],
)
def test_n_of_the_product_is_the_quantity_added(
    ask: Ask, text: str, product: str, quantity: int
) -> None:
    assert answer(ask, text) == (Intent.ADD_PRODUCT, {"product": product, "quantity": quantity})


def test_n_of_an_item_already_on_the_order_sets_its_quantity(ask: Ask) -> None:
    assert answer(ask, "I want 3 of the dark roast") == (
        Intent.CHANGE_QUANTITY,
        {"product": DARK, "quantity": 3},
    )


def test_adding_answers_the_exact_catalog_name(ask: Ask) -> None:
    intent, slots = answer(ask, "add the paper filter pls")
    assert (intent, slots["product"]) == (Intent.ADD_PRODUCT, FILTERS)


def test_a_swap_names_the_item_and_the_catalog_product(ask: Ask) -> None:
    assert answer(ask, "swap my dark roast for the decaf", items=(DARK, MUG)) == (
        Intent.SWAP_PRODUCT,
        {"from": DARK, "to": DECAF},
    )
    assert answer(ask, "I'd like decaf instead of the dark roast", items=(DARK, MUG)) == (
        Intent.SWAP_PRODUCT,
        {"from": DARK, "to": DECAF},
    )


def test_a_swap_naming_no_item_takes_the_only_item_or_leaves_it_out(ask: Ask) -> None:
    assert answer(ask, "switch to the decaf") == (Intent.SWAP_PRODUCT, {"from": DARK, "to": DECAF})
    assert answer(ask, "switch to the decaf", items=(DARK, MUG)) == (
        Intent.SWAP_PRODUCT,
        {"to": DECAF},
    )


@pytest.mark.parametrize(
    "text",
    [
        "I don't want decaf anymore, switch me back to dark roast",
        "no more decaf, send the dark roast",
        "we hate the decaf, try the dark roast",
        "not a fan of the decaf, can I get dark roast",
    ],
)
def test_giving_up_the_item_for_another_product_is_a_swap(ask: Ask, text: str) -> None:
    understanding = ask(text, items=(DECAF,))
    assert (understanding.intent, understanding.slots) == (
        Intent.SWAP_PRODUCT,
        {"from": DECAF, "to": DARK},
    )
    assert understanding.confident


def test_giving_up_the_only_item_without_another_ends_the_subscription(ask: Ask) -> None:
    assert ask("I don't want decaf anymore", items=(DECAF,)).intent is Intent.CANCEL_SUBSCRIPTION
    assert ask("no more decaf please", items=(DECAF,)).intent is Intent.CANCEL_SUBSCRIPTION


def test_disliking_an_item_and_adding_another_is_still_an_add(ask: Ask) -> None:
    assert ask("we hate the decaf, add a mug too", items=(DECAF,)).intent is Intent.ADD_PRODUCT


def test_a_quantity_naming_no_item_takes_the_only_item_or_leaves_it_out(ask: Ask) -> None:
    assert answer(ask, "I only need one this time") == (
        Intent.CHANGE_QUANTITY,
        {"product": DARK, "quantity": 1},
    )
    assert answer(ask, "I only need one this time", items=(DARK, MUG)) == (
        Intent.CHANGE_QUANTITY,
        {"quantity": 1},
    )


@pytest.mark.parametrize("items", [(MUG,), (DARK, MUG), (DARK, MUG, FILTERS)])
def test_removing_an_item_sets_its_quantity_to_zero(ask: Ask, items: tuple[str, ...]) -> None:
    for text in ("remove the mug", "take the mug off my order", "drop the mug"):
        assert answer(ask, text, items=items) == (
            Intent.CHANGE_QUANTITY,
            {"product": MUG, "quantity": 0},
        )


def test_skipping_one_of_several_items_removes_it_but_skipping_the_only_one_skips(
    ask: Ask,
) -> None:
    assert answer(ask, "skip the filters this time", items=(DARK, FILTERS)) == (
        Intent.CHANGE_QUANTITY,
        {"product": FILTERS, "quantity": 0},
    )
    assert answer(ask, "skip the dark roast this time") == (Intent.SKIP_ORDER, {})


def test_a_count_inside_a_product_name_is_not_a_quantity(ask: Ask) -> None:
    intent, slots = answer(ask, "make the dark roast 12oz 2 instead", items=(DARK, MUG))
    assert (intent, slots) == (Intent.CHANGE_QUANTITY, {"product": DARK, "quantity": 2})


def test_a_date_is_not_a_quantity(ask: Ask) -> None:
    assert answer(ask, "could the next order arrive jan 8 instead?") == (
        Intent.CHANGE_DATE,
        {"date": "2027-01-08"},
    )


@pytest.mark.parametrize(
    ("text", "slots"),
    [
        ("I get paid friday", {"date": "2026-11-27"}),
        ("i can pay on the 1st", {"date": "2026-12-01"}),
        ("I'll pay soon", {}),
        ("I'll pay next week", {}),
    ],
)
def test_a_promise_to_pay_carries_the_day_when_one_is_named(
    ask: Ask, text: str, slots: dict[str, str]
) -> None:
    assert answer(ask, text, overdue=True) == (Intent.PROMISE_TO_PAY, slots)


@pytest.mark.parametrize(
    "text",
    [
        "can you move my order to friday",
        "add 2 mugs",
        "swap the dark roast for decaf",
        "bump the dark roast to 3",
        "push it back a month",
        "I get paid on the 3rd",
    ],
)
def test_every_answer_carries_only_the_slots_its_intent_allows(ask: Ask, text: str) -> None:
    intent, slots = answer(ask, text, overdue=True)
    assert set(slots) <= SLOTS.get(intent, frozenset())
