"""After a text is paid for: auto-refill and the merchant's low-balance email.

Auto-refill tops up by the site's set amount when the balance falls under
its threshold (both zero means off), recorded as an ``auto_refill`` ledger
row; in a self-hosted install the merchant's own billing settles it. When
the balance is under the low-balance threshold the merchant gets one email
until the next top-up.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from dunwell.services.sms_credits import top_up
from dunwell.services.sms_settings import SmsSettings
from dunwell.store.tables import outbox, sites, sms_credits


def after_debit(
    conn: Connection, site_id: int, settings: SmsSettings, balance: int, now: datetime
) -> int:
    """Run the refill and alert rules; return the balance after them."""
    if settings.auto_refill_amount > 0 and balance < settings.auto_refill_threshold:
        return top_up(
            conn,
            site_id,
            settings.auto_refill_amount,
            now,
            note=f"balance {balance} under {settings.auto_refill_threshold}",
            reason="auto_refill",
        )
    if balance < settings.low_balance_threshold:
        _low_balance_email(conn, site_id, balance, now)
    return balance


def _low_balance_email(conn: Connection, site_id: int, balance: int, now: datetime) -> None:
    account = conn.execute(
        select(sms_credits.c.low_balance_notified_at).where(sms_credits.c.site_id == site_id)
    ).first()
    if account is None or account.low_balance_notified_at is not None:
        return
    site = conn.execute(
        select(sites.c.name, sites.c.support_email).where(sites.c.id == site_id)
    ).one()
    conn.execute(
        update(sms_credits)
        .where(sms_credits.c.site_id == site_id)
        .values(low_balance_notified_at=now)
    )
    if not site.support_email:
        return
    conn.execute(
        insert(outbox).values(
            site_id=site_id,
            channel="email",
            dedupe_key=f"site-{site_id}:sms-low-balance:{now.isoformat()}",
            template=None,
            payload={"event": "sms.low_balance", "balance": balance},
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            recipient=site.support_email,
            locale="en",
            subject=f"{site.name}: SMS credits are running low ({balance} left)",
            body_text=(
                f"Your SMS credit balance is {balance}. When it reaches zero, dunning "
                "texts are held (emails go on) until you top up.\n"
            ),
        )
    )
