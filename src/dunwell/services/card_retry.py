"""Charging a customer's past-due invoices at once, while they wait on the page.

When a customer saves a new card, :func:`~dunwell.services.ledger.attach_payment_method`
asks for every past-due invoice to be collected now. The worker would get
to them within ``poll_seconds``, but the customer is looking at the page, so
the billing page runs one collection batch itself, limited to those
invoices. It is the worker's own batch (:mod:`dunwell.services.collection`):
the same claim with a lease, decision, idempotency keys, gateway call and
recording, so a worker running at the same moment cannot charge twice. An
invoice whose cycle the worker holds right now is simply left to it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from dunwell.bootstrap import App
from dunwell.domain.states import AttemptStatus, InvoiceStatus
from dunwell.services.collection import process_due_cycles
from dunwell.store.tables import invoices, payment_attempts, payment_methods

#: Plain words for the decline codes customers meet most; others get the generic one.
REASONS: dict[str, str] = {
    "insufficient_funds": "the bank reported insufficient funds",
    "lost_card": "the card was reported lost",
    "stolen_card": "the card was reported stolen",
    "expired_card": "the card has expired",
    "incorrect_number": "the card number is not right",
    "invalid_account": "the card account is not valid",
    "processing_error": "the bank had a processing error; it may work if you try again later",
    "authentication_required": "the bank wants you to approve each payment yourself",
    "card_velocity_exceeded": "the card's spending limit has been reached",
    "do_not_honor": "the bank declined the payment",
    "no_payment_method": "there is no card on file",
}
GENERIC_REASON = "the bank declined the payment"


@dataclass(frozen=True)
class RetryResult:
    invoice_id: int
    number: str
    outcome: str  # paid | declined | pending
    reason: str = ""


def collect_invoices_now(app: App, invoice_ids: list[int]) -> None:
    """Run one collection batch over these invoices' due cycles, and only those."""
    if invoice_ids:
        owner = f"hosted-page-{secrets.token_hex(6)}"
        process_due_cycles(app, owner, len(invoice_ids), invoice_ids=invoice_ids)


def retry_results(
    conn: Connection, site_id: int, customer_id: int, invoice_ids: list[int]
) -> list[RetryResult]:
    """How each invoice fared with the customer's current card (scoped to that customer)."""
    if not invoice_ids:
        return []
    rows = conn.execute(
        select(invoices.c.id, invoices.c.number, invoices.c.status)
        .where(invoices.c.site_id == site_id, invoices.c.customer_id == customer_id)
        .where(invoices.c.id.in_(invoice_ids))
        .order_by(invoices.c.id)
    ).all()
    card = conn.execute(
        select(payment_methods.c.id).where(
            payment_methods.c.site_id == site_id,
            payment_methods.c.customer_id == customer_id,
            payment_methods.c.is_default.is_(True),
            payment_methods.c.detached_at.is_(None),
        )
    ).scalar()
    latest = _latest_attempts(conn, [row.id for row in rows], card)
    results = []
    for row in rows:
        attempt = latest.get(row.id)
        if row.status == InvoiceStatus.PAID.value:
            results.append(RetryResult(row.id, row.number, "paid"))
        elif attempt is not None and attempt.status == AttemptStatus.DECLINED.value:
            reason = REASONS.get(attempt.decline_code or "", GENERIC_REASON)
            results.append(RetryResult(row.id, row.number, "declined", reason))
        else:
            results.append(RetryResult(row.id, row.number, "pending"))
    return results


def _latest_attempts(
    conn: Connection, invoice_ids: list[int], method_id: int | None
) -> dict[int, Any]:
    """Each invoice's latest attempt with this card: earlier cards' declines are old news."""
    if method_id is None:
        return {}
    rows = conn.execute(
        select(
            payment_attempts.c.invoice_id,
            payment_attempts.c.status,
            payment_attempts.c.decline_code,
        )
        .where(payment_attempts.c.invoice_id.in_(invoice_ids))
        .where(payment_attempts.c.payment_method_id == method_id)
        .order_by(payment_attempts.c.attempt_no)
    )
    return {row.invoice_id: row for row in rows}
