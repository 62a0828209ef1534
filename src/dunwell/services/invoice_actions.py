"""What a merchant (or the customer) can do to an invoice by hand.

=================  ==========================================================
stop collecting    invoice failed (written off) and closed; no more attempts
mark paid          invoice paid and closed (money received outside Dunwell)
stop dunning       no more attempts or messages; the invoice stays past due
                   and the subscription is left as it is
reopen             a failed manual invoice is open again; dunning does not
                   restart (as in Recurly)
collect now        charge now, within the caps, even after a hard decline
promise to pay     move the next retry to a date within the cycle
=================  ==========================================================

Each action bumps the cycle's ``revision``, so a worker that was charging the
invoice at that moment records its charge but leaves the schedule alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from dunwell.domain.dunning import final_at
from dunwell.domain.policy import MAX_ATTEMPTS_CAP
from dunwell.domain.states import (
    Collection,
    CyclePhase,
    InvoiceStatus,
    SubscriptionStatus,
    resumed_by_payment,
)
from dunwell.services.collection_requests import schedule_retry
from dunwell.services.cycle_rows import state_from_row
from dunwell.services.cycle_writes import NOT_RENEWING, renew_from_next_boundary
from dunwell.services.errors import Conflict, InvalidInput, NotFound
from dunwell.services.events import EventBatch
from dunwell.services.policies import load_policies
from dunwell.store.tables import customers, dunning_cycles, invoices, outbox, subscriptions


@dataclass(frozen=True)
class InvoiceRef:
    id: int
    site_id: int
    customer_id: int
    subscription_id: int | None
    status: InvoiceStatus
    collection: Collection
    cycle: Any  # the dunning_cycles row joined with the customer's payday
    #: Stripe's invoice id when Dunwell mirrors it (Stripe collects it too).
    external_id: str | None = None


def load_invoice(
    conn: Connection, site_id: int, invoice_id: int, *, lock: bool = True
) -> InvoiceRef:
    query = (
        select(invoices, dunning_cycles.c.id.label("cycle_id"))
        .outerjoin(dunning_cycles, dunning_cycles.c.invoice_id == invoices.c.id)
        .where(invoices.c.site_id == site_id, invoices.c.id == invoice_id)
    )
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update(of=invoices)
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no invoice {invoice_id} in this site")
    cycle = None
    if row.cycle_id is not None:
        cycle = conn.execute(
            select(dunning_cycles, customers.c.payday)
            .join(invoices, invoices.c.id == dunning_cycles.c.invoice_id)
            .join(customers, customers.c.id == invoices.c.customer_id)
            .where(dunning_cycles.c.id == row.cycle_id)
        ).first()
    return InvoiceRef(
        row.id,
        row.site_id,
        row.customer_id,
        row.subscription_id,
        InvoiceStatus(row.status),
        Collection(row.collection),
        cycle,
        row.external_id,
    )


def stop_collecting(conn: Connection, site_id: int, invoice_id: int, now: datetime) -> None:
    invoice = _open_invoice(conn, site_id, invoice_id, "stop collecting on")
    _close(conn, invoice, InvoiceStatus.FAILED, now, "stopped")
    _events(conn, invoice, now, ("invoice.failed", {"reason": "collection_stopped"}))


def mark_paid(conn: Connection, site_id: int, invoice_id: int, now: datetime) -> None:
    invoice = _open_invoice(conn, site_id, invoice_id, "mark paid")
    if invoice.external_id is not None:
        # Paid here alone, the Stripe invoice stays open and Stripe's own
        # retries could charge the customer for what they already paid.
        raise Conflict(
            f"invoice {invoice_id} is collected by Stripe ({invoice.external_id}); mark it "
            "paid in Stripe, and its invoice.paid event closes it here"
        )
    _close(conn, invoice, InvoiceStatus.PAID, now, "marked_paid")
    _events(conn, invoice, now, ("invoice.paid", {"reason": "marked_paid"}))
    _reactivate_subscription(conn, invoice, now)


def stop_dunning(conn: Connection, site_id: int, invoice_id: int, now: datetime) -> None:
    invoice = _open_invoice(conn, site_id, invoice_id, "stop dunning on")
    if invoice.cycle is None or invoice.cycle.phase != CyclePhase.DUNNING.value:
        raise Conflict(f"invoice {invoice_id} is not in dunning")
    _close_cycle(conn, invoice, "dunning_stopped", now)
    _events(conn, invoice, now, ("dunning.ended", {"outcome": "dunning_stopped"}))


def reopen(conn: Connection, site_id: int, invoice_id: int, now: datetime) -> None:
    invoice = load_invoice(conn, site_id, invoice_id)
    if invoice.status is not InvoiceStatus.FAILED or invoice.collection is not Collection.MANUAL:
        raise Conflict("only a failed manual invoice can be reopened")
    conn.execute(
        update(invoices)
        .where(invoices.c.id == invoice.id)
        .values(status=InvoiceStatus.OPEN.value, closed_at=None)
    )
    _events(conn, invoice, now, ("invoice.reopened", {}))


def collect_now(conn: Connection, site_id: int, invoice_id: int, now: datetime) -> None:
    invoice = _collectable(conn, site_id, invoice_id)
    schedule_retry(conn, [invoice.cycle.id], now, now, clear_hard_decline=False)
    _events(conn, invoice, now, ("invoice.collection_requested", {"reason": "collect_now"}))


def promise_to_pay(
    conn: Connection, site_id: int, invoice_id: int, on: datetime, now: datetime
) -> datetime:
    """Move the next retry to ``on``, clamped to the cycle's final day; return the time used."""
    invoice = _collectable(conn, site_id, invoice_id)
    if on < now:
        raise InvalidInput("date", "a promise to pay must be in the future")
    cycle = invoice.cycle
    at = on
    if cycle.phase == CyclePhase.DUNNING.value and not cycle.finalized:
        policy = load_policies(conn, {cycle.policy_version_id})[cycle.policy_version_id]
        at = min(on, final_at(state_from_row(cycle), policy))
    schedule_retry(conn, [cycle.id], at, now, clear_hard_decline=False)
    _hold_reminders(conn, invoice.id, at)
    _events(conn, invoice, now, ("invoice.promise_to_pay", {"retry_at": at.isoformat()}))
    return at


