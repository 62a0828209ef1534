"""The billing page: what a customer owes, their card, and saving a new one.

Card numbers: the sandbox form's number goes straight into
:func:`~dunwell.gateways.sandbox.tokenize` and only the token, brand, last
four digits and expiry go further. Nothing here stores, returns or logs the
number, and error messages are passed through
:func:`~dunwell.messaging.redact.redact_card_numbers` in case a message
ever quotes it. Stripe customers' cards never reach Dunwell at all (see
:mod:`dunwell.services.stripe_setup`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, select

from dunwell.bootstrap import App
from dunwell.domain.card_numbers import luhn_valid
from dunwell.domain.policy import MAX_ATTEMPTS_CAP
from dunwell.domain.states import Collection, InvoiceStatus
from dunwell.gateways.base import CardDetails
from dunwell.gateways.sandbox import CardError, tokenize
from dunwell.messaging.redact import redact_card_numbers
from dunwell.services import ledger
from dunwell.services.card_retry import collect_invoices_now
from dunwell.services.errors import InvalidInput
from dunwell.services.hosted_links import HostedCustomer
from dunwell.services.portal_rules import PortalRules
from dunwell.services.sites import site_now
from dunwell.store.tables import customers, dunning_cycles, invoices, payment_methods

log = logging.getLogger("dunwell.web")

OWED = (InvoiceStatus.OPEN.value, InvoiceStatus.PAST_DUE.value)


@dataclass(frozen=True)
class OwedInvoice:
    id: int
    number: str
    status: str
    amount_minor: int
    currency: str
    due_at: datetime


@dataclass(frozen=True)
class CardOnFile:
    gateway: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    gateway_customer: str | None

    def expired(self, today: date) -> bool:
        return (self.exp_year, self.exp_month) < (today.year, today.month)


@dataclass(frozen=True)
class BillingView:
    customer: HostedCustomer
    email: str | None
    invoices: list[OwedInvoice]
    card: CardOnFile | None
    # Which card form to show: sandbox, stripe, or none (no gateway can take one).
    gateway: str

    @property
    def totals(self) -> dict[str, int]:
        """Amount owed per currency (a customer may owe in more than one)."""
        sums: dict[str, int] = {}
        for invoice in self.invoices:
            sums[invoice.currency] = sums.get(invoice.currency, 0) + invoice.amount_minor
        return sums


def billing_view(
    conn: Connection, who: HostedCustomer, rules: PortalRules, stripe_ready: bool
) -> BillingView:
    card = _card(conn, who)
    email = conn.execute(
        select(customers.c.email).where(customers.c.id == who.customer_id)
    ).scalar()
    return BillingView(
        customer=who,
        email=email,
        invoices=_owed(conn, who),
        card=card,
        gateway=choose_gateway(
            who.site_mode, card.gateway if card else None, rules.card_gateway, stripe_ready
        ),
    )


def choose_gateway(
    site_mode: str, card_gateway: str | None, preferred: str | None, stripe_ready: bool
) -> str:
    """The gateway a new card is saved with.

    A customer keeps the gateway of the card they have, since their other
    references (the Stripe customer) live there. Otherwise the site's
    choice, else its mode: test cards on sandbox sites, Stripe on live ones.
    A live site never takes test cards from a customer who had none.
    """
    chosen = card_gateway if card_gateway in ("sandbox", "stripe") else None
    if chosen is None:
        chosen = preferred or ("sandbox" if site_mode == "sandbox" else "stripe")
        if chosen == "sandbox" and site_mode == "live":
            chosen = "stripe"
    if chosen == "stripe" and not stripe_ready:
        return "none"
    return chosen


def read_test_card(form: Mapping[str, str], today: date) -> CardDetails:
    """Check the sandbox card form and tokenize the number at once.

    Raises InvalidInput naming the field (``number``, ``exp_month``,
    ``exp_year``, ``cvc``); no message ever contains the number.
    """
    digits = "".join(ch for ch in form.get("number", "") if ch not in " -")
    if not digits:
        raise InvalidInput("number", "enter the card number")
    if not digits.isdigit() or not 12 <= len(digits) <= 19:
        raise InvalidInput("number", "a card number has 12 to 19 digits")
    if not luhn_valid(digits):
        raise InvalidInput("number", "this card number is not valid; check for a typing error")
    month = _number(form.get("exp_month", ""), "exp_month", "enter the month as a number, 1 to 12")
    if not 1 <= month <= 12:
        raise InvalidInput("exp_month", "enter the month as a number, 1 to 12")
    year = _number(form.get("exp_year", ""), "exp_year", "enter the year, e.g. 2030")
    year = year + 2000 if year < 100 else year
    if (year, month) < (today.year, today.month):
        raise InvalidInput("exp_year", "this card has expired; check the date or use another card")
    if year > today.year + 25:
        raise InvalidInput("exp_year", "enter the year printed on the card, e.g. 2030")
    cvc = form.get("cvc", "").strip()
    if not cvc.isdigit() or not 3 <= len(cvc) <= 4:
        raise InvalidInput("cvc", "enter the 3 or 4 digits of the security code")
    try:
        return tokenize(digits, month, year)
    except CardError as error:
        raise InvalidInput("number", redact_card_numbers(str(error))) from None


def save_card(app: App, who: HostedCustomer, gateway: str, card: CardDetails) -> list[int]:
    """Make ``card`` the customer's default, then charge their past-due invoices now.

    Returns the invoices that were sent to collection, whose outcome the
    page then shows (:func:`~dunwell.services.card_retry.retry_results`).
    """
    with app.begin() as conn:
        now = site_now(conn, who.site_id, app.clock)
        retried = _collectable(conn, who)
        ledger.attach_payment_method(conn, who.site_id, who.customer_id, gateway, card, now)
    try:
        collect_invoices_now(app, retried)
    except Exception:
        # The card is saved and the invoices are due: the worker charges
        # them on its next pass, and the page shows them as being processed.
        log.exception("charging at once after a new card failed; the worker will retry")
    return retried


def _collectable(conn: Connection, who: HostedCustomer) -> list[int]:
    # The invoices attach_payment_method sends to collection (see
    # request_collection_for_customer), read first so the page knows them.
    return list(
        conn.execute(
            select(invoices.c.id)
            .join(dunning_cycles, dunning_cycles.c.invoice_id == invoices.c.id)
            .where(invoices.c.site_id == who.site_id, invoices.c.customer_id == who.customer_id)
            .where(invoices.c.status == InvoiceStatus.PAST_DUE.value)
            .where(dunning_cycles.c.collection == Collection.AUTOMATIC.value)
            .where(dunning_cycles.c.attempts < MAX_ATTEMPTS_CAP)
            .order_by(invoices.c.id)
        ).scalars()
    )


def _number(text: str, field: str, message: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidInput(field, message) from None


def _owed(conn: Connection, who: HostedCustomer) -> list[OwedInvoice]:
    rows = conn.execute(
        select(invoices)
        .where(invoices.c.site_id == who.site_id, invoices.c.customer_id == who.customer_id)
        .where(invoices.c.status.in_(OWED))
        .order_by(invoices.c.due_at, invoices.c.id)
    )
    return [
        OwedInvoice(
            id=row.id,
            number=row.number,
            status=row.status,
            amount_minor=row.amount_due_minor - row.amount_paid_minor,
            currency=row.currency,
            due_at=row.due_at,
        )
        for row in rows
    ]


def _card(conn: Connection, who: HostedCustomer) -> CardOnFile | None:
    pm = payment_methods
    row = conn.execute(
        select(
            pm.c.gateway,
            pm.c.brand,
            pm.c.last4,
            pm.c.exp_month,
            pm.c.exp_year,
            pm.c.gateway_customer,
        )
        .where(pm.c.site_id == who.site_id, pm.c.customer_id == who.customer_id)
        .where(pm.c.is_default.is_(True), pm.c.detached_at.is_(None))
        .order_by(pm.c.id.desc())
    ).first()
    if row is None:
        return None
    return CardOnFile(
        row.gateway, row.brand, row.last4, row.exp_month, row.exp_year, row.gateway_customer
    )
