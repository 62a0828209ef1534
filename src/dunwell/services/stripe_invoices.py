"""Mirrored Stripe invoices: a failed charge starts dunning; paid or voided ends it.

A mirrored invoice is an ordinary automatic invoice with Stripe's id in
``external_id``. Its dunning is the site's own policy, run by the worker; the
worker's retries pay the Stripe invoice itself (``POST /v1/invoices/{id}/pay``,
see :mod:`dunwell.gateways.stripe`), so Stripe and Dunwell agree on what is
owed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from dunwell.domain.declines import classify_decline
from dunwell.domain.dunning import ChargeResult, Decision, advance
from dunwell.domain.states import (
    AttemptStatus,
    Collection,
    CyclePhase,
    InvoiceStatus,
    SubscriptionStatus,
    resumed_by_payment,
)
from dunwell.gateways.base import ChargeResponse
from dunwell.services import ledger
from dunwell.services.collection import attempt_key
from dunwell.services.cycle_effects import CycleWork, EffectWriter
from dunwell.services.cycle_rows import state_from_row
from dunwell.services.invoice_actions import load_invoice
from dunwell.services.message_render import MessageRenderer
from dunwell.services.policies import current_version_ids, load_policies
from dunwell.services.stripe_ledger import GATEWAY, Mirror
from dunwell.services.stripe_payloads import InvoiceFacts
from dunwell.store.sql import insert_one
from dunwell.store.tables import (
    customers,
    dunning_cycles,
    invoices,
    payment_attempts,
    subscriptions,
)


def find_invoice(mirror: Mirror, external_id: str) -> Any:
    """The mirrored invoice's id and status, or None."""
    return mirror.conn.execute(
        select(invoices.c.id, invoices.c.status).where(
            invoices.c.site_id == mirror.site_id, invoices.c.external_id == external_id
        )
    ).first()


def start_dunning(
    mirror: Mirror, customer_id: int, subscription_id: int | None, facts: InvoiceFacts
) -> int:
    """Mirror an invoice whose charge by Stripe failed, and start its dunning.

    Stripe's failed charge is recorded as attempt 1, and the domain's
    :func:`~dunwell.domain.dunning.advance` runs exactly as when the worker's
    own first charge fails: the invoice is past due, day 1's messages are
    written, and the next retry follows the site's policy.
    """
    conn, now = mirror.conn, mirror.now
    taken = conn.execute(
        select(invoices.c.id).where(
            invoices.c.site_id == mirror.site_id, invoices.c.number == facts.number
        )
    ).first()
    invoice_id = insert_one(
        conn,
        invoices,
        site_id=mirror.site_id,
        customer_id=customer_id,
        subscription_id=subscription_id,
        # Stripe's numbers are unique per account; one taken by a Dunwell
        # invoice is replaced by the Stripe id rather than failing the event.
        number=facts.id if taken or not facts.number else facts.number,
        external_id=facts.id,
        collection=Collection.AUTOMATIC.value,
        net_terms_days=0,
        status=InvoiceStatus.OPEN.value,
        currency=facts.currency,
        amount_due_minor=facts.amount_due,
        amount_paid_minor=facts.amount_paid,
        issued_at=min(facts.created, now),
        due_at=now,
    )
    mirror.events(
        "invoice.created",
        customer_id=customer_id,
        subscription_id=subscription_id,
        invoice_id=invoice_id,
        amount_minor=facts.amount_remaining,
        currency=facts.currency,
        stripe_invoice=facts.id,
    )
    cycle = ledger.new_cycle_row(mirror.site_id, invoice_id, Collection.AUTOMATIC, now, now)
    insert_one(conn, dunning_cycles, **cycle)
    _record_first_failure(mirror, invoice_id, facts)
    return invoice_id


