"""Dates and spans in a normalized text, resolved against the customer's today.

A *date* names a day: "friday", "next friday", "the 15th", "dec 3", "12/3",
"tomorrow", "in two weeks", "end of the month". Every date resolves to the
first such day strictly after ``today`` ("the 31st" skips months without
one, "feb 29" waits for a leap year); a date the customer gives with a year
must itself be after today. Numeric dates are month/day, as in the US.

A *span* is a length of time kept in the customer's own unit: "a week" is
``P1W``, "14 days" ``P14D``, "a couple of months" ``P2M``, "a fortnight"
``P2W``. "in two weeks" is not a span but a date (two weeks from today).
Vague amounts ("a few weeks", "a week or two", "a month and a half") are
spans with no value: the customer asked for a delay but said no length
the rules can be sure of.

"next week" and "next month" name no day and are neither.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from dunwell.concierge.normalize import NUMBER, number_value

MONTHS = {
    **dict.fromkeys(("jan", "january"), 1),
    **dict.fromkeys(("feb", "february"), 2),
    **dict.fromkeys(("mar", "march"), 3),
    **dict.fromkeys(("apr", "april"), 4),
    "may": 5,
    **dict.fromkeys(("jun", "june"), 6),
    **dict.fromkeys(("jul", "july"), 7),
    **dict.fromkeys(("aug", "august"), 8),
    **dict.fromkeys(("sep", "sept", "september"), 9),
    **dict.fromkeys(("oct", "october"), 10),
    **dict.fromkeys(("nov", "november"), 11),
    **dict.fromkeys(("dec", "december"), 12),
}
WEEKDAYS = {
    **dict.fromkeys(("monday", "mon"), 0),
    **dict.fromkeys(("tuesday", "tue", "tues"), 1),
    **dict.fromkeys(("wednesday", "wed", "weds"), 2),
    **dict.fromkeys(("thursday", "thu", "thur", "thurs"), 3),
    **dict.fromkeys(("friday", "fri"), 4),
    **dict.fromkeys(("saturday", "sat"), 5),
    **dict.fromkeys(("sunday", "sun"), 6),
}
_ORDINAL_WORDS = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth "
    "thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth"
)
_UNITS = _ORDINAL_WORDS.split()[:9]
ORDINALS: dict[str, int] = {
    **{word: n for n, word in enumerate(_ORDINAL_WORDS.split(), start=1)},
    **{f"twenty{sep}{word}": 20 + n for n, word in enumerate(_UNITS, 1) for sep in " -"},
    "thirtieth": 30,
    **{f"thirty{sep}first": 31 for sep in " -"},
}


def _alternatives(words: Iterable[str]) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_MONTH = rf"(?P<month>{_alternatives(MONTHS)})\.?"
_DAY = rf"(?P<day>\d{{1,2}}(?:st|nd|rd|th)?|{_alternatives(ORDINALS)})"
_YEAR = r"(?:,?\s+(?P<year>\d{4})\b)?"
# An abbreviated weekday that is also a word ("sat", "sun", "wed") counts only
# after a word that introduces a day, or as the whole text.
_SHORT_DAYS = frozenset({"mon", "tue", "tues", "wed", "weds", "thu", "thur", "thurs", "sat", "sun"})
_DAY_INTRO = re.compile(r"(?:^|\b(?:on|by|next|this|until|till|til|before|after|coming)\s+)$")
# Words after "the 2nd" that make it a count or a rank, not a day of the month.
_NOT_A_DAY = re.compile(
    r"\s*(?:order|time|box|delivery|shipment|one|bag|month|week|year|item|charge|payment"
    r"|attempt|try|place|option|thing|step|of (?:them|those|these|my)|pack|bottle|jar|card)s?\b"
)
_BARE_THE_DAY = (
    r"(?=\s*(?:$|[,.!?;)]|(?:of|instead|please|then|if|so|and|or|at|when|as|works|is|would"
    r"|thanks|pls|ok|for|too|that)\b))"
)

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("iso", r"\b(?P<year>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b"),
        ("numeric", r"(?<![\d/.])(?P<m>\d{1,2})/(?P<d>\d{1,2})(?:/(?P<y>\d{4}|\d{2}))?(?![\d/])"),
        ("day_of_month", rf"\b(?:the\s+)?{_DAY}\s+of\s+(?P<which>next|this|the)\s+month\b"),
        ("month_day", rf"\b{_MONTH}\s+(?:the\s+)?{_DAY}\b{_YEAR}"),
        ("day_month", rf"\b(?:the\s+)?{_DAY}\s+(?:of\s+)?{_MONTH}(?![a-z]){_YEAR}"),
        ("after_tomorrow", r"\b(?:the\s+)?day after tomorrow\b"),
        ("tomorrow", r"\btomorrow\b"),
        (
            "relative",
            rf"\b(?:in|after)\s+(?:about\s+|around\s+|roughly\s+|another\s+|just\s+)?"
            rf"(?P<n>{NUMBER})\s+(?P<unit>day|week|month|year)s?(?:'s?)?(?:\s+time)?\b",
        ),
        (
            "from_now",
            rf"\b(?P<n>{NUMBER})\s+(?P<unit>day|week|month|year)s?\s+from\s+(?:now|today)\b",
        ),
        ("fortnight", r"\b(?:in|after)\s+(?:a\s+)?fortnight\b"),
        ("week_from_day", rf"\b(?:a|one)\s+week\s+from\s+(?P<wd>{_alternatives(WEEKDAYS)})\b"),
        ("month_end", r"\b(?:the\s+)?(?:end|last day) of (?:the\s+|this\s+)?month\b"),
        ("next_month_end", r"\b(?:the\s+)?(?:end|last day) of next month\b"),
        ("next_month_start", r"\b(?:the\s+)?(?:beginning|start) of (?:next|the)\s+month\b"),
        (
            "weekday",
            rf"\b(?:(?:next|this|coming|this coming)\s+)?(?P<wd>{_alternatives(WEEKDAYS)})s?"
            r"\b(?P<after>\s+after next)?",
        ),
        ("the_day", r"\b(?:the\s+)?(?P<day>\d{1,2}(?:st|nd|rd|th))\b"),
        ("the_bare_day", rf"\bthe\s+(?P<day>\d{{1,2}}){_BARE_THE_DAY}"),
        ("the_word_day", rf"\bthe\s+(?P<day>{_alternatives(ORDINALS)})\b"),
    )
)


@dataclass(frozen=True)
class DateHit:
    """A day named in the text, resolved, and where it was named."""

    value: date
    start: int
    end: int


@dataclass(frozen=True)
class SpanHit:
    """A length of time in the text: ``iso`` like ``P2W``, or None when vague."""

    iso: str | None
    start: int
    end: int


# Something every date pattern needs: a digit, or a word naming a day or month.
_MAYBE_A_DATE = re.compile(
    r"\d|tomorrow|fortnight|month|week|day|"
    + "|".join(sorted({word[:3] for word in (*MONTHS, *WEEKDAYS, *ORDINALS)}))
)


class _NotADate(Exception):
    """The words look like a date but are not one here ("the 3rd may work")."""


def find_dates(text: str, today: date) -> list[DateHit]:
    """Every resolvable date in ``text`` (normalized), in order, none overlapping."""
    if not _MAYBE_A_DATE.search(text):
        return []  # most texts name no day: one quick look instead of every pattern
    hits: list[DateHit] = []
    taken: list[tuple[int, int]] = []
    for name, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            if any(match.start() < end and start < match.end() for start, end in taken):
                continue
            try:
                value = _resolve(name, match, text, today)
            except _NotADate:
                continue
            # An impossible date ("feb 30") is still taken, so that no later
            # pattern rereads part of it ("the 30th").
            taken.append((match.start(), match.end()))
            if value is not None:
                hits.append(DateHit(value, match.start(), match.end()))
    return sorted(hits, key=lambda hit: hit.start)


_SET_ASIDE = re.compile(r"\b(?:from|instead of|not|rather than|than|was|of)\s+(?:on\s+)?$")
_WANTED_BEFORE = re.compile(r"\b(?:to|into|for|until|till|til)\s+(?:on\s+)?$")
_WANTED_AFTER = re.compile(r"\s*(?:instead|please|pls|works better|would be better)\b")


def pick_date(text: str, today: date) -> DateHit | None:
    """The date the customer asks for (see :func:`choose_date`)."""
    return choose_date(text, find_dates(text, today))


def choose_date(text: str, hits: list[DateHit]) -> DateHit | None:
    """The one of ``hits`` the customer asks for, when the text names more than one.

    "from the 3rd to the 10th" is the 10th; "I'm away the 15th, send it on
    the 20th instead" the 20th. A date after "from", "instead of", "not" or
    "rather than" is the one being replaced; one after "to"/"until" or
    before "instead" is the one wanted; otherwise the first counts.
    """
    if len(hits) < 2:
        return hits[0] if hits else None
    return max(hits, key=lambda hit: (_weight(text, hit), -hit.start))


def _weight(text: str, hit: DateHit) -> int:
    before = text[max(0, hit.start - 16) : hit.start]
    if _SET_ASIDE.search(before):
        return -1
    wanted = _WANTED_BEFORE.search(before) or _WANTED_AFTER.match(text, hit.end)
    return 1 if wanted else 0


def _resolve(name: str, match: re.Match[str], text: str, today: date) -> date | None:
    groups = match.groupdict()
    if name == "iso":
        return _exact(int(groups["year"]), int(groups["m"]), int(groups["d"]), today)
    if name == "numeric":
        year = groups["y"]
        if year is not None:
            full = int(year) + (2000 if len(year) == 2 else 0)
            return _exact(full, int(groups["m"]), int(groups["d"]), today)
        return next_month_day(today, int(groups["m"]), int(groups["d"]))
    if name in ("month_day", "day_month"):
        return _month_day(name, match, text, today)
    if name == "day_of_month":
        return _day_of_month(groups["which"], _day_number(groups["day"]), today)
    return _resolve_relative(name, match, text, today)


def _resolve_relative(name: str, match: re.Match[str], text: str, today: date) -> date | None:
    groups = match.groupdict()
    if name in ("relative", "from_now"):
        count = number_value(groups["n"])
        return None if not count else _plus(today, count, groups["unit"])
    if name == "fortnight":
        return today + timedelta(weeks=2)
    if name in ("tomorrow", "after_tomorrow"):
        return today + timedelta(days=1 if name == "tomorrow" else 2)
    if name == "week_from_day":
        return next_weekday(today, WEEKDAYS[groups["wd"]]) + timedelta(weeks=1)
    if name in ("month_end", "next_month_end", "next_month_start"):
        return _month_edge(name, today)
    if name == "weekday":
        return _weekday(match, text, today)
    if _NOT_A_DAY.match(text, match.end()):
        raise _NotADate
    return next_day_of_month(today, _day_number(groups["day"]))


def _weekday(match: re.Match[str], text: str, today: date) -> date | None:
    word = match["wd"]
    if word in _SHORT_DAYS and match.group() == word:
        alone = text.strip(" .!?") == word
        if not alone and not _DAY_INTRO.search(text[: match.start()]):
            raise _NotADate
    day = next_weekday(today, WEEKDAYS[word])
    return day + timedelta(weeks=1) if match["after"] else day


def _month_day(name: str, match: re.Match[str], text: str, today: date) -> date | None:
    month_word, day = match["month"], _day_number(match["day"])
    if month_word == "may" and not _may_is_a_month(name, match, text):
        raise _NotADate
    month = MONTHS[month_word]
    if match["year"]:
        return _exact(int(match["year"]), month, day, today)
    return next_month_day(today, month, day)


def _may_is_a_month(name: str, match: re.Match[str], text: str) -> bool:
    # "may" is mostly the verb: "the 3rd may work", "may 2 bags be added?"
    if name == "day_month":
        return " of may" in match.group() or not re.match(r"\s*[a-z0-9]", text[match.end() :])
    # "may 3" is the month unless a subject comes first ("it may 3...").
    before = text[: match.start()]
    return not re.search(r"\b(?:i|you|we|they|he|she|it|that|this|which|who)\s+$", before)


def _day_number(word: str) -> int:
    digits = word.rstrip("stndrh")
    return int(digits) if digits.isdigit() else ORDINALS[word]


def _exact(year: int, month: int, day: int, today: date) -> date | None:
    value = _valid(year, month, day)
    return value if value is not None and value > today else None


def _valid(year: int, month: int, day: int) -> date | None:
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]):
        return None
    return date(year, month, day)


def next_month_day(today: date, month: int, day: int) -> date | None:
    """The first ``month``/``day`` strictly after ``today`` (Feb 29 waits up to 8 years)."""
    for year in range(today.year, today.year + 9):
        value = _valid(year, month, day) if 1 <= month <= 12 else None
        if value is not None and value > today:
            return value
    return None


def next_day_of_month(today: date, day: int) -> date | None:
    """The first day numbered ``day`` strictly after ``today``, skipping short months."""
    for ahead in range(13):
        index = today.month - 1 + ahead
        value = _valid(today.year + index // 12, index % 12 + 1, day)
        if value is not None and value > today:
            return value
    return None


def next_weekday(today: date, weekday: int) -> date:
    """The first ``weekday`` (Monday 0) strictly after ``today``."""
    return today + timedelta(days=(weekday - today.weekday() - 1) % 7 + 1)


def _day_of_month(which: str, day: int, today: date) -> date | None:
    if which != "next":
        return next_day_of_month(today, day)
    index = today.month  # next month, zero-based
    return _valid(today.year + index // 12, index % 12 + 1, day)


def _month_edge(name: str, today: date) -> date:
    index = today.month  # next month, zero-based
    following = date(today.year + index // 12, index % 12 + 1, 1)
    if name == "next_month_start":
        return following
    this_end = following - timedelta(days=1)
    if name == "month_end" and this_end > today:
        return this_end
    return add_months(following, 1) - timedelta(days=1)


def add_months(start: date, months: int) -> date:
    """``start`` plus calendar months, clamped to the month's last day."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def _plus(today: date, count: int, unit: str) -> date:
    if unit == "day":
        return today + timedelta(days=count)
    if unit == "week":
        return today + timedelta(weeks=count)
    return add_months(today, count * (12 if unit == "year" else 1))


