"""The simulator's day-by-day plan against what the real worker then does on a test shop.

Every test runs on SQLite and on PostgreSQL (the ``app`` fixture). The worker
is run at each moment its cycle is next due, as a punctual worker would be,
so its charges, messages and final action can be compared with the plan.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from dunwell.bootstrap import App
from dunwell.domain.policy import Policy, default_policy, policy_from_dict
from dunwell.domain.simulation import ActionKind
from dunwell.domain.states import Collection
from dunwell.services.policy_simulator import InvoicePlan, plan_for_customer
from dunwell.services.sites import advance_clock
from dunwell.store import tables
from tests.integration.factories import INSUFFICIENT, LOST, Shop

PHONE = "+12125550123"

#: (what was done, when, detail) as both sides describe it.
Happening = tuple[str, datetime, str]


def plan_of(shop: Shop, policy: Policy, customer_id: int) -> InvoicePlan:
    with shop.app.connect() as conn:
        return plan_for_customer(conn, shop.site_id, policy, str(customer_id), shop.now)


def planned(plan: InvoicePlan) -> list[Happening]:
    """The plan's charges, messages and final action; texts at when they are queued."""
    found: list[Happening] = []
    for day in plan.days:
        for a in day.actions:
            if a.kind is ActionKind.CHARGE:
                found.append(("charge", a.at, str(a.attempt)))
            elif a.kind in (ActionKind.EMAIL, ActionKind.SMS):
                found.append((a.kind.value, a.at, a.detail))
            elif a.kind is ActionKind.FINAL:
                found.append(("final", a.at, ""))
    return sorted(found)


def run_punctually(shop: Shop, invoice_id: int) -> None:
    """Run the worker now and then at each moment the cycle is next due, until it ends."""
    shop.run()
    for _ in range(100):
        cycle = shop.cycle_of(invoice_id)
        if cycle.phase == "closed":
            return
        wait = cycle.next_run_at - shop.now
        if wait > timedelta(0):
            with shop.app.begin() as conn:
                advance_clock(conn, shop.site_id, wait)
        shop.run()
    raise AssertionError("the cycle did not end")


def done(shop: Shop, invoice_id: int) -> list[Happening]:
    """What the worker did to the invoice: charges, queued messages, the final action."""
    found: list[Happening] = [
        ("charge", a.created_at, str(a.attempt_no)) for a in shop.attempts_of(invoice_id)
    ]
    found += [(r.channel, r.created_at, r.template) for r in shop.outbox_of(invoice_id)]
    ended = shop.all(tables.events, invoice_id=invoice_id, type="dunning.ended")
    found += [("final", e.occurred_at, "") for e in ended]
    return sorted(found)


SHORT = {
    "retry_interval_hours": 36,
    "max_attempts": 6,
    "final_day": 10,
    "steps": [
        {"day": 1, "email_template": "payment_declined", "sms_template": "payment_declined"},
        {"day": 4, "retry": True, "email_template": "payment_declined"},
        {"day": 10, "sms_template": "final_notice"},
    ],
    "final": {
        "subscription_action": "mark_unpaid",
        "invoice_outcome": "leave_past_due",
        "email_template": "final_notice",
    },
}
STEP_RETRIES = {
    "retry_interval_hours": 0,
    "max_attempts": 3,
    "final_day": 8,
    "steps": [
        {"day": 2, "retry": True, "email_template": "payment_declined"},
        {"day": 5, "retry": True, "webhook": True},
        {"day": 8, "retry": True, "email_template": "final_notice"},
    ],
}


@pytest.mark.parametrize(
    ("data", "card"),
    [
        pytest.param(None, INSUFFICIENT, id="the default policy, a soft decline"),
        pytest.param(None, LOST, id="the default policy, a hard decline"),
        pytest.param(SHORT, INSUFFICIENT, id="a 36-hour cadence left past due"),
        pytest.param(STEP_RETRIES, INSUFFICIENT, id="step retries only"),
    ],
)
def test_the_plan_for_a_failed_invoice_is_what_the_worker_then_does(
    app: App, shop: Shop, data: dict[str, Any] | None, card: str
) -> None:
    if data is not None:
        shop.save_policy(data)
    policy = default_policy(Collection.AUTOMATIC) if data is None else policy_from_dict(data)
    customer = shop.customer(card, phone=PHONE)
    invoice = shop.invoice(customer)
    shop.run()  # the first charge fails: the invoice enters dunning
    plan = plan_of(shop, policy, customer)
    assert plan.start == shop.cycle_of(invoice).started_at

    run_punctually(shop, invoice)

    assert done(shop, invoice) == planned(plan)


def test_a_manual_invoice_the_worker_has_not_seen_yet_is_planned_from_its_due_date(
    app: App, shop: Shop
) -> None:
    # Day 1 of a manual invoice is its due date, however late the worker notices.
    customer = shop.customer(None)
    invoice = shop.invoice(customer, collection=Collection.MANUAL, net_terms_days=3)
    shop.advance(5)  # the test clock moved; the worker has not run since
    policy = default_policy(Collection.MANUAL)
    plan = plan_of(shop, policy, customer)

    run_punctually(shop, invoice)

    started_at = shop.cycle_of(invoice).started_at
    assert started_at == shop.one(tables.invoices, id=invoice).due_at
    assert plan.start == started_at
    final = [a.at for d in plan.days for a in d.actions if a.kind is ActionKind.FINAL]
    assert final == [e.occurred_at for e in shop.all(tables.events, type="dunning.ended")]


def test_a_customer_without_a_card_is_planned_with_the_decline_the_worker_gets(
    app: App, shop: Shop
) -> None:
    customer = shop.customer(None)
    invoice = shop.invoice(customer)
    policy = default_policy(Collection.AUTOMATIC)
    plan = plan_of(shop, policy, customer)
    assert plan.decline_code == "no_payment_method"
    assert any("no card on file" in note for note in plan.notes)

    run_punctually(shop, invoice)

    assert [a.decline_code for a in shop.attempts_of(invoice)] == ["no_payment_method"]
    charged = [a for a in planned(plan) if a[0] == "charge"]
    assert charged == [a for a in done(shop, invoice) if a[0] == "charge"]


def test_an_invoice_in_dunning_is_said_to_keep_the_version_it_started_with(
    app: App, shop: Shop
) -> None:
    customer = shop.customer(INSUFFICIENT)
    invoice = shop.invoice(customer)
    shop.run()
    draft = policy_from_dict(SHORT)
    plan = plan_of(shop, draft, customer)
    assert any("keeps version 1" in note for note in plan.notes)

    # Once the invoice has left dunning there is nothing to warn about.
    run_punctually(shop, invoice)
    assert shop.cycle_of(invoice).policy_version_id is not None
    assert not any("keeps version" in note for note in plan_of(shop, draft, customer).notes)
