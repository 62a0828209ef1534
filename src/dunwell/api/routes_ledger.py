"""``/v1`` routes for customers, payment methods, products, subscriptions and promises."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator
from sqlalchemy import Connection

from dunwell.api.deps import AppDep, ReadConn, Reader, WriteConn, Writer
from dunwell.api.pagination import (
    MAX_INT,
    After,
    Currency,
    Limit,
    Moment,
    PhoneText,
    StorableText,
    Text,
    id_path,
    page,
)
from dunwell.bootstrap import App
from dunwell.domain.card_numbers import holds_card_number
from dunwell.domain.intervals import IntervalUnit
from dunwell.domain.states import Collection, SiteMode, SubscriptionStatus
from dunwell.gateways.base import CardDetails
from dunwell.gateways.sandbox import SUCCEED, TEST_CARDS, behaviour_of
from dunwell.services import invoice_actions, ledger, ledger_queries
from dunwell.services.errors import InvalidInput
from dunwell.services.ids import MAX_ID
from dunwell.services.sites import site_now

router = APIRouter(prefix="/v1")

CustomerId = Annotated[int, id_path("customer")]
ProductId = Annotated[int, id_path("product")]
SubscriptionId = Annotated[int, id_path("subscription")]
SANDBOX_TOKEN = re.compile(r"^sbx_[a-z_]+_[0-9a-f]{16}$")
STRIPE_IDS = {"token": "pm_", "gateway_customer": "cus_"}
SANDBOX_BEHAVIOURS = {SUCCEED, *TEST_CARDS.values()}
#: The longest billing interval, as Stripe allows: three years.
MAX_INTERVAL = {"day": 3 * 365, "week": 3 * 52, "month": 36, "year": 3}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerFields(Strict):
    last_name: Text = Field("", max_length=200, description="Family name.")
    email: Text | None = Field(None, max_length=320, description="Where emails go.")
    phone: PhoneText | None = Field(
        None,
        max_length=64,
        description="Mobile number in any common format, stored as E.164 "
        "(read with the site's SMS default region).",
    )
    locale: Text | None = Field(None, max_length=16, description="Language: en, fr, pt_BR...")
    time_zone: Text | None = Field(None, max_length=64, description="IANA zone: Europe/Paris.")
    payday: Text | None = Field(
        None, max_length=16, description="A weekday (friday), a day of the month (15) or last."
    )
    external_id: StorableText | None = Field(
        None, max_length=200, description="Your own id for the customer; unique in the site."
    )
    # Strict: consent is true or false, never "yes" or 1.
    marketing_sms_opt_in: StrictBool = Field(
        False, description="Explicit consent to marketing texts (dunning texts do not need it)."
    )

    @field_validator("email", "phone", "locale", "time_zone", "payday", "external_id")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


class CustomerCreate(CustomerFields):
    first_name: Text = Field(min_length=1, max_length=200, description="Given name.")


class CustomerUpdate(CustomerFields):
    """Only the fields sent change; null clears an optional field."""

    first_name: Text = Field("", min_length=1, max_length=200, description="Given name.")


class PaymentMethodCreate(Strict):
    """A gateway's reference to a card: never the card number itself."""

    gateway: Literal["sandbox", "stripe"] = Field("sandbox", description="Who charges it.")
    token: Text = Field(
        max_length=255,
        description="sandbox: a token from the sandbox gateway's tokenize "
        "(sbx_{behaviour}_{16 hex}); stripe: a PaymentMethod id (pm_...).",
        examples=["sbx_insufficient_funds_9f2c4e1a0b3d5c7e"],
    )
    gateway_customer: Text | None = Field(
        None, max_length=255, description="stripe: the Customer id (cus_...) owning the method."
    )
    brand: Text = Field("unknown", max_length=32, description="visa, mastercard, amex...")
    last4: str = Field(
        pattern=r"^[0-9]{4}$", description="The last four digits, to show.", examples=["4242"]
    )
    exp_month: StrictInt = Field(ge=1, le=12, examples=[12])
    exp_year: StrictInt = Field(ge=2000, le=2100, examples=[2031])
    make_default: StrictBool = Field(
        True, description="Charge this method from now on; sends past-due invoices to collection."
    )

    @field_validator("*", mode="before")
    @classmethod
    def _no_card_numbers(cls, value: Any) -> Any:
        # Refused before anything stores or echoes it: the error names the
        # field and never repeats the value.
        is_text_or_number = isinstance(value, int | str) and not isinstance(value, bool)
        if is_text_or_number and holds_card_number(str(value)):
            raise ValueError("looks like a card number; send the gateway's token instead")
        return value


class ProductCreate(Strict):
    code: StorableText = Field(
        min_length=1, max_length=100, description="Unique in the site: plan_pro."
    )
    name: Text = Field(min_length=1, max_length=200)
    # Strict: whole minor units, never 10.0 or "100".
    price_minor: StrictInt = Field(ge=0, le=MAX_INT, description="Price per period in minor units.")
    currency: Currency = Field(min_length=3, max_length=3, description="ISO 4217 code: USD.")


