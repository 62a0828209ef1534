"""Sites (tenants) and their sandbox test clocks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, select, update

from dunwell.clock import Clock
from dunwell.domain.policy import default_policy
from dunwell.domain.states import Collection, SiteMode
from dunwell.services.errors import Conflict, InvalidInput, NotFound
from dunwell.services.events import EventBatch
from dunwell.services.policies import create_policy
from dunwell.store.sql import insert_one
from dunwell.store.tables import sites

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
#: A test clock stops here: past it, every date the API takes (2000 to 2100,
#: see ``api/pagination.py``) would be in the past, and nothing could be done.
LAST_YEAR = 2100
#: The first instant a test clock cannot reach.
CLOCK_END = datetime(LAST_YEAR + 1, 1, 1, tzinfo=UTC)
#: More than a test clock can ever move, and short enough for a timedelta.
LONGEST_DURATION = timedelta(days=366 * (LAST_YEAR - 2000 + 1))
_DURATION_PART = re.compile(r"(\d+)\s*([wdhms])")


def create_site(
    conn: Connection,
    clock: Clock,
    *,
    slug: str,
    name: str,
    mode: SiteMode = SiteMode.SANDBOX,
    currency: str = "USD",
    time_zone: str = "UTC",
    locale: str = "en",
    support_email: str | None = None,
    clock_start: datetime | None = None,
) -> int:
    """Create a site with the default automatic and manual dunning policies."""
    if not SLUG.match(slug):
        raise InvalidInput("slug", "use 2-63 lowercase letters, digits and dashes")
    if conn.execute(select(sites.c.id).where(sites.c.slug == slug)).first():
        raise Conflict(f"a site with slug {slug!r} already exists")
    _check_zone(time_zone)
    now = clock.now()
    site_id = insert_one(
        conn,
        sites,
        slug=slug,
        name=name,
        mode=mode.value,
        currency=currency.upper(),
        time_zone=time_zone,
        locale=locale,
        support_email=support_email,
        # A sandbox site's test clock starts at the real time and then
        # only moves when advanced.
        clock_now=(clock_start or now) if mode is SiteMode.SANDBOX else None,
        created_at=now,
    )
    for kind in Collection:
        create_policy(conn, site_id, kind, default_policy(kind), now)
    return site_id


def site_id_for(conn: Connection, slug: str) -> int:
    row = conn.execute(select(sites.c.id).where(sites.c.slug == slug)).first()
    if row is None:
        raise NotFound(f"no site {slug!r}")
    return int(row.id)


def site_now(conn: Connection, site_id: int, clock: Clock) -> datetime:
    """The site's test clock when it has one, else the real (injected) time."""
    row = conn.execute(select(sites.c.clock_now).where(sites.c.id == site_id)).first()
    if row is None:
        raise NotFound(f"no site with id {site_id}")
    return row.clock_now or clock.now()


def advance_clock(conn: Connection, site_id: int, by: timedelta) -> datetime:
    """Move a sandbox site's test clock forward; the worker then does what is due."""
    row = conn.execute(select(sites.c.mode, sites.c.clock_now).where(sites.c.id == site_id)).first()
    if row is None:
        raise NotFound(f"no site with id {site_id}")
    if row.mode != SiteMode.SANDBOX.value or row.clock_now is None:
        raise Conflict("only sandbox sites have a test clock")
    if by <= timedelta(0):
        raise InvalidInput("by", "a test clock only moves forward")
    # Compared as durations: the sum of a far-off one would overflow.
    if by >= CLOCK_END - row.clock_now:
        raise InvalidInput("by", f"would move the test clock past the year {LAST_YEAR}")
    new_now: datetime = row.clock_now + by
    conn.execute(update(sites).where(sites.c.id == site_id).values(clock_now=new_now))
    batch = EventBatch()
    batch.add(site_id, "clock.advanced", new_now, by_seconds=int(by.total_seconds()))
    batch.write(conn)
    return new_now


def parse_duration(text: str) -> timedelta:
    """Parse ``3d``, ``12h``, ``90m``, ``2w`` or a combination like ``1d12h``."""
    units = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
    parts = _DURATION_PART.findall(text.strip().lower())
    if not parts or _DURATION_PART.sub("", text.lower()).strip():
        raise InvalidInput("duration", f"{text!r} is not like 3d, 12h, 90m or 1d12h")
    # Bounded before timedelta() and int(), which overflow or refuse a
    # number of thousands of digits.
    longest = int(LONGEST_DURATION.total_seconds())
    seconds = 0
    for number, unit in parts:
        digits = number.lstrip("0") or "0"
        seconds += int(digits) * units[unit] if len(digits) <= 12 else longest + 1
        if seconds > longest:
            raise InvalidInput("duration", f"is longer than a test clock can move (to {LAST_YEAR})")
    return timedelta(seconds=seconds)


def _check_zone(name: str) -> None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a folder of the zone database, such as "America".
        raise InvalidInput("time_zone", f"{name!r} is not an IANA time zone") from None
