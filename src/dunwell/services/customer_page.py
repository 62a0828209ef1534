"""The customer page: a customer's subscriptions and what they may change.

:func:`portal_view` loads what the page shows; :func:`apply_portal_action`
turns one submitted form into one change from
:mod:`dunwell.services.subscription_changes`, after checking that the site's
rules (:mod:`dunwell.services.portal_rules`) offer that action. The rules
are checked here, not in the change functions, because other ways in (an
operator, the SMS concierge) follow their own rules for some actions.

A subscription mirrored from Stripe is listed read-only, without a next
order date: Stripe bills it, the change functions refuse it, and the date
Dunwell keeps for it is only a placeholder beyond any clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, func, select

from dunwell.domain.states import InvoiceStatus, is_mirrored
from dunwell.services import subscription_changes as changes
from dunwell.services.errors import Conflict, InvalidInput
from dunwell.services.hosted_links import HostedCustomer
from dunwell.services.ids import parse_id
from dunwell.services.portal_rules import PortalRules, ensure_site_preferences, load_portal_rules
from dunwell.store.tables import invoices, products, subscription_items, subscriptions

ACTIONS = ("skip", "delay", "date", "swap", "quantities", "cancel")


@dataclass(frozen=True)
class ItemView:
    id: int
    product_code: str
    product_name: str
    quantity: int
    unit_price_minor: int

    @property
    def total_minor(self) -> int:
        return self.quantity * self.unit_price_minor


@dataclass(frozen=True)
class SubscriptionView:
    id: int
    status: str
    currency: str
    interval_unit: str
    interval_count: int
    #: None for a subscription managed in Stripe: Dunwell does not know its date.
    next_charge_at: datetime | None
    canceled_at: datetime | None
    items: tuple[ItemView, ...]
    managed_in_stripe: bool = False

    @property
    def amount_minor(self) -> int:
        return sum(item.total_minor for item in self.items)

    @property
    def changeable(self) -> bool:
        return self.status in changes.CHANGEABLE and not self.managed_in_stripe


@dataclass(frozen=True)
class SwapChoice:
    code: str
    name: str
    price_minor: int
    currency: str


@dataclass(frozen=True)
class PortalView:
    customer: HostedCustomer
    rules: PortalRules
    subscriptions: list[SubscriptionView]
    swap_choices: list[SwapChoice]
    invoices_owed: int


def portal_view(conn: Connection, who: HostedCustomer) -> PortalView:
    rules = load_portal_rules(conn, who.site_id)
    return PortalView(
        customer=who,
        rules=rules,
        subscriptions=_subscriptions(conn, who),
        swap_choices=_swap_choices(conn, who.site_id, rules) if rules.can_swap else [],
        invoices_owed=_owed(conn, who),
    )


def apply_portal_action(
    conn: Connection,
    who: HostedCustomer,
    action: str,
    subscription_id: int,
    form: Mapping[str, str],
    now: datetime,
) -> None:
    """Carry out one form of the customer page at the site's ``now``."""
    rules = ensure_site_preferences(conn, who.site_id, now)
    if action not in ACTIONS or not rules.allows(action):
        raise Conflict("this change is not offered; contact us to make it")
    changer = changes.Changer(who.site_id, who.customer_id, now)
    if action == "skip":
        changes.skip_next_order(conn, changer, subscription_id)
    elif action == "delay":
        changes.delay_next_order(conn, changer, subscription_id, form.get("by", ""))
    elif action == "date":
        on = _parse_date(form.get("date", ""))
        changes.change_next_date(conn, changer, subscription_id, on, who.zone)
    elif action == "swap":
        item_id = _parse_int(form.get("item", ""), "item", "choose the item to swap")
        changes.swap_product(
            conn, changer, subscription_id, item_id, form.get("product", ""), rules.swap_products
        )
    elif action == "quantities":
        changes.change_quantities(
            conn, changer, subscription_id, _quantities(form), rules.max_quantity
        )
    else:
        changes.cancel_subscription(conn, changer, subscription_id)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput("date", "enter a date like 2026-04-15 (year, month, day)") from None


def _parse_int(text: str, field: str, message: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidInput(field, message) from None


def _quantities(form: Mapping[str, str]) -> dict[int, int]:
    """``qty-<item id>`` fields as item id -> quantity."""
    found: dict[int, int] = {}
    for name, value in form.items():
        prefix, _, item = name.partition("-")
        item_id = parse_id(item) if prefix == "qty" else None
        if item_id is None:
            continue
        found[item_id] = _parse_int(value, name, "enter a whole number, 0 to remove the item")
    return found


def _subscriptions(conn: Connection, who: HostedCustomer) -> list[SubscriptionView]:
    s, i, p = subscriptions, subscription_items, products
    subs = conn.execute(
        select(s)
        .where(s.c.site_id == who.site_id, s.c.customer_id == who.customer_id)
        .order_by(s.c.status == "canceled", s.c.next_charge_at, s.c.id)
    ).all()
    items: dict[int, list[ItemView]] = {row.id: [] for row in subs}
    if subs:
        rows = conn.execute(
            select(
                i.c.id,
                i.c.subscription_id,
                i.c.quantity,
                i.c.unit_price_minor,
                i.c.one_time_period,
                p.c.code,
                p.c.name,
            )
            .join(p, p.c.id == i.c.product_id)
            .where(i.c.subscription_id.in_(list(items)))
            .order_by(i.c.id)
        )
        periods = {row.id: row.periods_billed for row in subs}
        for row in rows:
            # An add-on for one order shows only until that order is billed.
            once = row.one_time_period
            if once is not None and once != periods[row.subscription_id]:
                continue
            items[row.subscription_id].append(
                ItemView(row.id, row.code, row.name, row.quantity, row.unit_price_minor)
            )
    return [
        SubscriptionView(
            id=row.id,
            status=row.status,
            currency=row.currency,
            interval_unit=row.interval_unit,
            interval_count=row.interval_count,
            next_charge_at=None if is_mirrored(row) else row.next_charge_at,
            canceled_at=row.canceled_at,
            items=tuple(items[row.id]),
            managed_in_stripe=is_mirrored(row),
        )
        for row in subs
    ]


def _swap_choices(conn: Connection, site_id: int, rules: PortalRules) -> list[SwapChoice]:
    rows = conn.execute(
        select(products.c.code, products.c.name, products.c.price_minor, products.c.currency).where(
            products.c.site_id == site_id, products.c.code.in_(rules.swap_products)
        )
    )
    by_code = {
        row.code: SwapChoice(row.code, row.name, row.price_minor, row.currency) for row in rows
    }
    # The merchant's order, not the database's.
    return [by_code[code] for code in rules.swap_products if code in by_code]


def _owed(conn: Connection, who: HostedCustomer) -> int:
    return int(
        conn.execute(
            select(func.count()).where(
                invoices.c.site_id == who.site_id,
                invoices.c.customer_id == who.customer_id,
                invoices.c.status.in_([InvoiceStatus.OPEN.value, InvoiceStatus.PAST_DUE.value]),
            )
        ).scalar_one()
    )
