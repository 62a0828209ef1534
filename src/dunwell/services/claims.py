"""Claiming due work with a lease.

SQLite has one writer at a time, so a compare-and-set UPDATE (only rows whose
lease is free or expired) is enough. PostgreSQL lets many workers on many
machines claim at once: ``FOR UPDATE SKIP LOCKED`` hands each its own rows
without waiting. A worker that dies leaves its lease to expire, and the rows
are claimed again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Table,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)

from dunwell.store.sql import utc_param
from dunwell.store.tables import dunning_cycles, sites

#: When set, claims take only these sites' rows (see :func:`only_sites`).
_SITE_SCOPE: ContextVar[frozenset[int] | None] = ContextVar("dunwell_site_scope", default=None)


@contextmanager
def only_sites(site_ids: set[int]) -> Iterator[None]:
    """Within the block, every claim of due work is limited to these sites.

    For work run on one merchant's behalf inside a request (the sandbox's
    "advance the clock"): the worker's stages are shared by all sites, and
    a click on one site must never charge or message another site's
    customers. The scope lives in a context variable, so it covers exactly
    the code run in this thread inside the block.
    """
    token = _SITE_SCOPE.set(frozenset(site_ids))
    try:
        yield
    finally:
        _SITE_SCOPE.reset(token)


def site_scope() -> list[ColumnElement[bool]]:
    """The filter the current scope adds to a query joined to ``sites`` (none outside one)."""
    scope = _SITE_SCOPE.get()
    return [] if scope is None else [sites.c.id.in_(sorted(scope))]


def claim_due_cycles(
    conn: Connection,
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
    invoice_ids: Sequence[int] | None = None,
) -> list[int]:
    """Lease up to ``limit`` cycles due at their site's now (of these invoices, if given)."""
    cycles = dunning_cycles
    filters = [cycles.c.next_run_at.is_not(None)]
    if invoice_ids is not None:
        filters.append(cycles.c.invoice_id.in_(invoice_ids))
    return claim_due(
        conn,
        cycles,
        cycles.c.next_run_at,
        filters,
        owner,
        now,
        lease_until,
        limit,
    )


def claim_due(
    conn: Connection,
    table: Table,
    due_at: Column[datetime],
    filters: Sequence[ColumnElement[bool]],
    owner: str,
    now: datetime,
    lease_until: datetime,
    limit: int,
) -> list[int]:
    """Lease up to ``limit`` rows of ``table`` whose ``due_at`` has come; return their ids.

    ``now`` is real time (leases are about processes); whether a row is due
    is judged against its site's clock, which for a sandbox site is the
    test clock. The table needs ``site_id``, ``lease_owner`` and ``lease_until``.
    """
    site_now = func.coalesce(sites.c.clock_now, utc_param("now", now))
    lease_free = or_(table.c.lease_until.is_(None), table.c.lease_until < utc_param("now2", now))
    due = (
        select(table.c.id)
        .join(sites, sites.c.id == table.c.site_id)
        .where(*filters, *site_scope(), due_at <= site_now, lease_free)
        .order_by(due_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, of=table)
    claimed = conn.execute(
        update(table)
        .where(table.c.id.in_(due.scalar_subquery()))
        .values(lease_owner=owner, lease_until=lease_until)
        .returning(table.c.id)
    )
    return [row.id for row in claimed]


def still_leased(conn: Connection, ids: list[int], owner: str) -> dict[int, int]:
    """Of ``ids``, those this owner still holds: id -> revision, locked for the transaction."""
    query = select(dunning_cycles.c.id, dunning_cycles.c.revision).where(
        dunning_cycles.c.id.in_(ids), dunning_cycles.c.lease_owner == owner
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    return {row.id: row.revision for row in conn.execute(query)}


def release_cycles(conn: Connection, ids: Sequence[int], owner: str) -> None:
    """Give up this owner's lease on ``ids`` without changing them: they are due at once."""
    if ids:
        conn.execute(
            update(dunning_cycles)
            .where(dunning_cycles.c.id.in_(ids), dunning_cycles.c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )


def put_back_unstarted(
    conn: Connection,
    table: Table,
    reserved: Mapping[int, int],
    owner: str,
    *,
    attempt_of: Column[Any],
    unfinished: ColumnElement[bool],
) -> set[int]:
    """Return claimed rows no lane started to how they were before the claim.

    For the outbox and webhook deliveries, whose claim counts a try and
    reserves its attempt row. ``reserved`` maps each row's id to the number
    of that attempt. The rows this owner still holds become ``pending`` with
    the try not counted, due at once; each one's reserved attempt (found by
    ``attempt_of``, the attempt log's reference to the row, and still
    ``unfinished``) is deleted. Returns the ids that were still held.
    """
    held = set(
        conn.execute(
            update(table)
            .where(table.c.id.in_(list(reserved)), table.c.lease_owner == owner)
            .values(
                status="pending", attempts=table.c.attempts - 1, lease_owner=None, lease_until=None
            )
            .returning(table.c.id)
        ).scalars()
    )
    if held:
        attempt_log = attempt_of.table
        conn.execute(
            delete(attempt_log)
            .where(attempt_of == bindparam("b_row"))
            .where(attempt_log.c.attempt_no == bindparam("b_attempt"))
            .where(unfinished),
            [{"b_row": row_id, "b_attempt": reserved[row_id]} for row_id in held],
        )
    return held


def start_window(lease_left: float, longest_call: float) -> float:
    """Seconds from now in which a batch may still start calls to a provider.

    The last call started must end within the lease, or another worker
    could claim its row and repeat the call while it is in flight. A lease
    too short for that still gets a quarter of it, so a batch always makes
    progress (that lease is then the setting to raise).
    """
    return max(lease_left - longest_call, lease_left / 4)
