"""Collecting due invoices in batches: claim, decide, charge, record.

One batch runs in three stages so that no transaction is open while a
gateway is called:

1. *Prepare* (one transaction): claim due cycles with a lease, load what the
   decision needs, decide, and insert a ``pending`` payment attempt under its
   deterministic idempotency key.
2. *Charge*: call each gateway once for all of its requests.
3. *Record* (one transaction): for the cycles still held, apply the domain's
   transition: attempt outcome, cycle state, invoice and subscription states,
   events and outbox rows together.

Killed after stage 1 or 2, the cycle's state is unchanged; when the lease
expires the same attempt number is decided again, and the gateway receives
the same idempotency key and answers as before instead of charging again.

A gateway reached over the network stops starting charges in time for the
last one to end within the lease (see ``claims.start_window``). The cycles
it did not charge are released unchanged, the way a crash would leave them
but at once: the next batch claims them and asks with the same key.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from dunwell.bootstrap import App
from dunwell.domain.declines import classify_decline
from dunwell.domain.dunning import ChargeResult, advance, decide
from dunwell.domain.states import AttemptStatus, InvoiceStatus
from dunwell.gateways.base import ChargeRequest, ChargeResponse
from dunwell.services.claims import (
    claim_due_cycles,
    release_cycles,
    start_window,
    still_leased,
)
from dunwell.services.cycle_effects import CycleWork, EffectWriter
from dunwell.services.cycle_rows import state_from_row
from dunwell.services.message_render import MessageRenderer
from dunwell.services.policies import current_version_ids, load_policies
from dunwell.store.db import reproducible_commit
from dunwell.store.sql import insert_ignore
from dunwell.store.tables import (
    customers,
    dunning_cycles,
    invoices,
    payment_attempts,
    payment_methods,
    sites,
    subscriptions,
)

NO_METHOD = ChargeResponse(AttemptStatus.DECLINED, "no_payment_method", None, "no card on file")
UNCONFIGURED = ChargeResponse(
    AttemptStatus.ERROR,
    "gateway_not_configured",
    None,
    "the payment method's gateway is not set up",
)


@dataclass
class Method:
    id: int
    gateway: str
    token: str
    gateway_customer: str | None


STRIPE = "stripe"
#: A mirrored Stripe invoice with no card saved in Dunwell: Stripe charges the
#: payment method it has on file for the customer (id 0: no Dunwell row).
STRIPE_ON_FILE = Method(0, STRIPE, "", None)


def attempt_key(site_id: int, invoice_id: int, attempt_no: int) -> str:
    """The idempotency key of one charge attempt: the same on every rerun."""
    return f"dunwell-{site_id}-{invoice_id}-{attempt_no}"


def process_due_cycles(
    app: App, owner: str, limit: int, invoice_ids: Sequence[int] | None = None
) -> int:
    """Run one batch; return how many cycles were claimed (0 when idle).

    ``invoice_ids`` narrows the batch to those invoices: the billing page
    charges a customer's past-due invoices while they wait, through this
    same path, so a worker running at the same moment cannot charge twice.
    """
    real_now = app.clock.now()
    lease_until = real_now + timedelta(seconds=app.settings.lease_seconds)
    with app.begin() as conn:
        reproducible_commit(conn)  # a lost claim or pending row is simply redone
        ids = claim_due_cycles(conn, owner, real_now, lease_until, limit, invoice_ids)
        if not ids:
            return 0
        work = _load(conn, ids, real_now)
        methods = _default_methods(conn, {w.customer_id for w in work})
        requests = _prepare_attempts(conn, work, methods)
    responses = _charge(app, requests, lease_until)
    not_sent = requests.keys() - responses.keys()  # the gateway's deadline came first
    with app.begin() as conn:
        held = still_leased(conn, ids, owner)
        payable = _payable_despite_change(conn, work, held, responses)
        writer = EffectWriter(conn, MessageRenderer(app.links))
        release_cycles(conn, sorted(not_sent), owner)
        for item in work:
            if item.cycle_id in not_sent:
                continue
            response = responses.get(item.cycle_id)
            if held.get(item.cycle_id) == item.revision or item.cycle_id in payable:
                _record(writer, item, response)
            else:
                writer.record_facts_only(item, response)
        writer.flush(owner)
    return len(ids)


def _payable_despite_change(
    conn: Connection,
    work: list[CycleWork],
    held: dict[int, int],
    responses: dict[int, ChargeResponse],
) -> set[int]:
    """Cycles changed while held (new card, promise) whose charge succeeded anyway.

    The money was taken, so the invoice is paid unless it was closed in the
    meantime; otherwise the next wake-up would charge the new card again.
    """
    changed = {
        w.invoice_id: w.cycle_id
        for w in work
        if w.cycle_id in held
        and held[w.cycle_id] != w.revision
        and (r := responses.get(w.cycle_id)) is not None
        and r.status is AttemptStatus.SUCCEEDED
    }
    if not changed:
        return set()
    open_ids = conn.execute(
        select(invoices.c.id)
        .where(invoices.c.id.in_(changed))
        .where(invoices.c.status.in_([InvoiceStatus.OPEN.value, InvoiceStatus.PAST_DUE.value]))
    )
    return {changed[row.id] for row in open_ids}


def _load(conn: Connection, ids: list[int], real_now: datetime) -> list[CycleWork]:
    c, i = dunning_cycles, invoices
    rows = conn.execute(
        select(
            c,
            i.c.customer_id,
            i.c.subscription_id,
            i.c.number,
            (i.c.amount_due_minor - i.c.amount_paid_minor).label("amount_minor"),
            i.c.currency,
            i.c.external_id,
            subscriptions.c.status.label("subscription_status"),
            customers.c.payday,
            sites.c.clock_now,
        )
        .join(i, i.c.id == c.c.invoice_id)
        .join(customers, customers.c.id == i.c.customer_id)
        .join(sites, sites.c.id == c.c.site_id)
        .outerjoin(subscriptions, subscriptions.c.id == i.c.subscription_id)
        .where(c.c.id.in_(ids))
    ).all()
    unpinned_sites = {r.site_id for r in rows if r.policy_version_id is None}
    current = current_version_ids(conn, unpinned_sites) if unpinned_sites else {}
    version_of = {r.id: r.policy_version_id or current[(r.site_id, r.collection)] for r in rows}
    policies = load_policies(conn, set(version_of.values()))
    work = []
    for row in rows:
        state = state_from_row(row)
        policy = policies[version_of[row.id]]
        now = row.clock_now or real_now
        work.append(
            CycleWork(
                cycle_id=row.id,
                site_id=row.site_id,
                invoice_id=row.invoice_id,
                customer_id=row.customer_id,
                subscription_id=row.subscription_id,
                subscription_status=row.subscription_status,
                invoice_number=row.number,
                amount_minor=row.amount_minor,
                currency=row.currency,
                revision=row.revision,
                version_id=version_of[row.id],
                policy=policy,
                state=state,
                now=now,
                decision=decide(state, policy, now),
                external_invoice=_stripe_invoice(row.external_id),
            )
        )
    return work


def _default_methods(conn: Connection, customer_ids: set[int]) -> dict[int, Method]:
    pm = payment_methods
    rows = conn.execute(
        select(pm.c.id, pm.c.customer_id, pm.c.gateway, pm.c.token, pm.c.gateway_customer)
        .where(pm.c.customer_id.in_(customer_ids))
        .where(pm.c.is_default.is_(True))
        .where(pm.c.detached_at.is_(None))
    )
    return {r.customer_id: Method(r.id, r.gateway, r.token, r.gateway_customer) for r in rows}


def _prepare_attempts(
    conn: Connection, work: list[CycleWork], methods: dict[int, Method]
) -> dict[int, tuple[str, ChargeRequest] | None]:
    """Insert pending attempts; return cycle id -> (gateway, request), None if no card."""
    requests: dict[int, tuple[str, ChargeRequest] | None] = {}
    rows: list[dict[str, Any]] = []
    for item in work:
        attempt_no = item.decision.charge_attempt
        if attempt_no is None:
            continue
        method = methods.get(item.customer_id)
        external = item.external_invoice
        if method is None and external is not None:
            # Stripe has the customer's card even when Dunwell has none.
            method = STRIPE_ON_FILE
        key = attempt_key(item.site_id, item.invoice_id, attempt_no)
        item.attempt_key = key
        rows.append(
            {
                "site_id": item.site_id,
                "invoice_id": item.invoice_id,
                "attempt_no": attempt_no,
                "idempotency_key": key,
                "gateway": method.gateway if method else "none",
                "payment_method_id": (method.id or None) if method else None,
                "amount_minor": item.amount_minor,
                "currency": item.currency,
                "status": AttemptStatus.PENDING.value,
                "created_at": item.now,
            }
        )
        requests[item.cycle_id] = (
            None
            if method is None
            else (
                method.gateway,
                ChargeRequest(
                    idempotency_key=key,
                    token=method.token,
                    amount_minor=item.amount_minor,
                    currency=item.currency,
                    gateway_customer=method.gateway_customer,
                    description=f"Invoice {item.invoice_number}",
                    external_invoice=external if method.gateway == STRIPE else None,
                ),
            )
        )
    insert_ignore(conn, payment_attempts, rows, ["idempotency_key"])
    return requests


def _stripe_invoice(external_id: str | None) -> str | None:
    """The Stripe invoice id of an invoice mirrored from Stripe, else None."""
    return external_id if external_id and external_id.startswith("in_") else None


def _charge(
    app: App, requests: dict[int, tuple[str, ChargeRequest] | None], lease_until: datetime
) -> dict[int, ChargeResponse]:
    """Each request's answer by cycle id; a request the gateway did not send has none."""
    by_gateway: dict[str, list[tuple[int, ChargeRequest]]] = defaultdict(list)
    responses: dict[int, ChargeResponse] = {}
    for cycle_id, entry in requests.items():
        if entry is None:
            responses[cycle_id] = NO_METHOD
        else:
            by_gateway[entry[0]].append((cycle_id, entry[1]))
    for name, pairs in by_gateway.items():
        try:
            gateway = app.gateways.get(name)
        except LookupError:
            # A card saved with a gateway this process lacks (say, Stripe with no
            # key): an error, retried later, rather than a batch that never ends.
            responses.update((cycle_id, UNCONFIGURED) for cycle_id, _ in pairs)
            continue
        # Measured on the monotonic clock: a span of this process's time, like
        # the gateway's own timeout, never stored.
        lease_left = (lease_until - app.clock.now()).total_seconds()
        until = time.monotonic() + start_window(lease_left, gateway.longest_charge_seconds)
        answers = gateway.charge_many([request for _, request in pairs], until=until)
        responses.update(
            (cycle_id, answer)
            for (cycle_id, _), answer in zip(pairs, answers, strict=True)
            if answer is not None
        )
    return responses


def _record(writer: EffectWriter, item: CycleWork, response: ChargeResponse | None) -> None:
    result = _to_result(response)
    transition = advance(item.state, item.policy, item.now, item.decision, result)
    writer.apply(item, transition, response)


def _to_result(response: ChargeResponse | None) -> ChargeResult | None:
    if response is None:
        return None
    declined = response.status is AttemptStatus.DECLINED
    return ChargeResult(
        status=response.status,
        decline_code=response.decline_code,
        decline_class=classify_decline(response.decline_code) if declined else None,
    )
