"""Phone numbers: E.164 normalization, the types that can text, region and time zone."""

from __future__ import annotations

import pytest

from dunwell.messaging.phones import PhoneError, normalize_phone, phone_region, phone_time_zone

# --- accepted numbers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        pytest.param("(415) 555-0123", "US", "+14155550123", id="a US number in national format"),
        pytest.param("415.555.0123", "US", "+14155550123", id="dots separate US digits"),
        pytest.param("1-415-555-0123", "US", "+14155550123", id="a US number with its 1"),
        pytest.param("+1 415 555 0123", "GB", "+14155550123", id="plus overrides the region"),
        pytest.param("  +1 (415) 555-0123 ", "US", "+14155550123", id="spaces around are ignored"),
        pytest.param("604 555 0100", "CA", "+16045550100", id="a Canadian number"),
        pytest.param("07400 123456", "GB", "+447400123456", id="a UK mobile"),
        pytest.param("+44 (0)7400 123456", "US", "+447400123456", id="a UK mobile with (0)"),
        pytest.param("06 12 34 56 78", "FR", "+33612345678", id="a French mobile"),
        pytest.param("0151 23456789", "DE", "+4915123456789", id="a German mobile"),
        pytest.param("0171/1234567", "DE", "+491711234567", id="a German mobile with a slash"),
        pytest.param("0412 345 678", "AU", "+61412345678", id="an Australian mobile"),
        pytest.param("98765 43210", "IN", "+919876543210", id="an Indian mobile"),
        pytest.param("0044 7400 123456", "FR", "+447400123456", id="00 dials abroad from France"),
        pytest.param("00 33 6 12 34 56 78", "US", "+33612345678", id="00 dials abroad from the US"),
        pytest.param("011 44 7400 123456", "US", "+447400123456", id="011 dials abroad from US"),
        pytest.param("0011 44 7400 123456", "AU", "+447400123456", id="0011 is Australia's prefix"),
        pytest.param("4155550123", "us", "+14155550123", id="the region ignores case"),
    ],
)
def test_a_textable_number_is_normalized_to_e164(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


def test_a_normalized_number_normalizes_to_itself() -> None:
    assert normalize_phone("+447400123456", "FR") == "+447400123456"


# --- refused numbers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        pytest.param("020 7946 0018", "GB", "fixed_line", id="a London landline"),
        pytest.param("01 23 45 67 89", "FR", "fixed_line", id="a Paris landline"),
        pytest.param("030 123456", "DE", "fixed_line", id="a Berlin landline"),
        pytest.param("02 9876 5432", "AU", "fixed_line", id="a Sydney landline"),
        pytest.param("800-555-0100", "US", "toll_free", id="a US 800 number"),
        pytest.param("+1 888 555 0100", "US", "toll_free", id="a US 888 number"),
        pytest.param("0800 123 4567", "GB", "toll_free", id="a UK freephone number"),
        pytest.param("+1 900 555 0100", "US", "premium_rate", id="a US 900 number"),
        pytest.param("0909 879 0000", "GB", "premium_rate", id="a UK 09 premium number"),
        pytest.param("0900 1 234567", "DE", "premium_rate", id="a German 0900 number"),
        pytest.param("0180 1 2345", "DE", "shared_cost", id="a German 0180 number"),
        pytest.param("0 884 01 23 45", "FR", "shared_cost", id="a French 0884 number"),
        pytest.param("056 1234 5678", "GB", "voip", id="a UK 056 VoIP number"),
        pytest.param("09 12 34 56 78", "FR", "voip", id="a French 09 box line"),
        pytest.param("070 1234 5678", "GB", "personal_number", id="a UK 070 follow-me number"),
        pytest.param("(500) 234-5678", "US", "personal_number", id="a US 500 number"),
        pytest.param("076 4012 3456", "GB", "pager", id="a UK pager"),
        pytest.param("0300 123 4567", "GB", "uan", id="a UK 03 company number"),
        pytest.param("0177 99 1234567", "DE", "voicemail", id="a German voicemail number"),
    ],
)
def test_a_number_that_cannot_take_texts_is_refused_by_type(
    raw: str, region: str, reason: str
) -> None:
    with pytest.raises(PhoneError, match="cannot receive text messages") as caught:
        normalize_phone(raw, region)
    assert caught.value.reason == reason
    assert caught.value.raw == raw


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        pytest.param("", "US", "empty", id="an empty string"),
        pytest.param(" ( ) - ", "US", "empty", id="only punctuation"),
        pytest.param("call me", "US", "not_a_number", id="words"),
        pytest.param("12", "US", "too_short", id="two digits"),
        pytest.param("+1 415 555 01", "US", "too_short", id="a US number missing digits"),
        pytest.param("415 555 0123 4", "US", "too_long", id="a US number with a digit too many"),
        pytest.param("555-0123", "US", "local_only", id="a US number without its area code"),
        pytest.param("+999 1234 5678", "US", "invalid_country", id="an unassigned country code"),
        pytest.param("+44 7700 900123", "GB", "invalid", id="a UK mobile in the drama range"),
        pytest.param("+1 415 555 0123 ext. 12", "US", "extension", id="an extension"),
    ],
)
def test_a_number_that_is_not_valid_is_refused_with_its_reason(
    raw: str, region: str, reason: str
) -> None:
    with pytest.raises(PhoneError) as caught:
        normalize_phone(raw, region)
    assert caught.value.reason == reason
    assert repr(raw) in str(caught.value)


