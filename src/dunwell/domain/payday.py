"""A customer's payday: a weekday ("friday") or a day of the month ("15", "last").

Retrying on the day money arrives recovers more soft declines than a fixed
cadence; the dunning decision moves the next retry to the next payday.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Payday:
    weekday: int | None = None  # 0 = Monday
    month_day: int | None = None  # 1..31; 31 or "last" means the month's last day

    def next_on_or_after(self, day: date) -> date:
        if self.weekday is not None:
            return day + timedelta(days=(self.weekday - day.weekday()) % 7)
        assert self.month_day is not None
        candidate = _clamped(day.year, day.month, self.month_day)
        if candidate >= day:
            return candidate
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        return _clamped(year, month, self.month_day)

    def __str__(self) -> str:
        if self.weekday is not None:
            return WEEKDAYS[self.weekday]
        return "last" if self.month_day == 31 else str(self.month_day)


def parse_payday(text: str) -> Payday:
    """Parse ``friday``, ``15`` or ``last``; raise ValueError naming the problem."""
    value = text.strip().lower()
    if value in WEEKDAYS:
        return Payday(weekday=WEEKDAYS.index(value))
    if value == "last":
        return Payday(month_day=31)
    if value.isdigit() and 1 <= int(value) <= 31:
        return Payday(month_day=int(value))
    raise ValueError(f"payday {text!r} must be a weekday name, a day of the month 1-31, or 'last'")


def _clamped(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))