# -- spans ---------------------------------------------------------------------

_SPAN = re.compile(
    rf"\b(?P<n>{NUMBER})\s+(?:more\s+|extra\s+|additional\s+|whole\s+|full\s+)?"
    r"(?P<unit>day|week|month|year)s?\b"
    r"|\b(?:a\s+|one\s+)?(?P<fortnight>fortnight)\b"
)
_VAGUE_SPAN = re.compile(
    r"\b(?:a\s+)?few\s+(?:more\s+)?(?:day|week|month)s\b|\bseveral\s+(?:day|week|month)s\b"
    r"|\b(?:day|week|month)s\s+or\s+(?:so|two)\b"
)
_NOT_A_SPAN_BEFORE = re.compile(
    r"\b(?:in|within|after|every|each|per|once|twice|than|about every)\s+(?:about\s+|another\s+)?$"
)
_NOT_A_SPAN_AFTER = re.compile(
    r"\s*(?:from\s+(?:now|today|tomorrow|mon|tue|wed|thu|fri|sat|sun)|ago|'?s? time|old\b|supply)"
)
_VAGUE_AROUND = re.compile(r"\s*(?:or\s+(?:two|three|so|\d)|and a half|-\s*\d|to\s+\d)")
_RANGE_BEFORE = re.compile(r"(?:\d|one|two|three|four)\s*(?:-|to|or)\s*$|\bhalf\s+$")
_ISO_UNIT = {"day": "D", "week": "W", "month": "M", "year": "Y"}


def find_span(text: str) -> SpanHit | None:
    """The first span in ``text`` (normalized) that is not a date or a frequency."""
    for match in _SPAN.finditer(text):
        before = text[max(0, match.start() - 20) : match.start()]
        if _NOT_A_SPAN_BEFORE.search(before) or _NOT_A_SPAN_AFTER.match(text, match.end()):
            continue
        if match["fortnight"]:
            return SpanHit("P2W", match.start(), match.end())
        count = number_value(match["n"])
        vague = _VAGUE_AROUND.match(text, match.end()) or _RANGE_BEFORE.search(before)
        if vague or not count:
            return SpanHit(None, match.start(), match.end())
        return SpanHit(f"P{count}{_ISO_UNIT[match['unit']]}", match.start(), match.end())
    vague_match = _VAGUE_SPAN.search(text)
    if vague_match is not None:
        return SpanHit(None, vague_match.start(), vague_match.end())
    return None
