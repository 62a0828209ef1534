"""The dunning decision: what happens next to one invoice, and what follows.

Two pure functions carry the whole schedule:

* :func:`decide` looks at a cycle's state, its policy version and ``now`` and
  says whether to charge (and which attempt number), which steps were reached
  and whether the final action is due.
* :func:`advance` takes that decision and the charge result (if a charge was
  made) and returns the new state, the effects to record, and when to look
  at the invoice again.

The worker calls ``decide``, makes the charge with an idempotency key built
from the attempt number, then calls ``advance`` and writes the result in one
transaction. If the process dies between the two, the state is unchanged,
``decide`` returns the same attempt number, and the gateway sees the same key.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from dunwell.domain.declines import DeclineClass
from dunwell.domain.payday import Payday
from dunwell.domain.policy import MAX_ATTEMPTS_CAP, FinalAction, Policy, Step
from dunwell.domain.states import AttemptStatus, Collection, CyclePhase

DAY = timedelta(days=1)
#: A gateway that does not answer is asked again with the same idempotency key
#: this many times before the attempt counts as a soft decline.
MAX_TRANSIENT_RETRIES = 3
TRANSIENT_BACKOFF = timedelta(minutes=15)


@dataclass(frozen=True)
class CycleState:
    """Everything the decision needs to know about one invoice's collection."""

    collection: Collection
    due_at: datetime
    phase: CyclePhase = CyclePhase.INITIAL
    started_at: datetime | None = None  # day 1 begins here
    attempts: int = 0  # charge attempts with a final answer, the first failure included
    last_attempt_at: datetime | None = None
    hard_declined: bool = False
    steps_done_through: int = 0  # the last step day already carried out
    retry_at: datetime | None = None  # promise to pay, collect now, new card (automatic only)
    payday: Payday | None = None
    transient_errors: int = 0  # unanswered tries of the current attempt
    finalized: bool = False


@dataclass(frozen=True)
class ChargeResult:
    status: AttemptStatus  # succeeded, declined or error (no clear answer)
    decline_code: str | None = None
    decline_class: DeclineClass | None = None


@dataclass(frozen=True)
class Decision:
    charge_attempt: int | None = None  # attempt number to charge now
    enter_dunning: bool = False  # a manual invoice's net terms have passed
    steps: tuple[Step, ...] = ()
    finalize: bool = False  # run the final action unless the charge succeeds

    @property
    def is_noop(self) -> bool:
        return not (self.charge_attempt or self.enter_dunning or self.steps or self.finalize)


@dataclass(frozen=True)
class StepReached:
    step: Step
    next_step: Step | None


@dataclass(frozen=True)
class Transition:
    state: CycleState
    next_run_at: datetime | None
    paid: bool = False
    entered_dunning: bool = False
    declined: ChargeResult | None = None
    steps: tuple[StepReached, ...] = ()
    final: FinalAction | None = None


def day_number(started_at: datetime, now: datetime) -> int:
    """Day 1 is the 24 hours from the start of dunning, day 2 the next, and so on."""
    return (now - started_at) // DAY + 1


def day_start(started_at: datetime, day: int) -> datetime:
    return started_at + (day - 1) * DAY


def decide(state: CycleState, policy: Policy, now: datetime) -> Decision:
    """What to do for this invoice at ``now``; a no-op when nothing is due."""
    if state.finalized:
        # After the cycle (closed by the final action), only an explicit request
        # (new card, collect now) charges; this must come before the CLOSED check.
        return Decision(charge_attempt=_requested_attempt(state, now))
    if state.phase is CyclePhase.CLOSED:
        return Decision()
    if state.phase is CyclePhase.INITIAL:
        return _decide_initial(state, now)
    assert state.started_at is not None
    day = day_number(state.started_at, now)
    steps = _steps_reached(state, policy, day)
    charge = _retry_due(state, policy, now) or (
        any(s.retry for s in steps)
        and _can_retry(state, policy)
        and not _promise_pending(state, now)
    )
    return Decision(
        charge_attempt=state.attempts + 1 if charge else None,
        steps=steps,
        finalize=now >= final_at(state, policy),
    )


def advance(
    state: CycleState,
    policy: Policy,
    now: datetime,
    decision: Decision,
    result: ChargeResult | None,
) -> Transition:
    """Apply a decision and the charge result; return the new state and effects."""
    if result is not None and result.status is AttemptStatus.ERROR:
        if state.transient_errors + 1 < MAX_TRANSIENT_RETRIES:
            waiting = replace(state, transient_errors=state.transient_errors + 1)
            backoff = TRANSIENT_BACKOFF * 2**state.transient_errors
            return Transition(state=waiting, next_run_at=now + backoff)
        code = result.decline_code or "gateway_timeout"
        result = ChargeResult(AttemptStatus.ERROR, code, DeclineClass.SOFT)
    if result is not None and result.status is AttemptStatus.SUCCEEDED:
        closed = replace(
            state,
            phase=CyclePhase.CLOSED,
            attempts=state.attempts + 1,
            last_attempt_at=now,
            retry_at=None,
            transient_errors=0,
        )
        return Transition(state=closed, next_run_at=None, paid=True)
    state = _after_decline(state, now, result)
    entered = False
    steps = decision.steps
    finalize = decision.finalize
    if state.phase is CyclePhase.INITIAL and (result is not None or decision.enter_dunning):
        state = _enter_dunning(state, now)
        entered = True
        assert state.started_at is not None
        steps = _steps_reached(state, policy, day_number(state.started_at, now))
        finalize = now >= final_at(state, policy)
    reached = tuple(StepReached(s, _next_step(policy, s.day)) for s in steps)
    if steps:
        state = replace(state, steps_done_through=steps[-1].day)
    final: FinalAction | None = None
    if finalize and not state.finalized:
        final = policy.final
        state = replace(state, finalized=True)
    if state.finalized:
        state = replace(state, phase=CyclePhase.CLOSED)
    return Transition(
        state=state,
        next_run_at=next_run_at(state, policy, now),
        entered_dunning=entered,
        declined=result,
        steps=reached,
        final=final,
    )


