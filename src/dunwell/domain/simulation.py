"""What a policy would do, worked out with the worker's own decision functions.

Two questions a merchant asks before saving a policy:

* **What happens to this invoice?** :func:`plan_cycle` walks one invoice
  through :func:`~dunwell.domain.dunning.decide` and
  :func:`~dunwell.domain.dunning.advance` exactly as the worker does, waking
  at each ``next_run_at``, with every charge declined (the schedule a card
  that never works goes through). :func:`sms_send_times` then places each
  text in the customer's send window and under the frequency cap with the
  same compliance functions the SMS gate uses.
* **What would it have recovered?** :func:`would_recover` replays one past
  invoice under a policy with the model below, and :func:`replay` adds the
  invoices up. The model only uses what was recorded, so it never invents
  a recovery the history does not show:

  1. An invoice that was never paid is not recovered by any policy: nothing
     recorded says a later or extra retry would have worked.
  2. An invoice paid by a scheduled retry on day *d* was payable from day
     *d* on: a policy recovers it if it makes a retry (attempt 2 or later)
     on day *d* or later, on or before its final day.
  3. A hard decline recorded before the payment means retries cannot
     recover it (the card is dead), under any policy.
  4. An invoice paid on day *d* after the customer or an operator acted
     (new card, collect now, promise to pay, a resubscription) or paid
     outside Dunwell (marked paid) is recovered if the policy's cycle was
     still running on day *d* (``d < final_day``), or whatever the day if
     the policy leaves the invoice past due, since a past-due invoice stays
     collectable after the cycle.

  Days are whole days of the cycle, as in :func:`~dunwell.domain.dunning.day_number`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from dunwell.domain.compliance import SendWindow, earliest_send_time
from dunwell.domain.declines import classify_decline
from dunwell.domain.dunning import ChargeResult, CycleState, advance, day_number, decide
from dunwell.domain.payday import Payday
from dunwell.domain.policy import InvoiceOutcome, Policy, Step
from dunwell.domain.states import AttemptStatus, CyclePhase

#: The decline assumed when the invoice has none recorded: the commonest soft one.
ASSUMED_DECLINE = "insufficient_funds"
#: More wake-ups than any valid policy needs (20 attempts, 60 step days, the
#: final action); a bound so that a bug can never loop for ever.
MAX_WAKEUPS = 200
CAP_PERIOD = timedelta(hours=24)


class ActionKind(StrEnum):
    CHARGE = "charge"
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"
    FINAL = "final"


@dataclass(frozen=True)
class PlannedAction:
    """One thing the worker would do: ``at`` is when it does it (UTC)."""

    at: datetime
    day: int
    kind: ActionKind
    #: Template name, final action, or the assumed decline code of a charge.
    detail: str = ""
    attempt: int | None = None
    #: For texts: when the gate would let it go out (send window, cap).
    send_at: datetime | None = None


def plan_cycle(
    policy: Policy,
    start: datetime,
    *,
    payday: Payday | None = None,
    decline_code: str = ASSUMED_DECLINE,
) -> list[PlannedAction]:
    """Every action of one invoice's cycle under ``policy`` when no charge succeeds.

    ``start`` is when the invoice falls due: the first charge (automatic) or
    the start of dunning (manual, net terms passed). Each charge declines
    with ``decline_code``; a hard one stops the retries as it would for real.
    """
    declined = ChargeResult(AttemptStatus.DECLINED, decline_code, classify_decline(decline_code))
    state = CycleState(collection=policy.kind, due_at=start, payday=payday)
    now = start
    planned: list[PlannedAction] = []
    for _ in range(MAX_WAKEUPS):
        decision = decide(state, policy, now)
        result = declined if decision.charge_attempt else None
        moved = advance(state, policy, now, decision, result)
        state = moved.state
        assert state.started_at is not None or decision.is_noop
        day = day_number(state.started_at, now) if state.started_at else 0
        if decision.charge_attempt:
            planned.append(
                PlannedAction(
                    now, day, ActionKind.CHARGE, decline_code, attempt=decision.charge_attempt
                )
            )
        for reached in moved.steps:
            planned.extend(_step_actions(now, day, reached.step))
        if moved.final is not None:
            planned.append(PlannedAction(now, day, ActionKind.FINAL, _final_detail(policy)))
            if moved.final.email_template:
                planned.append(
                    PlannedAction(now, day, ActionKind.EMAIL, moved.final.email_template)
                )
        if state.phase is CyclePhase.CLOSED or moved.next_run_at is None:
            return planned
        now = max(moved.next_run_at, now)
    raise AssertionError(f"the cycle did not end within {MAX_WAKEUPS} wake-ups")


def sms_send_times(
    actions: Sequence[PlannedAction], zone: ZoneInfo, window: SendWindow, cap: int
) -> list[PlannedAction]:
    """The same actions, each text given the moment the SMS gate would send it.

    Texts are placed in order, each counting towards the cap of the ones after
    it, as the gate counts the sends it has made to that number.
    """
    sent: list[datetime] = []
    placed: list[PlannedAction] = []
    for action in actions:
        if action.kind is ActionKind.SMS:
            at = earliest_send_time(action.at, zone, window, sent, cap, CAP_PERIOD)
            sent.append(at)
            action = PlannedAction(
                action.at, action.day, action.kind, action.detail, action.attempt, send_at=at
            )
        placed.append(action)
    return placed


def retry_days(policy: Policy, start: datetime, payday: Payday | None) -> frozenset[int]:
    """The cycle days on which ``policy`` retries a card that keeps declining softly."""
    return frozenset(
        a.day
        for a in plan_cycle(policy, start, payday=payday)
        if a.kind is ActionKind.CHARGE and (a.attempt or 0) >= 2
    )


def _step_actions(now: datetime, day: int, step: Step) -> list[PlannedAction]:
    found: list[PlannedAction] = []
    if step.email_template:
        found.append(PlannedAction(now, day, ActionKind.EMAIL, step.email_template))
    if step.sms_template:
        found.append(PlannedAction(now, day, ActionKind.SMS, step.sms_template))
    if step.webhook:
        found.append(PlannedAction(now, day, ActionKind.WEBHOOK, "dunning.step_reached"))
    return found


def _final_detail(policy: Policy) -> str:
    final = policy.final
    action = final.subscription_action.value.replace("_", " ")
    if final.downgrade_plan:
        action = f"{action} to {final.downgrade_plan}"
    invoice = (
        "invoice written off"
        if final.invoice_outcome is InvoiceOutcome.FAIL
        else "invoice left past due"
    )
    return f"subscription: {action}; {invoice}"


# -- replaying past invoices ------------------------------------------------------


class PaidBy(StrEnum):
    RETRY = "retry"  # a scheduled charge succeeded
    CUSTOMER = "customer"  # after a new card or a request, or paid outside Dunwell


@dataclass(frozen=True)
class PastInvoice:
    """What was recorded about one invoice that went through dunning."""

    invoice_id: int
    amount_minor: int
    currency: str
    started_at: datetime
    paid_day: int | None = None  # None: never paid
    paid_by: PaidBy | None = None
    hard_declined: bool = False  # a hard decline came before the payment (or ever)
    payday: Payday | None = None


@dataclass
class ReplayTotals:
    invoices: int = 0
    recovered: int = 0
    #: Recovered amounts by currency (minor units).
    recovered_minor: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float | None:
        return self.recovered / self.invoices if self.invoices else None

    def add(self, case: PastInvoice, recovered: bool) -> None:
        self.invoices += 1
        if recovered:
            self.recovered += 1
            total = self.recovered_minor.get(case.currency, 0)
            self.recovered_minor[case.currency] = total + case.amount_minor


WEEK = timedelta(days=7)
#: A Monday at midnight UTC: weekday-payday starts are moved into its week (see RetryDays).
_ANCHOR_MONDAY = datetime(2000, 1, 3, tzinfo=UTC)


class RetryDays:
    """:func:`retry_days` of one policy, each distinct schedule worked out once.

    The schedule is all timedeltas from its start, so without a payday it is
    the same whatever the start and one plan serves every invoice. A weekday
    payday repeats every week: starts a whole number of weeks apart share one
    plan. A day-of-month payday depends on the calendar, so it is keyed by the
    start itself.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._known: dict[tuple[Payday | None, datetime | None], frozenset[int]] = {}

    def __call__(self, start: datetime, payday: Payday | None) -> frozenset[int]:
        key = (payday, _schedule_start(start, payday))
        days = self._known.get(key)
        if days is None:
            days = self._known[key] = retry_days(self.policy, start, payday)
        return days


