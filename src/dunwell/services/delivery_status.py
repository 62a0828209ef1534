"""Provider delivery reports (Twilio status callbacks) applied to the outbox.

Callbacks can arrive late, twice or out of order, so a status only ever
moves forward: a ``sent`` that arrives after ``delivered`` changes nothing.
``undelivered`` and ``failed`` fail the message with Twilio's error code
and give its credits back.

Except one failure: error 30036, *validity period expired*. Twilio reports
it for a text that was still in its queue when the validity period Dunwell
gave it ran out, which is when the customer's send window closed. Twilio
did not send it, so it is not failed but queued again, its credits given
back: the gate holds it until the window opens again and pays for it then.
A text that keeps expiring fails once it has used up the delivery retries.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from dunwell.services.delivery import RETRY_DELAYS
from dunwell.services.events import EventBatch
from dunwell.services.sms_credits import refund_message
from dunwell.store.tables import outbox

RANK = {
    "queued": 1,
    "accepted": 1,
    "scheduled": 1,
    "sending": 2,
    "sent": 3,
    "delivered": 4,
    "undelivered": 4,
    "failed": 4,
    "read": 5,
}
FINAL_FAILURES = ("undelivered", "failed")
#: Twilio's code for a text dropped unsent at the end of its validity period.
VALIDITY_EXPIRED = "30036"
#: A text is queued again after an expiry only while it has had fewer tries
#: than delivery allows (each expiry followed a try).
MOST_ATTEMPTS = len(RETRY_DELAYS) + 1


def apply_status(
    conn: Connection,
    site_id: int,
    provider_id: str,
    status: str,
    error_code: str | None,
    now: datetime,
) -> bool:
    """Record one report; returns False when no message of this site has that id."""
    row = conn.execute(
        select(
            outbox.c.id,
            outbox.c.provider_status,
            outbox.c.status,
            outbox.c.customer_id,
            outbox.c.invoice_id,
            outbox.c.attempts,
        ).where(outbox.c.site_id == site_id, outbox.c.provider_id == provider_id)
    ).first()
    if row is None:
        return False
    if RANK.get(status, 0) <= RANK.get(row.provider_status or "", 0):
        return True  # old news
    if (
        status == "failed"
        and error_code == VALIDITY_EXPIRED
        and row.status in ("sent", "delivered")
        and row.attempts < MOST_ATTEMPTS
    ):
        _queue_again(conn, site_id, row.id, now)
        return True
    values: dict[str, object] = {"provider_status": status, "updated_at": now}
    if status == "delivered":
        values.update(status="delivered", delivered_at=now)
    elif status in FINAL_FAILURES:
        values.update(
            status="failed",
            error_code=error_code,
            last_error=f"the carrier reported {status}"
            + (f" (Twilio error {error_code})" if error_code else ""),
        )
    conn.execute(update(outbox).where(outbox.c.id == row.id).values(values))
    if status in FINAL_FAILURES and row.status != "failed":
        refund_message(conn, site_id, row.id, now)
        events = EventBatch()
        events.add(
            site_id,
            "message.failed",
            now,
            customer_id=row.customer_id,
            invoice_id=row.invoice_id,
            message_id=row.id,
            error_code=error_code,
        )
        events.write(conn)
    return True


def _queue_again(conn: Connection, site_id: int, message_id: int, now: datetime) -> None:
    """Put a text Twilio dropped unsent back in the outbox, due now, its credits refunded."""
    conn.execute(
        update(outbox)
        .where(outbox.c.id == message_id)
        .values(
            status="pending",
            next_attempt_at=now,
            # Kept, so a repeated report of this SID is old news.
            provider_status="failed",
            error_code=VALIDITY_EXPIRED,
            last_error=(
                "Twilio dropped it unsent: it was still in the sender's queue when the "
                "customer's send window closed (Twilio error 30036); it goes out again "
                "when the window opens"
            ),
            sent_at=None,
            updated_at=now,
        )
    )
    refund_message(conn, site_id, message_id, now)