def final_at(state: CycleState, policy: Policy) -> datetime:
    assert state.started_at is not None
    return day_start(state.started_at, policy.final_day)


def next_retry_at(state: CycleState, policy: Policy) -> datetime | None:
    """When the next retry is scheduled, or None when none will be.

    An explicit request (promise to pay, collect now, new card) wins over the
    cadence and over a hard decline; the cadence applies only while the
    retry threshold is not reached and the last decline was soft.
    """
    requested = _explicit_retry(state)
    if requested is not None and state.attempts < MAX_ATTEMPTS_CAP:
        at = requested
    elif _can_retry(state, policy) and policy.retry_interval_hours > 0:
        assert state.last_attempt_at is not None
        at = state.last_attempt_at + timedelta(hours=policy.retry_interval_hours)
        if state.payday is not None:
            payday = state.payday.next_on_or_after(at.date())
            at = max(at, datetime.combine(payday, state.last_attempt_at.timetz()))
    else:
        return None
    if state.phase is CyclePhase.DUNNING and not state.finalized:
        # Within the caps: a retry that would land after the cycle ends is
        # made on the final day instead, just before the final action.
        at = min(at, final_at(state, policy))
    return at


def next_run_at(state: CycleState, policy: Policy, now: datetime) -> datetime | None:
    """The earliest moment anything can happen to this cycle, if nothing else changes."""
    if state.phase is CyclePhase.INITIAL:
        requested = _explicit_retry(state)
        return min(state.due_at, requested) if requested else state.due_at
    if state.phase is CyclePhase.CLOSED:
        return _explicit_retry(state) if state.attempts < MAX_ATTEMPTS_CAP else None
    assert state.started_at is not None
    candidates = [final_at(state, policy)]
    upcoming = _next_step(policy, state.steps_done_through)
    if upcoming is not None:
        candidates.append(day_start(state.started_at, upcoming.day))
    retry = next_retry_at(state, policy)
    if retry is not None:
        candidates.append(retry)
    return max(min(candidates), now)


def _decide_initial(state: CycleState, now: datetime) -> Decision:
    requested = _explicit_retry(state)
    due = min(state.due_at, requested) if requested else state.due_at
    if now < due:
        return Decision()
    if state.collection is Collection.MANUAL:
        return Decision(enter_dunning=True)
    return Decision(charge_attempt=state.attempts + 1)


def _requested_attempt(state: CycleState, now: datetime) -> int | None:
    requested = _explicit_retry(state)
    if requested is None or requested > now or state.attempts >= MAX_ATTEMPTS_CAP:
        return None
    return state.attempts + 1


def _explicit_retry(state: CycleState) -> datetime | None:
    """A requested retry time; manual invoices are paid by the customer, never charged."""
    return state.retry_at if state.collection is Collection.AUTOMATIC else None


def _promise_pending(state: CycleState, now: datetime) -> bool:
    """A promise to pay holds the retries a step would make before its date."""
    requested = _explicit_retry(state)
    return requested is not None and requested > now


def _can_retry(state: CycleState, policy: Policy) -> bool:
    return (
        state.collection is Collection.AUTOMATIC
        and not state.hard_declined
        and state.attempts < policy.max_attempts
    )


def _retry_due(state: CycleState, policy: Policy, now: datetime) -> bool:
    if state.collection is Collection.MANUAL:
        return False
    at = next_retry_at(state, policy)
    return at is not None and at <= now


def _steps_reached(state: CycleState, policy: Policy, day: int) -> tuple[Step, ...]:
    last = min(day, policy.final_day)
    return tuple(s for s in policy.steps if state.steps_done_through < s.day <= last)


def _next_step(policy: Policy, after_day: int) -> Step | None:
    return next((s for s in policy.steps if s.day > after_day), None)


def _after_decline(state: CycleState, now: datetime, result: ChargeResult | None) -> CycleState:
    if result is None:
        return state
    return replace(
        state,
        attempts=state.attempts + 1,
        last_attempt_at=now,
        hard_declined=result.decline_class is DeclineClass.HARD,
        retry_at=None,
        transient_errors=0,
    )


def _enter_dunning(state: CycleState, now: datetime) -> CycleState:
    # Manual invoices start the day net terms pass, whenever the worker sees it,
    # so day numbers do not depend on worker lag.
    started = state.due_at if state.collection is Collection.MANUAL else now
    return replace(state, phase=CyclePhase.DUNNING, started_at=started)