def _hold_reminders(conn: Connection, invoice_id: int, until: datetime) -> None:
    """Reminders still waiting wait for the promised day too (then go, or are withdrawn)."""
    conn.execute(
        update(outbox)
        .where(outbox.c.invoice_id == invoice_id, outbox.c.status == "pending")
        .where(outbox.c.channel.in_(("email", "sms")), outbox.c.next_attempt_at < until)
        .values(next_attempt_at=until, held_reason="promise_to_pay")
    )


def _collectable(conn: Connection, site_id: int, invoice_id: int) -> InvoiceRef:
    invoice = _open_invoice(conn, site_id, invoice_id, "collect")
    if invoice.collection is not Collection.AUTOMATIC:
        raise Conflict("manual invoices are paid by the customer, not charged")
    if invoice.cycle is None or invoice.cycle.attempts >= MAX_ATTEMPTS_CAP:
        raise Conflict(f"invoice {invoice_id} has used all {MAX_ATTEMPTS_CAP} attempts")
    return invoice


def _open_invoice(conn: Connection, site_id: int, invoice_id: int, verb: str) -> InvoiceRef:
    invoice = load_invoice(conn, site_id, invoice_id)
    if invoice.status.is_closed:
        raise Conflict(f"cannot {verb} invoice {invoice_id}: it is {invoice.status.value}")
    return invoice


def _close(
    conn: Connection, invoice: InvoiceRef, status: InvoiceStatus, now: datetime, outcome: str
) -> None:
    values: dict[str, Any] = {"status": status.value, "closed_at": now}
    if status is InvoiceStatus.PAID:
        values.update(paid_at=now, amount_paid_minor=invoices.c.amount_due_minor)
    conn.execute(update(invoices).where(invoices.c.id == invoice.id).values(**values))
    if invoice.cycle is not None:
        _close_cycle(conn, invoice, outcome, now)
        if invoice.cycle.phase == CyclePhase.DUNNING.value:
            _events(conn, invoice, now, ("dunning.ended", {"outcome": outcome}))


def _close_cycle(conn: Connection, invoice: InvoiceRef, outcome: str, now: datetime) -> None:
    """Nothing more will happen to this invoice's collection."""
    _update_cycle(
        conn,
        invoice,
        phase=CyclePhase.CLOSED.value,
        next_run_at=None,
        retry_at=None,
        outcome=outcome,
        updated_at=now,
    )


def _update_cycle(conn: Connection, invoice: InvoiceRef, **values: Any) -> None:
    conn.execute(
        update(dunning_cycles)
        .where(dunning_cycles.c.id == invoice.cycle.id)
        .values(revision=dunning_cycles.c.revision + 1, **values)
    )


def _reactivate_subscription(conn: Connection, invoice: InvoiceRef, now: datetime) -> None:
    if invoice.subscription_id is None:
        return
    owing = conn.execute(
        select(invoices.c.id).where(
            invoices.c.subscription_id == invoice.subscription_id,
            invoices.c.status == InvoiceStatus.PAST_DUE.value,
        )
    ).first()
    status, paused_by = conn.execute(
        select(subscriptions.c.status, subscriptions.c.paused_by).where(
            subscriptions.c.id == invoice.subscription_id
        )
    ).one()
    if owing is None and resumed_by_payment(status, paused_by):
        conn.execute(
            update(subscriptions)
            .where(subscriptions.c.id == invoice.subscription_id)
            .values(status=SubscriptionStatus.ACTIVE.value, paused_by=None)
        )
        if status in NOT_RENEWING:
            # As when a charge pays it: the periods spent paused or unpaid
            # are not billed now, all at once.
            renew_from_next_boundary(conn, {invoice.subscription_id: now})
        _events(
            conn,
            invoice,
            now,
            ("subscription.state_changed", {"previous": status, "current": "active"}),
        )


def _events(
    conn: Connection, invoice: InvoiceRef, now: datetime, *entries: tuple[str, dict[str, Any]]
) -> None:
    batch = EventBatch()
    for type_, data in entries:
        batch.add(
            invoice.site_id,
            type_,
            now,
            customer_id=invoice.customer_id,
            subscription_id=invoice.subscription_id,
            invoice_id=invoice.id,
            **data,
        )
    batch.write(conn)
