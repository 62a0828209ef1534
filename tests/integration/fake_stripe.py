"""A local HTTP server that answers ``POST /v1/payment_intents`` and
``POST /v1/invoices/{id}/pay`` like Stripe.

Only what the Stripe gateway needs, on Stripe's wire format: a form-encoded
body, ``Authorization: Bearer sk_test_...``, an ``Idempotency-Key`` header,
JSON answers shaped like Stripe's PaymentIntent and error objects.

Idempotency follows Stripe's API v1 rules: once the endpoint has started
executing, the status and body of the first request with a key are stored and
replayed (with ``Idempotent-Replayed: true``), 5xx included; a reused key with
different parameters is a 400 ``idempotency_error``; rate limiting (429), bad
API keys and failed parameter validation happen before that layer, so they are
not stored.

The ``payment_method`` decides the outcome (names from Stripe's test payment
methods, plus ``pm_fake_*`` for what test mode cannot produce on demand); any
other ``pm_...`` does not exist, and only ``cus_...`` customers exist.

Invoices exist once a test opens them (:meth:`FakeStripe.open_invoice`).
Paying one without a ``payment_method`` uses the one it was opened with
(the customer's default in Stripe). A paid invoice cannot be paid again.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from tests.integration import stripe_events
from tests.integration.local_http import LocalHttpServer

API_KEY = "sk_test_fake_4eC39HqLyjWDarjtT1zdp7dc"

SUCCEEDS = ("pm_card_visa", "pm_card_mastercard", "pm_card_amex")
REQUIRES_ACTION = "pm_fake_requiresAction"
RATE_LIMITED = "pm_fake_rateLimited"
SERVER_ERROR = "pm_fake_apiError"

#: payment_method -> (code, decline_code or None, message) of a 402 card_error.
CARD_ERRORS: dict[str, tuple[str, str | None, str]] = {
    "pm_card_chargeDeclined": ("card_declined", "generic_decline", "Your card was declined."),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    "pm_card_chargeDeclinedLostCard": ("card_declined", "lost_card", "Your card was declined."),
    "pm_card_chargeDeclinedStolenCard": ("card_declined", "stolen_card", "Your card was declined."),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", None, "Your card has expired."),
    "pm_card_chargeDeclinedProcessingError": (
        "processing_error",
        None,
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    "pm_card_authenticationRequired": (
        "authentication_required",
        "authentication_required",
        "Your card was declined. This transaction requires authentication.",
    ),
}


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the fake received it."""

    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, str]
    idempotency_key: str | None
    replayed: bool
    #: time.monotonic() when the request arrived, before the fake's latency.
    arrived_at: float = 0.0


INVOICE_PAY = re.compile(r"/v1/invoices/(?P<invoice>in_[A-Za-z0-9]+)/pay")


@dataclass
class _Stored:
    path: str
    params: dict[str, str]
    status: int
    body: dict[str, Any]
    request_id: str


