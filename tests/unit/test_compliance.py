"""Quiet hours in the customer's local time and the rolling frequency cap."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dunwell.domain.compliance import (
    SendWindow,
    earliest_send_time,
    local_zone,
    next_allowed_by_cap,
    next_window_opening,
    window_closing,
)

NEW_YORK = ZoneInfo("America/New_York")
DAY = timedelta(hours=24)
WINDOW = SendWindow()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(
    zone: ZoneInfo, year: int, month: int, day: int, hour: int, minute: int, fold: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone, fold=fold)


# --- SendWindow -------------------------------------------------------------------


def test_the_default_window_is_eight_to_half_past_eight() -> None:
    assert (WINDOW.start, WINDOW.end) == (time(8, 0), time(20, 30))


def test_the_widest_legal_window_is_eight_to_nine() -> None:
    assert SendWindow(time(8, 0), time(21, 0)).end == time(21, 0)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        pytest.param(time(7, 59), time(20, 0), "start 07:59:00 is before 08:00", id="early"),
        pytest.param(time(9, 0), time(21, 0, 1), "end 21:00:01 is after 21:00", id="late"),
        pytest.param(time(12, 0), time(12, 0), "is not before its end", id="empty"),
        pytest.param(time(18, 0), time(9, 0), "is not before its end", id="reversed"),
        pytest.param(time(9, 0, tzinfo=UTC), time(17, 0), "without a zone", id="zoned"),
    ],
)
def test_a_window_outside_the_legal_hours_is_refused_naming_the_bound(
    start: time, end: time, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SendWindow(start, end)


# --- local_zone -------------------------------------------------------------------


def test_the_customers_own_zone_comes_first() -> None:
    assert local_zone("Europe/Paris", "America/New_York", "UTC").key == "Europe/Paris"


@pytest.mark.parametrize(
    "customer_zone",
    [None, "", "Mars/Olympus_Mons", "America", "../etc/passwd", "/etc/localtime", "Etc/Unknown"],
)
def test_a_missing_or_unusable_customer_zone_falls_back_to_the_phones(
    customer_zone: str | None,
) -> None:
    assert local_zone(customer_zone, "America/Chicago", "UTC").key == "America/Chicago"


@pytest.mark.parametrize("phone_zone", [None, "", "Nowhere/Special"])
def test_without_a_customer_or_phone_zone_the_sites_zone_is_used(phone_zone: str | None) -> None:
    assert local_zone(None, phone_zone, "Australia/Adelaide").key == "Australia/Adelaide"


def test_an_unknown_site_zone_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="unknown site time zone 'Atlantis/Capital'"):
        local_zone(None, None, "Atlantis/Capital")


# --- next_window_opening ----------------------------------------------------------


def test_inside_the_window_the_opening_is_now() -> None:
    now = utc(2026, 6, 3, 14, 0)  # 10:00 in New York
    assert next_window_opening(now, NEW_YORK, WINDOW) == now


def test_the_window_opens_at_its_start_and_closes_at_its_end() -> None:
    opening = local(NEW_YORK, 2026, 6, 3, 8, 0).astimezone(UTC)
    closing = local(NEW_YORK, 2026, 6, 3, 20, 30).astimezone(UTC)
    assert next_window_opening(opening, NEW_YORK, WINDOW) == opening
    assert next_window_opening(closing - timedelta(microseconds=1), NEW_YORK, WINDOW) == (
        closing - timedelta(microseconds=1)
    )
    assert next_window_opening(closing, NEW_YORK, WINDOW) == opening + DAY


def test_before_the_window_it_opens_at_todays_start() -> None:
    now = local(NEW_YORK, 2026, 6, 3, 6, 15).astimezone(UTC)
    assert next_window_opening(now, NEW_YORK, WINDOW) == utc(2026, 6, 3, 12, 0)


def test_after_the_window_it_opens_at_tomorrows_start() -> None:
    now = local(NEW_YORK, 2026, 6, 3, 22, 0).astimezone(UTC)
    assert next_window_opening(now, NEW_YORK, WINDOW) == utc(2026, 6, 4, 12, 0)


def test_the_opening_is_in_utc_whatever_zone_now_is_given_in() -> None:
    now = local(NEW_YORK, 2026, 6, 3, 10, 0)
    opening = next_window_opening(now, NEW_YORK, WINDOW)
    assert opening.tzinfo is UTC
    assert opening == now


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_window_opening(datetime(2026, 6, 3, 10, 0), NEW_YORK, WINDOW)


def test_half_hour_offsets_are_respected() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+05:30
    assert next_window_opening(utc(2026, 1, 1, 0, 0), kolkata, WINDOW) == utc(2026, 1, 1, 2, 30)
    st_johns = ZoneInfo("America/St_Johns")  # UTC-03:30 in summer
    assert next_window_opening(utc(2026, 7, 1, 0, 0), st_johns, WINDOW) == utc(2026, 7, 1, 10, 30)


def test_a_southern_summer_time_is_respected() -> None:
    adelaide = ZoneInfo("Australia/Adelaide")  # UTC+10:30 in January
    late_evening = utc(2026, 1, 1, 12, 0)  # 22:30 in Adelaide
    assert next_window_opening(late_evening, adelaide, WINDOW) == utc(2026, 1, 1, 21, 30)


def test_a_window_closes_at_its_local_end_on_the_same_day() -> None:
    morning = local(NEW_YORK, 2026, 6, 3, 8, 0).astimezone(UTC)
    closing = local(NEW_YORK, 2026, 6, 3, 20, 30).astimezone(UTC)
    assert window_closing(morning, NEW_YORK, WINDOW) == closing == utc(2026, 6, 4, 0, 30)
    last_moment = closing - timedelta(microseconds=1)
    assert window_closing(last_moment, NEW_YORK, WINDOW) == closing
    assert window_closing(closing, NEW_YORK, SendWindow(end=time(21, 0))) == closing + timedelta(
        minutes=30
    )


def test_the_closing_is_asked_only_inside_the_window() -> None:
    with pytest.raises(ValueError, match="outside the send window"):
        window_closing(local(NEW_YORK, 2026, 6, 3, 20, 30), NEW_YORK, WINDOW)
    with pytest.raises(ValueError, match="outside the send window"):
        window_closing(local(NEW_YORK, 2026, 6, 3, 7, 59), NEW_YORK, WINDOW)


def test_on_the_spring_forward_day_the_window_closes_at_half_past_eight_daylight_time_too() -> None:
    noon = local(NEW_YORK, 2024, 3, 10, 12, 0)
    assert window_closing(noon, NEW_YORK, WINDOW) == utc(2024, 3, 11, 0, 30)


# America/New_York springs forward on 2024-03-10 at 02:00 (EST -5 to EDT -4) and
# falls back on 2024-11-03 at 02:00 (EDT -4 to EST -5).


def test_on_the_spring_forward_day_the_window_opens_at_eight_daylight_time() -> None:
    before_the_jump = utc(2024, 3, 10, 6, 0)  # 01:00 EST
    # 13:00 UTC would be 24 hours after the previous day's opening: 09:00 EDT.
    assert next_window_opening(before_the_jump, NEW_YORK, WINDOW) == utc(2024, 3, 10, 12, 0)


def test_the_evening_before_spring_forward_waits_for_eight_daylight_time() -> None:
    evening = local(NEW_YORK, 2024, 3, 9, 20, 45).astimezone(UTC)
    assert next_window_opening(evening, NEW_YORK, WINDOW) == utc(2024, 3, 10, 12, 0)


def test_on_the_spring_forward_day_the_window_closes_at_half_past_eight_daylight_time() -> None:
    assert next_window_opening(utc(2024, 3, 11, 0, 29), NEW_YORK, WINDOW) == utc(2024, 3, 11, 0, 29)
    assert next_window_opening(utc(2024, 3, 11, 0, 30), NEW_YORK, WINDOW) == utc(2024, 3, 11, 12)


@pytest.mark.parametrize("fold", [0, 1], ids=["first 01:30 (EDT)", "second 01:30 (EST)"])
def test_on_the_fall_back_day_the_window_opens_at_eight_standard_time(fold: int) -> None:
    repeated_hour = local(NEW_YORK, 2024, 11, 3, 1, 30, fold=fold)
    assert next_window_opening(repeated_hour, NEW_YORK, WINDOW) == utc(2024, 11, 3, 13, 0)


def test_the_evening_before_fall_back_waits_for_eight_standard_time() -> None:
    evening = local(NEW_YORK, 2024, 11, 2, 21, 0).astimezone(UTC)
    assert next_window_opening(evening, NEW_YORK, WINDOW) == utc(2024, 11, 3, 13, 0)


def test_a_start_skipped_by_a_spring_forward_opens_at_the_first_instant_after_the_jump() -> None:
    # Athens sprang forward from 09:00 to 10:00 on 1979-04-01, so 09:30 never happened.
    athens = ZoneInfo("Europe/Athens")
    assert local(athens, 1979, 4, 1, 8, 59).utcoffset() == timedelta(hours=2)
    assert local(athens, 1979, 4, 1, 10, 0).utcoffset() == timedelta(hours=3)
    window = SendWindow(time(9, 30), time(20, 0))
    opening = next_window_opening(utc(1979, 4, 1, 5, 0), athens, window)
    assert opening == utc(1979, 4, 1, 7, 0)
    assert opening.astimezone(athens).time() == time(10, 0)


def test_a_fall_back_into_the_window_reopens_it_at_that_instant() -> None:
    # Easter Island set its clocks back from 21:00 to 20:00 on 1981-03-14.
    easter = ZoneInfo("Pacific/Easter")
    first_pass = local(easter, 1981, 3, 14, 20, 45)
    assert first_pass.utcoffset() == timedelta(hours=-6)
    opening = next_window_opening(first_pass, easter, WINDOW)
    assert opening == utc(1981, 3, 15, 3, 0)
    assert opening.astimezone(easter).time() == time(20, 0)


def test_a_day_skipped_by_the_zone_has_no_window() -> None:
    # Samoa skipped 2011-12-30 when it crossed the date line.
    apia = ZoneInfo("Pacific/Apia")
    evening = local(apia, 2011, 12, 29, 21, 0)
    opening = next_window_opening(evening, apia, WINDOW)
    assert opening.astimezone(apia).replace(tzinfo=None) == datetime(2011, 12, 31, 8, 0)


# --- next_allowed_by_cap ----------------------------------------------------------

NOW = utc(2026, 6, 3, 15, 0)


def hours_ago(*hours: float) -> list[datetime]:
    return [NOW - timedelta(hours=h) for h in hours]


def test_with_fewer_sends_than_the_cap_a_send_is_allowed_now() -> None:
    assert next_allowed_by_cap(NOW, hours_ago(1, 2)) == NOW


def test_with_no_sends_a_send_is_allowed_now() -> None:
    assert next_allowed_by_cap(NOW, []) == NOW


def test_at_the_cap_the_next_send_waits_for_the_oldest_to_leave_the_period() -> None:
    assert next_allowed_by_cap(NOW, hours_ago(1, 5, 20)) == NOW + timedelta(hours=4)


def test_sends_outside_the_period_do_not_count() -> None:
    assert next_allowed_by_cap(NOW, hours_ago(1, 2, 30, 40)) == NOW


def test_a_send_exactly_one_period_ago_has_left_it() -> None:
    assert next_allowed_by_cap(NOW, hours_ago(0, 1, 24)) == NOW


def test_a_send_made_just_now_counts() -> None:
    assert next_allowed_by_cap(NOW, hours_ago(0, 1, 2)) == NOW + timedelta(hours=22)


def test_well_over_the_cap_the_wait_lasts_until_enough_sends_have_left() -> None:
    # Four of the five must leave before fewer than two remain.
    sends = hours_ago(1, 2, 3, 4, 5)
    assert next_allowed_by_cap(NOW, sends, cap=2) == NOW + timedelta(hours=22)


def test_the_cap_and_period_are_configurable() -> None:
    sends = hours_ago(1, 2)
    assert next_allowed_by_cap(NOW, sends, cap=1, period=timedelta(hours=6)) == NOW + timedelta(
        hours=5
    )


def test_the_order_of_sends_does_not_matter() -> None:
    assert next_allowed_by_cap(NOW, hours_ago(20, 1, 5)) == NOW + timedelta(hours=4)


def test_a_send_dated_after_now_counts_from_its_time() -> None:
    sends = [*hours_ago(1, 2), NOW + timedelta(hours=1)]
    assert next_allowed_by_cap(NOW, sends) == NOW
    assert next_allowed_by_cap(NOW + timedelta(hours=1), sends) == NOW + timedelta(hours=22)


@pytest.mark.parametrize(
    ("cap", "period", "message"),
    [
        pytest.param(0, DAY, "at least 1", id="a zero cap"),
        pytest.param(3, timedelta(0), "positive", id="an empty period"),
    ],
)
def test_a_cap_that_could_never_be_met_is_refused(
    cap: int, period: timedelta, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        next_allowed_by_cap(NOW, [], cap, period)


def test_a_naive_send_time_is_refused() -> None:
    with pytest.raises(ValueError, match="a send time must be an aware datetime"):
        next_allowed_by_cap(NOW, [datetime(2026, 6, 3, 14, 0)])


# --- earliest_send_time -----------------------------------------------------------


def test_inside_the_window_and_under_the_cap_a_text_goes_now() -> None:
    assert earliest_send_time(NOW, NEW_YORK, WINDOW, hours_ago(1)) == NOW


def test_a_cap_that_lifts_inside_the_window_sends_then() -> None:
    sends = [utc(2026, 6, 3, 0, 20), utc(2026, 6, 3, 0, 25), utc(2026, 6, 3, 0, 30)]
    # 2026-06-04 00:20 UTC is 20:20 in New York, ten minutes before the window closes.
    assert earliest_send_time(NOW, NEW_YORK, WINDOW, sends) == utc(2026, 6, 4, 0, 20)


def test_a_cap_that_lifts_after_the_window_waits_for_the_next_morning() -> None:
    sends = [utc(2026, 6, 3, 0, 35), utc(2026, 6, 3, 0, 40), utc(2026, 6, 3, 0, 45)]
    assert earliest_send_time(NOW, NEW_YORK, WINDOW, sends) == utc(2026, 6, 4, 12, 0)


def test_a_cap_that_lifts_as_the_window_opens_on_a_dst_day_sends_at_the_opening() -> None:
    sends = [utc(2024, 3, 9, 12, 0), utc(2024, 3, 9, 12, 0), utc(2024, 3, 9, 12, 0)]
    night = utc(2024, 3, 10, 4, 0)
    assert earliest_send_time(night, NEW_YORK, WINDOW, sends) == utc(2024, 3, 10, 12, 0)


def test_a_cap_still_in_force_at_the_opening_delays_the_text_inside_the_window() -> None:
    window = SendWindow(time(9, 0), time(10, 0))
    sends = [local(NEW_YORK, 2026, 6, 2, 9, 5), local(NEW_YORK, 2026, 6, 2, 9, 10)]
    evening = local(NEW_YORK, 2026, 6, 2, 20, 0)
    period = timedelta(hours=24, minutes=30)
    result = earliest_send_time(evening, NEW_YORK, window, sends, cap=2, period=period)
    assert result == local(NEW_YORK, 2026, 6, 3, 9, 35).astimezone(UTC)


def test_a_cap_that_lifts_after_the_window_closes_waits_for_the_next_opening() -> None:
    window = SendWindow(time(9, 0), time(10, 0))
    sends = [local(NEW_YORK, 2026, 6, 2, 9, 5), local(NEW_YORK, 2026, 6, 2, 9, 10)]
    now = local(NEW_YORK, 2026, 6, 2, 9, 15)
    period = timedelta(hours=26)
    result = earliest_send_time(now, NEW_YORK, window, sends, cap=2, period=period)
    assert result == local(NEW_YORK, 2026, 6, 4, 9, 0).astimezone(UTC)


# --- properties -------------------------------------------------------------------

ZONES = (
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "America/St_Johns",
    "America/Santiago",
    "America/Havana",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Athens",
    "Africa/Casablanca",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tehran",
    "Australia/Adelaide",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Pacific/Auckland",
    "Pacific/Apia",
    "Pacific/Easter",
    "Antarctica/Vostok",
)
EARLIEST = datetime(1970, 1, 2)
LATEST = datetime(2040, 1, 1)


@functools.cache
def offset_changes(key: str) -> tuple[datetime, ...]:
    """Every instant between 1970 and 2040 at which the zone's offset changes."""
    zone = ZoneInfo(key)
    changes: list[datetime] = []
    moment, offset = EARLIEST.replace(tzinfo=UTC), None
    while moment < LATEST.replace(tzinfo=UTC):
        current = moment.astimezone(zone).utcoffset()
        if offset is not None and current != offset:
            changes.append(_bisect_change(zone, moment - DAY, moment))
        offset, moment = current, moment + DAY
    return tuple(changes)


