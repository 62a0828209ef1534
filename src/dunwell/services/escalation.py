"""Escalations: handing a conversation the concierge cannot finish to a person.

:func:`escalate` records the hand-over in the caller's transaction; the
worker then delivers it with :func:`deliver_due_escalations`:

1. *Claim* (one transaction): lease due ``pending`` escalations. Those that
   cannot become a ticket (no help desk configured, no API key, a customer
   with no email address, tries used up) go to email there and then.
2. *Send*, with no transaction open: create the help-desk ticket.
3. *Record* each answer in its own short transaction.

A ticket makes the escalation ``ticketed``. A transient failure is tried
again after :data:`RETRY_DELAYS`, up to :data:`MAX_TICKET_ATTEMPTS` tries;
after the last one, or after a permanent failure, the hand-over goes by
email instead. Email means one outbox row (delivered like every email)
to the concierge's escalation address, else the site's support address,
and the status ``emailed``; with neither address the escalation
``failed``. ``last_error`` keeps the latest failure, whatever happens after.

Every ticket carries the escalation's ``external_id``. A try after the
first asks the help desk for a ticket with it before opening one, because
an earlier try may have made it: its answer lost to a timeout, or its
worker dead between the answer and the commit (the lease then expires and
another worker tries again). Found, it is the escalation's ticket. A help
desk that refuses the question (no such listing, or a key that may only
create) gets the ticket opened again, as before this check, and the
refusal is logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, select, update

from dunwell.bootstrap import App
from dunwell.channels.base import TransportError
from dunwell.channels.helpdesk import TIMEOUT, HelpdeskClient, HelpdeskConfig, NewTicket
from dunwell.security.secrets import SecretUnreadable
from dunwell.services.claims import claim_due
from dunwell.services.concierge_settings import (
    ConciergeSettings,
    load_concierge_settings,
    load_helpdesk_key,
)
from dunwell.services.conversations import Conversation, mark_escalated
from dunwell.services.escalation_brief import REASONS, Handover, Site, build_handover
from dunwell.services.events import EventBatch
from dunwell.services.webhook_endpoints import TargetRefused, target_addresses
from dunwell.store.sql import insert_ignore, insert_one
from dunwell.store.tables import conversations, escalations, outbox, sites

log = logging.getLogger("dunwell.escalation")

#: Statuses in which a conversation's escalation is still the live one.
ACTIVE = ("pending", "ticketed", "emailed")
MAX_TICKET_ATTEMPTS = 3
#: Waits after the 1st and 2nd failed tries; the 3rd failure goes to email.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5))
TAGS = ("dunwell", "sms-concierge")


def escalate(conn: Connection, conversation: Conversation, reason: str, now: datetime) -> int:
    """Hand ``conversation`` to a person, in the caller's transaction; return the escalation id.

    ``reason`` is ``not_understood``, ``asked_for_person`` or
    ``action_failed``. While the conversation has a pending, ticketed or
    emailed escalation, that one's id is returned and nothing is written:
    a person already has it.
    """
    if reason not in REASONS:
        raise ValueError(f"unknown escalation reason {reason!r}")
    e = escalations
    existing = conn.execute(
        select(e.c.id)
        .where(e.c.conversation_id == conversation.id, e.c.status.in_(ACTIVE))
        .order_by(e.c.id)
        .limit(1)
    ).scalar()
    if existing is not None:
        return int(existing)
    escalation_id = insert_one(
        conn,
        e,
        site_id=conversation.site_id,
        conversation_id=conversation.id,
        customer_id=conversation.customer_id,
        reason=reason,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        updated_at=now,
    )
    mark_escalated(conn, conversation.id, now)
    events = EventBatch()
    events.add(
        conversation.site_id,
        "concierge.escalated",
        now,
        customer_id=conversation.customer_id,
        conversation_id=conversation.id,
        escalation_id=escalation_id,
        reason=reason,
    )
    events.write(conn)
    return escalation_id


@dataclass(frozen=True)
class _Job:
    """A claimed escalation that goes to the help desk."""

    row: Any
    handover: Handover
    settings: ConciergeSettings
    config: HelpdeskConfig
    attempt: int


def deliver_due_escalations(
    app: App,
    owner: str,
    limit: int,
    *,
    transport: httpx.BaseTransport | None = None,
    timeout: float = TIMEOUT,
) -> int:
    """Deliver one batch; return how many escalations were claimed (0 when idle).

    ``transport`` and ``timeout`` are for the help-desk requests (tests).
    """
    lease = app.settings.lease_seconds
    # Tickets are created one after another; the batch must end before its
    # lease does, or another worker would claim and send the same ones.
    limit = min(limit, max(1, int(lease // (3 * timeout))))
    real_now = app.clock.now()
    with app.begin() as conn:
        e = escalations
        ids = claim_due(
            conn,
            e,
            e.c.next_attempt_at,
            [e.c.status == "pending"],
            owner,
            real_now,
            real_now + timedelta(seconds=lease),
            limit,
        )
        if not ids:
            return 0
        jobs = _prepare(app, conn, ids, real_now, transport, timeout)
    for job in jobs:
        _record(app, owner, job, _create_ticket(job))
    return len(ids)


# -- claiming --------------------------------------------------------------------------


def _prepare(
    app: App,
    conn: Connection,
    ids: list[int],
    real_now: datetime,
    transport: httpx.BaseTransport | None,
    timeout: float,
) -> list[_Job]:
    rows = _load(conn, ids)
    settings = load_concierge_settings(conn, {r.site_id for r in rows})
    jobs = []
    for row in rows:
        site_now = row.clock_now or real_now
        handover = build_handover(
            conn, Site(row.site_name, row.locale, row.time_zone), row, row.phone
        )
        config, refusal = _helpdesk(app, conn, row, settings[row.site_id], handover)
        if config is None:
            _fall_back_to_email(conn, row, settings[row.site_id], handover, site_now, refusal)
            continue
        config = replace(config, timeout=timeout, transport=transport)
        attempt = row.attempts + 1
        conn.execute(update(escalations).where(escalations.c.id == row.id).values(attempts=attempt))
        jobs.append(_Job(row, handover, settings[row.site_id], config, attempt))
    return jobs


def _load(conn: Connection, ids: list[int]) -> list[Any]:
    e, c = escalations, conversations
    return list(
        conn.execute(
            select(
                e,
                c.c.phone,
                sites.c.name.label("site_name"),
                sites.c.mode.label("site_mode"),
                sites.c.locale,
                sites.c.time_zone,
                sites.c.support_email,
                sites.c.clock_now,
            )
            .join(c, c.c.id == e.c.conversation_id)
            .join(sites, sites.c.id == e.c.site_id)
            .where(e.c.id.in_(ids))
            .order_by(e.c.next_attempt_at, e.c.id)
        )
    )


def _helpdesk(
    app: App, conn: Connection, row: Any, settings: ConciergeSettings, handover: Handover
) -> tuple[HelpdeskConfig | None, str | None]:
    """The help desk to open a ticket in, or None and why not (None: not configured)."""
    if not settings.helpdesk_configured:
        return None, None
    if row.attempts >= MAX_TICKET_ATTEMPTS:
        # Only after a worker died during the last try: keep its error.
        return None, row.last_error or "the help desk was tried too many times"
    if handover.customer_email is None:
        return None, "the customer has no email address, which a help-desk ticket needs"
    box = app.secret_box_or_none()
    try:
        key = load_helpdesk_key(conn, row.site_id, box) if box is not None else None
    except SecretUnreadable:
        return None, "the help desk API key cannot be decrypted (was the server key changed?)"
    if not key:
        return None, "no help desk API key is saved"
    config = HelpdeskConfig(
        base_url=settings.helpdesk_url, username=settings.helpdesk_username, api_key=key
    )
    return config, None


# -- sending (no database) -------------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    ticket_id: str | None
    error: TransportError | None


def _create_ticket(job: _Job) -> _Answer:
    """One try; every failure becomes an :class:`_Answer`, nothing raises."""
    ticket = NewTicket(
        customer_email=job.handover.customer_email or "",
        customer_name=job.handover.customer_name,
        subject=job.handover.subject,
        body_text=job.handover.body_text,
        body_html=job.handover.body_html,
        tags=TAGS,
        external_id=f"dunwell-escalation-{job.row.id}",
    )
    try:
        # As for webhooks: a live site's help desk must be at a public
        # address, and the request goes to the address that was checked.
        address = target_addresses(job.config.base_url, job.row.site_mode)[0]
        client = HelpdeskClient(job.config)
        if job.attempt > 1:
            made = _made_by_an_earlier_try(client, job, ticket, address)
            if made is not None:
                return _Answer(made, None)
        return _Answer(client.create_ticket(ticket, address=address), None)
    except TargetRefused as error:
        # Transient: an unresolvable host is often a passing DNS failure,
        # and the tries are few and short before the email goes anyway.
        refused = TransportError(f"the help desk URL is refused: {error}", permanent=False)
        return _Answer(None, refused)
    except TransportError as error:
        return _Answer(None, error)
    except Exception as error:  # a bug here must not lose the escalation
        log.exception("help-desk try %s of escalation %s raised", job.attempt, job.row.id)
        return _Answer(None, TransportError(type(error).__name__, permanent=False))


def _made_by_an_earlier_try(
    client: HelpdeskClient, job: _Job, ticket: NewTicket, address: str
) -> str | None:
    """The ticket an earlier try opened, if the help desk has one with its external id.

    A transient failure to ask is raised (this try failed); a permanent
    one is logged and answered None, so the ticket is opened after all.
    """
    assert ticket.external_id is not None
    try:
        return client.find_ticket(ticket.external_id, address=address)
    except TransportError as error:
        if not error.permanent:
            raise
        log.warning(
            "help desk cannot be asked for ticket %s before try %s of escalation %s: %s",
            ticket.external_id,
            job.attempt,
            job.row.id,
            error.message,
        )
        return None


# -- recording -------------------------------------------------------------------------


def _record(app: App, owner: str, job: _Job, answer: _Answer) -> None:
    row = job.row
    site_now = row.clock_now or app.clock.now()
    with app.begin() as conn:
        if not _still_held(conn, row.id, owner):
            return
        if answer.ticket_id is not None:
            _ticketed(conn, row, answer.ticket_id, site_now)
            return
        assert answer.error is not None
        error = f"help desk: {answer.error.message}"
        if answer.error.permanent or job.attempt >= MAX_TICKET_ATTEMPTS:
            _fall_back_to_email(conn, row, job.settings, job.handover, site_now, error)
            return
        _settle(
            conn,
            row.id,
            site_now,
            status="pending",
            last_error=error,
            next_attempt_at=site_now + RETRY_DELAYS[job.attempt - 1],
        )


def _still_held(conn: Connection, escalation_id: int, owner: str) -> bool:
    """Whether this worker still holds the lease (it locks the row for the transaction)."""
    e = escalations
    return bool(
        conn.execute(
            update(e)
            .where(e.c.id == escalation_id, e.c.lease_owner == owner)
            .values(lease_owner=owner)
        ).rowcount
    )


def _settle(conn: Connection, escalation_id: int, site_now: datetime, **values: Any) -> None:
    conn.execute(
        update(escalations)
        .where(escalations.c.id == escalation_id)
        .values(**values, lease_owner=None, lease_until=None, updated_at=site_now)
    )


def _ticketed(conn: Connection, row: Any, ticket_id: str, site_now: datetime) -> None:
    _settle(conn, row.id, site_now, status="ticketed", ticket_id=ticket_id)
    _event(conn, row, "concierge.escalation_ticketed", site_now, ticket_id=ticket_id)


def _fall_back_to_email(
    conn: Connection,
    row: Any,
    settings: ConciergeSettings,
    handover: Handover,
    site_now: datetime,
    error: str | None,
) -> None:
    """Email the hand-over; ``error`` says why it is not a ticket (None: no help desk)."""
    to = settings.escalation_email or row.support_email
    if not to:
        why = "no escalation email and no support email is set, so no one could be told"
        last_error = f"{error}; {why}" if error else why
        _settle(conn, row.id, site_now, status="failed", last_error=last_error)
        _event(conn, row, "concierge.escalation_failed", site_now, error=last_error)
        return
    outbox_id = _queue_email(conn, row, handover, to, site_now)
    _settle(conn, row.id, site_now, status="emailed", email_outbox_id=outbox_id, last_error=error)
    _event(conn, row, "concierge.escalation_emailed", site_now, message_id=outbox_id, error=error)


def _queue_email(conn: Connection, row: Any, handover: Handover, to: str, now: datetime) -> int:
    """The outbox row for the hand-over; written once per escalation (its dedupe key)."""
    key = f"escalation:{row.id}"
    message = {
        "site_id": row.site_id,
        "channel": "email",
        "dedupe_key": key,
        "customer_id": row.customer_id,
        "payload": {
            "event": "concierge.escalation",
            "escalation_id": row.id,
            "conversation_id": row.conversation_id,
        },
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "kind": "transactional",
        "recipient": to,
        "locale": row.locale,
        "subject": handover.subject,
        "body_text": handover.body_text,
        "body_html": handover.body_html,
    }
    insert_ignore(conn, outbox, [message], ["dedupe_key"])
    return int(conn.execute(select(outbox.c.id).where(outbox.c.dedupe_key == key)).scalar_one())


def _event(conn: Connection, row: Any, type_: str, at: datetime, **data: Any) -> None:
    events = EventBatch()
    events.add(
        row.site_id,
        type_,
        at,
        customer_id=row.customer_id,
        conversation_id=row.conversation_id,
        escalation_id=row.id,
        reason=row.reason,
        **data,
    )
    events.write(conn)
