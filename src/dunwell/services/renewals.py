"""Renewals: invoice each subscription whose next charge date has come.

One transaction per batch creates the invoice (unique per subscription and
period, so a period can never be billed twice), its collection row, and moves
the subscription to its next period. The charge itself happens when the
collection worker picks the new cycle up, so no gateway call is made while a
transaction is open.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update

from dunwell.bootstrap import App
from dunwell.domain.intervals import IntervalUnit, period_start
from dunwell.domain.states import Collection, InvoiceStatus, SubscriptionStatus
from dunwell.services.claims import site_scope
from dunwell.services.events import EventBatch
from dunwell.services.ledger import new_cycle_row
from dunwell.store.bulk import bulk_insert_returning
from dunwell.store.sql import utc_param
from dunwell.store.tables import (
    dunning_cycles,
    invoices,
    sites,
    subscription_items,
    subscriptions,
)

RENEWING = (SubscriptionStatus.ACTIVE.value, SubscriptionStatus.PAST_DUE.value)


def bill_due_subscriptions(app: App, limit: int) -> int:
    """Invoice up to ``limit`` due subscriptions; return how many were billed."""
    with app.begin() as conn:
        due = _claim_due(conn, app.clock.now(), limit)
        if not due:
            return 0
        amounts = _amounts(conn, {row.id: row.periods_billed for row in due})
        _bill(conn, due, amounts)
    return len(due)


def _claim_due(conn: Connection, real_now: datetime, limit: int) -> list[Any]:
    s = subscriptions
    query = (
        select(s, func.coalesce(sites.c.clock_now, utc_param("now", real_now)).label("site_now"))
        .join(sites, sites.c.id == s.c.site_id)
        .where(s.c.status.in_(RENEWING), *site_scope())
        # Mirrored subscriptions (Stripe) are billed by their own system.
        .where(s.c.external_id.is_(None))
        .where(s.c.next_charge_at <= func.coalesce(sites.c.clock_now, utc_param("now2", real_now)))
        .order_by(s.c.next_charge_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=s)
    return list(conn.execute(query))


def _amounts(conn: Connection, periods: dict[int, int]) -> dict[int, int]:
    """Each subscription's total for the period being billed.

    An add-on for one order (``one_time_period``) counts only in its period.
    """
    items = subscription_items
    totals: dict[int, int] = defaultdict(int)
    for row in conn.execute(
        select(
            items.c.subscription_id,
            items.c.quantity,
            items.c.unit_price_minor,
            items.c.one_time_period,
        ).where(items.c.subscription_id.in_(list(periods)))
    ):
        once = row.one_time_period
        if once is None or once == periods[row.subscription_id]:
            totals[row.subscription_id] += row.quantity * row.unit_price_minor
    return totals


def _bill(conn: Connection, due: list[Any], amounts: dict[int, int]) -> None:
    invoice_rows = []
    for sub in due:
        amount = amounts.get(sub.id, 0)
        issued = sub.next_charge_at
        # Renewal dates are real business dates even when the worker is late.
        issued_at = issued
        due_at = issued + timedelta(days=sub.net_terms_days)
        invoice_rows.append(
            {
                "site_id": sub.site_id,
                "customer_id": sub.customer_id,
                "subscription_id": sub.id,
                "period": sub.periods_billed,
                "number": f"{sub.id}-{sub.periods_billed + 1:04d}",
                "collection": sub.collection,
                "net_terms_days": sub.net_terms_days,
                "status": InvoiceStatus.PAID.value if amount == 0 else InvoiceStatus.OPEN.value,
                "currency": sub.currency,
                "amount_due_minor": amount,
                "amount_paid_minor": 0,
                "issued_at": issued_at,
                "due_at": due_at,
                "paid_at": issued_at if amount == 0 else None,
                "closed_at": issued_at if amount == 0 else None,
            }
        )
    created = bulk_insert_returning(conn, invoices, invoice_rows, ("id",))
    events = EventBatch()
    cycle_rows = []
    for sub, (invoice_id,), inv in zip(due, created, invoice_rows, strict=True):
        events.add(
            sub.site_id,
            "invoice.created",
            sub.site_now,
            customer_id=sub.customer_id,
            subscription_id=sub.id,
            invoice_id=invoice_id,
            amount_minor=inv["amount_due_minor"],
            currency=sub.currency,
        )
        if inv["amount_due_minor"] > 0:
            cycle_rows.append(
                new_cycle_row(
                    sub.site_id, invoice_id, Collection(sub.collection), inv["due_at"], sub.site_now
                )
            )
    if cycle_rows:
        conn.execute(dunning_cycles.insert(), cycle_rows)
    conn.execute(
        update(subscriptions)
        .where(subscriptions.c.id == bindparam("b_id"))
        .values(periods_billed=bindparam("periods"), next_charge_at=bindparam("next_at")),
        [
            {
                "b_id": sub.id,
                "periods": sub.periods_billed + 1,
                "next_at": period_start(
                    sub.anchor_at,
                    IntervalUnit(sub.interval_unit),
                    sub.interval_count,
                    sub.periods_billed + 1,
                ),
            }
            for sub in due
        ],
    )
    events.write(conn)