class ItemIn(Strict):
    product_id: StrictInt = Field(ge=1, le=MAX_ID)
    quantity: StrictInt = Field(1, ge=1, le=10_000)


class SubscriptionCreate(Strict):
    customer_id: StrictInt = Field(ge=1, le=MAX_ID)
    items: list[ItemIn] = Field(min_length=1, max_length=100, description="Products billed.")
    starts_at: Moment | None = Field(None, description="First charge; default now.")
    interval_unit: IntervalUnit = IntervalUnit.MONTH
    interval_count: StrictInt = Field(1, ge=1, le=MAX_INTERVAL["day"])
    collection: Collection = Field(
        Collection.AUTOMATIC, description="automatic: charged; manual: paid by the customer."
    )
    net_terms_days: StrictInt = Field(0, ge=0, le=365, description="Manual invoices: days to pay.")


class PromiseBody(Strict):
    date: Moment = Field(
        description="When the customer says they can pay (ISO 8601 with an offset).",
        examples=["2026-03-06T09:00:00Z"],
    )


# -- customers -----------------------------------------------------------------------


@router.post("/customers", status_code=201)
def create_customer(
    body: CustomerCreate, who: Writer, conn: WriteConn, app: AppDep
) -> dict[str, Any]:
    now = site_now(conn, who.site_id, app.clock)
    fields = body.model_dump(exclude={"marketing_sms_opt_in"})
    customer_id = ledger.create_customer(conn, who.site_id, ledger.NewCustomer(**fields), now)
    if body.marketing_sms_opt_in:
        changes = {"marketing_sms_opt_in": True}
        ledger.update_customer(conn, who.site_id, customer_id, changes, now)
    return ledger_queries.get_customer(conn, who.site_id, customer_id)


