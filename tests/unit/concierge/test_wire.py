"""The request and answer in their JSON form, and errors that name the bad field."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from dunwell.concierge.intents import Awaiting, Intent
from dunwell.concierge.understanding import (
    ParseRequest,
    RequestError,
    Understanding,
    request_from_json,
    understanding_to_json,
)

REQUEST = {
    "text": "can you push my order to the 15th?",
    "today": "2026-11-22",
    "next_charge_date": "2026-12-01",
    "catalog": ["Dark Roast Coffee 12oz", "Ceramic Mug"],
    "items": ["Dark Roast Coffee 12oz"],
    "awaiting": None,
}


def test_a_contract_request_becomes_a_parse_request() -> None:
    assert request_from_json(REQUEST) == ParseRequest(
        text="can you push my order to the 15th?",
        today=date(2026, 11, 22),
        next_charge_date=date(2026, 12, 1),
        catalog=("Dark Roast Coffee 12oz", "Ceramic Mug"),
        items=("Dark Roast Coffee 12oz",),
        awaiting=None,
    )


def test_only_text_and_today_are_required_and_other_fields_are_ignored() -> None:
    request = request_from_json({"text": "hi", "today": "2026-11-22", "id": "s001"})
    assert request == ParseRequest("hi", date(2026, 11, 22))


def test_awaiting_is_read_as_its_enum() -> None:
    request = request_from_json({**REQUEST, "awaiting": "promise_date"})
    assert request.awaiting is Awaiting.PROMISE_DATE


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"today": "2026-13-01"}, "today: must be a date YYYY-MM-DD"),
        ({"today": "20261122"}, "today: must be a date YYYY-MM-DD"),
        ({"today": None}, "today: must be a date YYYY-MM-DD"),
        ({"text": 42}, "text: must be a string"),
        ({"next_charge_date": "soon"}, "next_charge_date: must be a date YYYY-MM-DD"),
        ({"catalog": "Ceramic Mug"}, "catalog: must be a list of strings"),
        ({"items": [1, 2]}, "items: must be a list of strings"),
        (
            {"awaiting": "rating"},
            "awaiting: must be null or one of confirmation, survey_rating, promise_date",
        ),
    ],
)
def test_a_bad_field_is_named_in_the_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError) as error:
        request_from_json({**REQUEST, **change})
    assert str(error.value) == message


def test_a_missing_today_and_a_non_object_are_refused() -> None:
    with pytest.raises(RequestError, match=r"^today: is required"):
        request_from_json({"text": "hi"})
    with pytest.raises(RequestError, match=r"^request: must be a JSON object"):
        request_from_json(["hi"])


def test_a_request_error_is_a_value_error() -> None:
    assert issubclass(RequestError, ValueError)


def test_the_answer_is_exactly_intent_and_slots() -> None:
    understanding = Understanding(Intent.CHANGE_DATE, {"date": "2026-12-15"}, confident=False)
    assert understanding_to_json(understanding) == {
        "intent": "change_date",
        "slots": {"date": "2026-12-15"},
    }
