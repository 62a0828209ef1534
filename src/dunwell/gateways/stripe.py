"""The Stripe gateway: off-session PaymentIntents through the official SDK.

Each request becomes one ``POST /v1/payment_intents`` with ``confirm=true`` and
``off_session=true`` (the customer is not present, so Stripe must not ask for
3-D Secure), charging the saved payment method ``request.token`` of the Stripe
customer ``request.gateway_customer``. The request's idempotency key goes out
as Stripe's ``Idempotency-Key``, so asking again returns Stripe's stored answer
instead of charging twice (Stripe keeps keys for at least 24 hours).

How answers map onto :class:`~dunwell.domain.states.AttemptStatus`:

* ``succeeded``: SUCCEEDED, reference = the PaymentIntent id.
* a card error (HTTP 402): DECLINED, code = the issuer's ``decline_code`` if
  Stripe gives one, else the error ``code`` (``expired_card``,
  ``authentication_required``...); reference = the failed PaymentIntent id.
* ``requires_action`` / ``requires_payment_method``: DECLINED, because an
  off-session charge cannot complete either way without the customer.
* an invalid request (HTTP 400/404): DECLINED with Stripe's code; a missing
  payment method or customer is ``invalid_account`` (hard: only a new method helps).
* no clear answer (connection failures, timeouts, 429, 5xx, 409 key in use,
  a bad API key, any other status): ERROR; the caller asks again later with
  the same key. Stripe replays a stored 5xx for the same key, so such an
  attempt stays ERROR until Stripe prunes the key.

A request for an invoice mirrored from Stripe (``external_invoice``) pays
that invoice instead: ``POST /v1/invoices/{id}/pay`` with ``off_session=true``
and the same idempotency key, charging ``request.token`` or, when it is
empty, the method Stripe has on file. Stripe then charges what the invoice
still owes and closes it, so Stripe and Dunwell never disagree about it. A
``paid`` invoice is SUCCEEDED (reference = the invoice id); errors map as
above, and ``invoice_payment_intent_requires_action`` counts as
``authentication_required``.

Requests go out in up to ``concurrency`` lanes side by side, each a thread
with its own connection: a charge takes Stripe a few hundred milliseconds,
so one after another a worker would charge two or three invoices a second.
Every request has its own idempotency key, so their order does not matter.
The lanes together start at most ``max_per_second`` requests a second, under
Stripe's limit for one endpoint; a worker's gateway takes its turns from a
:class:`~dunwell.gateways.pace.SharedPace`, so that limit holds for all the
workers together.
A lane that Stripe rate-limits (HTTP 429) pauses and asks again, as Stripe
advises; a rate-limited request is never stored under its key, so asking
again cannot charge twice. Lanes stop starting requests at the caller's
deadline (``until``), and those not sent are answered ``None``.

Only ids and codes ever reach messages: Dunwell never sees card numbers, and
the SDK is only given the payment method id.

Amounts are ISO 4217 minor units in Dunwell and in Stripe's units on the
wire; :func:`to_stripe_amount` and :func:`from_stripe_amount` convert at
this edge and at the webhook's (see :data:`STRIPE_SCALE`).
"""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING

import stripe

from dunwell.domain.states import AttemptStatus
from dunwell.gateways.base import ChargeRequest, ChargeResponse
from dunwell.gateways.pace import LocalPace, Pace

if TYPE_CHECKING:
    from stripe.params import InvoicePayParams, PaymentIntentCreateParams

#: Currencies whose amounts Stripe's API counts in smaller units than ISO
#: 4217's minor units (what the ledger stores), with the factor between them.
#: ISK has no minor unit in ISO 4217 and CLDR (0 decimals), but Stripe's API
#: keeps it two-decimal for backwards compatibility: 5,000 kr is 500000, and
#: an amount must be a multiple of 100 (whole krónur). Every other currency
#: has the same decimals in both, HUF and TWD (two) and KWD (three) included.
STRIPE_SCALE: dict[str, int] = {"ISK": 100}


def stripe_scale(currency: str) -> int:
    """How many of Stripe's units make one ISO minor unit of ``currency``."""
    return STRIPE_SCALE.get(currency.upper(), 1)


def to_stripe_amount(minor: int, currency: str) -> int:
    """ISO minor units as the amount Stripe's API expects: ``to_stripe_amount(5000, "ISK")``
    is 500000."""
    return minor * stripe_scale(currency)


def from_stripe_amount(amount: int, currency: str) -> int:
    """An amount from Stripe's API in ISO minor units; ValueError if it has a fraction of one."""
    minor, fraction = divmod(amount, stripe_scale(currency))
    if fraction:
        raise ValueError(f"{amount} is not a whole number of {currency.upper()} minor units")
    return minor


#: Codes for SDK errors whose body names no code (a 401 has none, for one).
_ERROR_CODES: dict[type[stripe.StripeError], str] = {
    stripe.AuthenticationError: "authentication_error",
    stripe.PermissionError: "permission_error",
    stripe.IdempotencyError: "idempotency_error",
}

