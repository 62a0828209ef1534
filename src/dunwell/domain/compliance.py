"""When a text may go out: the customer's local send window and a rolling frequency cap.

Every instant here is an aware ``datetime``; results are in UTC. The window is wall-clock
time in the customer's zone, so it follows daylight saving: 08:00 stays 08:00 local on
both sides of a change, and the instants in between are worked out from the zone's
actual offsets rather than by adding 24 hours.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The US TCPA forbids telemarketing texts before 8 a.m. and after 9 p.m. at the
# recipient's location; no window may be configured wider than that.
EARLIEST_START = time(8, 0)
LATEST_END = time(21, 0)

# Zone offsets change a couple of times a year; a search that crosses this many
# changes before finding an opening has met corrupt zone data, not a real calendar.
_MAX_OFFSET_CHANGES = 16
_RESOLUTION = timedelta(microseconds=1)


@dataclass(frozen=True)
class SendWindow:
    """Local wall-clock hours ``[start, end)`` during which a text may be sent."""

    start: time = time(8, 0)
    # Half an hour short of the legal limit: a message that queues at 20:59 must not
    # be delivered after 21:00, and some US states stop at 20:00 or 21:00 outright.
    end: time = time(20, 30)

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("send window times are local wall-clock times, without a zone")
        if self.start < EARLIEST_START:
            raise ValueError(f"send window start {self.start} is before {EARLIEST_START}")
        if self.end > LATEST_END:
            raise ValueError(f"send window end {self.end} is after {LATEST_END}")
        if self.start >= self.end:
            raise ValueError(f"send window start {self.start} is not before its end {self.end}")

    def contains(self, moment: datetime, zone: ZoneInfo) -> bool:
        """Whether the aware instant ``moment`` falls inside the window in ``zone``."""
        return self.start <= moment.astimezone(zone).time() < self.end


def local_zone(customer_zone: str | None, phone_zone: str | None, site_zone: str) -> ZoneInfo:
    """The zone to judge quiet hours in: the customer's, else the phone's, else the site's.

    An unknown or malformed customer or phone zone is skipped; an unknown site zone is
    a configuration error and raises ValueError.
    """
    for key in (customer_zone, phone_zone):
        zone = _load_zone(key)
        if zone is not None:
            return zone
    zone = _load_zone(site_zone)
    if zone is None:
        raise ValueError(f"unknown site time zone {site_zone!r}")
    return zone


def next_window_opening(now: datetime, zone: ZoneInfo, window: SendWindow) -> datetime:
    """The earliest instant at or after ``now`` that lies inside ``window`` in ``zone``, in UTC.

    That is ``now`` itself when it is already inside. Otherwise it is the next local
    ``start``: the first occurrence when the clocks fall back through it, and the first
    instant after the jump when they spring forward over it. A fall-back that brings the
    clock back into the window (Easter Island went back from 21:00 to 20:00 until 1982)
    opens it at that moment.
    """
    moment = _utc(now, "now")
    for _ in range(_MAX_OFFSET_CHANGES):
        offset = _offset(moment, zone)
        candidate = _opening_at_fixed_offset(moment, offset, window)
        change = _first_offset_change(moment, candidate, zone, offset)
        if change is None:
            return candidate
        # The offset changed before the candidate: resume from that very instant, which
        # is inside the window when the jump lands there.
        moment = change
    raise ValueError(f"no send window opening found in {zone.key} after {now.isoformat()}")


def window_closing(now: datetime, zone: ZoneInfo, window: SendWindow) -> datetime:
    """When the window that ``now`` lies in closes, in UTC; ValueError outside the window.

    That is the local ``end`` on ``now``'s local date. A text handed over at
    ``now`` must leave the provider by then.
    """
    moment = _utc(now, "now")
    if not window.contains(moment, zone):
        raise ValueError(f"{now.isoformat()} is outside the send window in {zone.key}")
    local_date = moment.astimezone(zone).date()
    closing = datetime.combine(local_date, window.end, tzinfo=zone).astimezone(UTC)
    # Only a clock change between now and the end could put it before now.
    return max(closing, moment)


def next_allowed_by_cap(
    now: datetime,
    recent_sends: Sequence[datetime],
    cap: int = 3,
    period: timedelta = timedelta(hours=24),
) -> datetime:
    """The earliest instant at or after ``now`` with fewer than ``cap`` sends in the trailing
    ``period``, in UTC.

    The period is ``(t - period, t]``: a send leaves it exactly ``period`` after it was
    made. A send dated after ``now`` (already committed for later) counts from its time on.
    """
    _check_cap(cap, period)
    return _earliest_under_cap(_utc(now, "now"), _sorted_sends(recent_sends), cap, period)


def earliest_send_time(
    now: datetime,
    zone: ZoneInfo,
    window: SendWindow,
    recent_sends: Sequence[datetime],
    cap: int = 3,
    period: timedelta = timedelta(hours=24),
) -> datetime:
    """The earliest instant at or after ``now`` inside the window and under the cap, in UTC."""
    _check_cap(cap, period)
    sends = _sorted_sends(recent_sends)
    moment = _utc(now, "now")
    # Each pass that does not return moves to the moment a send leaves the period,
    # and there are only len(sends) of those, so the loop ends.
    while True:
        opening = next_window_opening(moment, zone, window)
        allowed = _earliest_under_cap(opening, sends, cap, period)
        if allowed == opening:
            return opening
        moment = allowed


def _load_zone(key: str | None) -> ZoneInfo | None:
    if not key:
        return None
    try:
        return ZoneInfo(key)
    # Malformed keys raise ValueError, and a key naming a folder ("America") OSError.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got {moment.isoformat()}")
    return moment.astimezone(UTC)


def _offset(moment: datetime, zone: ZoneInfo) -> timedelta:
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset


def _opening_at_fixed_offset(moment: datetime, offset: timedelta, window: SendWindow) -> datetime:
    """The next opening if ``offset`` held for ever: simple wall-clock arithmetic."""
    wall = (moment + offset).replace(tzinfo=None)
    if window.start <= wall.time() < window.end:
        return moment
    day = wall.date() if wall.time() < window.start else wall.date() + timedelta(days=1)
    return (datetime.combine(day, window.start) - offset).replace(tzinfo=UTC)


def _first_offset_change(
    start: datetime, end: datetime, zone: ZoneInfo, offset: timedelta
) -> datetime | None:
    """The first instant in ``(start, end]`` whose offset differs from ``offset``, if any.

    Only ``end`` is probed for a change: two changes that cancel out within the day
    or so between ``start`` and ``end`` do not occur in real zones.
    """
    if _offset(end, zone) == offset:
        return None
    before, after = start, end
    # Zone transitions fall on whole seconds, so halving to one microsecond finds the
    # exact instant; about 40 steps for a day.
    while after - before > _RESOLUTION:
        middle = before + (after - before) / 2
        if _offset(middle, zone) == offset:
            before = middle
        else:
            after = middle
    return after


def _check_cap(cap: int, period: timedelta) -> None:
    if cap < 1:
        raise ValueError(f"frequency cap must be at least 1, got {cap}")
    if period <= timedelta(0):
        raise ValueError(f"frequency cap period must be positive, got {period}")


def _sorted_sends(recent_sends: Sequence[datetime]) -> list[datetime]:
    return sorted(_utc(sent, "a send time") for sent in recent_sends)


def _earliest_under_cap(
    moment: datetime, sends: list[datetime], cap: int, period: timedelta
) -> datetime:
    # The count in the period only falls when a send leaves it, so the answer is
    # ``moment`` or one of those departures; the last departure always qualifies.
    departures = (sent + period for sent in sends if sent + period > moment)
    for candidate in (moment, *departures):
        if _sends_within(sends, candidate, period) < cap:
            return candidate
    raise AssertionError("the period after the last send is empty")


def _sends_within(sends: list[datetime], moment: datetime, period: timedelta) -> int:
    # ``sends`` is sorted: count those in (moment - period, moment] by bisection.
    return bisect_right(sends, moment) - bisect_right(sends, moment - period)
