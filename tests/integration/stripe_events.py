"""Stripe webhook events as Stripe sends them, for tests.

Objects follow Stripe's JSON field for field: ``API_VERSION`` (2025-03-31.basil
and later) gives an invoice its subscription under
``parent.subscription_details``, puts the billing period on subscription
items and drops ``charge``/``payment_intent``/``paid`` from invoices;
``LEGACY_API_VERSION`` (2024-06-20) has the older shape. Bodies are signed
the way Stripe signs them: ``t=<unix time>,v1=<HMAC-SHA256 of "t.body">``.
"""

from __future__ import annotations

import json
import secrets
import string
import time
from typing import Any

import stripe

API_VERSION = "2025-03-31.basil"
LEGACY_API_VERSION = "2024-06-20"
ACCOUNT = "acct_1Nv0FGQ9RKHgCVdK"


def new_id(prefix: str) -> str:
    """An id shaped like Stripe's: a prefix and 24 letters and digits."""
    alphabet = string.ascii_letters + string.digits
    return f"{prefix}_{''.join(secrets.choice(alphabet) for _ in range(24))}"


def now() -> int:
    return int(time.time())


def event(
    type_: str,
    obj: dict[str, Any],
    *,
    created: int | None = None,
    event_id: str | None = None,
    api_version: str = API_VERSION,
    previous_attributes: dict[str, Any] | None = None,
    by_api: bool = False,
) -> dict[str, Any]:
    """A snapshot event; ``by_api`` when a request (not Stripe's billing) caused it."""
    data: dict[str, Any] = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": event_id or new_id("evt"),
        "object": "event",
        "api_version": api_version,
        "created": created or now(),
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {
            "id": new_id("req") if by_api else None,
            "idempotency_key": secrets.token_hex(16) if by_api else None,
        },
        "type": type_,
    }


def body(evt: dict[str, Any]) -> str:
    """The JSON text Stripe posts (pretty-printed, as Stripe does)."""
    return json.dumps(evt, indent=2)


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header for ``payload``, by the SDK's own helper."""
    header: str = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    return header


def price(
    price_id: str = "price_1PlanMonthlyUSD2500",
    *,
    unit_amount: int = 2500,
    currency: str = "usd",
    interval: str = "month",
    product: str = "prod_QsPlan2500Monthly",
    nickname: str | None = "Pro monthly",
) -> dict[str, Any]:
    return {
        "id": price_id,
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": now() - 86400 * 90,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": {},
        "nickname": nickname,
        "product": product,
        "recurring": {
            "interval": interval,
            "interval_count": 1,
            "meter": None,
            "trial_period_days": None,
            "usage_type": "licensed",
        },
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def invoice(
    invoice_id: str,
    *,
    customer: str,
    subscription: str | None = None,
    amount_due: int = 2500,
    amount_paid: int = 0,
    currency: str = "usd",
    status: str = "open",
    number: str | None = None,
    attempt_count: int = 1,
    customer_email: str | None = "ada@example.com",
    customer_name: str | None = "Ada Lovelace",
    customer_phone: str | None = None,
    collection_method: str = "charge_automatically",
    api_version: str = API_VERSION,
) -> dict[str, Any]:
    """An invoice after a charge attempt (``status`` open, paid or void)."""
    created = now() - 3600
    period_start, period_end = created - 30 * 86400, created
    paid = status == "paid"
    legacy = api_version < "2025-03-31"
    obj: dict[str, Any] = {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Acme Software",
        "account_tax_ids": None,
        "amount_due": amount_due,
        "amount_overpaid": 0,
        "amount_paid": amount_due if paid else amount_paid,
        "amount_remaining": 0 if paid else amount_due - amount_paid,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": attempt_count,
        "attempted": attempt_count > 0,
        "auto_advance": not paid and status != "void",
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": "subscription_cycle" if subscription else "manual",
        "collection_method": collection_method,
        "created": created,
        "currency": currency,
        "custom_fields": None,
        "customer": customer,
        "customer_address": None,
        "customer_email": customer_email,
        "customer_name": customer_name,
        "customer_phone": customer_phone,
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "due_date": None,
        "effective_at": created,
        "ending_balance": 0,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": f"https://invoice.stripe.com/i/{ACCOUNT}/test_{invoice_id}",
        "invoice_pdf": f"https://pay.stripe.com/invoice/{ACCOUNT}/test_{invoice_id}/pdf",
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": _lines(invoice_id, subscription, amount_due, currency, period_start, legacy),
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None if paid or status == "void" else created + 3 * 86400,
        "number": number or f"ACME-{invoice_id[-4:].upper()}-0001",
        "on_behalf_of": None,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": period_end,
        "period_start": period_start,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": {
            "amount_tax_display": None,
            "pdf": {"page_size": "auto"},
            "template": None,
            "template_version": None,
        },
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": status,
        "status_transitions": {
            "finalized_at": created,
            "marked_uncollectible_at": None,
            "paid_at": now() if paid else None,
            "voided_at": now() if status == "void" else None,
        },
        "subtotal": amount_due,
        "subtotal_excluding_tax": amount_due,
        "test_clock": None,
        "total": amount_due,
        "total_discount_amounts": [],
        "total_excluding_tax": amount_due,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": created,
    }
    if legacy:
        obj.update(
            charge=new_id("ch"),
            paid=paid,
            paid_out_of_band=False,
            payment_intent=new_id("pi"),
            quote=None,
            subscription=subscription,
            subscription_details={"metadata": {}} if subscription else None,
            subscription_proration_date=None,
            tax=None,
            total_tax_amounts=[],
        )
        for key in ("total_pretax_credit_amounts", "total_taxes", "amount_overpaid"):
            del obj[key]
    else:
        obj["parent"] = (
            {
                "quote_details": None,
                "subscription_details": {"metadata": {}, "subscription": subscription},
                "type": "subscription_details",
            }
            if subscription
            else None
        )
    return obj