#: The code of an answer Stripe rate-limited (HTTP 429).
RATE_LIMIT = "rate_limit"

#: Stripe's codes that mean the same as one Dunwell's decline lists know.
_CODE_ALIASES = {"invoice_payment_intent_requires_action": "authentication_required"}

#: Seconds to wait for Stripe; a timeout is an ERROR, safe to retry with the same key.
DEFAULT_TIMEOUT = 30.0
#: Requests side by side: at a few hundred milliseconds each, eight lanes
#: could start more than the pace below allows, so the pace is the limit.
DEFAULT_CONCURRENCY = 8
#: Requests started a second, at most, by all lanes together. Stripe limits
#: each endpoint (creating PaymentIntents is one) to 25 requests a second
#: per account, and the account to 100 in live mode and 25 in test mode.
DEFAULT_MAX_PER_SECOND = 20.0
#: Seconds a rate-limited lane waits before asking again (each stretched by
#: up to half again at random, so lanes do not come back together); after
#: the last, the answer is an ERROR, retried on the dunning schedule.
DEFAULT_RATE_LIMIT_PAUSES = (1.0, 2.0, 4.0)


class StripeGateway:
    """Charges saved Stripe payment methods; one API call per request, in lanes."""

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        api_base: str | None = None,
        max_network_retries: int = 0,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        concurrency: int = DEFAULT_CONCURRENCY,
        max_per_second: float = DEFAULT_MAX_PER_SECOND,
        rate_limit_pauses: Sequence[float] = DEFAULT_RATE_LIMIT_PAUSES,
        pace: Pace | None = None,
    ) -> None:
        """``api_base`` replaces ``https://api.stripe.com`` (tests point it at a fake).

        ``max_network_retries`` lets the SDK retry connection errors, 409s and
        5xx itself (reusing our idempotency key, so it is safe); the default 0
        leaves retrying to Dunwell's schedule. ``pace`` spaces the requests'
        starts; the default is a :class:`~dunwell.gateways.pace.LocalPace` of
        ``max_per_second``, this process's alone.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        # A request started just before the deadline: its own wait, and at
        # most one pause after a 429 before the lane sees the deadline.
        self.longest_charge_seconds = timeout + 1.5 * max(rate_limit_pauses, default=0.0)
        self._concurrency = concurrency
        # Kept across batches, so back-to-back batches keep the pace too.
        self._pace = pace if pace is not None else LocalPace(max_per_second)
        self._rate_limit_pauses = tuple(rate_limit_pauses)
        # Our own HTTP client, rather than the SDK's default, so that close()
        # can release its connections and the timeout is ours, not 80 s.
        self._http = stripe.RequestsClient(timeout=timeout)
        self._client = stripe.StripeClient(
            api_key,
            # Merged over the SDK's defaults key by key, so {"api": None} would
            # erase api.stripe.com: pass an override only when there is one.
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=self._http,
        )

    def charge_many(
        self, requests: Sequence[ChargeRequest], *, until: float | None = None
    ) -> list[ChargeResponse | None]:
        """Charge each request; answers come back in the same order, never raising
        for a decline or an outage (see the module docstring for the mapping).

        A request not started by ``until`` (a :func:`time.monotonic` deadline)
        is not sent, and its answer is ``None``.
        """
        answers: list[ChargeResponse | None] = [None] * len(requests)
        waiting = deque(enumerate(requests))
        lanes = min(self._concurrency, len(requests))
        if lanes <= 1:
            self._lane(waiting, answers, until)
            return answers
        with ThreadPoolExecutor(lanes, thread_name_prefix="stripe-lane") as pool:
            running = [
                pool.submit(self._lane_closing, waiting, answers, until) for _ in range(lanes)
            ]
            for lane in running:
                lane.result()  # a bug in one lane fails the batch, as it would in order
        return answers

    def close(self) -> None:
        """Close pooled connections (those opened by the calling thread)."""
        self._http.close()  # type: ignore[no-untyped-call]  # untyped in the SDK

    def _lane_closing(
        self,
        waiting: deque[tuple[int, ChargeRequest]],
        answers: list[ChargeResponse | None],
        until: float | None,
    ) -> None:
        # The SDK keeps one HTTP session per thread: a lane's thread ends with
        # its batch, so its connection is closed here rather than left behind.
        try:
            self._lane(waiting, answers, until)
        finally:
            self.close()

    def _lane(
        self,
        waiting: deque[tuple[int, ChargeRequest]],
        answers: list[ChargeResponse | None],
        until: float | None,
    ) -> None:
        # deque.popleft is atomic, so lanes share the queue without a lock.
        while waiting and self._pace.wait_turn(until):
            try:
                index, request = waiting.popleft()
            except IndexError:
                return
            answers[index] = self._charge_within_rate_limit(request, until)

    def _charge_within_rate_limit(
        self, request: ChargeRequest, until: float | None
    ) -> ChargeResponse | None:
        answer = self._charge(request)
        for pause in self._rate_limit_pauses:
            if answer.decline_code != RATE_LIMIT:
                break
            time.sleep(pause * (1 + random.random() / 2))
            if not self._pace.wait_turn(until):
                # Stripe refused it before charging anything: as if not sent.
                return None
            answer = self._charge(request)
        return answer

    def __enter__(self) -> StripeGateway:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _charge(self, request: ChargeRequest) -> ChargeResponse:
        try:
            if request.external_invoice:
                return _from_invoice(self._pay_invoice(request, request.external_invoice))
            return _from_intent(self._create_intent(request))
        except stripe.CardError as exc:
            return _card_declined(exc)
        except stripe.InvalidRequestError as exc:
            # Replayed for the same key and repeated for a new one: retrying
            # cannot help, so this is an answer, not an outage.
            missing = exc.code == "resource_missing"  # no such payment method or customer
            code = "invalid_account" if missing else exc.code or "invalid_request"
            return ChargeResponse(AttemptStatus.DECLINED, code, None, _describe(exc))
        except stripe.APIConnectionError as exc:
            return ChargeResponse(AttemptStatus.ERROR, "gateway_timeout", None, _describe(exc))
        except stripe.RateLimitError as exc:
            # Rate limits run before Stripe's idempotency layer, so the same
            # key later gets a fresh attempt.
            return ChargeResponse(AttemptStatus.ERROR, RATE_LIMIT, None, _describe(exc))
        except stripe.StripeError as exc:
            # 5xx, 409 (same key in flight), idempotency mismatch, bad API key:
            # the charge's outcome is unknown or not decided yet.
            code = (exc.error.code if exc.error else None) or _ERROR_CODES.get(
                type(exc), "api_error"
            )
            return ChargeResponse(AttemptStatus.ERROR, code, None, _describe(exc))

    def _create_intent(self, request: ChargeRequest) -> stripe.PaymentIntent:
        params: PaymentIntentCreateParams = {
            "amount": to_stripe_amount(request.amount_minor, request.currency),
            "currency": request.currency.lower(),  # Stripe wants ISO codes in lower case
            "payment_method": request.token,
            "off_session": True,
            "confirm": True,
        }
        if request.gateway_customer:
            params["customer"] = request.gateway_customer
        if request.description:
            params["description"] = request.description
        return self._client.v1.payment_intents.create(
            params, options={"idempotency_key": request.idempotency_key}
        )

    def _pay_invoice(self, request: ChargeRequest, invoice: str) -> stripe.Invoice:
        params: InvoicePayParams = {"off_session": True}
        if request.token:
            params["payment_method"] = request.token
        return self._client.v1.invoices.pay(
            invoice, params, options={"idempotency_key": request.idempotency_key}
        )


def _from_invoice(invoice: stripe.Invoice) -> ChargeResponse:
    if invoice.status == "paid":
        return ChargeResponse(AttemptStatus.SUCCEEDED, None, invoice.id)
    # Paying either settles the invoice or raises; anything else is unknown.
    return ChargeResponse(
        AttemptStatus.ERROR, None, invoice.id, f"invoice is {invoice.status} after paying"
    )


def _from_intent(intent: stripe.PaymentIntent) -> ChargeResponse:
    if intent.status == "succeeded":
        return ChargeResponse(AttemptStatus.SUCCEEDED, None, intent.id)
    if intent.status == "requires_action":
        # The issuer wants the customer (3-D Secure); off-session we cannot ask.
        return ChargeResponse(
            AttemptStatus.DECLINED, "authentication_required", intent.id, "requires_action"
        )
    if intent.status == "requires_payment_method":
        error = intent.last_payment_error
        code = (error.decline_code or error.code) if error else None
        return ChargeResponse(
            AttemptStatus.DECLINED, code or "generic_decline", intent.id, "requires_payment_method"
        )
    # processing, requires_capture, canceled...: not a settled charge we
    # asked for; report it unknown rather than guess.
    return ChargeResponse(
        AttemptStatus.ERROR, None, intent.id, f"unexpected status {intent.status}"
    )


def _card_declined(exc: stripe.CardError) -> ChargeResponse:
    error = exc.error
    code = (error.decline_code if error else None) or exc.code or "card_declined"
    code = _CODE_ALIASES.get(code, code)
    intent = error.payment_intent if error else None
    return ChargeResponse(
        AttemptStatus.DECLINED, code, intent.id if intent else None, _describe(exc)
    )


def _describe(exc: stripe.StripeError) -> str:
    # Stripe's messages name ids and reasons, never card numbers.
    status = exc.http_status if exc.http_status is not None else "no response"
    detail = f"stripe {type(exc).__name__} ({status})"
    return f"{detail}: {exc.user_message}" if exc.user_message else detail
