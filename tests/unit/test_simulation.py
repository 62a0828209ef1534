"""The simulator's schedule and its replay model, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dunwell.domain.compliance import SendWindow
from dunwell.domain.payday import Payday
from dunwell.domain.policy import (
    FinalAction,
    InvoiceOutcome,
    Policy,
    Step,
    SubscriptionAction,
    default_policy,
)
from dunwell.domain.simulation import (
    ActionKind,
    PaidBy,
    PastInvoice,
    plan_cycle,
    recorded,
    replay,
    retry_days,
    sms_send_times,
    would_recover,
)
from dunwell.domain.states import Collection

START = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)  # a Monday
AUTOMATIC = default_policy(Collection.AUTOMATIC)


def charges(policy: Policy, **options: object) -> list[tuple[int, int | None]]:
    plan = plan_cycle(policy, START, **options)  # type: ignore[arg-type]
    return [(a.day, a.attempt) for a in plan if a.kind is ActionKind.CHARGE]


def test_the_default_policy_plays_out_as_the_documentation_table() -> None:
    plan = plan_cycle(AUTOMATIC, START)
    assert charges(AUTOMATIC) == [(day, day) for day in range(1, 9)]
    assert [(a.day, a.detail) for a in plan if a.kind is ActionKind.EMAIL] == [
        (1, "payment_declined"),
        (3, "payment_declined"),
        (7, "payment_declined"),
        (14, "final_notice"),
        (15, "final_notice"),
    ]
    final = [a for a in plan if a.kind is ActionKind.FINAL]
    assert [(a.day, a.at) for a in final] == [(15, START + timedelta(days=14))]


def test_a_hard_decline_leaves_only_the_first_charge() -> None:
    assert charges(AUTOMATIC, decline_code="lost_card") == [(1, 1)]


def test_a_manual_policy_never_charges() -> None:
    plan = plan_cycle(default_policy(Collection.MANUAL), START)
    assert not [a for a in plan if a.kind is ActionKind.CHARGE]
    assert plan[-1].kind is ActionKind.FINAL and plan[-1].day == 30


def test_cadence_retries_wait_for_the_payday() -> None:
    friday = Payday(weekday=4)
    policy = Policy(retry_interval_hours=24, max_attempts=3, final_day=15)
    # Day 1 is Monday: the next retries fall on Friday (day 5), then the next Friday.
    assert charges(policy, payday=friday) == [(1, 1), (5, 2), (12, 3)]


def test_texts_wait_for_the_window_and_the_cap_in_the_customers_zone() -> None:
    policy = Policy(
        retry_interval_hours=0,
        max_attempts=1,
        final_day=5,
        steps=(
            Step(day=1, sms_template="a"),
            Step(day=2, sms_template="b"),
            Step(day=3, sms_template="c"),
        ),
    )
    # Day 1 starts 02:00 in New York (07:00 UTC): outside the 08:00-20:30 window.
    start = datetime(2024, 1, 1, 7, 0, tzinfo=UTC)
    zone = ZoneInfo("America/New_York")
    plan = sms_send_times(plan_cycle(policy, start), zone, SendWindow(), cap=3)
    texts = [a.send_at for a in plan if a.kind is ActionKind.SMS]
    assert texts == [datetime(2024, 1, d, 13, 0, tzinfo=UTC) for d in (1, 2, 3)]
    # A narrower window moves them to its opening: 10:00 local.
    window = SendWindow(time(10, 0), time(18, 0))
    later = sms_send_times(plan_cycle(policy, start), zone, window, cap=3)
    assert [a.send_at for a in later if a.kind is ActionKind.SMS] == [
        datetime(2024, 1, d, 15, 0, tzinfo=UTC) for d in (1, 2, 3)
    ]


def case(**fields: object) -> PastInvoice:
    values: dict[str, object] = {
        "invoice_id": 1,
        "amount_minor": 1000,
        "currency": "USD",
        "started_at": START,
    }
    return PastInvoice(**{**values, **fields})  # type: ignore[arg-type]


def test_a_retry_recovery_needs_a_retry_on_or_after_its_day() -> None:
    paid_day_3 = case(paid_day=3, paid_by=PaidBy.RETRY)
    one_retry_on = {
        day: Policy(retry_interval_hours=0, final_day=10, steps=(Step(day=day, retry=True),))
        for day in (2, 3, 9)
    }
    assert not would_recover(one_retry_on[2], paid_day_3)
    assert would_recover(one_retry_on[3], paid_day_3)
    assert would_recover(one_retry_on[9], paid_day_3)
    # The first charge is the failure itself, never a recovery.
    no_retries = Policy(retry_interval_hours=0, max_attempts=1, final_day=10)
    assert retry_days(no_retries, START, None) == frozenset()
    assert not would_recover(no_retries, case(paid_day=1, paid_by=PaidBy.RETRY))


def test_a_hard_decline_is_never_recovered_by_retries() -> None:
    hard = case(paid_day=3, paid_by=PaidBy.RETRY, hard_declined=True)
    assert not would_recover(AUTOMATIC, hard)
    assert would_recover(AUTOMATIC, case(paid_day=3, paid_by=PaidBy.CUSTOMER, hard_declined=True))


def test_a_customer_payment_needs_the_cycle_running_or_the_invoice_left_past_due() -> None:
    paid_day_5 = case(paid_day=5, paid_by=PaidBy.CUSTOMER)
    assert would_recover(Policy(final_day=6), paid_day_5)
    assert not would_recover(Policy(final_day=5), paid_day_5)
    left = FinalAction(invoice_outcome=InvoiceOutcome.LEAVE_PAST_DUE)
    assert would_recover(Policy(final_day=5, final=left), paid_day_5)


def test_an_unpaid_invoice_is_never_recovered_and_totals_add_up() -> None:
    cases = [
        case(invoice_id=1, amount_minor=1000, paid_day=3, paid_by=PaidBy.RETRY),
        case(invoice_id=2, amount_minor=2000, currency="EUR", paid_day=5, paid_by=PaidBy.CUSTOMER),
        case(invoice_id=3, amount_minor=4000),
    ]
    totals = replay(AUTOMATIC, cases)
    assert (totals.invoices, totals.recovered) == (3, 2)
    assert totals.recovered_minor == {"USD": 1000, "EUR": 2000}
    assert totals.rate == 2 / 3
    assert recorded(cases).recovered == 2
    assert replay(AUTOMATIC, []).rate is None


def test_the_final_action_names_a_downgrade_plan_only_for_a_downgrade() -> None:
    left_over = FinalAction(SubscriptionAction.CANCEL, downgrade_plan="basic")
    plan = plan_cycle(Policy(final_day=2, final=left_over), START)
    assert [a.detail for a in plan if a.kind is ActionKind.FINAL] == [
        "subscription: cancel; invoice written off"
    ]
    downgrade = FinalAction(SubscriptionAction.DOWNGRADE, downgrade_plan="basic")
    plan = plan_cycle(Policy(final_day=2, final=downgrade), START)
    assert [a.detail for a in plan if a.kind is ActionKind.FINAL] == [
        "subscription: downgrade to basic; invoice written off"
    ]
