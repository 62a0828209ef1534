"""Reading Stripe's webhook JSON into the few facts Dunwell mirrors.

Pure functions over the decoded JSON; no database, no SDK objects. They read
the snapshot event shape of API versions from 2024 on, old and new:

* an invoice's subscription is ``subscription`` up to 2025-02-24.acacia and
  ``parent.subscription_details.subscription`` from 2025-03-31.basil on;
* a subscription's item carries ``price`` (with ``recurring``) in every
  version, and ``plan`` beside it in older ones.

Expandable fields (``customer``, ``subscription``, ``payment_intent``...) are
ids in webhooks but objects when expanded; both are accepted.

Amounts come back in ISO 4217 minor units, as the ledger stores them, not in
Stripe's: the two differ for ISK, which Stripe's API counts in hundredths
(see :data:`dunwell.gateways.stripe.STRIPE_SCALE`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dunwell.gateways.stripe import from_stripe_amount, stripe_scale
from dunwell.services.ledger_queries import CURRENCIES

#: The decline code recorded when a failed invoice payment names none. New
#: API versions no longer put the charge on the invoice, so usually none does.
DEFAULT_DECLINE_CODE = "card_declined"


class EventError(ValueError):
    """The JSON is not a usable Stripe event or object; the message names the field."""


@dataclass(frozen=True)
class StripeEvent:
    id: str
    type: str
    created: datetime
    api_version: str | None
    object: Mapping[str, Any]

    @property
    def object_id(self) -> str | None:
        value = self.object.get("id")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class CustomerFacts:
    id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str | None = None


@dataclass(frozen=True)
class InvoiceFacts:
    id: str
    customer: CustomerFacts
    subscription: str | None
    number: str | None
    status: str | None
    collection_method: str
    currency: str
    amount_due: int
    amount_paid: int
    amount_remaining: int
    created: datetime
    decline_code: str
    #: The failed charge or PaymentIntent, when the payload names one.
    reference: str | None


@dataclass(frozen=True)
class PriceFacts:
    id: str
    name: str
    unit_amount: int
    currency: str
    quantity: int
    interval: str | None
    interval_count: int


@dataclass(frozen=True)
class SubscriptionFacts:
    id: str
    customer: str
    status: str
    currency: str
    collection_method: str
    started: datetime
    items: tuple[PriceFacts, ...]


@dataclass(frozen=True)
class CardFacts:
    id: str
    customer: str | None
    brand: str
    last4: str
    exp_month: int
    exp_year: int


def parse_event(data: Any) -> StripeEvent:
    """The envelope every snapshot event has; raises EventError naming what is missing."""
    if not isinstance(data, Mapping):
        raise EventError("the body is not a JSON object")
    if data.get("object") != "event":
        raise EventError('"object" is not "event"')
    event_id, type_ = data.get("id"), data.get("type")
    if not isinstance(event_id, str) or not event_id:
        raise EventError('"id" is missing')
    if not isinstance(type_, str) or not type_:
        raise EventError('"type" is missing')
    inner = data.get("data")
    obj = inner.get("object") if isinstance(inner, Mapping) else None
    if not isinstance(obj, Mapping):
        raise EventError('"data.object" is missing')
    version = data.get("api_version")
    return StripeEvent(
        id=event_id,
        type=type_,
        created=_time(data, "created"),
        api_version=version if isinstance(version, str) else None,
        object=obj,
    )


def invoice_facts(obj: Mapping[str, Any]) -> InvoiceFacts:
    customer = _ref(obj.get("customer"))
    if customer is None:
        raise EventError("the invoice has no customer")
    parent = obj.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    currency = _currency(obj, required=True)
    due = _amount(obj, "amount_due", currency)
    paid = _amount(obj, "amount_paid", currency)
    remaining = obj.get("amount_remaining")
    return InvoiceFacts(
        id=_required_str(obj, "id"),
        customer=CustomerFacts(
            customer,
            _str(obj, "customer_name"),
            _str(obj, "customer_email"),
            _str(obj, "customer_phone"),
        ),
        subscription=_ref(obj.get("subscription"))
        or (_ref(details.get("subscription")) if isinstance(details, Mapping) else None),
        number=_str(obj, "number"),
        status=_str(obj, "status"),
        collection_method=_str(obj, "collection_method") or "charge_automatically",
        currency=currency,
        amount_due=due,
        amount_paid=paid,
        amount_remaining=(
            _amount(obj, "amount_remaining", currency) if remaining is not None else due - paid
        ),
        created=_time(obj, "created"),
        decline_code=_decline_code(obj),
        reference=_ref(obj.get("payment_intent")) or _ref(obj.get("charge")),
    )


def customer_facts(obj: Mapping[str, Any]) -> CustomerFacts:
    locales = obj.get("preferred_locales") or []
    first = locales[0] if isinstance(locales, list) and locales else None
    return CustomerFacts(
        id=_required_str(obj, "id"),
        name=_str(obj, "name"),
        email=_str(obj, "email"),
        phone=_str(obj, "phone"),
        locale=first if isinstance(first, str) and first else None,
    )


def subscription_facts(obj: Mapping[str, Any]) -> SubscriptionFacts:
    customer = _ref(obj.get("customer"))
    if customer is None:
        raise EventError("the subscription has no customer")
    items = obj.get("items") or {}
    data = items.get("data") if isinstance(items, Mapping) else None
    return SubscriptionFacts(
        id=_required_str(obj, "id"),
        customer=customer,
        status=_required_str(obj, "status"),
        currency=_currency(obj),
        collection_method=_str(obj, "collection_method") or "charge_automatically",
        started=_time(obj, "start_date" if "start_date" in obj else "created"),
        items=tuple(_price(item) for item in data or () if isinstance(item, Mapping)),
    )


def card_facts(obj: Mapping[str, Any]) -> CardFacts | None:
    """The card of a PaymentMethod; None for other types (SEPA, bank accounts...)."""
    card = obj.get("card")
    if obj.get("type") != "card" or not isinstance(card, Mapping):
        return None
    return CardFacts(
        id=_required_str(obj, "id"),
        customer=_ref(obj.get("customer")),
        brand=_str(card, "brand") or "unknown",
        last4=_required_str(card, "last4"),
        exp_month=_int(card, "exp_month", 1, 12),
        exp_year=_int(card, "exp_year", 2000, 2100),
    )


def billing_contact(obj: Mapping[str, Any], customer: str) -> CustomerFacts:
    """A PaymentMethod's billing details, as what we know of its customer."""
    details = obj.get("billing_details") or {}
    if not isinstance(details, Mapping):
        return CustomerFacts(customer)
    return CustomerFacts(
        customer, _str(details, "name"), _str(details, "email"), _str(details, "phone")
    )


