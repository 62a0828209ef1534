"""Phone numbers: normalize what a customer typed to E.164 and refuse numbers that cannot text.

A number is accepted when phonenumbers' metadata says it is valid and of a type that
takes SMS: ``MOBILE``, or ``FIXED_LINE_OR_MOBILE`` (the North American plan and a few
others do not separate landlines from mobiles, so every valid US/CA geographic number
has that type). Everything else is refused with a :class:`PhoneError` whose ``reason``
is a short machine code:

- ``empty``: nothing but spaces and punctuation; ``not_a_number``: no number to read.
- ``invalid_country``: an unknown country calling code.
- ``too_short``, ``too_long``, ``invalid_length``: the wrong number of digits.
- ``local_only``: dialable only locally, the area code is missing.
- ``invalid``: the right shape, but in no range that is assigned.
- ``extension``: carries an extension, so it reaches a desk phone.
- ``country_not_allowed``: valid, but from a country the site does not text.
- ``fixed_line``, ``toll_free``, ...: the refused type's name in lower case.

Refused types and why:

- ``FIXED_LINE``, ``PAGER``, ``VOICEMAIL``, ``UAN``: cannot receive a text.
- ``TOLL_FREE``, ``PREMIUM_RATE``, ``SHARED_COST``: service numbers, not a person's
  phone; premium and shared-cost ranges can also cost the sender extra.
- ``VOIP``: the plans with a separate VoIP range (GB 056, FR 09...) use it for
  internet landlines, which mostly drop texts. VoIP numbers that do take texts, such
  as most North American ones, have the ordinary geographic type and pass.
- ``PERSONAL_NUMBER``: "follow-me" redirection numbers (GB 070, US 500); texts to
  them are routinely lost or surcharged.
"""

from __future__ import annotations

import re
from collections.abc import Collection

import phonenumbers
from phonenumbers import (
    NumberParseException,
    PhoneNumber,
    PhoneNumberFormat,
    PhoneNumberType,
    ValidationResult,
)
from phonenumbers import timezone as phone_timezones

TEXTABLE_TYPES = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})

_TYPE_REASONS = {
    PhoneNumberType.FIXED_LINE: ("fixed_line", "a landline"),
    PhoneNumberType.TOLL_FREE: ("toll_free", "a toll-free number"),
    PhoneNumberType.PREMIUM_RATE: ("premium_rate", "a premium-rate number"),
    PhoneNumberType.SHARED_COST: ("shared_cost", "a shared-cost number"),
    PhoneNumberType.VOIP: ("voip", "an internet (VoIP) landline"),
    PhoneNumberType.PERSONAL_NUMBER: ("personal_number", "a call-forwarding personal number"),
    PhoneNumberType.PAGER: ("pager", "a pager"),
    PhoneNumberType.UAN: ("uan", "a company's universal access number"),
    PhoneNumberType.VOICEMAIL: ("voicemail", "a voicemail access number"),
}

_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: ("invalid_country", "has no known country code"),
    NumberParseException.NOT_A_NUMBER: ("not_a_number", "is not a phone number"),
    NumberParseException.TOO_SHORT_AFTER_IDD: ("too_short", "is too short"),
    NumberParseException.TOO_SHORT_NSN: ("too_short", "is too short"),
    NumberParseException.TOO_LONG: ("too_long", "is too long"),
}

_LENGTH_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: ("invalid_country", "has no known country code"),
    ValidationResult.TOO_SHORT: ("too_short", "is too short"),
    ValidationResult.TOO_LONG: ("too_long", "is too long"),
    ValidationResult.INVALID_LENGTH: ("invalid_length", "has the wrong number of digits"),
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY: ("local_only", "is missing its area code"),
}

_NOTHING_TO_READ = re.compile(r"[\s\-.()/]*")
# "00" is the international prefix in most of the world, but phonenumbers only reads
# it as one where the default region dials it (the US dials 011).
_DOUBLE_ZERO = re.compile(r"^\s*00")


