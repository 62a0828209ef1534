"""The shared request types and how a validation error is named, without a server."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from dunwell.api.pagination import (
    CARD_NUMBER,
    Currency,
    PhoneText,
    StorableText,
    Text,
    check_texts,
)
from dunwell.api.problems import _message, field_name, problem
from dunwell.services.errors import InvalidInput
from dunwell.services.sites import parse_duration

PAN = "4242 4242 4242 4242"
LUHN_MOBILE = "+4915110000002"


def error(type_: str, loc: tuple[Any, ...], **extra: Any) -> dict[str, Any]:
    return {"type": type_, "loc": loc, "msg": "m", **extra}


@pytest.mark.parametrize(
    ("loc", "field"),
    [
        (("body", "body"), "body"),
        (("body", "items", 0, "product_id"), "items[0].product_id"),
        (("body", "policy", "body"), "policy.body"),
        (("query", "limit"), "limit"),
        (("path", "action"), "action"),
        (("body",), "body"),
    ],
)
def test_only_the_location_is_dropped_from_a_field_name(loc: tuple[Any, ...], field: str) -> None:
    assert field_name(error("missing", loc)) == field


def test_a_body_that_is_not_json_is_named_body() -> None:
    assert field_name(error("json_invalid", ("body", 7))) == "body"


def test_the_length_of_an_optional_text_is_worded_as_a_strings() -> None:
    class Body(BaseModel):
        note: Text | None = Field(None, max_length=3)

    with pytest.raises(ValidationError) as raised:
        Body(note="four")
    assert _message(raised.value.errors()[0]) == "String should have at most 3 characters"


@pytest.mark.parametrize("value", ["a\x00b", "a\ud800b"])
@pytest.mark.parametrize("kind", [Text, PhoneText, StorableText])
def test_no_text_type_takes_what_a_database_cannot_store(kind: Any, value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(kind).validate_python(value)


@pytest.mark.parametrize("value", [PAN, "4242424242424242", f"name {PAN} 12/27"])
def test_text_refuses_a_card_number_without_repeating_it(value: str) -> None:
    with pytest.raises(ValidationError) as raised:
        TypeAdapter(Text).validate_python(value)
    (found,) = raised.value.errors(include_input=False)
    assert CARD_NUMBER in found["msg"] and "4242" not in json.dumps(found, default=str)


def test_a_phone_number_is_not_taken_for_a_card_number() -> None:
    assert TypeAdapter(PhoneText).validate_python(LUHN_MOBILE) == LUHN_MOBILE
    assert TypeAdapter(PhoneText).validate_python("0049 151 10000002") == "0049 151 10000002"
    with pytest.raises(ValidationError):
        TypeAdapter(PhoneText).validate_python(PAN)
    with pytest.raises(ValidationError):
        TypeAdapter(Text).validate_python(LUHN_MOBILE)


def test_storable_text_keeps_what_only_looks_like_a_card() -> None:
    assert TypeAdapter(StorableText).validate_python(PAN) == PAN


@pytest.mark.parametrize(
    ("code", "read"), [("usd", "USD"), ("EUR", "EUR"), ("JPY", "JPY"), ("xof", "XOF")]
)
def test_a_currency_in_use_is_read_in_upper_case(code: str, read: str) -> None:
    assert TypeAdapter(Currency).validate_python(code) == read


@pytest.mark.parametrize("code", ["QQQ", "XXX", "XTS", "XAU", "DEM", "US", "USD\n", "ÄÖÜ"])
def test_a_code_messages_cannot_format_is_not_a_currency(code: str) -> None:
    with pytest.raises(ValidationError) as raised:
        TypeAdapter(Currency).validate_python(code)
    assert "ISO 4217" in raised.value.errors()[0]["msg"]


def test_check_texts_names_the_first_string_at_fault_by_its_path() -> None:
    body = {"ok": "fine", "prices": {"GB": 4}, "replies": ["hi", f"card {PAN}"], "x": "a\x00"}
    with pytest.raises(InvalidInput) as raised:
        check_texts(body)
    assert raised.value.field == "replies[1]" and raised.value.message == CARD_NUMBER
    with pytest.raises(InvalidInput) as raised:
        check_texts(body, cards=False)
    assert raised.value.field == "x"


def test_check_texts_walks_any_depth() -> None:
    deep: Any = "a\x00"
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(InvalidInput) as raised:
        check_texts({"prices": deep})
    assert raised.value.field.startswith("prices[0][0]")


def test_a_problem_never_repeats_a_card_number() -> None:
    response = problem(422, "Invalid field", f"no template {PAN!r}", field=PAN)
    assert b"4242" not in response.body


@pytest.mark.parametrize("text", ["99999999999d", "9" * 5000 + "d", "200000d", "1d" * 40000])
def test_a_duration_longer_than_a_clock_can_move_is_refused_not_overflowed(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(text)


def test_a_duration_still_adds_its_parts() -> None:
    assert parse_duration(" 1d 12h ") == timedelta(days=1, hours=12)
    assert parse_duration("0001w") == timedelta(weeks=1)
    assert parse_duration("0" * 5000 + "1d") == timedelta(days=1)