def _lines(
    invoice_id: str,
    subscription: str | None,
    amount: int,
    currency: str,
    start: int,
    legacy: bool,
) -> dict[str, Any]:
    item = new_id("si")
    line: dict[str, Any] = {
        "id": new_id("il"),
        "object": "line_item",
        "amount": amount,
        "currency": currency,
        "description": "1 \u00d7 Pro (at $25.00 / month)",
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": {},
        "period": {"end": start + 30 * 86400, "start": start},
        "quantity": 1,
    }
    if legacy:
        line.update(
            amount_excluding_tax=amount,
            plan=None,
            price=price(),
            proration=False,
            proration_details={"credited_items": None},
            subscription=subscription,
            subscription_item=item if subscription else None,
            tax_amounts=[],
            tax_rates=[],
            type="subscription" if subscription else "invoiceitem",
            unit_amount_excluding_tax=str(amount),
        )
    else:
        line.update(
            parent={
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": subscription,
                    "subscription_item": item,
                },
                "type": "subscription_item_details",
            },
            pretax_credit_amounts=[],
            pricing={
                "price_details": {"price": price()["id"], "product": price()["product"]},
                "type": "price_details",
                "unit_amount_decimal": str(amount),
            },
            taxes=[],
        )
    return {
        "object": "list",
        "data": [line],
        "has_more": False,
        "total_count": 1,
        "url": f"/v1/invoices/{invoice_id}/lines",
    }


def subscription(
    subscription_id: str,
    *,
    customer: str,
    status: str = "active",
    prices: tuple[dict[str, Any], ...] = (),
    canceled: bool = False,
    api_version: str = API_VERSION,
) -> dict[str, Any]:
    start = now() - 60 * 86400
    period_start, period_end = now() - 86400, now() + 29 * 86400
    ended = now() if canceled else None
    sub_items = []
    for each in prices or (price(),):
        item: dict[str, Any] = {
            "id": new_id("si"),
            "object": "subscription_item",
            "billing_thresholds": None,
            "created": start,
            "discounts": [],
            "metadata": {},
            "plan": _plan(each),
            "price": each,
            "quantity": 1,
            "subscription": subscription_id,
            "tax_rates": [],
        }
        if api_version >= "2025-03-31":
            item.update(current_period_end=period_end, current_period_start=period_start)
        sub_items.append(item)
    obj: dict[str, Any] = {
        "id": subscription_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": start,
        "billing_cycle_anchor_config": None,
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": ended,
        "cancellation_details": {
            "comment": None,
            "feedback": None,
            "reason": "payment_failed" if canceled else None,
        },
        "collection_method": "charge_automatically",
        "created": start,
        "currency": sub_items[0]["price"]["currency"],
        "customer": customer,
        "days_until_due": None,
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "ended_at": ended,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {
            "object": "list",
            "data": sub_items,
            "has_more": False,
            "total_count": len(sub_items),
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "latest_invoice": new_id("in"),
        "livemode": False,
        "metadata": {},
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": start,
        "status": status,
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }
    if api_version < "2025-03-31":
        obj.update(current_period_end=period_end, current_period_start=period_start)
        obj.update(discount=None, plan=_plan(sub_items[0]["price"]), quantity=1)
    return obj


def _plan(each: dict[str, Any]) -> dict[str, Any]:
    recurring = each["recurring"]
    return {
        "id": each["id"],
        "object": "plan",
        "active": True,
        "amount": each["unit_amount"],
        "amount_decimal": each["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": each["created"],
        "currency": each["currency"],
        "interval": recurring["interval"],
        "interval_count": recurring["interval_count"],
        "livemode": False,
        "metadata": {},
        "meter": None,
        "nickname": each["nickname"],
        "product": each["product"],
        "tiers_mode": None,
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": "licensed",
    }


def customer(
    customer_id: str,
    *,
    name: str | None = "Ada Lovelace",
    email: str | None = "ada@example.com",
    phone: str | None = None,
    preferred_locales: tuple[str, ...] = (),
) -> dict[str, Any]:
    return {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": now() - 90 * 86400,
        "currency": "usd",
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": email,
        "invoice_prefix": "ACME" + customer_id[-4:].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": name,
        "next_invoice_sequence": 2,
        "phone": phone,
        "preferred_locales": list(preferred_locales),
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def card(
    payment_method_id: str,
    *,
    customer: str | None,
    brand: str = "visa",
    last4: str = "4242",
    exp_month: int = 12,
    exp_year: int = 2031,
    name: str | None = "Ada Lovelace",
) -> dict[str, Any]:
    """A card PaymentMethod (``type`` card) as attached to ``customer``."""
    return {
        "id": payment_method_id,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": {
                "city": None,
                "country": "US",
                "line1": None,
                "line2": None,
                "postal_code": "94103",
                "state": None,
            },
            "email": None,
            "name": name,
            "phone": None,
            "tax_id": None,
        },
        "card": {
            "brand": brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": "pass",
                "cvc_check": "pass",
            },
            "country": "US",
            "display_brand": brand,
            "exp_month": exp_month,
            "exp_year": exp_year,
            "fingerprint": secrets.token_urlsafe(12)[:16],
            "funding": "credit",
            "generated_from": None,
            "last4": last4,
            "networks": {"available": [brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": now(),
        "customer": customer,
        "livemode": False,
        "metadata": {},
        "radar_options": {},
        "type": "card",
    }
