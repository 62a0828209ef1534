"""Asking for a charge now: collect now, a new card, a resubscription, a promise to pay."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, case, select, update

from dunwell.domain.policy import MAX_ATTEMPTS_CAP
from dunwell.domain.states import Collection, CyclePhase, InvoiceStatus
from dunwell.services.events import EventBatch
from dunwell.store.sql import utc_param
from dunwell.store.tables import dunning_cycles, invoices


def request_collection_for_customer(
    conn: Connection, site_id: int, customer_id: int, now: datetime, reason: str
) -> list[int]:
    """Send every past-due automatic invoice of a customer to collection now.

    This clears a hard decline (the customer has a new card, or just
    resubscribed), and works even after the dunning cycle has ended with the
    invoice left past due. Returns the invoice ids sent.
    """
    rows = conn.execute(
        select(dunning_cycles.c.id, dunning_cycles.c.invoice_id)
        .join(invoices, invoices.c.id == dunning_cycles.c.invoice_id)
        .where(dunning_cycles.c.site_id == site_id)
        .where(invoices.c.customer_id == customer_id)
        .where(invoices.c.status == InvoiceStatus.PAST_DUE.value)
        .where(dunning_cycles.c.collection == Collection.AUTOMATIC.value)
        .where(dunning_cycles.c.attempts < MAX_ATTEMPTS_CAP)
    ).all()
    if not rows:
        return []
    schedule_retry(conn, [r.id for r in rows], now, now, clear_hard_decline=True)
    batch = EventBatch()
    for row in rows:
        batch.add(
            site_id,
            "invoice.collection_requested",
            now,
            customer_id=customer_id,
            invoice_id=row.invoice_id,
            reason=reason,
        )
    batch.write(conn)
    return [r.invoice_id for r in rows]


def schedule_retry(
    conn: Connection,
    cycle_ids: list[int],
    at: datetime,
    now: datetime,
    *,
    clear_hard_decline: bool,
) -> None:
    """Set an explicit retry time on cycles and wake them no later than that time.

    A cycle that had closed with its invoice left past due reopens: it goes
    back to the dunning phase as *finalized*, so only this charge happens.
    """
    cycles = dunning_cycles
    values: dict[str, object] = {
        "retry_at": at,
        # Wake at ``at`` or at the cycle's own next run when that comes first
        # (a step day before a promise to pay): the worker then recomputes it.
        "next_run_at": case(
            (cycles.c.next_run_at < utc_param("wake_at", at), cycles.c.next_run_at),
            else_=utc_param("retry_wake_at", at),
        ),
        "updated_at": now,
        "revision": dunning_cycles.c.revision + 1,
    }
    if clear_hard_decline:
        values["hard_declined"] = False
    conn.execute(update(dunning_cycles).where(dunning_cycles.c.id.in_(cycle_ids)).values(**values))
    conn.execute(
        update(dunning_cycles)
        .where(dunning_cycles.c.id.in_(cycle_ids))
        .where(dunning_cycles.c.phase == CyclePhase.CLOSED.value)
        .values(phase=CyclePhase.DUNNING.value, finalized=True)
    )
