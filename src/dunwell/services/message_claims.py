"""Claiming due outbox messages with a lease, like dunning cycles.

A message is due when it is ``pending`` and its next attempt time has come
at its site's clock, or when it is ``sending`` under a lease that expired
(its worker died mid-send: the message is *in doubt* and is reconciled
before it is sent again).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from dunwell.services.claims import claim_due
from dunwell.store.sql import utc_param
from dunwell.store.tables import message_attempts, outbox, sites

DELIVERABLE = ("email", "sms")


def claim_due_messages(
    conn: Connection, owner: str, now: datetime, lease_until: datetime, limit: int
) -> list[int]:
    o = outbox
    filters = [o.c.status.in_(("pending", "sending")), o.c.channel.in_(DELIVERABLE)]
    return claim_due(conn, o, o.c.next_attempt_at, filters, owner, now, lease_until, limit)


def load_claimed(conn: Connection, ids: list[int], real_now: datetime) -> list[Any]:
    """The claimed rows with their site's slug, clock and mode."""
    o = outbox
    return list(
        conn.execute(
            select(
                o,
                sites.c.slug.label("site_slug"),
                sites.c.name.label("site_name"),
                sites.c.support_email,
                sites.c.clock_now.label("test_clock"),
                sites.c.mode.label("site_mode"),
                func.coalesce(sites.c.clock_now, utc_param("now", real_now)).label("site_now"),
            )
            .join(sites, sites.c.id == o.c.site_id)
            .where(o.c.id.in_(ids))
            .order_by(o.c.site_id, o.c.channel, o.c.id)
        )
    )


@dataclass(frozen=True)
class InDoubt:
    """A message whose last attempt may have reached the provider unrecorded."""

    #: The newest attempt, to be marked ``unknown`` if it is still open.
    attempt_id: int
    #: When the earliest attempt still in doubt started: the provider may
    #: hold a send from any attempt since the last one with a known outcome.
    since: datetime


#: Attempts whose send may or may not have reached the provider.
UNSETTLED = (None, "unknown")


def open_attempts(conn: Connection, ids: list[int]) -> dict[int, InDoubt]:
    """The messages of ``ids`` whose last attempt may have reached the provider.

    A worker that dies after sending leaves its attempt open; the next one
    marks it ``unknown`` and opens its own. A send whose answer never came
    (a read timeout) is recorded ``unknown`` at once. If a worker dies too
    before asking the provider, the open attempt is the second one, but the
    text may have gone out during the first: so the search starts at the
    first attempt of the unbroken run of open and ``unknown`` ones.
    """
    a = message_attempts
    rows = conn.execute(
        select(a.c.id, a.c.outbox_id, a.c.started_at, a.c.outcome)
        .where(a.c.outbox_id.in_(ids))
        .order_by(a.c.outbox_id, a.c.attempt_no.desc())
    )
    found: dict[int, InDoubt] = {}
    walking: dict[int, bool] = {}  # outbox id -> still inside its trailing run
    for row in rows:  # per message, the newest attempt first
        if row.outbox_id not in walking:
            walking[row.outbox_id] = row.outcome in UNSETTLED
            if row.outcome in UNSETTLED:
                found[row.outbox_id] = InDoubt(row.id, row.started_at)
        elif walking[row.outbox_id]:
            if row.outcome in UNSETTLED:
                found[row.outbox_id] = replace(found[row.outbox_id], since=row.started_at)
            else:
                walking[row.outbox_id] = False
    return found


def next_attempt_numbers(conn: Connection, ids: list[int]) -> dict[int, int]:
    a = message_attempts
    rows = conn.execute(
        select(a.c.outbox_id, func.max(a.c.attempt_no).label("n"))
        .where(a.c.outbox_id.in_(ids))
        .group_by(a.c.outbox_id)
    )
    done = {row.outbox_id: row.n for row in rows}
    return {i: done.get(i, 0) + 1 for i in ids}