def test_a_refusal_names_the_number_and_why() -> None:
    with pytest.raises(PhoneError) as caught:
        normalize_phone("020 7946 0018", "GB")
    assert str(caught.value) == (
        "'020 7946 0018' (+442079460018) is a landline, which cannot receive text messages"
    )


def test_a_phone_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="too short"):
        normalize_phone("12", "US")


def test_an_unknown_default_region_is_the_callers_error_not_the_numbers() -> None:
    with pytest.raises(ValueError, match="unknown default region 'XX'") as caught:
        normalize_phone("+14155550123", "XX")
    assert not isinstance(caught.value, PhoneError)


# --- allowed countries ------------------------------------------------------------


def test_allowed_countries_let_their_numbers_through() -> None:
    assert normalize_phone("07400 123456", "GB", {"GB", "US"}) == "+447400123456"


def test_allowed_countries_ignore_case() -> None:
    assert normalize_phone("+33612345678", "US", ["fr"]) == "+33612345678"


def test_a_number_from_a_country_not_allowed_is_refused() -> None:
    with pytest.raises(PhoneError, match="is a FR number; texts go to CA, US") as caught:
        normalize_phone("+33 6 12 34 56 78", "US", {"US", "CA"})
    assert caught.value.reason == "country_not_allowed"


def test_the_isle_of_man_is_its_own_region_and_not_great_britain() -> None:
    with pytest.raises(PhoneError) as caught:
        normalize_phone("07624 123456", "GB", {"GB"})
    assert caught.value.reason == "country_not_allowed"


def test_no_allowed_countries_refuses_every_number() -> None:
    with pytest.raises(PhoneError, match="texts go to no country"):
        normalize_phone("+14155550123", "US", set())


def test_an_invalid_number_is_refused_as_invalid_before_its_country_is_checked() -> None:
    with pytest.raises(PhoneError) as caught:
        normalize_phone("12", "US", {"GB"})
    assert caught.value.reason == "too_short"


# --- region and time zone ---------------------------------------------------------


@pytest.mark.parametrize(
    ("e164", "region"),
    [
        pytest.param("+14155550123", "US", id="San Francisco is in the US"),
        pytest.param("+16045550100", "CA", id="Vancouver shares +1 but is in Canada"),
        pytest.param("+447400123456", "GB", id="a UK mobile"),
        pytest.param("+447624123456", "IM", id="an Isle of Man mobile"),
        pytest.param("+33612345678", "FR", id="a French mobile"),
        pytest.param("+80012345678", None, id="a global freephone number has no country"),
        pytest.param("not a number", None, id="garbage has no region"),
        pytest.param("4155550123", None, id="a national number without + has no region"),
    ],
)
def test_the_region_of_a_number_is_its_iso_code(e164: str, region: str | None) -> None:
    assert phone_region(e164) == region


@pytest.mark.parametrize(
    ("e164", "zone"),
    [
        pytest.param("+14155550123", "America/Los_Angeles", id="a 415 number is Pacific"),
        pytest.param("+12125550100", "America/New_York", id="a 212 number is Eastern"),
        pytest.param("+14165550100", "America/Toronto", id="a 416 number is Toronto"),
        pytest.param("+442079460018", "Europe/London", id="a London landline"),
        pytest.param("+33612345678", "Europe/Paris", id="a French mobile"),
        pytest.param("+4915123456789", "Europe/Berlin", id="a German mobile"),
        pytest.param("+17095550100", None, id="Newfoundland and Labrador span two zones"),
        pytest.param("+447400123456", None, id="a UK mobile spans the Crown dependencies"),
        pytest.param("+61412345678", None, id="an Australian mobile spans the continent"),
        pytest.param("+18005550100", None, id="a US toll-free number has no place"),
        pytest.param("+15550123", None, id="an invalid number has no zone"),
        pytest.param("garbage", None, id="garbage has no zone"),
    ],
)
def test_a_number_has_a_time_zone_only_when_its_prefix_names_one(
    e164: str, zone: str | None
) -> None:
    assert phone_time_zone(e164) == zone
