"""The strict checks a model's answer must pass before it is used."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from dunwell.concierge.intents import Awaiting, Intent
from dunwell.concierge.understanding import ParseRequest
from dunwell.concierge.validation import InvalidAnswer, parse_answer

REQUEST = ParseRequest(
    text="something the rules could not read",
    today=date(2026, 11, 22),
    next_charge_date=date(2026, 11, 29),
    catalog=("Dark Roast Coffee 12oz", "Decaf Coffee 12oz", "Ceramic Mug"),
    items=("Dark Roast Coffee 12oz",),
)


def parsed(intent: str, slots: dict[str, Any], request: ParseRequest = REQUEST) -> Any:
    return parse_answer(json.dumps({"intent": intent, "slots": slots}), request)


@pytest.mark.parametrize(
    ("intent", "slots"),
    [
        ("skip_order", {}),
        ("delay_order", {"delay": "P2W"}),
        ("delay_order", {}),
        ("change_date", {"date": "2026-11-23"}),
        ("swap_product", {"from": "Dark Roast Coffee 12oz", "to": "Decaf Coffee 12oz"}),
        ("change_quantity", {"product": "Dark Roast Coffee 12oz", "quantity": 0}),
        ("promise_to_pay", {"date": "2027-01-01"}),
        ("opt_out", {}),
        ("unknown", {}),
    ],
)
def test_a_contract_answer_is_accepted_as_is(intent: str, slots: dict[str, Any]) -> None:
    assert parsed(intent, slots) == (Intent(intent), slots)


def test_an_addition_without_a_quantity_gets_one() -> None:
    assert parsed("add_product", {"product": "Ceramic Mug"}) == (
        Intent.ADD_PRODUCT,
        {"product": "Ceramic Mug", "quantity": 1},
    )


@pytest.mark.parametrize(
    ("intent", "slots", "reason"),
    [
        ("cancel_everything", {}, "unknown intent"),
        ("skip_order", {"date": "2026-12-01"}, "does not take slot"),
        ("change_date", {"date": "2026-11-22"}, "not after today"),
        ("change_date", {"date": "2026-02-30"}, "not a calendar date"),
        ("change_date", {"date": "Dec 1"}, "not YYYY-MM-DD"),
        ("delay_order", {"delay": "2 weeks"}, "ISO-8601"),
        ("delay_order", {"delay": "P0W"}, "ISO-8601"),
        ("add_product", {"product": "Ceramic Mug", "quantity": 0}, "whole number"),
        ("add_product", {"product": "Ceramic Mug", "quantity": "2"}, "whole number"),
        ("add_product", {"product": "Ceramic Mug", "quantity": True}, "whole number"),
        ("add_product", {"product": "ceramic mug"}, "catalog"),
        ("swap_product", {"from": "Ceramic Mug", "to": "Decaf Coffee 12oz"}, "items"),
        ("swap_product", {"from": "Dark Roast Coffee 12oz", "to": "Espresso"}, "catalog"),
        ("change_quantity", {"product": "Ceramic Mug", "quantity": 1}, "items"),
        ("change_quantity", {"product": "Dark Roast Coffee 12oz", "quantity": -1}, "whole"),
        ("opt_in", {}, "carrier keyword"),
        ("help", {}, "carrier keyword"),
        ("confirm", {}, "awaiting=confirmation"),
        ("survey_rating", {"rating": 4}, "awaiting=survey_rating"),
    ],
)
def test_an_answer_breaking_the_contract_is_refused(
    intent: str, slots: dict[str, Any], reason: str
) -> None:
    with pytest.raises(InvalidAnswer, match=reason):
        parsed(intent, slots)


def test_a_rating_must_be_one_to_five() -> None:
    rating = ParseRequest("x", date(2026, 11, 22), awaiting=Awaiting.SURVEY_RATING)
    assert parsed("survey_rating", {"rating": 5}, rating) == (Intent.SURVEY_RATING, {"rating": 5})
    with pytest.raises(InvalidAnswer, match="1 to 5"):
        parsed("survey_rating", {"rating": 6}, rating)


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"intent": "skip_order", "slots": []}'])
def test_an_answer_that_is_not_an_intent_object_is_refused(content: str) -> None:
    with pytest.raises(InvalidAnswer):
        parse_answer(content, REQUEST)


def test_a_refusal_never_repeats_the_customers_text() -> None:
    with pytest.raises(InvalidAnswer) as error:
        parsed("add_product", {"product": REQUEST.text})
    assert REQUEST.text not in str(error.value)