def _bisect_change(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    offset = before.astimezone(zone).utcoffset()
    while after - before > timedelta(seconds=1):
        middle = before + (after - before) / 2
        if middle.astimezone(zone).utcoffset() == offset:
            before = middle
        else:
            after = middle
    return after


@st.composite
def zones_and_instants(draw: st.DrawFn) -> tuple[ZoneInfo, datetime]:
    """A zone and an instant, often within two days of one of its offset changes."""
    key = draw(st.sampled_from(ZONES))
    changes = offset_changes(key)
    near_a_change = draw(st.booleans())
    if changes and near_a_change:
        near = draw(st.sampled_from(changes))
        return ZoneInfo(key), near + timedelta(seconds=draw(st.integers(-2 * 86400, 2 * 86400)))
    moment = draw(st.datetimes(EARLIEST, LATEST, timezones=st.just(UTC)))
    return ZoneInfo(key), moment


@st.composite
def windows(draw: st.DrawFn) -> SendWindow:
    start = draw(st.integers(8 * 60, 21 * 60 - 1))
    end = draw(st.integers(start + 1, 21 * 60))
    return SendWindow(time(*divmod(start, 60)), time(*divmod(end, 60)))


def under_cap(moment: datetime, sends: Sequence[datetime], cap: int, period: timedelta) -> bool:
    return sum(1 for sent in sends if moment - period < sent <= moment) < cap


def minutes_between(start: datetime, end: datetime) -> Iterator[datetime]:
    """Every whole minute after ``start`` and before ``end``, and ``start`` itself."""
    moment = start
    while moment < end:
        yield moment
        moment += timedelta(minutes=1)


TICK = timedelta(microseconds=1)


@settings(deadline=None)
@given(zones_and_instants(), windows())
def test_the_opening_is_the_first_instant_inside_the_window(
    zone_and_now: tuple[ZoneInfo, datetime], window: SendWindow
) -> None:
    zone, now = zone_and_now
    opening = next_window_opening(now, zone, window)
    assert opening >= now
    assert opening.tzinfo is UTC
    assert window.contains(opening, zone)
    assert not any(window.contains(moment, zone) for moment in minutes_between(now, opening))
    if opening > now:
        assert not window.contains(opening - TICK, zone)
    assert next_window_opening(opening, zone, window) == opening


@settings(deadline=None)
@given(
    zones_and_instants(),
    windows(),
    st.lists(st.integers(-48 * 3600, 3 * 3600), max_size=8),
    st.integers(1, 4),
    st.integers(1, 48).map(lambda hours: timedelta(hours=hours)),
)
def test_the_send_time_is_the_first_instant_inside_the_window_and_under_the_cap(
    zone_and_now: tuple[ZoneInfo, datetime],
    window: SendWindow,
    seconds_from_now: list[int],
    cap: int,
    period: timedelta,
) -> None:
    zone, now = zone_and_now
    sends = [now + timedelta(seconds=s) for s in seconds_from_now]
    result = earliest_send_time(now, zone, window, sends, cap, period)

    def allowed(moment: datetime) -> bool:
        return window.contains(moment, zone) and under_cap(moment, sends, cap, period)

    assert result >= now
    assert allowed(result)
    assert not any(allowed(moment) for moment in minutes_between(now, result))
    if result > now:
        assert not allowed(result - TICK)


@given(
    st.datetimes(EARLIEST, LATEST, timezones=st.just(UTC)),
    st.lists(st.integers(-72 * 3600, 6 * 3600), max_size=10),
    st.integers(1, 5),
    st.integers(1, 72).map(lambda hours: timedelta(hours=hours)),
)
def test_the_cap_lifts_at_the_first_instant_under_it(
    now: datetime, seconds_from_now: list[int], cap: int, period: timedelta
) -> None:
    sends = [now + timedelta(seconds=s) for s in seconds_from_now]
    allowed = next_allowed_by_cap(now, sends, cap, period)
    assert allowed >= now
    assert under_cap(allowed, sends, cap, period)
    if allowed > now:
        assert not under_cap(allowed - TICK, sends, cap, period)
