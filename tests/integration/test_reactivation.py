"""A subscription paused by dunning and paid later renews from the next boundary."""

from __future__ import annotations

from dunwell.bootstrap import App
from dunwell.store import tables
from tests.integration.factories import GOOD, INSUFFICIENT, Shop

PAUSE_POLICY = {
    "retry_interval_hours": 24,
    "max_attempts": 3,
    "final_day": 5,
    "steps": [{"day": 1, "retry": True}],
    "final": {"subscription_action": "pause", "invoice_outcome": "leave_past_due"},
}


def test_paying_after_a_pause_bills_no_missed_periods(app: App) -> None:
    shop = Shop.create(app)
    shop.save_policy(PAUSE_POLICY)
    customer = shop.customer(INSUFFICIENT)
    subscription = shop.subscribe(customer)
    shop.run_days(70)  # paused on day 5; two monthly boundaries pass while paused
    assert shop.one(tables.subscriptions, id=subscription).status == "paused"
    assert len(shop.all(tables.invoices, subscription_id=subscription)) == 1
    shop.change_card(customer, GOOD)  # the past-due invoice is collected at once
    shop.run()
    row = shop.one(tables.subscriptions, id=subscription)
    assert row.status == "active"
    assert row.next_charge_at >= shop.now
    shop.run()
    invoices = shop.all(tables.invoices, subscription_id=subscription)
    assert [i.status for i in invoices] == ["paid"]
    shop.run_days(31)
    assert len(shop.all(tables.invoices, subscription_id=subscription)) == 2
