"""Spacing a gateway's requests: within one process, or across every worker.

Stripe limits the requests an *account* makes a second (25 a second to
create PaymentIntents), whoever makes them. A pace kept in one process
holds one worker under it, but four workers each at that pace ask four
times what the account allows, and their charges come back rate-limited.

:class:`SharedPace` keeps the pace in the database (``gateway_paces``, one
row per gateway), so every worker on every machine takes its turns from
the same line. A worker reserves a few turns at a time, a quarter of a
second's worth, by moving the row's ``next_start_at`` on in one short
transaction, and its lanes then wait for those turns in the process. So
the workers together start at most ``per_second`` requests a second, and
each reservation costs one row update, not one per request.

Turns are counted on the wall clock (``time.time``): it is the only clock
the machines share, and the limit is Stripe's, in real seconds. It is not
the business clock a test or a sandbox site can stop or move. Keep the
machines' clocks in sync (NTP), as leases already require: a machine
whose clock runs behind takes turns the others have already used.

A worker never reserves a turn that starts after its deadline, so the row
never runs further ahead than the workers' leases: a worker that finds no
turn left before its deadline reserves nothing and sends nothing more this
batch, as it would with a pace of its own. Turns a worker reserved and
did not use (its batch ended first) are not handed back; they pass unused,
a quarter of a second at most, which errs below the limit, never above.

So the line is never further ahead of the wall clock than the longest
lease, unless a machine's clock runs ahead of the others'. Left alone,
such a line would hold every other worker back, charging nothing, until
real time caught up with it. A worker that finds the line further ahead
than ``horizon_seconds`` (the lease) logs a warning and starts the line
again from its own clock: a clock out of sync can then cost a few
requests over the limit, which the gateway refuses and the schedule
retries, but never a stop to collection.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from threading import Lock
from typing import Protocol

from sqlalchemy import Engine, select, update

from dunwell.store.db import reproducible_commit, writer
from dunwell.store.sql import insert_ignore
from dunwell.store.tables import gateway_paces

log = logging.getLogger(__name__)

#: Seconds of turns a worker reserves at once: short enough that several
#: workers take turns about evenly, long enough that a reservation (one
#: row update) is rare next to the requests it covers.
RESERVE_SECONDS = 0.25
#: While a machine's clock runs ahead, every reservation finds the line out
#: of reach: one warning a minute says so without flooding the log.
WARN_EVERY_SECONDS = 60.0


class Pace(Protocol):
    def wait_turn(self, until: float | None) -> bool:
        """Sleep until the caller may start a request; False if that is past ``until``.

        ``until`` is a :func:`time.monotonic` deadline; None waits as long
        as it takes.
        """
        ...


def _check(per_second: float) -> float:
    if not per_second > 0:
        raise ValueError(f"max_per_second must be above 0, not {per_second}")
    return 1 / per_second


class LocalPace:
    """Spaces the starts of one process's requests at least ``1 / per_second`` apart."""

    def __init__(self, per_second: float) -> None:
        self._gap = _check(per_second)
        self._next = 0.0  # time.monotonic() of the next free start
        self._lock = Lock()

    def wait_turn(self, until: float | None) -> bool:
        with self._lock:
            start = max(time.monotonic(), self._next)
            if until is not None and start >= until:
                return False
            self._next = start + self._gap
        time.sleep(max(0.0, start - time.monotonic()))
        return True


class SharedPace:
    """Spaces the starts of every worker's requests to one gateway (see the module doc)."""

    def __init__(
        self,
        engine: Engine,
        gateway: str,
        per_second: float,
        wall: Callable[[], float] = time.time,
        *,
        horizon_seconds: float = 60.0,
    ) -> None:
        self._gap = _check(per_second)
        if not horizon_seconds > 0:
            raise ValueError(f"horizon_seconds must be above 0, not {horizon_seconds}")
        self._horizon = timedelta(seconds=horizon_seconds)
        self._warned_at: float | None = None
        self._chunk = max(1, math.floor(per_second * RESERVE_SECONDS))
        self._writes = writer(engine)
        self._gateway = gateway
        self._wall = wall
        self._turns: deque[float] = deque()  # reserved starts, as time.monotonic()
        self._lock = Lock()

    def wait_turn(self, until: float | None) -> bool:
        with self._lock:
            start = self._next_turn(until)
            if start is None:
                return False
        time.sleep(max(0.0, start - time.monotonic()))
        return True

    def _next_turn(self, until: float | None) -> float | None:
        # A turn whose moment has passed unused is gone: taking it now
        # would start requests together that the line spaced apart.
        stale = time.monotonic() - self._gap
        while self._turns and self._turns[0] < stale:
            self._turns.popleft()
        if not self._turns:
            self._reserve(until)
        if not self._turns or (until is not None and self._turns[0] >= until):
            return None
        return self._turns.popleft()

    def _reserve(self, until: float | None) -> None:
        """Take up to a chunk of turns from the shared line, none past ``until``."""
        table = gateway_paces
        monotonic, wall = time.monotonic(), self._wall()
        now = datetime.fromtimestamp(wall, UTC)
        with self._writes.begin() as conn:
            # Lost in a database crash, a reservation lets one quarter second
            # of turns be handed out twice: not worth waiting for the WAL flush.
            reproducible_commit(conn)
            query = select(table.c.next_start_at).where(table.c.gateway == self._gateway)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()  # workers reserve one after the other
            stored = conn.execute(query).scalar_one_or_none()
            if stored is None:  # the gateway's first request anywhere
                row = {"gateway": self._gateway, "next_start_at": now, "updated_at": now}
                insert_ignore(conn, table, [row], ["gateway"])
                stored = conn.execute(query).scalar_one()
            first = max(stored, now)
            if first - now > self._horizon:
                self._warn_line_ahead(first - now, monotonic)
                first = now
            wait = (first - now).total_seconds()
            count = self._chunk
            if until is not None:
                room = until - monotonic - wait
                count = min(count, math.ceil(room / self._gap)) if room > 0 else 0
            if count == 0:
                return
            conn.execute(
                update(table)
                .where(table.c.gateway == self._gateway)
                .values(next_start_at=first + timedelta(seconds=count * self._gap), updated_at=now)
            )
        self._turns.extend(monotonic + wait + n * self._gap for n in range(count))

    def _warn_line_ahead(self, ahead: timedelta, monotonic: float) -> None:
        if self._warned_at is not None and monotonic - self._warned_at < WARN_EVERY_SECONDS:
            return
        self._warned_at = monotonic
        seconds = ahead.total_seconds()
        log.warning(
            "the %s pace's line is %.0f s ahead of this machine's clock, more than a lease:"
            " another machine's clock runs ahead (check NTP); starting the line again from here",
            self._gateway,
            seconds,
            extra={"gateway": self._gateway, "ahead_s": round(seconds, 1)},
        )
