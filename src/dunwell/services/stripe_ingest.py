"""Stripe webhooks in: verified, deduplicated, put in order, mapped onto the ledger.

:func:`receive` is the whole path of one delivery to
``POST /stripe/{site}/webhook``:

1. **Verify.** ``Stripe-Signature`` is checked by the official SDK against
   the site's signing secret, with Stripe's five-minute tolerance judged on
   real time. An unknown site, a site with no secret, a forged, altered or
   replayed body all get the same :class:`WebhookRejected` (HTTP 400), and
   nothing is stored. So does a verified body that is not an event.
2. **Deduplicate.** Each event is recorded once in ``stripe_events``, unique
   on (site, Stripe event id). A second delivery changes nothing and gets the
   first answer; only an event whose handling *failed* is tried again, so a
   merchant can resend it from Stripe's dashboard once the cause is fixed.
3. **Order.** Stripe does not deliver in order. An event older (Stripe's
   ``created``) than one already applied to the same object is recorded as
   ``ignored_stale`` and changes nothing. A failure is also stale once the
   invoice was seen paid or voided in the same second or later: ``created``
   counts whole seconds, and a paid or voided invoice never fails again, so
   a late ``invoice.payment_failed`` cannot reopen an invoice that
   ``invoice.paid`` closed, even one Dunwell never mirrored.
4. **Apply.** A handler per event type changes the ledger in the same
   transaction as the record. A handler that refuses the event (an unusable
   object, a rule of the ledger) leaves the ledger unchanged and the event
   ``failed``; an unexpected error rolls everything back, answers 500, and
   Stripe delivers the event again later.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import stripe
from sqlalchemy import Connection, func, select, update

from dunwell.bootstrap import App
from dunwell.domain.states import InvoiceStatus, SubscriptionStatus
from dunwell.security.secrets import SecretBox
from dunwell.services.errors import InvalidInput, ServiceError
from dunwell.services.sites import site_now
from dunwell.services.stripe_invoices import find_invoice, settle, start_dunning
from dunwell.services.stripe_ledger import Mirror
from dunwell.services.stripe_payloads import (
    CustomerFacts,
    EventError,
    StripeEvent,
    billing_contact,
    card_facts,
    customer_facts,
    invoice_facts,
    parse_event,
    subscription_facts,
)
from dunwell.store.sql import insert_ignore, insert_skipping_conflicts
from dunwell.store.tables import site_preferences, sites, stripe_events

#: Seconds a signature stays valid: Stripe's own default, against replays.
TOLERANCE_SECONDS = 300
UNVERIFIED = "The Stripe-Signature header could not be verified for this site"


class Outcome(StrEnum):
    APPLIED = "applied"
    IGNORED_STALE = "ignored_stale"
    IGNORED_TYPE = "ignored_type"
    FAILED = "failed"


class WebhookRejected(Exception):
    """The delivery is refused (HTTP 400) and nothing was stored."""

    def __init__(self, title: str, detail: str) -> None:
        super().__init__(detail)
        self.title = title
        self.detail = detail


@dataclass(frozen=True)
class Receipt:
    event_id: str
    type: str
    outcome: Outcome
    detail: str | None
    duplicate: bool


#: Stripe's subscription statuses as Dunwell's. ``incomplete`` means the first
#: payment has not succeeded, which Dunwell calls past due.
SUBSCRIPTION_STATUS = {
    "active": SubscriptionStatus.ACTIVE,
    "trialing": SubscriptionStatus.ACTIVE,
    "past_due": SubscriptionStatus.PAST_DUE,
    "incomplete": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.UNPAID,
    "paused": SubscriptionStatus.PAUSED,
    "canceled": SubscriptionStatus.CANCELED,
    "incomplete_expired": SubscriptionStatus.CANCELED,
}


# -- the signing secret ----------------------------------------------------------------


def save_webhook_secret(
    conn: Connection, site_id: int, secret: str | None, box: SecretBox, now: datetime
) -> None:
    """Store the endpoint's signing secret encrypted; ``None`` removes it."""
    if secret is not None:
        secret = secret.strip()
        if not secret.startswith("whsec_") or len(secret) < 10:
            raise InvalidInput("webhook_secret", "a Stripe signing secret starts with whsec_")
    row = {"site_id": site_id, "portal": {}, "updated_at": now}
    insert_ignore(conn, site_preferences, [row], ["site_id"])
    conn.execute(
        update(site_preferences)
        .where(site_preferences.c.site_id == site_id)
        .values(stripe_webhook_secret=box.seal(secret) if secret else None, updated_at=now)
    )


def webhook_secret_is_set(conn: Connection, site_id: int) -> bool:
    sealed = conn.execute(
        select(site_preferences.c.stripe_webhook_secret).where(
            site_preferences.c.site_id == site_id
        )
    ).scalar()
    return bool(sealed)


