"""The policy simulator: a draft's schedule for one customer, and a replay of past failures.

Nothing here writes. The schedule comes from :func:`dunwell.domain.simulation.plan_cycle`,
which drives the worker's own ``decide``/``advance``; send times come from the SMS
gate's compliance functions with the site's SMS settings. The replay's model and
its assumptions are stated in :mod:`dunwell.domain.simulation`.

The invoice shown for a customer is, in order: their most recent invoice of the
policy's kind that entered dunning (day 1 is when it did), else their most
recent open one, else a hypothetical invoice due now. Day 1 of an open invoice
is when the worker will start it: its due date for a manual invoice (net terms
passed, however late the worker notices), else when it falls due or now if
that has passed (the first charge fails at the worker's next pass).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Select, or_, select

from dunwell.domain.compliance import local_zone
from dunwell.domain.declines import DeclineClass
from dunwell.domain.dunning import day_number
from dunwell.domain.payday import Payday, parse_payday
from dunwell.domain.policy import Policy
from dunwell.domain.simulation import (
    ASSUMED_DECLINE,
    PaidBy,
    PastInvoice,
    PlannedAction,
    ReplayTotals,
    plan_cycle,
    recorded,
    replay,
    sms_send_times,
)
from dunwell.domain.states import AttemptStatus, Collection, CyclePhase, InvoiceStatus
from dunwell.messaging.phones import phone_time_zone
from dunwell.services.errors import InvalidInput
from dunwell.services.ledger_queries import find_customer, person_name
from dunwell.services.policies import current_version
from dunwell.services.sms_settings import load_sms_settings
from dunwell.store.tables import (
    customers,
    dunning_cycles,
    dunning_policy_versions,
    events,
    invoices,
    payment_attempts,
    payment_methods,
    sites,
)

DEFAULT_REPLAY_DAYS = 180
MAX_REPLAY_DAYS = 730
#: Events that mean the customer or an operator acted before a payment.
REQUEST_EVENTS = ("invoice.collection_requested", "invoice.promise_to_pay")
#: The decline the worker records when a customer has no card to charge
#: (``collection.NO_METHOD``): hard, so it stops the retries.
NO_CARD_DECLINE = "no_payment_method"


@dataclass(frozen=True)
class PlanDay:
    day: int
    local_date: date
    actions: list[PlannedAction]


@dataclass(frozen=True)
class InvoicePlan:
    """The draft's schedule for one invoice, in the customer's zone."""

    who: str  # the customer, or "a hypothetical customer"
    invoice: str  # the invoice number, or "a hypothetical invoice"
    amount_minor: int | None
    currency: str
    start: datetime
    zone: ZoneInfo
    decline_code: str
    days: list[PlanDay]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReplayReport:
    days: int
    since: datetime
    current_version: int
    recorded: ReplayTotals
    current: ReplayTotals
    draft: ReplayTotals
    in_progress: int


def plan_for_customer(
    conn: Connection, site_id: int, draft: Policy, customer: str, now: datetime
) -> InvoicePlan:
    """The draft's day-by-day schedule for ``customer`` (an id or an email; blank: none)."""
    site = conn.execute(select(sites).where(sites.c.id == site_id)).one()
    person = find_customer(conn, site_id, customer)
    invoice = _invoice_for(conn, site_id, person.id, draft.kind) if person else None
    start = _start(invoice, now)
    payday = _payday(person.payday if person else None)
    recorded_decline = _last_decline(conn, site_id, invoice.id) if invoice else None
    no_card = not recorded_decline and _without_card(conn, site_id, person, invoice, draft.kind)
    decline = recorded_decline or (NO_CARD_DECLINE if no_card else ASSUMED_DECLINE)
    zone = local_zone(
        person.time_zone if person else None,
        phone_time_zone(person.phone) if person and person.phone else None,
        site.time_zone,
    )
    settings = load_sms_settings(conn, [site_id])[site_id]
    actions = plan_cycle(draft, start, payday=payday, decline_code=decline)
    actions = sms_send_times(actions, zone, settings.window, settings.frequency_cap)
    notes = _notes(person, settings.enabled, payday)
    notes += _invoice_notes(invoice, no_card)
    return InvoicePlan(
        who=_who(person),
        invoice=invoice.number if invoice else "a hypothetical invoice due now",
        amount_minor=invoice.amount_due_minor if invoice else None,
        currency=invoice.currency if invoice else site.currency,
        start=start,
        zone=zone,
        decline_code=decline,
        days=_by_day(actions, zone),
        notes=notes,
    )