class PhoneError(ValueError):
    """A number that cannot be texted; ``reason`` is a stable machine code."""

    def __init__(self, raw: str, reason: str, why: str) -> None:
        super().__init__(f"{raw!r} {why}")
        self.raw = raw
        self.reason = reason


def normalize_phone(
    raw: str, default_region: str, allowed_countries: Collection[str] | None = None
) -> str:
    """Return ``raw`` in E.164 form, or raise :class:`PhoneError` saying why it cannot text.

    National formats are read with ``default_region`` (an ISO 3166 code such as ``"US"``);
    ``+`` and ``00`` mark an international number. ``allowed_countries`` holds ISO region
    codes; ``None`` allows every country. An unknown ``default_region`` is the caller's
    mistake and raises a plain ``ValueError``.
    """
    region = default_region.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown default region {default_region!r}")
    if _NOTHING_TO_READ.fullmatch(raw):
        raise PhoneError(raw, "empty", "is empty")
    number = _parse(raw, region)
    _check_valid(raw, number)
    _check_country(raw, number, allowed_countries)
    _check_type(raw, number)
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


def phone_region(e164: str) -> str | None:
    """The ISO region code of a number (``"GB"``), or None for global or unreadable ones."""
    number = _parse_e164(e164)
    if number is None:
        return None
    region = phonenumbers.region_code_for_number(number)
    # Global services (+800, +882...) belong to the pseudo-region "001", not a country.
    return region if region and region.isalpha() else None


def phone_time_zone(e164: str) -> str | None:
    """The IANA zone of a number when its prefix maps to exactly one zone, else None.

    A US area code usually names one zone; a UK mobile names four (London and the
    Crown dependencies), and then the caller should fall back to another source.
    """
    number = _parse_e164(e164)
    if number is None or not phonenumbers.is_valid_number(number):
        return None
    zones = phone_timezones.time_zones_for_number(number)
    if len(zones) != 1 or zones[0] == phone_timezones.UNKNOWN_TIMEZONE:
        return None
    return zones[0]


def _parse(raw: str, region: str) -> PhoneNumber:
    text = raw
    if _DOUBLE_ZERO.match(raw):
        # Read the national way first: a region whose own international prefix starts
        # with 00 ("0011" in Australia) has already read it right.
        national = _try_parse(raw, region)
        if national is not None and phonenumbers.is_valid_number(national):
            return national
        text = _DOUBLE_ZERO.sub("+", raw, count=1)
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise _parse_error(raw, exc) from None


def _parse_error(raw: str, exc: NumberParseException) -> PhoneError:
    reason, why = _PARSE_REASONS.get(exc.error_type, ("not_a_number", "is not a phone number"))
    return PhoneError(raw, reason, why)


def _parse_e164(e164: str) -> PhoneNumber | None:
    return _try_parse(e164, None)


def _try_parse(text: str, region: str | None) -> PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException:
        return None


def _check_valid(raw: str, number: PhoneNumber) -> None:
    if number.extension:
        raise PhoneError(raw, "extension", "has an extension, so it reaches a desk phone")
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != ValidationResult.IS_POSSIBLE:
        reason, why = _LENGTH_REASONS.get(possible, ("invalid", "is not a valid number"))
        raise PhoneError(raw, reason, why)
    if not phonenumbers.is_valid_number(number):
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        raise PhoneError(raw, "invalid", f"({e164}) is not in any assigned number range")


def _check_country(raw: str, number: PhoneNumber, allowed: Collection[str] | None) -> None:
    if allowed is None:
        return
    codes = sorted({code.strip().upper() for code in allowed})
    region = phonenumbers.region_code_for_number(number)
    if region not in codes:
        only = ", ".join(codes) or "no country"
        raise PhoneError(raw, "country_not_allowed", f"is a {region} number; texts go to {only}")


def _check_type(raw: str, number: PhoneNumber) -> None:
    kind = phonenumbers.number_type(number)
    if kind in TEXTABLE_TYPES:
        return
    reason, what = _TYPE_REASONS.get(kind, ("unknown_type", "a number of unknown type"))
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    raise PhoneError(raw, reason, f"({e164}) is {what}, which cannot receive text messages")