@router.get("/customers")
def list_customers(
    who: Reader,
    conn: ReadConn,
    after: After = 0,
    limit: Limit = 100,
    email: Annotated[Text | None, Query(max_length=320)] = None,
    external_id: Annotated[StorableText | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    rows = ledger_queries.list_customers(
        conn, who.site_id, email=email, external_id=external_id, after_id=after, limit=limit
    )
    return page(rows, limit)


@router.get("/customers/{customer_id}")
def get_customer(customer_id: CustomerId, who: Reader, conn: ReadConn) -> dict[str, Any]:
    return ledger_queries.get_customer(conn, who.site_id, customer_id)


@router.patch("/customers/{customer_id}")
def update_customer(
    customer_id: CustomerId, body: CustomerUpdate, who: Writer, conn: WriteConn, app: AppDep
) -> dict[str, Any]:
    now = site_now(conn, who.site_id, app.clock)
    changes = body.model_dump(include=body.model_fields_set)
    ledger.update_customer(conn, who.site_id, customer_id, changes, now)
    return ledger_queries.get_customer(conn, who.site_id, customer_id)


# -- payment methods -----------------------------------------------------------------


@router.post("/customers/{customer_id}/payment_methods", status_code=201)
def attach_payment_method(
    customer_id: CustomerId, body: PaymentMethodCreate, who: Writer, conn: WriteConn, app: AppDep
) -> dict[str, Any]:
    ledger_queries.get_customer(conn, who.site_id, customer_id)  # 404 before any 422
    card = _card(body, app, ledger_queries.get_site(conn, who.site_id)["mode"])
    now = site_now(conn, who.site_id, app.clock)
    method_id = ledger.attach_payment_method(
        conn, who.site_id, customer_id, body.gateway, card, now, make_default=body.make_default
    )
    return ledger_queries.get_payment_method(conn, who.site_id, method_id)


@router.get("/customers/{customer_id}/payment_methods")
def list_payment_methods(customer_id: CustomerId, who: Reader, conn: ReadConn) -> dict[str, Any]:
    return {"data": ledger_queries.list_payment_methods(conn, who.site_id, customer_id)}


@router.delete("/customers/{customer_id}/payment_methods/{payment_method_id}")
def detach_payment_method(
    customer_id: CustomerId,
    payment_method_id: Annotated[int, id_path("payment method")],
    who: Writer,
    conn: WriteConn,
    app: AppDep,
) -> dict[str, Any]:
    now = site_now(conn, who.site_id, app.clock)
    ledger.detach_payment_method(conn, who.site_id, customer_id, payment_method_id, now)
    return ledger_queries.get_payment_method(conn, who.site_id, payment_method_id)


def _card(body: PaymentMethodCreate, app: App, mode: str) -> CardDetails:
    """Check the token against its gateway; what is kept is only what can be shown."""
    if body.gateway == "sandbox":
        if mode != SiteMode.SANDBOX.value:
            raise InvalidInput("gateway", "a live site cannot use the sandbox gateway")
        if not SANDBOX_TOKEN.match(body.token) or behaviour_of(body.token) not in (
            SANDBOX_BEHAVIOURS
        ):
            raise InvalidInput("token", "is not a sandbox token (sbx_{behaviour}_{16 hex})")
        customer = None
    else:
        try:
            app.gateways.get("stripe")
        except LookupError:
            raise InvalidInput("gateway", "the stripe gateway is not configured") from None
        for name, prefix in STRIPE_IDS.items():
            if not re.fullmatch(prefix + r"\w+", getattr(body, name) or ""):
                raise InvalidInput(name, f"must be a Stripe id ({prefix}...)")
        customer = body.gateway_customer
    return CardDetails(body.token, body.brand, body.last4, body.exp_month, body.exp_year, customer)


# -- products ------------------------------------------------------------------------


@router.post("/products", status_code=201)
def create_product(
    body: ProductCreate, who: Writer, conn: WriteConn, app: AppDep
) -> dict[str, Any]:
    now = site_now(conn, who.site_id, app.clock)
    product_id = ledger.create_product(
        conn, who.site_id, body.code, body.name, body.price_minor, body.currency, now
    )
    return ledger_queries.get_product(conn, who.site_id, product_id)


@router.get("/products")
def list_products(
    who: Reader, conn: ReadConn, after: After = 0, limit: Limit = 100
) -> dict[str, Any]:
    rows = ledger_queries.list_products(conn, who.site_id, after_id=after, limit=limit)
    return page(rows, limit)


@router.get("/products/{product_id}")
def get_product(product_id: ProductId, who: Reader, conn: ReadConn) -> dict[str, Any]:
    return ledger_queries.get_product(conn, who.site_id, product_id)


# -- subscriptions -------------------------------------------------------------------


@router.post("/subscriptions", status_code=201)
def create_subscription(
    body: SubscriptionCreate, who: Writer, conn: WriteConn, app: AppDep
) -> dict[str, Any]:
    now = site_now(conn, who.site_id, app.clock)
    if body.starts_at is not None and body.starts_at < now:
        raise InvalidInput("starts_at", "must not be in the past")
    if body.interval_count > MAX_INTERVAL[body.interval_unit.value]:
        raise InvalidInput("interval_count", "a billing interval is at most three years")
    items = [ledger.Item(item.product_id, item.quantity) for item in body.items]
    _check_total(conn, who.site_id, items)
    subscription_id = ledger.create_subscription(
        conn,
        who.site_id,
        body.customer_id,
        items,
        now,
        starts_at=body.starts_at,
        interval_unit=body.interval_unit,
        interval_count=body.interval_count,
        collection=body.collection,
        net_terms_days=body.net_terms_days,
    )
    return ledger_queries.get_subscription(conn, who.site_id, subscription_id)


def _check_total(conn: Connection, site_id: int, items: list[ledger.Item]) -> None:
    # Invoice amounts are 32-bit integers: a period must fit in one.
    prices = {
        row["id"]: row["price_minor"]
        for row in ledger_queries.products_by_id(conn, site_id, {i.product_id for i in items})
    }
    if sum(prices.get(i.product_id, 0) * i.quantity for i in items) > MAX_INT:
        raise InvalidInput("items", f"one period must cost at most {MAX_INT} minor units")


@router.get("/subscriptions")
def list_subscriptions(
    who: Reader,
    conn: ReadConn,
    status: SubscriptionStatus | None = None,
    customer_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    after: After = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    rows = ledger_queries.list_subscriptions(
        conn,
        who.site_id,
        status=status.value if status else None,
        customer_id=customer_id,
        after_id=after,
        limit=limit,
    )
    return page(rows, limit)


@router.get("/subscriptions/{subscription_id}")
def get_subscription(
    subscription_id: SubscriptionId, who: Reader, conn: ReadConn
) -> dict[str, Any]:
    return ledger_queries.get_subscription(conn, who.site_id, subscription_id)


SUBSCRIPTION_ACTIONS = {
    "cancel": ledger_queries.cancel_subscription,
    "pause": ledger_queries.pause_subscription,
    "resume": ledger_queries.resume_subscription,
}


@router.post("/subscriptions/{subscription_id}/{action}")
def subscription_action(
    subscription_id: SubscriptionId,
    action: Literal["cancel", "pause", "resume"],
    who: Writer,
    conn: WriteConn,
    app: AppDep,
) -> dict[str, Any]:
    """cancel (for good), pause (no renewals) or resume (renew from the next period)."""
    now = site_now(conn, who.site_id, app.clock)
    SUBSCRIPTION_ACTIONS[action](conn, who.site_id, subscription_id, now)
    return ledger_queries.get_subscription(conn, who.site_id, subscription_id)


# -- promise to pay ------------------------------------------------------------------


@router.post("/invoices/{invoice_id}/promise")
def promise_to_pay(
    invoice_id: Annotated[int, id_path("invoice")],
    body: PromiseBody,
    who: Writer,
    conn: WriteConn,
    app: AppDep,
) -> dict[str, Any]:
    """Retry on the promised date instead (clamped to the cycle's final day)."""
    now = site_now(conn, who.site_id, app.clock)
    at = invoice_actions.promise_to_pay(conn, who.site_id, invoice_id, body.date, now)
    return {"id": invoice_id, "action": "promise", "done": True, "retry_at": at}