def replay_history(
    conn: Connection,
    site_id: int,
    draft: Policy,
    now: datetime,
    days: int = DEFAULT_REPLAY_DAYS,
) -> ReplayReport:
    """Estimate what the draft would have recovered of the cycles begun in the past ``days``."""
    if not 1 <= days <= MAX_REPLAY_DAYS:
        raise InvalidInput("replay_days", f"must be between 1 and {MAX_REPLAY_DAYS}")
    since = now - timedelta(days=days)
    cases, running = past_invoices(conn, site_id, draft.kind, since)
    current = current_version(conn, site_id, draft.kind)
    now_totals = replay(current.policy, cases)
    # An unchanged draft (the editor as first opened) replays the same: do it once.
    draft_totals = now_totals if draft == current.policy else replay(draft, cases)
    return ReplayReport(
        days=days,
        since=since,
        current_version=current.version,
        recorded=recorded(cases),
        current=now_totals,
        draft=draft_totals,
        in_progress=running,
    )


def past_invoices(
    conn: Connection, site_id: int, kind: Collection, since: datetime
) -> tuple[list[PastInvoice], int]:
    """The finished cycles of ``kind`` begun since ``since``, and how many still run."""
    scope = _cycles_since(site_id, kind, since)
    rows = conn.execute(
        scope.add_columns(
            invoices.c.id.label("invoice_id"),
            invoices.c.status,
            invoices.c.paid_at,
            invoices.c.amount_due_minor,
            invoices.c.currency,
            customers.c.payday,
            dunning_cycles.c.phase,
            dunning_cycles.c.started_at,
        )
    ).all()
    ids = scope.with_only_columns(invoices.c.id).scalar_subquery()
    succeeded, hard = _attempt_facts(conn, site_id, ids)
    requests = _requests(conn, site_id, ids)
    cases: list[PastInvoice] = []
    running = 0
    for row in rows:
        paid = row.status == InvoiceStatus.PAID.value and row.paid_at is not None
        if not paid and row.phase == CyclePhase.DUNNING.value:
            running += 1
            continue
        cases.append(_case(row, paid, succeeded, hard, requests))
    return cases, running


def _case(
    row: Any,
    paid: bool,
    succeeded: set[int],
    hard: dict[int, list[datetime]],
    requests: dict[int, list[datetime]],
) -> PastInvoice:
    until = row.paid_at if paid else None
    asked = any(until is None or at <= until for at in requests.get(row.invoice_id, []))
    paid_by = None
    if paid:
        by_retry = row.invoice_id in succeeded and not asked
        paid_by = PaidBy.RETRY if by_retry else PaidBy.CUSTOMER
    return PastInvoice(
        invoice_id=row.invoice_id,
        amount_minor=row.amount_due_minor,
        currency=row.currency,
        started_at=row.started_at,
        paid_day=day_number(row.started_at, row.paid_at) if paid else None,
        paid_by=paid_by,
        hard_declined=any(until is None or at <= until for at in hard.get(row.invoice_id, [])),
        payday=_payday(row.payday),
    )


def _cycles_since(site_id: int, kind: Collection, since: datetime) -> Select[Any]:
    return (
        select()
        .select_from(dunning_cycles)
        .join(invoices, invoices.c.id == dunning_cycles.c.invoice_id)
        .join(customers, customers.c.id == invoices.c.customer_id)
        .where(dunning_cycles.c.site_id == site_id, invoices.c.site_id == site_id)
        .where(dunning_cycles.c.collection == kind.value)
        .where(dunning_cycles.c.started_at.is_not(None), dunning_cycles.c.started_at >= since)
    )


def _attempt_facts(
    conn: Connection, site_id: int, ids: Any
) -> tuple[set[int], dict[int, list[datetime]]]:
    """Invoices with a successful charge, and the times of each invoice's hard declines."""
    a = payment_attempts
    rows = conn.execute(
        select(a.c.invoice_id, a.c.status, a.c.decline_class, a.c.completed_at, a.c.created_at)
        .where(a.c.site_id == site_id, a.c.invoice_id.in_(ids))
        .where(
            or_(
                a.c.status == AttemptStatus.SUCCEEDED.value,
                a.c.decline_class == DeclineClass.HARD.value,
            )
        )
    )
    succeeded: set[int] = set()
    hard: dict[int, list[datetime]] = defaultdict(list)
    for row in rows:
        if row.status == AttemptStatus.SUCCEEDED.value:
            succeeded.add(row.invoice_id)
        else:
            hard[row.invoice_id].append(row.completed_at or row.created_at)
    return succeeded, hard


def _requests(conn: Connection, site_id: int, ids: Any) -> dict[int, list[datetime]]:
    rows = conn.execute(
        select(events.c.invoice_id, events.c.occurred_at)
        .where(events.c.site_id == site_id, events.c.invoice_id.in_(ids))
        .where(events.c.type.in_(REQUEST_EVENTS))
    )
    found: dict[int, list[datetime]] = defaultdict(list)
    for row in rows:
        found[row.invoice_id].append(row.occurred_at)
    return found


