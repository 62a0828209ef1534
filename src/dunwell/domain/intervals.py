"""Billing intervals: the start of period N from a subscription's anchor."""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta
from enum import StrEnum


class IntervalUnit(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


def period_start(anchor: datetime, unit: IntervalUnit, count: int, period: int) -> datetime:
    """When period ``period`` (0 = the first) begins.

    Months are counted from the anchor and clamped to the month's length, so
    a subscription anchored on Jan 31 renews on Feb 28, then Mar 31.
    """
    steps = count * period
    if unit is IntervalUnit.DAY:
        return anchor + timedelta(days=steps)
    if unit is IntervalUnit.WEEK:
        return anchor + timedelta(weeks=steps)
    months = steps * (12 if unit is IntervalUnit.YEAR else 1)
    index = anchor.month - 1 + months
    year, month = anchor.year + index // 12, index % 12 + 1
    day = min(anchor.day, calendar.monthrange(year, month)[1])
    return anchor.replace(year=year, month=month, day=day)


def first_period_from(
    anchor: datetime,
    unit: IntervalUnit,
    count: int,
    period: int,
    starts: datetime,
    now: datetime,
) -> tuple[int, datetime]:
    """The first period from ``period`` (starting at ``starts``) that starts at or after ``now``.

    A subscription that comes back from a pause renews from the next period
    boundary: the periods it spent paused are not billed.
    """
    while starts < now:
        period += 1
        starts = period_start(anchor, unit, count, period)
    return period, starts
