"""The concierge's queue: every text that is not a carrier keyword gets an answer.

A text is stored by :mod:`dunwell.services.inbound_sms` with
``answered_at`` unset; that row is the queue. :func:`answer_pending_texts`
claims texts with a lease (so any number of workers share them and a crash
only delays an answer) and answers each in three steps:

1. read the customer's situation and understand the text, with no
   transaction held open while an optional LLM thinks;
2. in one transaction: record the turn, run the dialogue, carry out a
   confirmed change, queue the replies through the outbox (and so through
   every SMS compliance check) and mark the text answered;
3. only for "try my card again": charge with no transaction open, exactly
   as the billing page does, then word the outcome in a second transaction.

The webhook answers Twilio at once and asks for the text to be answered
straight after, so the reply does not wait for the worker's next pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, update

from dunwell.bootstrap import App
from dunwell.concierge.dialogue import respond
from dunwell.concierge.intents import Awaiting
from dunwell.concierge.llm import understand_text
from dunwell.concierge.model import Action, ActionResult, Outcome, State
from dunwell.concierge.reports import report
from dunwell.concierge.understanding import ParseRequest
from dunwell.services import concierge_actions
from dunwell.services.card_retry import collect_invoices_now, retry_results
from dunwell.services.claims import claim_due
from dunwell.services.concierge_context import Gathered, gather_context
from dunwell.services.concierge_settings import load_concierge_settings
from dunwell.services.conversations import (
    Conversation,
    add_turn,
    annotate_last_inbound,
    close_conversation,
    current_conversation,
    peek_state,
    queue_text,
    save_state,
)
from dunwell.services.escalation import escalate
from dunwell.services.events import EventBatch
from dunwell.services.inbound_sms import record_opt_out
from dunwell.services.invoice_actions import collect_now
from dunwell.services.sites import site_now
from dunwell.services.sms_settings import load_sms_settings
from dunwell.store.tables import inbound_messages, sites

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
#: A text whose answer fails this many times is set aside (and logged), not retried forever.
MAX_TRIES = 3
CONTRACT_AWAITING = {a.value for a in Awaiting}


@dataclass(frozen=True)
class _Text:
    id: int
    site_id: int
    customer_id: int | None
    phone: str
    body: str


def answer_pending_texts(
    app: App, owner: str, limit: int, inbound_ids: list[int] | None = None
) -> int:
    """Answer up to ``limit`` waiting texts (only these, if given); returns how many were taken."""
    real_now = app.clock.now()
    t = inbound_messages
    filters = [t.c.answered_at.is_(None)]
    if inbound_ids is not None:
        filters.append(t.c.id.in_(inbound_ids))
    with app.begin() as conn:
        ids = claim_due(conn, t, t.c.received_at, filters, owner, real_now, real_now + LEASE, limit)
    for inbound_id in ids:
        try:
            _answer(app, inbound_id, owner)
        except Exception as error:  # one bad text must not stop the others
            log.exception("concierge could not answer inbound text %s", inbound_id)
            _record_failure(app, inbound_id, error)
    return len(ids)


def _answer(app: App, inbound_id: int, owner: str) -> None:
    with app.connect() as conn:
        text = _load_text(conn, inbound_id, owner)
        if text is None:
            return
        now = site_now(conn, text.site_id, app.clock)
        settings = load_concierge_settings(conn, [text.site_id])[text.site_id]
        state = State.from_dict(peek_state(conn, text.site_id, text.phone, now))
        gathered = gather_context(
            conn,
            text.site_id,
            text.customer_id,
            text.phone,
            settings,
            app.links(),
            app.settings.public_url,
            now,
        )
    if not settings.enabled:
        with app.begin() as conn:
            _mark_answered(conn, text.id, now)
        return
    understood = understand_text(_request(text, gathered, state), app.llm)
    with app.begin() as conn:
        conversation = current_conversation(conn, text.site_id, text.phone, text.customer_id, now)
        add_turn(
            conn,
            conversation,
            "inbound",
            "customer",
            text.body,
            now,
            intent=understood.intent.value,
            slots=understood.slots,
            understood_by=understood.source,
            inbound_message_id=text.id,
        )
        _mark_answered(conn, text.id, now)
        if conversation.status == "escalated":
            return  # a person has this conversation; the concierge only records
        state = State.from_dict(conversation.state)
        outcome = respond(state, understood.intent, understood.slots, text.body, gathered.context)
        charge = _settle(app, conn, conversation, outcome, gathered, now)
    if charge is not None:
        _charge_and_report(app, conversation, charge, state, gathered)


def _settle(
    app: App,
    conn: Connection,
    conversation: Conversation,
    outcome: Outcome,
    gathered: Gathered,
    now: datetime,
) -> Action | None:
    """Carry out the outcome's action and send its replies; a charge is returned, not run."""
    action = outcome.action
    if action is None:
        _send(gathered, conn, conversation, outcome, now)
        return None
    if action.kind == "retry_payment":
        refusal = concierge_actions.retry_refusal(
            conn, conversation.site_id, action.params["invoice_id"]
        )
        if refusal is not None:
            result = ActionResult(True, refusal)
            _record_action(conn, conversation, action, "refused", refusal, now)
            _send(
                gathered,
                conn,
                conversation,
                report(outcome.state, action, result, gathered.context),
                now,
            )
            return None
        collect_now(conn, conversation.site_id, action.params["invoice_id"], now)
        _record_action(conn, conversation, action, "pending", {}, now)
        _send(gathered, conn, conversation, outcome, now)
        return action
    if concierge_actions.handles(action.kind):
        assert conversation.customer_id is not None
        result = concierge_actions.carry_out(
            conn,
            conversation.site_id,
            conversation.customer_id,
            action,
            gathered.context,
            gathered.zone,
            now,
        )
        status = "applied" if result.ok else "failed"
        _record_action(
            conn, conversation, action, status, result.facts or {"error": result.error}, now
        )
        _send(
            gathered,
            conn,
            conversation,
            report(outcome.state, action, result, gathered.context),
            now,
        )
        return None
    if action.kind == "escalate":
        _send(gathered, conn, conversation, outcome, now)
        escalate(conn, conversation, action.params["reason"], now)
        _record_action(conn, conversation, action, "applied", dict(action.params), now)
        return None
    if action.kind == "opt_out":
        _opt_out(conn, conversation, now)
        _record_action(conn, conversation, action, "applied", {}, now)
        close_conversation(conn, conversation.id, "answered", now)
        return None
    # record_survey: the answer itself is the record.
    _record_action(conn, conversation, action, "applied", dict(action.params), now)
    _send(gathered, conn, conversation, outcome, now)
    return None


