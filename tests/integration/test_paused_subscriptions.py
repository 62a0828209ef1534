"""A subscription the merchant paused while one of its invoices is in dunning.

Renewals stand still while it is paused. Whatever settles the invoice
(a payment through the API or by the worker, the policy's final action)
must neither bill the periods it spent paused at once nor undo the
merchant's pause behind their back; only a pause made by a final action
ends with the payment of the debt. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from dunwell.domain.intervals import IntervalUnit
from dunwell.store import tables
from tests.integration.factories import GOOD, INSUFFICIENT, Shop
from tests.integration.test_api_core import bearer


def _paused_for_six_days(shop: Shop, client: TestClient, headers: dict[str, str]) -> int:
    """A daily subscription whose first renewal failed, paused through the API for six days."""
    subscription = shop.subscribe(shop.customer(INSUFFICIENT), interval_unit=IntervalUnit.DAY)
    shop.run()
    answer = client.post(f"/v1/subscriptions/{subscription}/pause", headers=headers)
    assert answer.status_code == 200, answer.text
    for _ in range(6):
        shop.advance(1)
        shop.run()
    return subscription


def _invoices(shop: Shop, subscription: int) -> list[Any]:
    return shop.all(tables.invoices, subscription_id=subscription)


def test_paying_the_debt_keeps_the_merchants_pause_and_resuming_bills_from_the_next_boundary(
    shop: Shop, client: TestClient
) -> None:
    headers = bearer(shop)
    subscription = _paused_for_six_days(shop, client, headers)
    (invoice,) = _invoices(shop, subscription)
    assert shop.one(tables.subscriptions, id=subscription).paused_by == "merchant"

    answer = client.post(f"/v1/invoices/{invoice.id}/mark_paid", headers=headers)
    assert answer.status_code == 200, answer.text
    shown = client.get(f"/v1/subscriptions/{subscription}", headers=headers).json()
    assert (shown["status"], shown["paused_by"]) == ("paused", "merchant")

    answer = client.post(f"/v1/subscriptions/{subscription}/resume", headers=headers)
    assert answer.status_code == 200, answer.text
    row = shop.one(tables.subscriptions, id=subscription)
    assert (row.status, row.paused_by) == ("active", None)
    assert row.next_charge_at >= shop.now
    shop.run()
    assert len(_invoices(shop, subscription)) == 2  # today's period, not one per paused day


def test_a_charge_that_collects_the_debt_keeps_the_merchants_pause(
    shop: Shop, client: TestClient
) -> None:
    customer = shop.customer(INSUFFICIENT)
    subscription = shop.subscribe(customer, interval_unit=IntervalUnit.DAY)
    shop.run()
    answer = client.post(f"/v1/subscriptions/{subscription}/pause", headers=bearer(shop))
    assert answer.status_code == 200, answer.text

    shop.change_card(customer, GOOD)  # the worker collects the past-due invoice at once
    shop.run()

    (invoice,) = _invoices(shop, subscription)
    assert invoice.status == "paid"
    assert shop.one(tables.subscriptions, id=subscription).status == "paused"


def test_marking_paid_what_a_final_action_paused_resumes_it_from_the_next_boundary(
    shop: Shop, client: TestClient
) -> None:
    shop.save_policy(
        {
            "final_day": 2,
            "max_attempts": 2,
            "steps": [{"day": 1, "retry": True}],
            "final": {"subscription_action": "pause", "invoice_outcome": "leave_past_due"},
        }
    )
    subscription = shop.subscribe(shop.customer(INSUFFICIENT), interval_unit=IntervalUnit.DAY)
    for _ in range(6):
        shop.run()
        shop.advance(1)
    row = shop.one(tables.subscriptions, id=subscription)
    assert (row.status, row.paused_by) == ("paused", "dunning")
    billed = _invoices(shop, subscription)  # renewals went on until the pause

    for invoice in billed:
        if invoice.status == "past_due":
            answer = client.post(f"/v1/invoices/{invoice.id}/mark_paid", headers=bearer(shop))
            assert answer.status_code == 200, answer.text
    row = shop.one(tables.subscriptions, id=subscription)
    assert (row.status, row.paused_by) == ("active", None)
    assert row.next_charge_at >= shop.now
    shop.run()
    # today's period, not one per paused day
    assert len(_invoices(shop, subscription)) == len(billed) + 1


@pytest.mark.parametrize("action", ["leave_active", "downgrade", "mark_unpaid"])
def test_a_final_action_other_than_cancel_does_not_undo_the_merchants_pause(
    shop: Shop, client: TestClient, action: str
) -> None:
    final: dict[str, Any] = {"subscription_action": action, "invoice_outcome": "fail"}
    if action == "downgrade":
        final["downgrade_plan"] = "plan"
    shop.save_policy(
        {"final_day": 5, "max_attempts": 2, "steps": [{"day": 1, "webhook": True}], "final": final}
    )
    subscription = _paused_for_six_days(shop, client, bearer(shop))

    (invoice,) = _invoices(shop, subscription)  # nothing billed while paused
    assert invoice.status == "failed"  # the final action ran
    assert shop.one(tables.subscriptions, id=subscription).status == "paused"