def _price(item: Mapping[str, Any]) -> PriceFacts:
    price = item.get("price") or item.get("plan") or {}
    recurring = price.get("recurring") or {}
    key = "unit_amount" if "unit_amount" in price else "amount"
    product = price.get("product")
    product_name = product.get("name") if isinstance(product, Mapping) else None
    quantity = item.get("quantity")
    currency = _currency(price)
    return PriceFacts(
        id=_required_str(price, "id"),
        name=_str(price, "nickname") or product_name or _required_str(price, "id"),
        unit_amount=_amount(price, key, currency) if isinstance(price.get(key), int) else 0,
        currency=currency,
        quantity=_int(item, "quantity", 1, MAX_AMOUNT)
        if isinstance(quantity, int) and quantity > 0
        else 1,
        interval=_str(recurring, "interval") or _str(price, "interval"),
        interval_count=recurring.get("interval_count") or price.get("interval_count") or 1,
    )


def _decline_code(invoice: Mapping[str, Any]) -> str:
    """The issuer's reason, when the payload carries the failed payment expanded."""
    intent = invoice.get("payment_intent")
    if isinstance(intent, Mapping):
        error = intent.get("last_payment_error") or {}
        code = error.get("decline_code") or error.get("code")
        if isinstance(code, str) and code:
            return code
    charge = invoice.get("charge")
    if isinstance(charge, Mapping):
        outcome = charge.get("outcome") or {}
        code = charge.get("failure_code") or outcome.get("reason")
        if isinstance(code, str) and code:
            return code
    return DEFAULT_DECLINE_CODE


def _ref(value: Any) -> str | None:
    """An expandable field: the id, or the expanded object's id."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return (value.strip() or None) if isinstance(value, str) else None


def _required_str(obj: Mapping[str, Any], key: str) -> str:
    value = _str(obj, key)
    if value is None:
        kind = obj.get("object") or "object"
        raise EventError(f'the {kind} has no "{key}"')
    return value


#: Money columns are 32-bit in PostgreSQL, as in the API (an amount of
#: 21,474,836.47 in a two-decimal currency).
MAX_AMOUNT = 2**31 - 1
#: Unix times of 2000-01-01 and 2101-01-01: the moments billing can hold.
_EARLIEST, _LATEST = 946_684_800, 4_133_980_800


def _int(obj: Mapping[str, Any], key: str, low: int = -(2**63), high: int = 2**63 - 1) -> int:
    value = obj.get(key)
    kind = obj.get("object") or "object"
    if not isinstance(value, int) or isinstance(value, bool):
        raise EventError(f'the {kind} has no whole number "{key}"')
    if not low <= value <= high:
        raise EventError(f'the {kind}\'s "{key}" is out of range ({low} to {high})')
    return value


def _amount(obj: Mapping[str, Any], key: str, currency: str) -> int:
    """Stripe's amount of ``currency`` as ISO minor units that the ledger can store."""
    value = _int(obj, key, 0, MAX_AMOUNT * stripe_scale(currency))
    try:
        return from_stripe_amount(value, currency)
    except ValueError:
        # Stripe has refused fractional krónur since 2023: such an amount
        # is not one Dunwell can store, and guessing would misstate the debt.
        kind = obj.get("object") or "object"
        raise EventError(
            f'the {kind}\'s "{key}" {value} is not a whole number of {currency}'
        ) from None


def _currency(obj: Mapping[str, Any], *, required: bool = False) -> str:
    """The object's ``currency`` in upper case ("" when absent and not required).

    One Dunwell can bill in: a code the messages cannot format would fail
    every message about the invoice.
    """
    code = _required_str(obj, "currency") if required else _str(obj, "currency")
    if code is None:
        return ""
    if code.upper() not in CURRENCIES:
        kind = obj.get("object") or "object"
        raise EventError(f'the {kind}\'s "currency" {code!r} is not an ISO 4217 currency in use')
    return code.upper()


def _time(obj: Mapping[str, Any], key: str) -> datetime:
    """A Unix timestamp (Stripe's form of every moment) as an aware UTC datetime."""
    return datetime.fromtimestamp(_int(obj, key, _EARLIEST, _LATEST - 1), UTC)
