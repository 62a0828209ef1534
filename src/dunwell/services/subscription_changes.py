"""Changes a customer makes to their own subscription: dates, items, cancelling.

Every function is scoped by site *and* customer, so a customer can only ever
reach their own subscriptions, and writes one event in the same transaction:
``subscription.updated`` with what changed, or ``subscription.canceled``.
Errors name the form field at fault (:class:`InvalidInput`), or say that the
subscription cannot change in its state (:class:`Conflict`).

A subscription mirrored from Stripe (``external_id`` set) is refused by every
function here: Stripe bills it, and a change made to the mirror alone would
never reach Stripe, which would go on billing a customer who believes they
skipped or cancelled.

Moving the next charge re-anchors the subscription. Renewals compute each
date from ``anchor_at`` and ``periods_billed`` (see
:mod:`dunwell.domain.intervals`), so simply writing a new ``next_charge_at``
would be undone by the next renewal, or worse, bill the following period at
once. Instead the anchor moves so that the new date *is* the start of the
next period, and later renewals follow on from it. Skipping counts the
skipped period as passed, so it is never billed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, delete, or_, select, update

from dunwell.domain.intervals import IntervalUnit, period_start
from dunwell.domain.states import SubscriptionStatus, is_mirrored
from dunwell.services import ledger_queries
from dunwell.services.errors import Conflict, InvalidInput, NotFound
from dunwell.services.events import EventBatch
from dunwell.store.tables import products, subscription_items, subscriptions

#: Subscriptions whose upcoming order the customer may change.
CHANGEABLE = (SubscriptionStatus.ACTIVE.value, SubscriptionStatus.PAST_DUE.value)
#: The refusal for a subscription mirrored from Stripe (see the module docstring).
MANAGED_IN_STRIPE = (
    "this subscription is managed in Stripe, so it cannot be changed or canceled here"
)
#: How far ahead a customer may move their next order.
MAX_AHEAD = timedelta(days=366)
#: The delays the customer page offers, as (unit, count).
DELAYS: dict[str, tuple[IntervalUnit, int]] = {
    "1w": (IntervalUnit.WEEK, 1),
    "2w": (IntervalUnit.WEEK, 2),
    "1m": (IntervalUnit.MONTH, 1),
}


@dataclass(frozen=True)
class Changer:
    """Who is changing what: the scope every query below is limited to."""

    site_id: int
    customer_id: int
    now: datetime  # site time
    source: str = "customer_portal"


def next_order_date(
    conn: Connection, who: Changer, subscription_id: int, zone: ZoneInfo
) -> date | None:
    """The local date of the upcoming order, read under the row's lock; None: none is due.

    Raises Conflict for a subscription managed in Stripe: it has no order here.
    """
    sub = _load(conn, who, subscription_id)
    return None if sub.next_charge_at is None else sub.next_charge_at.astimezone(zone).date()


def skip_next_order(conn: Connection, who: Changer, subscription_id: int) -> datetime:
    """Skip the upcoming order; the one after it becomes next. Returns its date."""
    sub = _changeable(conn, who, subscription_id)
    anchor, period = _reanchor(sub, sub.next_charge_at)
    new_at = period_start(anchor, _unit(sub), sub.interval_count, period + 1)
    _move(conn, who, sub, anchor, period + 1, new_at, "skip")
    return new_at


def delay_next_order(conn: Connection, who: Changer, subscription_id: int, by: str) -> datetime:
    """Push the upcoming order back by ``by`` (1w, 2w or 1m). Returns the new date."""
    if by not in DELAYS:
        raise InvalidInput("by", "choose one week, two weeks or one month")
    sub = _changeable(conn, who, subscription_id)
    unit, count = DELAYS[by]
    new_at = period_start(max(sub.next_charge_at, who.now), unit, count, 1)
    _check_when(new_at, who.now, "by")
    anchor, period = _reanchor(sub, new_at)
    _move(conn, who, sub, anchor, period, new_at, "delay", by=by)
    return new_at


def change_next_date(
    conn: Connection, who: Changer, subscription_id: int, on: date, zone: ZoneInfo
) -> datetime:
    """Move the upcoming order to the local date ``on``, at its usual time of day."""
    sub = _changeable(conn, who, subscription_id)
    local = sub.next_charge_at.astimezone(zone)
    new_at = datetime.combine(on, local.time(), tzinfo=zone).astimezone(UTC)
    if on == local.date():
        raise InvalidInput("date", "this is already the date of your next order")
    if on <= who.now.astimezone(zone).date():
        raise InvalidInput("date", "choose a date after today")
    _check_when(new_at, who.now, "date")
    anchor, period = _reanchor(sub, new_at)
    _move(conn, who, sub, anchor, period, new_at, "date")
    return new_at


def swap_product(
    conn: Connection,
    who: Changer,
    subscription_id: int,
    item_id: int,
    product_code: str,
    allowed_codes: tuple[str, ...],
) -> None:
    """Replace one item's product with another from the site's allowed list."""
    sub = _changeable(conn, who, subscription_id)
    items = _items(conn, sub)
    item = items.get(item_id)
    if item is None:
        raise InvalidInput("item", "choose one of the items in this order")
    if product_code not in allowed_codes:
        raise InvalidInput("product", "choose one of the products offered")
    product = conn.execute(
        select(products).where(products.c.site_id == who.site_id, products.c.code == product_code)
    ).first()
    if product is None or product.currency != sub.currency:
        raise InvalidInput("product", "this product cannot be added to this order")
    if any(other.product_id == product.id for other in items.values()):
        raise InvalidInput("product", "this product is already in the order; change its quantity")
    conn.execute(
        update(subscription_items)
        .where(subscription_items.c.id == item_id)
        .values(product_id=product.id, unit_price_minor=product.price_minor)
    )
    change = {"item_id": item_id, "from": item.code, "to": product.code}
    _updated(conn, who, sub, {"action": "swap", "swap": change})


def change_quantities(
    conn: Connection,
    who: Changer,
    subscription_id: int,
    quantities: dict[int, int],
    max_quantity: int,
) -> bool:
    """Set item quantities; 0 removes an item, but one must remain. False if nothing changed."""
    sub = _changeable(conn, who, subscription_id)
    items = _items(conn, sub)
    for item_id, quantity in quantities.items():
        if item_id not in items:
            raise InvalidInput(f"qty-{item_id}", "this item is not in the order")
        if not 0 <= quantity <= max_quantity:
            raise InvalidInput(f"qty-{item_id}", f"enter a number from 0 to {max_quantity}")
    after = {item_id: quantities.get(item_id, item.quantity) for item_id, item in items.items()}
    if not any(after.values()):
        first = next(iter(items))
        raise InvalidInput(
            f"qty-{first}", "keep at least one item; to stop every item, cancel the subscription"
        )
    changed = [
        {"item_id": i, "product": items[i].code, "from": items[i].quantity, "to": q}
        for i, q in after.items()
        if q != items[i].quantity
    ]
    if not changed:
        return False
    for entry in changed:
        row = subscription_items.c.id == entry["item_id"]
        if entry["to"] == 0:
            conn.execute(delete(subscription_items).where(row))
        else:
            conn.execute(update(subscription_items).where(row).values(quantity=entry["to"]))
    _updated(conn, who, sub, {"action": "quantities", "items": changed})
    return True


def cancel_subscription(conn: Connection, who: Changer, subscription_id: int) -> None:
    """End the subscription at the customer's request; invoices already owed stay owed.

    The change itself is the API's cancel (``subscription.state_changed``);
    this adds ``subscription.canceled`` saying who asked and from where.
    """
    sub = _load(conn, who, subscription_id)
    if sub.status == SubscriptionStatus.CANCELED.value:
        raise Conflict("this subscription is already canceled")
    ledger_queries.cancel_subscription(conn, who.site_id, sub.id, who.now)
    batch = EventBatch()
    batch.add(
        who.site_id,
        "subscription.canceled",
        who.now,
        customer_id=who.customer_id,
        subscription_id=sub.id,
        previous=sub.status,
        reason="customer_request",
        source=who.source,
    )
    batch.write(conn)


# -- loading and checks --------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    product_id: int
    code: str
    quantity: int


def _load(conn: Connection, who: Changer, subscription_id: int) -> Any:
    query = select(subscriptions).where(
        subscriptions.c.site_id == who.site_id,
        subscriptions.c.customer_id == who.customer_id,
        subscriptions.c.id == subscription_id,
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"no subscription {subscription_id} for this customer")
    if is_mirrored(row):
        raise Conflict(MANAGED_IN_STRIPE)
    return row


def _changeable(conn: Connection, who: Changer, subscription_id: int) -> Any:
    sub = _load(conn, who, subscription_id)
    if sub.status not in CHANGEABLE:
        raise Conflict(f"a {sub.status} subscription's orders cannot be changed")
    return sub


def _items(conn: Connection, sub: Any) -> dict[int, _Item]:
    """The items of the upcoming order: add-ons for orders already billed are left out."""
    i = subscription_items
    rows = conn.execute(
        select(
            subscription_items.c.id,
            subscription_items.c.product_id,
            subscription_items.c.quantity,
            products.c.code,
        )
        .join(products, products.c.id == subscription_items.c.product_id)
        .where(i.c.subscription_id == sub.id)
        .where(or_(i.c.one_time_period.is_(None), i.c.one_time_period == sub.periods_billed))
        .order_by(i.c.id)
    )
    return {row.id: _Item(row.product_id, row.code, row.quantity) for row in rows}


def _check_when(new_at: datetime, now: datetime, field: str) -> None:
    if new_at <= now:
        raise InvalidInput(field, "the next order must be in the future")
    if new_at > now + MAX_AHEAD:
        raise InvalidInput(field, "the next order can be moved at most a year ahead")


def _unit(sub: Any) -> IntervalUnit:
    return IntervalUnit(sub.interval_unit)


def _reanchor(sub: Any, new_at: datetime) -> tuple[datetime, int]:
    """An (anchor, period) whose period starts exactly at ``new_at``.

    The current anchor is kept when it already gives ``new_at``, so a
    subscription anchored on the 31st keeps renewing on the 31st. The
    period number never goes down (renewal invoices are unique per period).
    A month-based anchor cannot always land on the 29th to 31st: going back
    N months from 31 March reaches February. Counting one or two periods
    more as passed finds a month long enough; the gap only shows as a
    skipped number in the invoice numbering.
    """
    unit, count = _unit(sub), sub.interval_count
    if period_start(sub.anchor_at, unit, count, sub.periods_billed) == new_at:
        return sub.anchor_at, sub.periods_billed
    for extra in range(9):
        period = sub.periods_billed + extra
        anchor = _shift_back(new_at, unit, count * period)
        if period_start(anchor, unit, count, period) == new_at:
            return anchor, period
    # Unreachable for real calendars; keep the date and accept clamping later.
    return _shift_back(new_at, unit, count * sub.periods_billed), sub.periods_billed


def _shift_back(at: datetime, unit: IntervalUnit, steps: int) -> datetime:
    if unit is IntervalUnit.DAY:
        return at - timedelta(days=steps)
    if unit is IntervalUnit.WEEK:
        return at - timedelta(weeks=steps)
    months = steps * (12 if unit is IntervalUnit.YEAR else 1)
    return period_start(at, IntervalUnit.MONTH, -1, months)


def _move(
    conn: Connection,
    who: Changer,
    sub: Any,
    anchor: datetime,
    period: int,
    new_at: datetime,
    action: str,
    **extra: Any,
) -> None:
    conn.execute(
        update(subscriptions)
        .where(subscriptions.c.id == sub.id)
        .values(anchor_at=anchor, periods_billed=period, next_charge_at=new_at)
    )
    change = {"from": sub.next_charge_at.isoformat(), "to": new_at.isoformat()}
    _updated(conn, who, sub, {"action": action, "next_charge_at": change, **extra})


def _updated(conn: Connection, who: Changer, sub: Any, changes: dict[str, Any]) -> None:
    batch = EventBatch()
    batch.add(
        who.site_id,
        "subscription.updated",
        who.now,
        customer_id=who.customer_id,
        subscription_id=sub.id,
        source=who.source,
        changes=changes,
    )
    batch.write(conn)


def ship_next_order_now(conn: Connection, who: Changer, subscription_id: int) -> datetime:
    """Bring the upcoming order forward to now; the renewal worker bills it on its next pass."""
    sub = _changeable(conn, who, subscription_id)
    if sub.next_charge_at <= who.now:
        raise Conflict("this order is already being processed")
    anchor, period = _reanchor(sub, who.now)
    _move(conn, who, sub, anchor, period, who.now, "ship_now")
    return who.now


def add_to_next_order(
    conn: Connection,
    who: Changer,
    subscription_id: int,
    product_name: str,
    quantity: int,
    allowed_names: tuple[str, ...],
) -> None:
    """Add a product to the upcoming order only (billed in that period, not after)."""
    sub = _changeable(conn, who, subscription_id)
    if product_name not in allowed_names:
        raise InvalidInput("product", "this product cannot be added to this order")
    product = conn.execute(
        select(products)
        .where(products.c.site_id == who.site_id, products.c.name == product_name)
        .where(products.c.currency == sub.currency)
        .order_by(products.c.id)
        .limit(1)
    ).first()
    if product is None:
        raise InvalidInput("product", "this product cannot be added to this order")
    if quantity < 1:
        raise InvalidInput("quantity", "add at least one")
    conn.execute(
        subscription_items.insert().values(
            site_id=who.site_id,
            subscription_id=sub.id,
            product_id=product.id,
            quantity=quantity,
            unit_price_minor=product.price_minor,
            one_time_period=sub.periods_billed,
        )
    )
    added = {"product": product.code, "quantity": quantity, "period": sub.periods_billed}
    _updated(conn, who, sub, {"action": "add_once", "added": added})
