"""Turning dunning transitions into rows, written in a few batched statements.

:class:`EffectWriter` collects everything one batch of cycles changes
(attempt outcomes, cycle state, invoice and subscription states, events and
outbox messages) and writes it with one ``executemany`` per kind of change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from dunwell.domain.declines import classify_decline
from dunwell.domain.dunning import (
    CycleState,
    Decision,
    StepReached,
    Transition,
    final_at,
    next_retry_at,
)
from dunwell.domain.policy import FinalAction, InvoiceOutcome, Policy, Step, SubscriptionAction
from dunwell.domain.states import AttemptStatus, InvoiceStatus, SubscriptionStatus
from dunwell.gateways.base import ChargeResponse
from dunwell.services.cycle_rows import state_values
from dunwell.services.cycle_writes import PendingWrites
from dunwell.services.message_render import MessageRenderer

FINAL_STATUS = {
    SubscriptionAction.CANCEL: SubscriptionStatus.CANCELED,
    SubscriptionAction.MARK_UNPAID: SubscriptionStatus.UNPAID,
    SubscriptionAction.PAUSE: SubscriptionStatus.PAUSED,
    SubscriptionAction.DOWNGRADE: SubscriptionStatus.ACTIVE,
    SubscriptionAction.LEAVE_ACTIVE: SubscriptionStatus.ACTIVE,
}
#: The statuses a final action may move a subscription from, where not every one.
_FINAL_ONLY_FROM = {
    SubscriptionStatus.ACTIVE: {SubscriptionStatus.PAST_DUE.value},
    SubscriptionStatus.UNPAID: {SubscriptionStatus.ACTIVE.value, SubscriptionStatus.PAST_DUE.value},
}


@dataclass
class CycleWork:
    """One claimed cycle with everything needed to decide and record it."""

    cycle_id: int
    site_id: int
    invoice_id: int
    customer_id: int
    subscription_id: int | None
    subscription_status: str | None
    invoice_number: str
    amount_minor: int
    currency: str
    revision: int
    version_id: int
    policy: Policy
    state: CycleState
    now: datetime
    decision: Decision
    attempt_key: str | None = None
    # The Stripe invoice (in_...) this one mirrors: retries pay it there.
    external_invoice: str | None = None


class EffectWriter(PendingWrites):
    """Turns each cycle's transition into pending rows; ``flush`` writes them."""

    def __init__(self, conn: Connection, renderer: MessageRenderer) -> None:
        super().__init__()
        self.conn = conn
        self.renderer = renderer

    def flush(self, owner: str) -> None:
        self.renderer.render_rows(self.conn, self.outbox)
        self.write(self.conn, owner)

    # -- one cycle ----------------------------------------------------------

    def apply(self, item: CycleWork, t: Transition, response: ChargeResponse | None) -> None:
        now = item.now
        ids = {
            "customer_id": item.customer_id,
            "subscription_id": item.subscription_id,
            "invoice_id": item.invoice_id,
        }
        self._attempt(item, response)
        if t.entered_dunning:
            self.versions_used.setdefault(item.version_id, now)
            self._invoice(item.invoice_id, InvoiceStatus.PAST_DUE, now)
            self.events.add(
                item.site_id,
                "invoice.past_due",
                now,
                **ids,
                amount_minor=item.amount_minor,
                currency=item.currency,
            )
            self.events.add(
                item.site_id, "dunning.started", now, **ids, policy_version_id=item.version_id
            )
            self._subscription(
                item, SubscriptionStatus.PAST_DUE, now, only_from={SubscriptionStatus.ACTIVE.value}
            )
        if t.declined is not None:
            self.events.add(
                item.site_id,
                "payment.failed",
                now,
                **ids,
                attempt=t.state.attempts,
                decline_code=t.declined.decline_code,
                decline_class=t.declined.decline_class and t.declined.decline_class.value,
            )
        if t.paid:
            self._paid(item, now, ids)
        for reached in t.steps:
            self._step(item, reached, t.state, now, ids)
        if t.final is not None:
            self._final(item, t.final, now, ids)
        outcome = _outcome(t, item)
        self.cycles.append(
            {
                "b_id": item.cycle_id,
                "policy_version_id": _pinned(item, t),
                "outcome": outcome,
                "updated_at": now,
                **state_values(t.state, t.next_run_at),
            }
        )

    def record_facts_only(self, item: CycleWork, response: ChargeResponse | None) -> None:
        """The cycle changed under us (new card, mark paid): keep only what surely happened."""
        self._attempt(item, response)
        if response is None or response.status is AttemptStatus.ERROR:
            return
        attempt_no = item.decision.charge_attempt or 0
        self.facts.append({"b_id": item.cycle_id, "attempt_no": attempt_no, "at": item.now})
        if response.status is AttemptStatus.SUCCEEDED:
            self.events.add(
                item.site_id,
                "payment.succeeded_after_change",
                item.now,
                customer_id=item.customer_id,
                invoice_id=item.invoice_id,
                amount_minor=item.amount_minor,
                reference=response.reference,
            )

    # -- pieces -------------------------------------------------------------

    def _attempt(self, item: CycleWork, response: ChargeResponse | None) -> None:
        if response is None or item.attempt_key is None:
            return
        # A decline, or an error that ended as one (the third gateway timeout).
        declined = response.status is not AttemptStatus.SUCCEEDED and bool(response.decline_code)
        self.attempts.append(
            {
                "b_key": item.attempt_key,
                "status": response.status.value,
                "decline_code": response.decline_code,
                "decline_class": classify_decline(response.decline_code).value
                if declined
                else None,
                "gateway_reference": response.reference,
                "completed_at": item.now,
            }
        )

    def _invoice(self, invoice_id: int, status: InvoiceStatus, now: datetime) -> None:
        closed_at = now if status.is_closed else None
        change = {"b_id": invoice_id, "status": status.value, "closed_at": closed_at}
        if status is InvoiceStatus.PAID:
            self.paid_invoices.append({**change, "paid_at": now})
        else:
            self.invoices.append(change)

    def _paid(self, item: CycleWork, now: datetime, ids: dict[str, Any]) -> None:
        self._invoice(item.invoice_id, InvoiceStatus.PAID, now)
        self.events.add(
            item.site_id,
            "payment.succeeded",
            now,
            **ids,
            amount_minor=item.amount_minor,
            currency=item.currency,
        )
        self.events.add(item.site_id, "invoice.paid", now, **ids)
        if item.state.phase.value == "dunning" and not item.state.finalized:
            self.events.add(item.site_id, "dunning.ended", now, **ids, outcome="recovered")
        if item.subscription_id is not None and item.subscription_status is not None:
            self.reactivate[item.subscription_id] = (
                now,
                item.site_id,
                item.customer_id,
                item.subscription_status,
            )

    def _step(
        self,
        item: CycleWork,
        reached: StepReached,
        state: CycleState,
        now: datetime,
        ids: dict[str, Any],
    ) -> None:
        step = reached.step
        self.events.add(
            item.site_id,
            "dunning.step_reached",
            now,
            **ids,
            day=step.day,
            step=_step_data(step),
            next_step=_step_data(reached.next_step) if reached.next_step else None,
            policy_version_id=item.version_id,
        )
        base = f"{item.invoice_id}:v{item.version_id}:d{step.day}"
        policy = item.policy
        retry_at = next_retry_at(state, policy)
        payload = {
            "event": "dunning.step_reached",
            "day": step.day,
            "attempts": state.attempts,
            # What the customer is told: attempts still to come, the next
            # retry and what happens on the final day, fixed at this step.
            "attempts_left": max(0, policy.max_attempts - state.attempts),
            "next_retry_at": retry_at.isoformat() if retry_at else None,
            "final_at": final_at(state, policy).isoformat() if state.started_at else None,
            "final_action": policy.final.subscription_action.value,
            "policy_version_id": item.version_id,
            "current_step": _step_data(step),
            "next_step": _step_data(reached.next_step) if reached.next_step else None,
        }
        # A step's webhook is not an outbox row: the dunning.step_reached event
        # above fans out to the site's endpoints (services/events.py).
        # A promise to pay holds the reminders as well as the retries: they
        # wait for the promised day, and are withdrawn if the charge then works.
        promised = state.retry_at if state.retry_at and state.retry_at > now else None
        for channel, template in (("email", step.email_template), ("sms", step.sms_template)):
            if template:
                key = f"{base}:{channel}"
                self._message(item, channel, key, template, payload, now, hold_until=promised)

    def _final(
        self, item: CycleWork, final: FinalAction, now: datetime, ids: dict[str, Any]
    ) -> None:
        status = FINAL_STATUS[final.subscription_action]
        # Leaving active (or downgrading) settles a past-due subscription, and
        # marking unpaid stops one still billed; one paused meanwhile stays
        # paused: it is not back-billed, and a merchant's pause is not turned
        # into an unpaid status that paying the debt would end.
        only_from = _FINAL_ONLY_FROM.get(status)
        self._subscription(item, status, now, only_from=only_from)
        if final.subscription_action is SubscriptionAction.DOWNGRADE and item.subscription_id:
            assert final.downgrade_plan is not None
            self.downgrades.append((item.site_id, item.subscription_id, final.downgrade_plan))
        if final.invoice_outcome is InvoiceOutcome.FAIL:
            self._invoice(item.invoice_id, InvoiceStatus.FAILED, now)
            self.events.add(item.site_id, "invoice.failed", now, **ids)
        if final.email_template:
            self._message(
                item,
                "email",
                f"{item.invoice_id}:v{item.version_id}:final:email",
                final.email_template,
                {
                    "event": "dunning.final",
                    "bcc_merchant": final.bcc_merchant,
                    "attempts": item.state.attempts,
                    "final_action": final.subscription_action.value,
                    "final_at": now.isoformat(),
                    "subscription_action": final.subscription_action.value,
                },
                now,
            )
        self.events.add(
            item.site_id,
            "dunning.ended",
            now,
            **ids,
            outcome=_outcome_name(final),
            subscription_action=final.subscription_action.value,
        )

    def _message(
        self,
        item: CycleWork,
        channel: str,
        key: str,
        template: str,
        payload: dict[str, Any],
        now: datetime,
        hold_until: datetime | None = None,
    ) -> None:
        self.outbox.append(
            {
                "site_id": item.site_id,
                "channel": channel,
                "dedupe_key": key,
                "customer_id": item.customer_id,
                "invoice_id": item.invoice_id,
                "template": template,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": hold_until or now,
                "held_reason": "promise_to_pay" if hold_until else None,
                "created_at": now,
            }
        )

    def _subscription(
        self, item: CycleWork, status: SubscriptionStatus, now: datetime, only_from: set[str] | None
    ) -> None:
        sub_id = item.subscription_id
        if sub_id is None or item.subscription_status is None:
            return
        current = self.subscription_status.get(sub_id, item.subscription_status)
        if current == status.value or (only_from is not None and current not in only_from):
            return
        if current == SubscriptionStatus.CANCELED.value:
            return  # a canceled subscription stays canceled
        self.loaded_status.setdefault(sub_id, item.subscription_status)
        self.subscription_status[sub_id] = status.value
        self.subscription_changes[sub_id] = (
            current,
            status.value,
            now,
            item.site_id,
            item.customer_id,
        )


def _step_data(step: Step) -> dict[str, Any]:
    return {
        "day": step.day,
        "retry": step.retry,
        "email_template": step.email_template,
        "sms_template": step.sms_template,
        "webhook": step.webhook,
    }


def _pinned(item: CycleWork, t: Transition) -> int | None:
    return item.version_id if t.state.started_at is not None else None


def _outcome_name(final: FinalAction) -> str:
    return "written_off" if final.invoice_outcome is InvoiceOutcome.FAIL else "left_past_due"


def _outcome(t: Transition, item: CycleWork) -> str | None:
    if t.paid:
        return "recovered" if item.state.phase.value == "dunning" else "paid"
    if t.final is not None:
        return _outcome_name(t.final)
    return None