def _record_first_failure(mirror: Mirror, invoice_id: int, facts: InvoiceFacts) -> None:
    conn, site_id, now = mirror.conn, mirror.site_id, mirror.now
    row = conn.execute(
        select(
            dunning_cycles,
            customers.c.payday,
            invoices.c.customer_id,
            invoices.c.subscription_id,
            invoices.c.number,
            subscriptions.c.status.label("subscription_status"),
        )
        .join(invoices, invoices.c.id == dunning_cycles.c.invoice_id)
        .join(customers, customers.c.id == invoices.c.customer_id)
        .outerjoin(subscriptions, subscriptions.c.id == invoices.c.subscription_id)
        .where(dunning_cycles.c.invoice_id == invoice_id)
    ).one()
    version_id = current_version_ids(conn, {site_id})[(site_id, Collection.AUTOMATIC.value)]
    policy = load_policies(conn, {version_id})[version_id]
    key = attempt_key(site_id, invoice_id, 1)
    # The attempt row the worker would have written before charging; the
    # writer below completes it, so the worker's next attempt is number 2.
    insert_one(
        conn,
        payment_attempts,
        site_id=site_id,
        invoice_id=invoice_id,
        attempt_no=1,
        idempotency_key=key,
        gateway=GATEWAY,
        amount_minor=facts.amount_remaining,
        currency=facts.currency,
        status=AttemptStatus.PENDING.value,
        created_at=now,
    )
    state = state_from_row(row)
    decision = Decision(charge_attempt=1)
    code = facts.decline_code
    work = CycleWork(
        cycle_id=row.id,
        site_id=site_id,
        invoice_id=invoice_id,
        customer_id=row.customer_id,
        subscription_id=row.subscription_id,
        subscription_status=row.subscription_status,
        invoice_number=row.number,
        amount_minor=facts.amount_remaining,
        currency=facts.currency,
        revision=row.revision,
        version_id=version_id,
        policy=policy,
        state=state,
        now=now,
        decision=decision,
        attempt_key=key,
    )
    result = ChargeResult(AttemptStatus.DECLINED, code, classify_decline(code))
    response = ChargeResponse(AttemptStatus.DECLINED, code, facts.reference, "charged by Stripe")
    writer = EffectWriter(conn, MessageRenderer(mirror.links))
    writer.apply(work, advance(state, policy, now, decision, result), response)
    writer.flush(owner=GATEWAY)


def settle(mirror: Mirror, invoice_id: int, status: InvoiceStatus) -> str:
    """Close a mirrored invoice as paid or voided in Stripe; its dunning ends.

    Paid after Dunwell wrote it off is still paid: the money arrived. Returns
    a note for the event log.
    """
    invoice = load_invoice(mirror.conn, mirror.site_id, invoice_id)
    paid = status is InvoiceStatus.PAID
    if invoice.status.is_closed and not (paid and invoice.status is InvoiceStatus.FAILED):
        return f"invoice {invoice_id} was already {invoice.status.value}"
    values: dict[str, Any] = {"status": status.value, "closed_at": mirror.now}
    if paid:
        values.update(paid_at=mirror.now, amount_paid_minor=invoices.c.amount_due_minor)
    mirror.conn.execute(update(invoices).where(invoices.c.id == invoice_id).values(**values))
    ids = {
        "customer_id": invoice.customer_id,
        "subscription_id": invoice.subscription_id,
        "invoice_id": invoice_id,
    }
    mirror.events(f"invoice.{status.value}", **ids)
    note = f"invoice {invoice_id} is {status.value}"
    cycle = invoice.cycle
    if cycle is not None and cycle.phase != CyclePhase.CLOSED.value:
        in_dunning = cycle.phase == CyclePhase.DUNNING.value
        outcome = ("recovered" if in_dunning else "paid") if paid else "voided"
        mirror.conn.execute(
            update(dunning_cycles)
            .where(dunning_cycles.c.id == cycle.id)
            .values(
                phase=CyclePhase.CLOSED.value,
                next_run_at=None,
                retry_at=None,
                outcome=outcome,
                updated_at=mirror.now,
                # A worker holding the cycle now records only its charge's facts.
                revision=dunning_cycles.c.revision + 1,
            )
        )
        if in_dunning and not cycle.finalized:
            mirror.events("dunning.ended", outcome=outcome, **ids)
        note += f"; dunning ended ({outcome})"
    if paid and invoice.subscription_id is not None:
        _reactivate(mirror, invoice.subscription_id, invoice.customer_id)
    return note


def _reactivate(mirror: Mirror, subscription_id: int, customer_id: int) -> None:
    """Paid, and nothing else past due: the subscription is active again."""
    owing = mirror.conn.execute(
        select(invoices.c.id).where(
            invoices.c.subscription_id == subscription_id,
            invoices.c.status == InvoiceStatus.PAST_DUE.value,
        )
    ).first()
    status, paused_by = mirror.conn.execute(
        select(subscriptions.c.status, subscriptions.c.paused_by).where(
            subscriptions.c.id == subscription_id
        )
    ).one()
    if owing is None and resumed_by_payment(status, paused_by):
        active = SubscriptionStatus.ACTIVE.value
        mirror.set_subscription_status(subscription_id, customer_id, status, active)
