"""A site's rules for its hosted pages, kept in ``site_preferences.portal``.

One JSON document per site. A site that never saved rules gets the defaults
below: every customer-page action is allowed except swapping, which needs a
list of product codes to swap to (the "allowed collection"). Unknown keys in
the stored document are ignored, so an older Dunwell reads a newer document.
The row's ``stripe_webhook_secret`` belongs to the Stripe integration and is
never touched here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from dunwell.services.errors import InvalidInput, NotFound
from dunwell.store.sql import insert_ignore
from dunwell.store.tables import products, site_preferences, sites

GATEWAYS = ("sandbox", "stripe")


@dataclass(frozen=True)
class PortalRules:
    allow_skip: bool = True
    allow_delay: bool = True
    allow_date_change: bool = True
    allow_quantity: bool = True
    allow_cancel: bool = True
    allow_swap: bool = True
    # Product codes a customer may swap an item to; empty turns swapping off.
    swap_products: tuple[str, ...] = ()
    max_quantity: int = 10
    # Which card form the billing page shows to a customer with no card yet:
    # None picks by the site's mode (sandbox: test cards; live: Stripe).
    card_gateway: str | None = None
    # Stripe.js needs the publishable key (pk_...) of the account whose
    # secret key is DUNWELL_STRIPE_API_KEY; it is public by design.
    stripe_publishable_key: str | None = None

    @property
    def can_swap(self) -> bool:
        return self.allow_swap and bool(self.swap_products)

    def allows(self, action: str) -> bool:
        """Whether the customer page offers ``action`` (skip, delay, date, swap...)."""
        return {
            "skip": self.allow_skip,
            "delay": self.allow_delay,
            "date": self.allow_date_change,
            "quantities": self.allow_quantity,
            "cancel": self.allow_cancel,
            "swap": self.can_swap,
        }.get(action, False)


def load_portal_rules(conn: Connection, site_id: int) -> PortalRules:
    """The site's rules; the defaults when it has saved none (nothing is written)."""
    row = conn.execute(
        select(site_preferences.c.portal).where(site_preferences.c.site_id == site_id)
    ).first()
    return PortalRules() if row is None else _from_dict(row.portal or {})


def ensure_site_preferences(conn: Connection, site_id: int, now: datetime) -> PortalRules:
    """Create the site's preferences row with the default rules if it has none."""
    # Other features create the row too (the Stripe webhook secret): never
    # fail on theirs, and never overwrite what they wrote.
    row = {"site_id": site_id, "portal": rules_to_dict(PortalRules()), "updated_at": now}
    insert_ignore(conn, site_preferences, [row], ["site_id"])
    return load_portal_rules(conn, site_id)


def set_portal_rules(
    conn: Connection, site_id: int, changes: Mapping[str, Any], now: datetime
) -> PortalRules:
    """Apply ``changes`` (field name -> value) after validating each; return the result."""
    mode = conn.execute(select(sites.c.mode).where(sites.c.id == site_id)).scalar()
    if mode is None:
        raise NotFound(f"no site with id {site_id}")
    current = ensure_site_preferences(conn, site_id, now)
    known = {f.name for f in fields(PortalRules)}
    for name in changes:
        if name not in known:
            raise InvalidInput(name, "is not a customer page rule")
    merged = replace(current, **{k: _coerce(k, v) for k, v in changes.items()})
    _validate(conn, site_id, mode, merged)
    conn.execute(
        update(site_preferences)
        .where(site_preferences.c.site_id == site_id)
        .values(portal=rules_to_dict(merged), updated_at=now)
    )
    return merged


def rules_to_dict(rules: PortalRules) -> dict[str, Any]:
    data = asdict(rules)
    data["swap_products"] = list(rules.swap_products)
    return data


def _validate(conn: Connection, site_id: int, mode: str, rules: PortalRules) -> None:
    if not 1 <= rules.max_quantity <= 1000:
        raise InvalidInput("max_quantity", "must be between 1 and 1000")
    if rules.card_gateway is not None and rules.card_gateway not in GATEWAYS:
        raise InvalidInput("card_gateway", f"must be one of {', '.join(GATEWAYS)}, or null")
    if rules.card_gateway == "sandbox" and mode == "live":
        raise InvalidInput("card_gateway", "a live site cannot take sandbox test cards")
    key = rules.stripe_publishable_key
    if key is not None and not key.startswith("pk_"):
        raise InvalidInput("stripe_publishable_key", "a publishable key starts with pk_")
    if rules.swap_products:
        found = set(
            conn.execute(
                select(products.c.code).where(
                    products.c.site_id == site_id, products.c.code.in_(rules.swap_products)
                )
            ).scalars()
        )
        missing = [code for code in rules.swap_products if code not in found]
        if missing:
            raise InvalidInput("swap_products", f"no product with code {missing[0]!r}")


def _coerce(name: str, value: Any) -> Any:
    if name == "swap_products":
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise InvalidInput(name, "must be a list of product codes")
        return tuple(dict.fromkeys(value))  # keeps the order, drops repeats
    if name in ("card_gateway", "stripe_publishable_key"):
        if value is not None and not isinstance(value, str):
            raise InvalidInput(name, "must be text or null")
        return value or None
    expected = type(getattr(PortalRules(), name))
    if expected is bool and not isinstance(value, bool):
        raise InvalidInput(name, "must be true or false")
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInput(name, "must be a whole number")
    return value


def _from_dict(data: Mapping[str, Any]) -> PortalRules:
    """Read a stored document leniently: a malformed value falls back to its default."""
    values: dict[str, Any] = {}
    for f in fields(PortalRules):
        if f.name not in data:
            continue
        try:
            values[f.name] = _coerce(f.name, data[f.name])
        except InvalidInput:
            continue
    return PortalRules(**values)
