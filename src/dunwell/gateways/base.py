"""The gateway interface every payment provider implements.

A gateway receives charge requests in batches, each with an idempotency key
the caller derived deterministically from (invoice, attempt). Asking twice
with the same key must return the first answer and never charge twice; this
is what makes a crashed worker safe to rerun.

Results never raise for a decline: a decline is an answer. Only answers that
leave the outcome unknown (timeouts, outages) come back as ``ERROR``, and the
caller asks again later with the same key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from dunwell.domain.states import AttemptStatus


@dataclass(frozen=True)
class ChargeRequest:
    idempotency_key: str
    token: str  # the gateway's payment method reference, never a card number
    amount_minor: int
    currency: str
    gateway_customer: str | None = None
    description: str = ""
    #: The gateway's own invoice this charge pays (Stripe: ``in_...``), for
    #: invoices mirrored from it: paying that invoice keeps both sides in step.
    #: With it, an empty ``token`` means "the method the gateway has on file".
    external_invoice: str | None = None


@dataclass(frozen=True)
class ChargeResponse:
    status: AttemptStatus
    decline_code: str | None = None
    reference: str | None = None
    message: str = ""


@dataclass(frozen=True)
class CardDetails:
    """What Dunwell keeps about a card: enough to show it, never to charge it."""

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    gateway_customer: str | None = None


class Gateway(Protocol):
    name: str
    #: The longest one request started before ``until`` may still take, in
    #: seconds (0 for a gateway that answers from the database): the caller
    #: stops starting requests in time for the last one to end within its lease.
    longest_charge_seconds: float

    def charge_many(
        self, requests: Sequence[ChargeRequest], *, until: float | None = None
    ) -> Sequence[ChargeResponse | None]:
        """Charge each request; answers come back in the same order.

        ``until`` is a :func:`time.monotonic` deadline: a request not started
        by then is not sent, and its answer is ``None``. Its caller leaves
        that attempt as it was, to be asked again with the same key.
        """
        ...


class GatewayRegistry:
    """The gateways a running Dunwell can use, by name (``sandbox``, ``stripe``)."""

    def __init__(self, gateways: Sequence[Gateway] = ()) -> None:
        self._by_name: dict[str, Gateway] = {g.name: g for g in gateways}

    def add(self, gateway: Gateway) -> None:
        self._by_name[gateway.name] = gateway

    def get(self, name: str) -> Gateway:
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(sorted(self._by_name)) or "none"
            raise LookupError(f"no gateway named {name!r} is configured (have: {known})") from None
