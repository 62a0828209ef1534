"""The replay's shared retry schedules give exactly what planning each invoice alone gives."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from dunwell.domain.payday import Payday
from dunwell.domain.policy import Policy, Step, default_policy
from dunwell.domain.simulation import (
    PaidBy,
    PastInvoice,
    RetryDays,
    replay,
    retry_days,
)
from dunwell.domain.states import Collection

POLICIES = [
    default_policy(Collection.AUTOMATIC),
    Policy(retry_interval_hours=24, max_attempts=4, final_day=15),
    Policy(retry_interval_hours=72, max_attempts=6, final_day=30),
    Policy(retry_interval_hours=0, steps=(Step(day=3, retry=True), Step(day=9, retry=True))),
]
PAYDAYS = [None, Payday(weekday=4), Payday(weekday=0), Payday(month_day=15), Payday(month_day=31)]


def _starts(count: int, seed: int) -> list[datetime]:
    pick = random.Random(seed)
    base = datetime(2023, 1, 1, tzinfo=UTC)
    return [base + timedelta(minutes=pick.randrange(0, 2 * 365 * 24 * 60)) for _ in range(count)]


def test_shared_schedules_match_planning_each_start_alone() -> None:
    for policy in POLICIES:
        shared = RetryDays(policy)
        for start in _starts(60, seed=7):
            for payday in PAYDAYS:
                assert shared(start, payday) == retry_days(policy, start, payday)


def test_replay_matches_a_plan_per_invoice() -> None:
    pick = random.Random(11)
    cases = [
        PastInvoice(
            invoice_id=n,
            amount_minor=1000 + n,
            currency="USD",
            started_at=start,
            paid_day=pick.randrange(1, 20),
            paid_by=PaidBy.RETRY,
            payday=pick.choice(PAYDAYS),
        )
        for n, start in enumerate(_starts(200, seed=3))
    ]
    for policy in POLICIES:
        expected = sum(
            1
            for case in cases
            if any(
                day >= (case.paid_day or 0)
                for day in retry_days(policy, case.started_at, case.payday)
            )
        )
        assert replay(policy, cases).recovered == expected