def _schedule_start(start: datetime, payday: Payday | None) -> datetime | None:
    """What of ``start`` the retry days depend on, as a key (None: nothing)."""
    if payday is None:
        return None
    if payday.weekday is None or start.tzinfo is not UTC:
        return start
    # Whole weeks keep the weekday and the time of day, all the payday looks at.
    return start - WEEK * ((start - _ANCHOR_MONDAY) // WEEK)


def would_recover(policy: Policy, case: PastInvoice, retries: RetryDays | None = None) -> bool:
    """Whether ``policy`` recovers ``case`` under the model in this module's docstring.

    ``retries`` (for ``policy``) reuses retry schedules across many cases.
    """
    if case.paid_day is None or case.paid_by is None:
        return False
    if case.paid_by is PaidBy.CUSTOMER:
        return (
            case.paid_day < policy.final_day
            or policy.final.invoice_outcome is InvoiceOutcome.LEAVE_PAST_DUE
        )
    if case.hard_declined:
        return False
    schedule = retries if retries is not None else RetryDays(policy)
    days = schedule(case.started_at, case.payday)
    return any(day >= case.paid_day for day in days)


def replay(policy: Policy, cases: Iterable[PastInvoice]) -> ReplayTotals:
    totals = ReplayTotals()
    retries = RetryDays(policy)
    for case in cases:
        totals.add(case, would_recover(policy, case, retries))
    return totals


def recorded(cases: Iterable[PastInvoice]) -> ReplayTotals:
    """What actually happened: every invoice paid after entering dunning."""
    totals = ReplayTotals()
    for case in cases:
        totals.add(case, case.paid_day is not None)
    return totals
