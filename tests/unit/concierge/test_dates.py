"""Dates and spans: "the first such day strictly after today", spans in the customer's unit."""

from __future__ import annotations

from datetime import date

import pytest

from dunwell.concierge.dates import (
    add_months,
    find_dates,
    find_span,
    next_day_of_month,
    next_month_day,
    next_weekday,
    pick_date,
)
from dunwell.concierge.normalize import normalize

SUNDAY = date(2026, 11, 22)


def resolved(text: str, today: date = SUNDAY) -> str | None:
    hit = pick_date(normalize(text), today)
    return hit.value.isoformat() if hit is not None else None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("friday", "2026-11-27"),
        ("next friday", "2026-11-27"),
        ("this Friday", "2026-11-27"),
        ("sunday", "2026-11-29"),
        ("fri", "2026-11-27"),
        ("on sat", "2026-11-28"),
        ("monday after next", "2026-11-30"),
        ("the 15th", "2026-12-15"),
        ("the 22nd", "2026-12-22"),
        ("the 23rd", "2026-11-23"),
        ("on the 1st", "2026-12-01"),
        ("the fifteenth", "2026-12-15"),
        ("the twenty-third", "2026-11-23"),
        ("the 15 please", "2026-12-15"),
        ("dec 3", "2026-12-03"),
        ("December 3rd", "2026-12-03"),
        ("3 december", "2026-12-03"),
        ("the 3rd of december", "2026-12-03"),
        ("jan 8", "2027-01-08"),
        ("Sept. 9", "2027-09-09"),
        ("11/28", "2026-11-28"),
        ("11/22", "2027-11-22"),
        ("1/5", "2027-01-05"),
        ("12/3/2026", "2026-12-03"),
        ("12/3/26", "2026-12-03"),
        ("2026-12-03", "2026-12-03"),
        ("tomorrow", "2026-11-23"),
        ("tmrw", "2026-11-23"),
        ("the day after tomorrow", "2026-11-24"),
        ("in two weeks", "2026-12-06"),
        ("in 10 days", "2026-12-02"),
        ("in a couple of weeks", "2026-12-06"),
        ("in a month", "2026-12-22"),
        ("3 weeks from now", "2026-12-13"),
        ("a week from friday", "2026-12-04"),
        ("end of the month", "2026-11-30"),
        ("end of next month", "2026-12-31"),
        ("the first of next month", "2026-12-01"),
        ("the 10th of next month", "2026-12-10"),
        ("beginning of next month", "2026-12-01"),
    ],
)
def test_a_date_resolves_to_the_first_such_day_after_today(text: str, expected: str) -> None:
    assert resolved(text) == expected


def test_the_31st_skips_months_without_one() -> None:
    assert resolved("the 31st", date(2026, 1, 31)) == "2026-03-31"
    assert resolved("the 31st", date(2026, 3, 31)) == "2026-05-31"


def test_the_30th_and_29th_skip_february_unless_it_has_them() -> None:
    assert resolved("the 30th", date(2027, 1, 30)) == "2027-03-30"
    assert resolved("the 29th", date(2027, 1, 29)) == "2027-03-29"
    assert resolved("the 29th", date(2028, 1, 29)) == "2028-02-29"


def test_february_29_waits_for_a_leap_year() -> None:
    assert resolved("feb 29", date(2026, 3, 1)) == "2028-02-29"
    assert resolved("2/29", date(2028, 2, 20)) == "2028-02-29"
    assert resolved("feb 29", date(2028, 2, 29)) == "2032-02-29"


def test_a_date_crosses_the_year_end() -> None:
    assert resolved("tomorrow", date(2027, 12, 31)) == "2028-01-01"
    assert resolved("1/1", date(2027, 12, 31)) == "2028-01-01"
    assert resolved("dec 31", date(2027, 12, 31)) == "2028-12-31"
    assert resolved("in 10 days", date(2028, 2, 25)) == "2028-03-06"


def test_a_weekday_named_on_that_weekday_is_next_weeks() -> None:
    assert resolved("sunday") == "2026-11-29"
    assert next_weekday(SUNDAY, 6) == date(2026, 11, 29)


def test_a_date_with_a_year_in_the_past_is_no_date() -> None:
    assert resolved("12/15/2025") is None
    assert resolved("2026-11-22") is None


@pytest.mark.parametrize(
    "text",
    [
        "feb 30",
        "the 2nd bag",
        "my 1st order",
        "i sat down",
        "24/7",
        "next week",
        "next month",
        "today",
        "the sun is out",
    ],
)
def test_words_that_only_look_like_a_date_name_none(text: str) -> None:
    assert find_dates(normalize(text), SUNDAY) == []


def test_the_3rd_may_work_is_the_3rd_not_may() -> None:
    assert resolved("the 3rd may work") == "2026-12-03"


def test_the_date_asked_for_is_the_one_moved_to() -> None:
    assert resolved("move it from the 3rd to the 10th") == "2026-12-10"
    assert resolved("the 10th instead of the 3rd") == "2026-12-10"
    assert resolved("away the 15th, send it on the 20th instead") == "2026-12-20"


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("push it back a week", "P1W"),
        ("delay one week", "P1W"),
        ("two weeks", "P2W"),
        ("2 weeks", "P2W"),
        ("2wks", "P2W"),
        ("a couple of weeks", "P2W"),
        ("a couple weeks", "P2W"),
        ("14 days", "P14D"),
        ("10 days", "P10D"),
        ("a month", "P1M"),
        ("2 months", "P2M"),
        ("two mos", "P2M"),
        ("a fortnight", "P2W"),
        ("another week", "P1W"),
        ("a year", "P1Y"),
    ],
)
def test_a_span_keeps_the_customers_unit(text: str, iso: str) -> None:
    span = find_span(normalize(text))
    assert span is not None
    assert span.iso == iso


@pytest.mark.parametrize(
    "text", ["a few weeks", "a week or two", "2-3 weeks", "half a month", "a month and a half"]
)
def test_a_vague_span_has_no_value(text: str) -> None:
    span = find_span(normalize(text))
    assert span is not None
    assert span.iso is None


@pytest.mark.parametrize(
    "text", ["in two weeks", "2 weeks from now", "every 2 weeks", "once a month", "next week"]
)
def test_a_date_or_a_frequency_is_not_a_span(text: str) -> None:
    assert find_span(normalize(text)) is None


def test_month_arithmetic_clamps_to_the_last_day() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2026, 12, 15), 2) == date(2027, 2, 15)


def test_day_and_month_day_searches_give_up_on_impossible_days() -> None:
    assert next_day_of_month(SUNDAY, 32) is None
    assert next_month_day(SUNDAY, 2, 30) is None
    assert next_month_day(SUNDAY, 13, 1) is None