def _charge_and_report(
    app: App, conversation: Conversation, action: Action, state: State, gathered: Gathered
) -> None:
    invoice_id = int(action.params["invoice_id"])
    collect_invoices_now(app, [invoice_id])
    with app.begin() as conn:
        now = site_now(conn, conversation.site_id, app.clock)
        assert conversation.customer_id is not None
        results = retry_results(conn, conversation.site_id, conversation.customer_id, [invoice_id])
        facts: dict[str, Any] = {"invoice_id": invoice_id}
        if results:
            facts |= {"outcome": results[0].outcome, "reason": results[0].reason}
        if gathered.context.debt is not None:
            facts["amount"] = gathered.context.debt.amount
        _record_action(conn, conversation, action, "applied", facts, now)
        outcome = report(state, action, ActionResult(True, facts), gathered.context)
        _send(gathered, conn, conversation, outcome, now)


def _send(
    gathered: Gathered,
    conn: Connection,
    conversation: Conversation,
    outcome: Outcome,
    now: datetime,
) -> None:
    for reply in outcome.replies:
        queue_text(conn, conversation, reply, now)
        conversation = _not_fresh(conversation)
    nudge_at = None
    if outcome.state.awaiting == Awaiting.CONFIRMATION.value and gathered.nudge_after:
        nudge_at = now + gathered.nudge_after
    # Keys the dialogue does not own (a topic's invoice id) are kept.
    state = {**conversation.state, **outcome.state.to_dict()}
    save_state(conn, conversation, state, now, nudge_at=nudge_at, outcome=outcome.outcome)
    if outcome.close:
        close_conversation(conn, conversation.id, outcome.outcome or "answered", now)


def _record_action(
    conn: Connection,
    conversation: Conversation,
    action: Action,
    status: str,
    result: dict[str, Any],
    now: datetime,
) -> None:
    """The action goes on the customer's latest turn, and into the event log."""
    annotate_last_inbound(conn, conversation, action.kind, status, result)
    if status in ("applied", "failed"):
        batch = EventBatch()
        batch.add(
            conversation.site_id,
            f"concierge.action_{'completed' if status == 'applied' else 'failed'}",
            now,
            customer_id=conversation.customer_id,
            conversation_id=conversation.id,
            action=action.kind,
            result=result,
        )
        batch.write(conn)


def _opt_out(conn: Connection, conversation: Conversation, now: datetime) -> None:
    settings = load_sms_settings(conn, [conversation.site_id])[conversation.site_id]
    name, support = conn.execute(
        select(sites.c.name, sites.c.support_email).where(sites.c.id == conversation.site_id)
    ).one()
    record_opt_out(
        conn, conversation.site_id, conversation.phone, conversation.customer_id, "concierge", now
    )
    reply = settings.reply(settings.stop_reply, name, settings.help_contact or support or name)
    # The one text allowed after an opt-out: its confirmation.
    queue_text(conn, conversation, reply, now, kind="opt_out_reply", opt_out_line=False)


def _request(text: _Text, gathered: Gathered, state: State) -> ParseRequest:
    order = gathered.context.order
    awaiting = Awaiting(state.awaiting) if state.awaiting in CONTRACT_AWAITING else None
    return ParseRequest(
        text=text.body,
        today=gathered.context.today,
        next_charge_date=order.next_date if order else None,
        catalog=gathered.catalog,
        items=tuple(i.name for i in order.items) if order else (),
        awaiting=awaiting,
    )


def _load_text(conn: Connection, inbound_id: int, owner: str) -> _Text | None:
    t = inbound_messages
    row = conn.execute(select(t).where(t.c.id == inbound_id)).first()
    if row is None or row.answered_at is not None or row.lease_owner != owner:
        return None
    return _Text(row.id, row.site_id, row.customer_id, row.from_phone, row.body)


def _mark_answered(conn: Connection, inbound_id: int, now: datetime) -> None:
    conn.execute(
        update(inbound_messages)
        .where(inbound_messages.c.id == inbound_id)
        .values(answered_at=now, lease_owner=None, lease_until=None)
    )


def _record_failure(app: App, inbound_id: int, error: Exception) -> None:
    t = inbound_messages
    with app.begin() as conn:
        row = conn.execute(
            select(t.c.concierge_attempts, t.c.received_at).where(t.c.id == inbound_id)
        ).one()
        tries = row.concierge_attempts + 1
        values: dict[str, Any] = {"concierge_attempts": tries, "concierge_error": repr(error)[:500]}
        if tries >= MAX_TRIES:
            values["answered_at"] = row.received_at  # set aside; the error stays on the row
        conn.execute(update(t).where(t.c.id == inbound_id).values(**values))


def _not_fresh(conversation: Conversation) -> Conversation:
    return replace(conversation, fresh=False)