@dataclass
class FakeStripe:
    """State shared by the handler threads; read it from tests after a call."""

    requests: list[RecordedRequest] = field(default_factory=list)
    #: Idempotency keys of the requests that were executed (a charge attempted).
    executed: list[str | None] = field(default_factory=list)
    #: Stripe invoices by id, as Stripe would return them.
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Seconds each request waits before it is answered, as Stripe takes a few
    #: hundred milliseconds to confirm a charge.
    latency: float = 0.0
    #: How many of the next requests are rate-limited (429), whatever they ask.
    rate_limit_next: int = 0
    #: The most requests that were being answered at one moment.
    most_in_flight: int = 0
    _in_flight: int = 0
    _default_methods: dict[str, str | None] = field(default_factory=dict)
    _stored: dict[str, _Stored] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def open_invoice(
        self, invoice: dict[str, Any], default_payment_method: str | None = None
    ) -> None:
        """Make an open invoice payable; ``default_payment_method`` is what Stripe has on file."""
        with self._lock:
            self.invoices[invoice["id"]] = dict(invoice, status="open")
            self._default_methods[invoice["id"]] = default_payment_method

    def requests_with_key(self, key: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.idempotency_key == key]

    def handle(
        self, method: str, path: str, headers: dict[str, str], params: dict[str, str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """Answer one request: (HTTP status, JSON body, extra headers); record it."""
        key = headers.get("idempotency-key")
        arrived_at = time.monotonic()
        with self._lock:
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)
        try:
            time.sleep(self.latency)
            with self._lock:
                status, body, extra = self._respond(method, path, headers, params, key)
                replayed = extra.get("Idempotent-Replayed") == "true"
                self.requests.append(
                    RecordedRequest(method, path, headers, params, key, replayed, arrived_at)
                )
                return status, body, extra
        finally:
            with self._lock:
                self._in_flight -= 1

    def _respond(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        params: dict[str, str],
        key: str | None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        pay = INVOICE_PAY.fullmatch(path)
        if method != "POST" or (path != "/v1/payment_intents" and pay is None):
            return 404, _invalid(f"Unrecognized request URL ({method}: {path}).", None), {}
        if headers.get("authorization") != f"Bearer {API_KEY}":
            return 401, _invalid("Invalid API Key provided.", None), {}
        # Stripe rate-limits before its idempotency layer: a 429 is never stored.
        if params.get("payment_method") == RATE_LIMITED or self.rate_limit_next > 0:
            self.rate_limit_next = max(0, self.rate_limit_next - 1)
            message = "Request rate limit exceeded. See https://stripe.com/docs/rate-limits."
            return 429, _invalid(message, None, "rate_limit"), {}
        stored = self._stored.get(key) if key else None
        if stored is not None:
            if stored.params != params or stored.path != path:
                message = (
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}' if you "
                    "meant to execute a different request."
                )
                return 400, {"error": {"message": message, "type": "idempotency_error"}}, {}
            replay = {"Idempotent-Replayed": "true", "Original-Request": stored.request_id}
            return stored.status, stored.body, replay
        if pay is not None:
            status, body = self._pay(pay["invoice"], params)
        else:
            # Failed validation is not stored either: the endpoint never started.
            missing = next((p for p in ("amount", "currency") if p not in params), None)
            if missing:
                message = f"Missing required param: {missing}."
                return 400, _invalid(message, missing, "parameter_missing"), {}
            status, body = _execute(params)
        self.executed.append(key)
        if key:
            self._stored[key] = _Stored(path, params, status, body, _new_id("req"))
        # Like Stripe: a stored 5xx would only be replayed, so the SDK should not retry it.
        return status, body, {"Stripe-Should-Retry": "false"} if status >= 500 else {}

    def _pay(self, invoice_id: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            message = f"No such invoice: '{invoice_id}'"
            return 404, _invalid(message, "invoice", "resource_missing")
        if invoice["status"] != "open":
            # Stripe's answer names no code, only the reason.
            return 400, _invalid(f"Invoice is already {invoice['status']}", None)
        method = params.get("payment_method") or self._default_methods.get(invoice_id)
        if method is None:
            message = "This customer has no attached payment source or default payment method."
            return 400, _invalid(message, None)
        charge = {
            "amount": str(invoice["amount_remaining"]),
            "currency": invoice["currency"],
            "customer": invoice["customer"],
            "payment_method": method,
        }
        invoice["attempt_count"] += 1
        invoice["attempted"] = True
        if method == REQUIRES_ACTION:
            message = (
                "This payment requires additional user action before it can be completed "
                "successfully. Payment can be completed using the PaymentIntent associated "
                "with the invoice."
            )
            error = {
                "code": "invoice_payment_intent_requires_action",
                "message": message,
                "type": "card_error",
            }
            error["payment_intent"] = payment_intent(charge, "requires_action")
            return 402, {"error": error}
        status, body = _execute(charge)
        if status != 200:
            return status, body
        paid = stripe_events.invoice(
            invoice_id,
            customer=invoice["customer"],
            amount_due=invoice["amount_due"],
            currency=invoice["currency"],
            status="paid",
            number=invoice["number"],
            attempt_count=invoice["attempt_count"],
        )
        self.invoices[invoice_id] = paid
        return 200, paid


def _execute(params: dict[str, str]) -> tuple[int, dict[str, Any]]:
    method = params.get("payment_method", "")
    customer = params.get("customer")
    if customer is not None and not customer.startswith("cus_"):
        return 400, _invalid(f"No such customer: '{customer}'", "customer", "resource_missing")
    if method in SUCCEEDS:
        return 200, payment_intent(params, "succeeded")
    if method == REQUIRES_ACTION:
        intent = payment_intent(params, "requires_action")
        intent["next_action"] = {"type": "use_stripe_sdk", "use_stripe_sdk": {}}
        return 200, intent
    if method == SERVER_ERROR:
        return 500, {"error": {"message": "An unknown error occurred", "type": "api_error"}}
    if method in CARD_ERRORS:
        code, decline_code, message = CARD_ERRORS[method]
        error: dict[str, Any] = {
            "charge": _new_id("ch"),
            "code": code,
            "doc_url": f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}",
            "message": message,
            "request_log_url": f"https://dashboard.stripe.com/test/logs/{_new_id('req')}",
            "type": "card_error",
        }
        if decline_code:
            error["decline_code"] = decline_code
        intent = payment_intent(params, "requires_payment_method")
        intent["last_payment_error"] = dict(error)
        intent["latest_charge"] = error["charge"]
        return 402, {"error": {**error, "payment_intent": intent}}
    return 400, _invalid(f"No such PaymentMethod: '{method}'", "payment_method", "resource_missing")


def payment_intent(params: dict[str, str], status: str) -> dict[str, Any]:
    """A PaymentIntent object as Stripe returns it (the fields a card charge has)."""
    intent_id = _new_id("pi")
    amount = int(params["amount"])
    succeeded = status == "succeeded"
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": amount if succeeded else 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{intent_id}_secret_{secrets.token_hex(12)}",
        "confirmation_method": "automatic",
        "created": int(time.time()),
        "currency": params["currency"],
        "customer": params.get("customer"),
        "description": params.get("description"),
        "last_payment_error": None,
        "latest_charge": _new_id("ch") if succeeded else None,
        "livemode": False,
        "metadata": {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": params.get("payment_method"),
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": None,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer_data": None,
        "transfer_group": None,
    }


def _invalid(message: str, param: str | None, code: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": "invalid_request_error"}
    if code:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param:
        error["param"] = param
    return {"error": error}


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        headers = {name.lower(): value for name, value in self.headers.items()}
        params = dict(parse_qsl(body, keep_blank_values=True))
        status, payload, extra = self.server.fake.handle(self.command, self.path, headers, params)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", _new_id("req"))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet


class _Server(ThreadingHTTPServer):
    fake: FakeStripe


class FakeStripeServer:
    """Serves a :class:`FakeStripe` on 127.0.0.1 from a background thread."""

    def __init__(self) -> None:
        self.fake = FakeStripe()
        self._http = LocalHttpServer(_Handler, _Server)
        self._http.server.fake = self.fake

    @property
    def url(self) -> str:
        return self._http.url

    def start(self) -> FakeStripeServer:
        self._http.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and end the thread."""
        self._http.stop()
