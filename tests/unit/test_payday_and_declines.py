"""Paydays (weekday, day of month, "last") and the hard/soft class of decline codes."""

from __future__ import annotations

import calendar
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dunwell.domain.declines import (
    HARD_DECLINE_CODES,
    SOFT_DECLINE_CODES,
    DeclineClass,
    classify_decline,
)
from dunwell.domain.payday import Payday, parse_payday

# --- parse_payday -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("monday", Payday(weekday=0), id="monday is weekday 0"),
        pytest.param("friday", Payday(weekday=4), id="friday is weekday 4"),
        pytest.param("sunday", Payday(weekday=6), id="sunday is weekday 6"),
        pytest.param("  Friday ", Payday(weekday=4), id="weekday names ignore case and spaces"),
        pytest.param("1", Payday(month_day=1), id="the 1st of the month"),
        pytest.param("15", Payday(month_day=15), id="the 15th of the month"),
        pytest.param("31", Payday(month_day=31), id="the 31st of the month"),
        pytest.param("last", Payday(month_day=31), id="last means the month's last day"),
        pytest.param("LAST", Payday(month_day=31), id="last ignores case"),
    ],
)
def test_a_payday_is_parsed_from_its_text(text: str, expected: Payday) -> None:
    assert parse_payday(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty text is refused"),
        pytest.param("0", id="day 0 is refused"),
        pytest.param("32", id="day 32 is refused"),
        pytest.param("-1", id="a negative day is refused"),
        pytest.param("fri", id="abbreviated weekdays are refused"),
        pytest.param("15th", id="ordinals are refused"),
        pytest.param("1.5", id="fractions are refused"),
        pytest.param("first", id="first is not a payday"),
    ],
)
def test_a_malformed_payday_is_refused_with_its_text(text: str) -> None:
    with pytest.raises(ValueError, match="payday"):
        parse_payday(text)


@pytest.mark.parametrize(
    ("payday", "text"),
    [
        pytest.param(Payday(weekday=4), "friday", id="a weekday prints as its name"),
        pytest.param(Payday(month_day=15), "15", id="a day of the month prints as its number"),
        pytest.param(Payday(month_day=31), "last", id="the 31st prints as last"),
    ],
)
def test_a_payday_prints_as_text_that_parses_back(payday: Payday, text: str) -> None:
    assert str(payday) == text
    assert parse_payday(str(payday)) == payday


# --- next_on_or_after -------------------------------------------------------------


@pytest.mark.parametrize(
    ("payday", "day", "expected"),
    [
        # 2024-01-05 is a Friday.
        pytest.param(
            "friday", date(2024, 1, 5), date(2024, 1, 5), id="friday on a friday is today"
        ),
        pytest.param(
            "friday", date(2024, 1, 6), date(2024, 1, 12), id="friday on a saturday is 6 days on"
        ),
        pytest.param(
            "friday", date(2024, 1, 1), date(2024, 1, 5), id="friday on a monday is 4 days on"
        ),
        pytest.param(
            "monday",
            date(2024, 12, 31),
            date(2025, 1, 6),
            id="a weekday payday rolls over the new year",
        ),
        pytest.param("15", date(2024, 1, 10), date(2024, 1, 15), id="the 15th before the 15th"),
        pytest.param(
            "15", date(2024, 1, 15), date(2024, 1, 15), id="the 15th on the 15th is today"
        ),
        pytest.param(
            "15", date(2024, 1, 16), date(2024, 2, 15), id="the 15th after the 15th is next month"
        ),
        pytest.param(
            "15",
            date(2024, 12, 16),
            date(2025, 1, 15),
            id="the 15th after december 15th is january of next year",
        ),
        pytest.param(
            "last", date(2024, 1, 31), date(2024, 1, 31), id="last on january 31st is today"
        ),
        pytest.param(
            "last", date(2023, 2, 10), date(2023, 2, 28), id="last in february 2023 is the 28th"
        ),
        pytest.param(
            "last",
            date(2024, 2, 10),
            date(2024, 2, 29),
            id="last in february of a leap year is the 29th",
        ),
        pytest.param(
            "31",
            date(2023, 2, 1),
            date(2023, 2, 28),
            id="the 31st in february is february's last day",
        ),
        pytest.param(
            "31", date(2024, 4, 30), date(2024, 4, 30), id="the 31st in april is april 30th"
        ),
        pytest.param(
            "30",
            date(2024, 1, 31),
            date(2024, 2, 29),
            id="the 30th after january 30th is clamped to february 29th",
        ),
        pytest.param(
            "30",
            date(2023, 12, 31),
            date(2024, 1, 30),
            id="the 30th after december 30th is january 30th of next year",
        ),
        pytest.param(
            "last", date(2024, 12, 31), date(2024, 12, 31), id="last on december 31st is today"
        ),
        pytest.param("1", date(2024, 12, 2), date(2025, 1, 1), id="the 1st in december rolls over"),
    ],
)
def test_the_next_payday_on_or_after_a_date(payday: str, day: date, expected: date) -> None:
    assert parse_payday(payday).next_on_or_after(day) == expected