def _site_secret(conn: Connection, slug: str, box: SecretBox | None) -> tuple[int, str] | None:
    row = conn.execute(
        select(sites.c.id, site_preferences.c.stripe_webhook_secret)
        .outerjoin(site_preferences, site_preferences.c.site_id == sites.c.id)
        .where(sites.c.slug == slug)
    ).first()
    if row is None or not row.stripe_webhook_secret or box is None:
        return None
    return int(row.id), box.open(row.stripe_webhook_secret)


# -- one delivery ----------------------------------------------------------------------


def receive(app: App, slug: str, payload: bytes, signature: str | None) -> Receipt:
    """Verify, record and apply one delivery; raises WebhookRejected (nothing stored)."""
    with app.connect() as conn:
        found = _site_secret(conn, slug, app.secret_box_or_none())
    if found is None:
        # The same answer as a bad signature: nothing for a prober to learn.
        raise WebhookRejected("Invalid signature", UNVERIFIED)
    site_id, secret = found
    event = verify(payload, signature, secret)
    with app.begin() as conn:
        return _ingest(conn, app, site_id, event)


def verify(payload: bytes, signature: str | None, secret: str) -> StripeEvent:
    """The event, once the SDK has checked its signature and age."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("Invalid signature", UNVERIFIED) from None
    try:
        event = stripe.Webhook.construct_event(text, signature, secret, tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError:
        raise WebhookRejected("Invalid signature", UNVERIFIED) from None
    except json.JSONDecodeError as error:
        raise WebhookRejected("Invalid event", f"the body is not valid JSON: {error}") from None
    except (ValueError, AttributeError, TypeError) as error:
        # The SDK builds its Event from whatever JSON it was given; a list or
        # a thin v2 notification fails there, after the signature was good.
        raise WebhookRejected("Invalid event", f"the body is not a Stripe event: {error}") from None
    try:
        return parse_event(event.to_dict())
    except EventError as error:
        raise WebhookRejected("Invalid event", str(error)) from None


def _ingest(conn: Connection, app: App, site_id: int, event: StripeEvent) -> Receipt:
    now = site_now(conn, site_id, app.clock)
    row_id, earlier = _claim(conn, site_id, event, now)
    if earlier is not None and earlier.outcome != Outcome.FAILED.value:
        return Receipt(event.id, event.type, Outcome(earlier.outcome), earlier.detail, True)
    outcome, detail = _apply(conn, Mirror(conn, site_id, now, app.links), event, row_id)
    conn.execute(
        update(stripe_events)
        .where(stripe_events.c.id == row_id)
        .values(outcome=outcome.value, detail=detail or None, received_at=now)
    )
    return Receipt(event.id, event.type, outcome, detail or None, False)


def _claim(conn: Connection, site_id: int, event: StripeEvent, now: datetime) -> tuple[int, Any]:
    """Record the event, or find its earlier record: (row id, earlier row or None).

    An insert that skips a conflict, so two deliveries of one event at the same
    moment cannot both pass: on PostgreSQL the second waits for the first to
    commit, then finds its row.
    """
    t = stripe_events
    new_id = conn.execute(
        insert_skipping_conflicts(conn, t, ["site_id", "stripe_event_id"])
        .values(
            site_id=site_id,
            stripe_event_id=event.id,
            type=event.type[:64],
            stripe_created_at=event.created,
            object_id=event.object_id,
            received_at=now,
            outcome=Outcome.FAILED.value,  # replaced before the transaction ends
        )
        .returning(t.c.id)
    ).scalar()
    if new_id is not None:
        return int(new_id), None
    query = select(t).where(t.c.site_id == site_id, t.c.stripe_event_id == event.id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    earlier = conn.execute(query).one()
    return int(earlier.id), earlier


def _apply(
    conn: Connection, mirror: Mirror, event: StripeEvent, row_id: int
) -> tuple[Outcome, str]:
    handler = HANDLERS.get(event.type)
    if handler is None:
        return Outcome.IGNORED_TYPE, f"Dunwell does not act on {event.type}"
    _serialise(conn, mirror.site_id, event.object_id)
    stale = _staleness(conn, mirror.site_id, event, row_id)
    if stale is not None:
        return Outcome.IGNORED_STALE, stale
    try:
        with conn.begin_nested():
            return Outcome.APPLIED, handler(mirror, event)
    except (EventError, ServiceError) as error:
        return Outcome.FAILED, str(error)


#: Events after which a Stripe invoice is final: it never fails again.
CLOSING_EVENTS = ("invoice.paid", "invoice.payment_succeeded", "invoice.voided")
#: Outcomes of an event Dunwell has seen, and trusts, even if it changed nothing.
_SEEN = (Outcome.APPLIED.value, Outcome.IGNORED_STALE.value)


def _staleness(conn: Connection, site_id: int, event: StripeEvent, row_id: int) -> str | None:
    """Why the event is stale (a note for the log), or None if it applies.

    Older than an event applied to the same object: stale. Events of the
    same second apply in the order they arrive, except a failure after the
    invoice was seen paid or voided in that second: ``created`` counts whole
    seconds, so the failure may well have come first, and applying it would
    dun an invoice that is settled. The record of events in
    ``stripe_events`` is what remembers it, so this holds for an invoice
    Dunwell never mirrored as well.
    """
    t = stripe_events
    same_object = (t.c.site_id == site_id, t.c.object_id == event.object_id, t.c.id != row_id)
    newest = conn.execute(
        select(func.max(t.c.stripe_created_at)).where(
            *same_object, t.c.outcome == Outcome.APPLIED.value
        )
    ).scalar()
    if newest is not None and newest > event.created:
        return f"an event about {event.object_id} created {newest.isoformat()} was applied"
    if event.type != "invoice.payment_failed":
        return None
    closed = conn.execute(
        select(func.max(t.c.stripe_created_at)).where(
            *same_object, t.c.type.in_(CLOSING_EVENTS), t.c.outcome.in_(_SEEN)
        )
    ).scalar()
    if closed is not None and closed >= event.created:
        return f"{event.object_id} was paid or voided in Stripe at {closed.isoformat()}"
    return None


def _serialise(conn: Connection, site_id: int, object_id: str | None) -> None:
    """Handle one object's events one at a time, across processes.

    SQLite writers are already serialised by ``BEGIN IMMEDIATE``; PostgreSQL
    takes a transaction-scoped advisory lock on (site, object), so the second
    of two concurrent events sees the first one's outcome before deciding.
    """
    if conn.dialect.name != "postgresql" or not object_id:
        return
    digest = hashlib.sha256(f"stripe:{site_id}:{object_id}".encode()).digest()
    conn.execute(select(func.pg_advisory_xact_lock(int.from_bytes(digest[:8], signed=True))))


# -- what each event type does ---------------------------------------------------------


def _payment_failed(mirror: Mirror, event: StripeEvent) -> str:
    facts = invoice_facts(event.object)
    found = find_invoice(mirror, facts.id)
    if found is not None:
        # Dunwell's own retries (which pay this invoice in Stripe) fail too,
        # and Stripe tells us; the worker has already counted them.
        return f"invoice {found.id} is already mirrored ({found.status}); nothing changes"
    if facts.collection_method != "charge_automatically":
        return "the customer pays this invoice by hand (send_invoice): not dunned"
    if facts.amount_remaining <= 0:
        return "nothing is left to pay"
    customer_id, notes = mirror.customer(facts.customer, overwrite=False)
    subscription_id = None
    if facts.subscription is not None:
        subscription_id, _ = mirror.subscription(customer_id, facts.subscription, facts.currency)
    invoice_id = start_dunning(mirror, customer_id, subscription_id, facts)
    return _join(f"invoice {invoice_id} entered dunning ({facts.decline_code})", notes)


def _invoice_closed(status: InvoiceStatus) -> Callable[[Mirror, StripeEvent], str]:
    def handle(mirror: Mirror, event: StripeEvent) -> str:
        facts = invoice_facts(event.object)
        found = find_invoice(mirror, facts.id)
        if found is None:
            return "not mirrored (no failed payment was seen): nothing to do"
        return settle(mirror, found.id, status)

    return handle


def _subscription(mirror: Mirror, event: StripeEvent) -> str:
    facts = subscription_facts(event.object)
    if event.type == "customer.subscription.deleted":
        status = SubscriptionStatus.CANCELED
    elif facts.status in SUBSCRIPTION_STATUS:
        status = SUBSCRIPTION_STATUS[facts.status]
    else:
        raise EventError(f"unknown subscription status {facts.status!r}")
    customer_id, notes = mirror.customer(CustomerFacts(facts.customer), overwrite=False)
    return _join(mirror.mirror_subscription(customer_id, facts, status.value), notes)


def _customer_updated(mirror: Mirror, event: StripeEvent) -> str:
    customer_id, notes = mirror.customer(customer_facts(event.object), overwrite=True)
    return _join(f"customer {customer_id} is up to date", notes)


def _card_attached(mirror: Mirror, event: StripeEvent) -> str:
    card = card_facts(event.object)
    if card is None:
        return f"a {event.object.get('type')} payment method is not a card: not attached"
    if card.customer is None:
        raise EventError("the payment method has no customer")
    contact = billing_contact(event.object, card.customer)
    customer_id, notes = mirror.customer(contact, overwrite=False)
    return _join(mirror.attach_card(customer_id, card), notes)


def _join(first: str, notes: list[str]) -> str:
    return "; ".join([first, *notes])


HANDLERS: dict[str, Callable[[Mirror, StripeEvent], str]] = {
    "invoice.payment_failed": _payment_failed,
    "invoice.paid": _invoice_closed(InvoiceStatus.PAID),
    "invoice.payment_succeeded": _invoice_closed(InvoiceStatus.PAID),
    "invoice.voided": _invoice_closed(InvoiceStatus.VOIDED),
    "customer.subscription.updated": _subscription,
    "customer.subscription.deleted": _subscription,
    "customer.updated": _customer_updated,
    "payment_method.attached": _card_attached,
}
#: The event types to enable on the Stripe endpoint.
HANDLED_EVENTS = tuple(HANDLERS)