def _start(invoice: Any, now: datetime) -> datetime:
    """Day 1 of the shown invoice's cycle, as the worker counts it (see the module doc)."""
    if invoice is None:
        return now
    started: datetime | None = invoice.started_at
    due: datetime = invoice.due_at
    if started is not None:
        return started
    if invoice.collection == Collection.MANUAL.value:
        return due  # net terms passed then, however late the worker notices
    return max(due, now)


def _without_card(
    conn: Connection, site_id: int, person: Any, invoice: Any, kind: Collection
) -> bool:
    """Whether the worker would find nothing to charge for this customer's invoice.

    A customer or invoice mirrored from a gateway (``external_id``) may have a
    card on file there, which the worker charges: the usual assumption stays.
    """
    if person is None or kind is not Collection.AUTOMATIC or person.external_id:
        return False
    if invoice is not None and invoice.external_id:
        return False
    pm = payment_methods
    card = conn.execute(
        select(pm.c.id)
        .where(pm.c.site_id == site_id, pm.c.customer_id == person.id)
        .where(pm.c.is_default.is_(True), pm.c.detached_at.is_(None))
        .limit(1)
    ).first()
    return card is None


def _invoice_for(conn: Connection, site_id: int, customer_id: int, kind: Collection) -> Any:
    base = (
        select(
            invoices,
            dunning_cycles.c.started_at,
            dunning_cycles.c.phase.label("cycle_phase"),
            dunning_policy_versions.c.version.label("pinned_version"),
        )
        .outerjoin(dunning_cycles, dunning_cycles.c.invoice_id == invoices.c.id)
        .outerjoin(
            dunning_policy_versions,
            dunning_policy_versions.c.id == dunning_cycles.c.policy_version_id,
        )
        .where(invoices.c.site_id == site_id, invoices.c.customer_id == customer_id)
        .where(invoices.c.collection == kind.value)
    )
    failed = base.where(dunning_cycles.c.started_at.is_not(None)).order_by(
        dunning_cycles.c.started_at.desc(), invoices.c.id.desc()
    )
    row = conn.execute(failed.limit(1)).first()
    if row is not None:
        return row
    still_open = base.where(invoices.c.status == InvoiceStatus.OPEN.value)
    return conn.execute(still_open.order_by(invoices.c.due_at.desc()).limit(1)).first()


def _last_decline(conn: Connection, site_id: int, invoice_id: int) -> str | None:
    a = payment_attempts
    code: str | None = conn.execute(
        select(a.c.decline_code)
        .where(a.c.site_id == site_id, a.c.invoice_id == invoice_id)
        .where(a.c.decline_code.is_not(None))
        .order_by(a.c.attempt_no.desc())
        .limit(1)
    ).scalar()
    return code


def _payday(text: str | None) -> Payday | None:
    if not text:
        return None
    try:
        return parse_payday(text)
    except ValueError:
        return None  # an unreadable payday is ignored, as the worker's retries would be unmoved


def _who(person: Any) -> str:
    if person is None:
        return "a hypothetical customer"
    name = person_name(person) or f"customer {person.id}"
    return f"{name} <{person.email}>" if person.email else name


def _notes(person: Any, sms_enabled: bool, payday: Payday | None) -> list[str]:
    notes = []
    if not sms_enabled:
        notes.append("Texts are turned off for this site: SMS steps would be blocked.")
    elif person is not None and not person.phone:
        notes.append("This customer has no phone number: SMS steps would not reach them.")
    if payday is not None:
        notes.append(f"Retries on the cadence move to the customer's payday ({payday}).")
    return notes


def _invoice_notes(invoice: Any, no_card: bool) -> list[str]:
    notes = []
    if no_card:
        notes.append(
            f"This customer has no card on file: the first charge declines ({NO_CARD_DECLINE})"
            " and nothing is retried until they add one."
        )
    if invoice is not None and invoice.cycle_phase == CyclePhase.DUNNING.value:
        # The worker follows the version the cycle was pinned to, not the draft.
        notes.append(
            f"Invoice {invoice.number} is in dunning and keeps version"
            f" {invoice.pinned_version}, the one it started with: a saved draft"
            " applies only to invoices that enter dunning after it."
        )
    return notes


def _by_day(actions: list[PlannedAction], zone: ZoneInfo) -> list[PlanDay]:
    days: dict[int, list[PlannedAction]] = {}
    for action in actions:
        days.setdefault(action.day, []).append(action)
    return [
        PlanDay(day, found[0].at.astimezone(zone).date(), found)
        for day, found in sorted(days.items())
    ]