paydays = st.one_of(
    st.builds(Payday, weekday=st.integers(0, 6)),
    st.builds(Payday, month_day=st.integers(1, 31)),
)


@given(payday=paydays, day=st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 1, 1)))
def test_the_next_payday_is_never_before_the_date_and_at_most_a_month_away(
    payday: Payday, day: date
) -> None:
    found = payday.next_on_or_after(day)
    assert day <= found <= day + timedelta(days=31)
    assert is_payday(payday, found)
    skipped = (day + timedelta(days=n) for n in range((found - day).days))
    assert not any(is_payday(payday, d) for d in skipped)


def is_payday(payday: Payday, day: date) -> bool:
    if payday.weekday is not None:
        return day.weekday() == payday.weekday
    assert payday.month_day is not None
    return day.day == min(payday.month_day, calendar.monthrange(day.year, day.month)[1])


# --- classify_decline -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        pytest.param("lost_card", DeclineClass.HARD, id="a lost card is hard"),
        pytest.param("stolen_card", DeclineClass.HARD, id="a stolen card is hard"),
        pytest.param("expired_card", DeclineClass.HARD, id="an expired card is hard"),
        pytest.param("no_payment_method", DeclineClass.HARD, id="no payment method is hard"),
        pytest.param("fraudulent", DeclineClass.HARD, id="fraudulent is hard"),
        pytest.param("LOST_CARD", DeclineClass.HARD, id="codes ignore case"),
        pytest.param(" expired_card\n", DeclineClass.HARD, id="codes ignore surrounding spaces"),
        pytest.param("insufficient_funds", DeclineClass.SOFT, id="insufficient funds is soft"),
        pytest.param("do_not_honor", DeclineClass.SOFT, id="do not honor is soft"),
        pytest.param("gateway_timeout", DeclineClass.SOFT, id="a gateway timeout is soft"),
        pytest.param("some_new_code", DeclineClass.SOFT, id="an unknown code is soft"),
        pytest.param("", DeclineClass.SOFT, id="an empty code is soft"),
        pytest.param(None, DeclineClass.SOFT, id="a missing code is soft"),
    ],
)
def test_a_decline_code_is_classified_hard_or_soft(
    code: str | None, expected: DeclineClass
) -> None:
    assert classify_decline(code) is expected


def test_no_decline_code_is_both_hard_and_soft() -> None:
    assert not HARD_DECLINE_CODES & SOFT_DECLINE_CODES


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        pytest.param(HARD_DECLINE_CODES, DeclineClass.HARD, id="every listed hard code is hard"),
        pytest.param(SOFT_DECLINE_CODES, DeclineClass.SOFT, id="every listed soft code is soft"),
    ],
)
def test_every_listed_code_has_its_class(codes: frozenset[str], expected: DeclineClass) -> None:
    assert {code: classify_decline(code) for code in codes} == dict.fromkeys(codes, expected)
