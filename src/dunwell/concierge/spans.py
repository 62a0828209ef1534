"""ISO-8601 spans (``P2W``, ``P1M``, ``P10D``) applied to calendar dates.

Months are calendar months, clamped to the month's last day (31 January
plus one month is 28 or 29 February), as a customer would count them.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

SPAN = re.compile(r"^P(\d{1,3})([DWMY])$")
#: The delay the concierge proposes when the customer gives none.
DEFAULT_DELAY = "P1M"


def add_span(start: date, span: str) -> date:
    """``start`` moved forward by ``span``; ValueError for anything but PnD/PnW/PnM/PnY."""
    match = SPAN.match(span)
    if match is None:
        raise ValueError(f"{span!r} is not a span like P2W or P1M")
    count, unit = int(match[1]), match[2]
    if unit == "D":
        return start + timedelta(days=count)
    if unit == "W":
        return start + timedelta(weeks=count)
    months = count * (12 if unit == "Y" else 1)
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def describe_span(span: str) -> str:
    """``P2W`` -> "2 weeks", ``P1M`` -> "a month"."""
    match = SPAN.match(span)
    if match is None:
        return span
    count, unit = int(match[1]), match[2]
    word = {"D": "day", "W": "week", "M": "month", "Y": "year"}[unit]
    if count == 1:
        return f"a {word}"
    return f"{count} {word}s"
