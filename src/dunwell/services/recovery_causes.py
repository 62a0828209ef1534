"""Why each recovered invoice was paid, derived from what the store recorded.

No column says what caused a payment, so the cause is read from the facts
around it. The first rule that matches wins:

1. ``outside``: no charge of ours succeeded for the invoice. The merchant
   marked it paid, or it was paid in the billing system Dunwell mirrors.
2. ``card_update``: the charge that succeeded used a payment method saved
   after the moment the invoice entered dunning. Saving a card sends
   the invoice to collection at once (billing page, API, or the concierge's
   link), so the new card is what made the difference.
3. ``concierge``: the SMS concierge carried out a retry or recorded a
   promise to pay for this invoice (an applied ``retry_payment`` or
   ``promise_to_pay`` turn) between the start of dunning and the payment.
4. ``sms_reply``: the customer texted back (not a STOP/HELP/START keyword)
   during dunning, at most :data:`SMS_REPLY_WINDOW` before the payment,
   and none of the rules above applies.
5. ``retry``: otherwise, a scheduled retry of the card on file.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, select

from dunwell.domain.states import AttemptStatus
from dunwell.services.concierge_figures import RECOVERY_ACTIONS
from dunwell.services.recovery_figures import Tally
from dunwell.store.tables import (
    conversation_turns,
    inbound_messages,
    payment_attempts,
    payment_methods,
)

CAUSES = ("retry", "card_update", "sms_reply", "concierge", "outside")
LABELS = {
    "retry": "Scheduled retry",
    "card_update": "Card update",
    "sms_reply": "SMS reply",
    "concierge": "Concierge action",
    "outside": "Marked paid or paid elsewhere",
}
#: A reply this long before a payment counts as having prompted it.
SMS_REPLY_WINDOW = timedelta(days=2)


def recovery_by_cause(
    conn: Connection, site_id: int, recovered: list[Row[Any]]
) -> dict[str, Tally]:
    """The recovered invoices (rows of ``recovered_invoices``) tallied by cause, in CAUSES order."""
    tallies = {cause: Tally() for cause in CAUSES}
    if not recovered:
        return tallies
    causes = causes_of(conn, site_id, recovered)
    for row in recovered:
        tallies[causes[row.id]].add(row.currency, row.amount_paid_minor)
    return tallies


def causes_of(conn: Connection, site_id: int, recovered: list[Row[Any]]) -> dict[int, str]:
    """Invoice id -> cause, for rows with ``id, customer_id, paid_at, started_at``."""
    earliest = min(row.started_at for row in recovered)
    ids = [row.id for row in recovered]
    paying = _paying_methods(conn, site_id, ids)
    asked = _concierge_asks(conn, site_id, earliest)
    replies = _replies(conn, site_id, {row.customer_id for row in recovered}, earliest)
    return {row.id: _cause(row, paying, asked, replies) for row in recovered}


def _cause(
    row: Row[Any],
    paying: dict[int, datetime | None],
    asked: dict[int, list[datetime]],
    replies: dict[int, list[datetime]],
) -> str:
    if row.id not in paying:
        return "outside"
    saved_at = paying[row.id]
    if saved_at is not None and saved_at > row.started_at:
        return "card_update"
    if any(row.started_at <= at <= row.paid_at for at in asked.get(row.id, [])):
        return "concierge"
    since = max(row.started_at, row.paid_at - SMS_REPLY_WINDOW)
    if any(since <= at <= row.paid_at for at in replies.get(row.customer_id, [])):
        return "sms_reply"
    return "retry"


def _paying_methods(
    conn: Connection, site_id: int, invoice_ids: list[int]
) -> dict[int, datetime | None]:
    """Invoice id -> when the card of its succeeded charge was saved (None: unknown card)."""
    a, m = payment_attempts, payment_methods
    found: dict[int, datetime | None] = {}
    for chunk in _chunks(invoice_ids):
        rows = conn.execute(
            select(a.c.invoice_id, m.c.created_at)
            .outerjoin(m, m.c.id == a.c.payment_method_id)
            .where(a.c.site_id == site_id, a.c.invoice_id.in_(chunk))
            .where(a.c.status == AttemptStatus.SUCCEEDED.value)
        )
        for row in rows:
            found[row.invoice_id] = row.created_at
    return found


def _concierge_asks(conn: Connection, site_id: int, since: datetime) -> dict[int, list[datetime]]:
    """Invoice id -> when the concierge applied a retry or a promise to pay for it."""
    t = conversation_turns
    rows = conn.execute(
        select(t.c.action_result, t.c.created_at)
        .where(t.c.site_id == site_id, t.c.action.in_(RECOVERY_ACTIONS))
        .where(t.c.action_status == "applied", t.c.created_at >= since)
    )
    asked: dict[int, list[datetime]] = {}
    for row in rows:
        invoice_id = (row.action_result or {}).get("invoice_id")
        if isinstance(invoice_id, int):
            asked.setdefault(invoice_id, []).append(row.created_at)
    return asked


def _replies(
    conn: Connection, site_id: int, customer_ids: set[int], since: datetime
) -> dict[int, list[datetime]]:
    """Customer id -> when they texted in words (keywords left out)."""
    t = inbound_messages
    replies: dict[int, list[datetime]] = {}
    for chunk in _chunks(sorted(customer_ids)):
        rows = conn.execute(
            select(t.c.customer_id, t.c.received_at)
            .where(t.c.site_id == site_id, t.c.customer_id.in_(chunk))
            .where(t.c.keyword.is_(None), t.c.received_at >= since)
        )
        for row in rows:
            replies.setdefault(row.customer_id, []).append(row.received_at)
    return replies


def _chunks(ids: Iterable[int], size: int = 500) -> list[list[int]]:
    """Bounded IN lists: SQLite limits the number of parameters in one statement."""
    listed = list(ids)
    return [listed[n : n + size] for n in range(0, len(listed), size)]
