"""Saving a card through Stripe Elements: the SetupIntent flow, server side.

Card details never reach Dunwell. The billing page asks Stripe for a
SetupIntent (:meth:`StripeCardSetup.start`) and hands its client secret to
Stripe.js in the customer's browser; Stripe.js sends the card to Stripe and
confirms the intent; the browser then posts only the SetupIntent id back,
and :meth:`StripeCardSetup.finish` reads the resulting PaymentMethod's
brand, last four digits and expiry from Stripe.

The intent carries the Dunwell site and customer in its metadata, and
``finish`` checks them, so an intent made for one customer cannot be used
to attach a card to another. ``usage=off_session`` lets Dunwell charge the
card later without the customer present, as dunning retries do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import stripe

from dunwell.gateways.base import CardDetails

if TYPE_CHECKING:
    from stripe.params import CustomerCreateParams, SetupIntentCreateParams


class CardSetupError(Exception):
    """Stripe could not start or finish the setup; the message is safe to show."""


@dataclass(frozen=True)
class SetupStart:
    client_secret: str
    gateway_customer: str


class CardSetup(Protocol):
    def start(
        self, site_id: int, customer_id: int, gateway_customer: str | None, email: str | None
    ) -> SetupStart:
        """Create a SetupIntent (and the Stripe customer, when there is none yet)."""
        ...

    def finish(self, site_id: int, customer_id: int, setup_intent_id: str) -> CardDetails:
        """The card saved by a confirmed SetupIntent of this customer."""
        ...


class StripeCardSetup:
    """The real thing, through the official SDK (``api_base`` for a local fake)."""

    def __init__(
        self,
        api_key: str,
        api_base: str | None = None,
        timeout: float = 20.0,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        """``http_client`` replaces the SDK's transport (tests answer in-process)."""
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            http_client=http_client or stripe.RequestsClient(timeout=timeout),
        )

    def start(
        self, site_id: int, customer_id: int, gateway_customer: str | None, email: str | None
    ) -> SetupStart:
        metadata = _metadata(site_id, customer_id)
        try:
            if gateway_customer is None:
                customer: CustomerCreateParams = {"metadata": metadata}
                if email:
                    customer["email"] = email
                # One Stripe customer per Dunwell customer, even if the page
                # is loaded twice before a card is saved.
                key = f"dunwell-customer-{site_id}-{customer_id}"
                created = self._client.v1.customers.create(
                    customer, options={"idempotency_key": key}
                )
                gateway_customer = created.id
            setup: SetupIntentCreateParams = {
                "customer": gateway_customer,
                "usage": "off_session",
                "allowed_payment_method_types": ["card"],
                "metadata": metadata,
            }
            intent = self._client.v1.setup_intents.create(setup)
        except stripe.StripeError as error:
            raise CardSetupError(_describe(error)) from None
        if not intent.client_secret:
            raise CardSetupError("Stripe returned no client secret")
        return SetupStart(intent.client_secret, gateway_customer)

    def finish(self, site_id: int, customer_id: int, setup_intent_id: str) -> CardDetails:
        if not setup_intent_id.startswith("seti_"):
            raise CardSetupError("the card form did not finish; please try again")
        try:
            intent = self._client.v1.setup_intents.retrieve(
                setup_intent_id, {"expand": ["payment_method"]}
            )
        except stripe.StripeError as error:
            raise CardSetupError(_describe(error)) from None
        stored = intent.metadata
        expected = _metadata(site_id, customer_id)
        if stored is None or any(k not in stored or stored[k] != v for k, v in expected.items()):
            raise CardSetupError("this card setup belongs to another page; please try again")
        if intent.status != "succeeded":
            raise CardSetupError("the card was not confirmed; please try again")
        method = intent.payment_method
        card = getattr(method, "card", None)
        if method is None or isinstance(method, str) or card is None:
            raise CardSetupError("Stripe returned no card for this setup")
        customer = intent.customer
        return CardDetails(
            token=method.id,
            brand=card.brand,
            last4=card.last4,
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            gateway_customer=customer.id if isinstance(customer, stripe.Customer) else customer,
        )


def _metadata(site_id: int, customer_id: int) -> dict[str, str]:
    return {"dunwell_site": str(site_id), "dunwell_customer": str(customer_id)}


def _describe(error: stripe.StripeError) -> str:
    # Stripe's user messages never contain card numbers; they are meant for people.
    return error.user_message or "the card service is not answering; please try again shortly"
