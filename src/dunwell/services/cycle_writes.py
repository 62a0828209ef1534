"""The rows a batch of dunning transitions changes, written in a few statements.

:class:`PendingWrites` holds what :class:`~dunwell.services.cycle_effects.EffectWriter`
collected for one batch (attempt outcomes, cycle state, invoice and
subscription states, events and outbox messages) and writes it with one
``executemany`` per kind of change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from dunwell.domain.intervals import IntervalUnit, first_period_from
from dunwell.domain.states import (
    REACTIVATABLE_SUBSCRIPTIONS,
    InvoiceStatus,
    PausedBy,
    SubscriptionStatus,
)
from dunwell.services.claims import release_cycles
from dunwell.services.events import EventBatch
from dunwell.store.bulk import bulk_update
from dunwell.store.sql import insert_ignore
from dunwell.store.tables import (
    dunning_cycles,
    dunning_policy_versions,
    invoices,
    outbox,
    payment_attempts,
    products,
    subscription_items,
    subscriptions,
)

#: Statuses in which renewals do not bill (their next charge date stands still).
NOT_RENEWING = {SubscriptionStatus.PAUSED.value, SubscriptionStatus.UNPAID.value}


def renew_from_next_boundary(conn: Connection, back_at: dict[int, datetime]) -> None:
    """Subscriptions back from paused or unpaid (id -> when) renew from the next boundary.

    Renewals skip paused and unpaid subscriptions, so their next charge
    date stayed in the past; left there, every missed period would be
    billed, one per worker pass.
    """
    if not back_at:
        return
    s = subscriptions
    moved = []
    for row in conn.execute(select(s).where(s.c.id.in_(back_at))):
        period, at = first_period_from(
            row.anchor_at,
            IntervalUnit(row.interval_unit),
            row.interval_count,
            row.periods_billed,
            row.next_charge_at,
            back_at[row.id],
        )
        moved.append({"b_id": row.id, "periods": period, "next_at": at})
    conn.execute(
        update(s)
        .where(s.c.id == bindparam("b_id"))
        .values(periods_billed=bindparam("periods"), next_charge_at=bindparam("next_at")),
        moved,
    )


class PendingWrites:
    def __init__(self) -> None:
        self.events = EventBatch()
        self.attempts: list[dict[str, Any]] = []
        self.cycles: list[dict[str, Any]] = []
        self.facts: list[dict[str, Any]] = []
        # Paid invoices also get amount_paid_minor: a statement of their own.
        self.paid_invoices: list[dict[str, Any]] = []
        self.invoices: list[dict[str, Any]] = []
        self.outbox: list[dict[str, Any]] = []
        self.versions_used: dict[int, datetime] = {}
        self.subscription_status: dict[int, str] = {}
        self.subscription_changes: dict[int, tuple[str, str, datetime, int, int]] = {}
        # subscription id -> its status when the batch read it, for each one it changes
        self.loaded_status: dict[int, str] = {}
        # subscription id -> (when, site, customer, its status when loaded)
        self.reactivate: dict[int, tuple[datetime, int, int, str]] = {}
        # subscription id -> when it came back from paused or unpaid
        self.renew_from_now: dict[int, datetime] = {}
        self.downgrades: list[tuple[int, int, str]] = []

    def write(self, conn: Connection, owner: str) -> None:
        """Write everything collected, one statement per kind of change."""
        bulk_update(conn, payment_attempts, self.attempts, where=("idempotency_key", "b_key"))
        self._flush_invoices(conn)
        self._flush_reactivations(conn)
        self._flush_subscriptions(conn)
        self._flush_downgrades(conn)
        if self.versions_used:
            for version_id, at in self.versions_used.items():
                conn.execute(
                    update(dunning_policy_versions)
                    .where(dunning_policy_versions.c.id == version_id)
                    .where(dunning_policy_versions.c.first_used_at.is_(None))
                    .values(first_used_at=at)
                )
        insert_ignore(conn, outbox, self.outbox, ["dedupe_key"])
        self.events.write(conn)
        self._flush_cycles(conn, owner)

    def _flush_invoices(self, conn: Connection) -> None:
        bulk_update(
            conn,
            invoices,
            self.paid_invoices,
            where=("id", "b_id"),
            set_sql={"amount_paid_minor": "amount_due_minor"},
        )
        bulk_update(conn, invoices, self.invoices, where=("id", "b_id"))

    def _flush_reactivations(self, conn: Connection) -> None:
        """A paid invoice reactivates its subscription unless another is still past due."""
        # Most payments are first charges of active subscriptions: nothing to do.
        candidates = {
            sub_id: (now, site_id, customer_id, current)
            for sub_id, (now, site_id, customer_id, loaded) in self.reactivate.items()
            if (current := self.subscription_status.get(sub_id, loaded))
            in REACTIVATABLE_SUBSCRIPTIONS
        }
        # A merchant's pause is kept (see ``resumed_by_payment``). Statuses set
        # by this batch are final actions', so only loaded pauses are looked up.
        for sub_id in self._paused_by_merchant(conn, candidates):
            del candidates[sub_id]
        if not candidates:
            return
        still_owing = {
            row.subscription_id
            for row in conn.execute(
                select(invoices.c.subscription_id)
                .where(invoices.c.subscription_id.in_(candidates))
                .where(invoices.c.status == InvoiceStatus.PAST_DUE.value)
            )
        }
        for sub_id, (now, site_id, customer_id, current) in candidates.items():
            if sub_id not in still_owing:
                self.loaded_status.setdefault(sub_id, self.reactivate[sub_id][3])
                if current in NOT_RENEWING:
                    self.renew_from_now[sub_id] = now
                self.subscription_status[sub_id] = SubscriptionStatus.ACTIVE.value
                self.subscription_changes[sub_id] = (
                    current,
                    SubscriptionStatus.ACTIVE.value,
                    now,
                    site_id,
                    customer_id,
                )

    def _paused_by_merchant(
        self, conn: Connection, candidates: dict[int, tuple[datetime, int, int, str]]
    ) -> list[int]:
        loaded_pauses = [
            sub_id
            for sub_id, (_, _, _, current) in candidates.items()
            if current == SubscriptionStatus.PAUSED and sub_id not in self.subscription_status
        ]
        if not loaded_pauses:
            return []
        s = subscriptions
        return list(
            conn.execute(
                select(s.c.id).where(
                    s.c.id.in_(loaded_pauses), s.c.paused_by == PausedBy.MERCHANT.value
                )
            ).scalars()
        )

    def _keep_only_unchanged_subscriptions(self, conn: Connection) -> None:
        """Drop the changes to subscriptions changed by someone else since the batch read them.

        Statuses were read when the cycles were claimed, and a gateway call
        has passed since. A cancel or pause through the API meanwhile wins:
        written over, a canceled subscription would come back to life and
        be billed again. Read under a row lock (PostgreSQL; SQLite's writer
        already holds the database), so nobody changes them until commit.
        """
        touched = self.loaded_status.keys() | {sub_id for _, sub_id, _ in self.downgrades}
        if not touched:
            return
        s = subscriptions
        rows = conn.execute(
            # In id order, as every batch locks them, so two batches never deadlock.
            select(s.c.id, s.c.status).where(s.c.id.in_(touched)).order_by(s.c.id).with_for_update()
        )
        now_status = {row.id: row.status for row in rows}
        moved = {sub for sub, loaded in self.loaded_status.items() if now_status.get(sub) != loaded}
        for sub_id in moved:
            self.subscription_changes.pop(sub_id, None)
            self.renew_from_now.pop(sub_id, None)
        self.downgrades = [
            entry
            for entry in self.downgrades
            if entry[1] not in moved and now_status.get(entry[1]) != SubscriptionStatus.CANCELED
        ]

    def _flush_subscriptions(self, conn: Connection) -> None:
        self._keep_only_unchanged_subscriptions(conn)
        rows = []
        for sub_id, (before, after, now, site_id, customer_id) in self.subscription_changes.items():
            rows.append(
                {
                    "b_id": sub_id,
                    "status": after,
                    "canceled_at": now if after == SubscriptionStatus.CANCELED.value else None,
                    # The worker pauses only as a final action.
                    "paused_by": (
                        PausedBy.DUNNING.value if after == SubscriptionStatus.PAUSED else None
                    ),
                }
            )
            self.events.add(
                site_id,
                "subscription.state_changed",
                now,
                customer_id=customer_id,
                subscription_id=sub_id,
                previous=before,
                current=after,
            )
            if after == SubscriptionStatus.CANCELED.value:
                self.events.add(
                    site_id,
                    "subscription.expired",
                    now,
                    customer_id=customer_id,
                    subscription_id=sub_id,
                    reason="dunning",
                )
        bulk_update(
            conn,
            subscriptions,
            rows,
            where=("id", "b_id"),
            set_sql={"canceled_at": "COALESCE({value}, canceled_at)"},
        )
        self._flush_renewal_dates(conn)

    def _flush_renewal_dates(self, conn: Connection) -> None:
        renew_from_next_boundary(conn, self.renew_from_now)

    def _flush_downgrades(self, conn: Connection) -> None:
        for site_id, sub_id, code in self.downgrades:
            product = conn.execute(
                select(products.c.id, products.c.price_minor).where(
                    products.c.site_id == site_id, products.c.code == code
                )
            ).first()
            if product is None:
                continue  # validated on save; a deleted product leaves the plan as it was
            conn.execute(
                delete(subscription_items).where(subscription_items.c.subscription_id == sub_id)
            )
            conn.execute(
                subscription_items.insert().values(
                    site_id=site_id,
                    subscription_id=sub_id,
                    product_id=product.id,
                    quantity=1,
                    unit_price_minor=product.price_minor,
                )
            )

    def _flush_cycles(self, conn: Connection, owner: str) -> None:
        c = dunning_cycles
        bulk_update(
            conn,
            c,
            self.cycles,
            where=("id", "b_id"),
            set_sql={
                "outcome": "COALESCE({value}, outcome)",
                "lease_owner": "NULL",
                "lease_until": "NULL",
            },
        )
        if self.facts:
            conn.execute(
                update(c)
                .where(c.c.id == bindparam("b_id"))
                .where(c.c.attempts < bindparam("attempt_no"))
                .values(attempts=bindparam("attempt_no"), last_attempt_at=bindparam("at")),
                self.facts,
            )
            release_cycles(conn, [f["b_id"] for f in self.facts], owner)
