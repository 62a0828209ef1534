"""A subscription the merchant paused while one of its invoices is in dunning.

Renewals stand still while it is paused. Whatever settles the invoice
(a payment through the API, the policy's final action) must neither bill
the periods it spent paused at once nor undo the merchant's pause behind
their back. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from dunwell.domain.intervals import IntervalUnit
from dunwell.store import tables
from tests.integration.factories import INSUFFICIENT, Shop
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


def test_marking_the_debt_paid_renews_from_the_next_boundary_not_for_every_paused_day(
    shop: Shop, client: TestClient
) -> None:
    headers = bearer(shop)
    subscription = _paused_for_six_days(shop, client, headers)
    (invoice,) = _invoices(shop, subscription)

    answer = client.post(f"/v1/invoices/{invoice.id}/mark_paid", headers=headers)
    assert answer.status_code == 200, answer.text
    row = shop.one(tables.subscriptions, id=subscription)
    assert row.status == "active"  # paying the debt reactivates (docs/states.md)
    assert row.next_charge_at >= shop.now
    shop.run()

    assert len(_invoices(shop, subscription)) == 2  # today's period, not one per paused day


@pytest.mark.parametrize("action", ["leave_active", "downgrade"])
def test_a_final_action_that_leaves_it_active_does_not_undo_the_merchants_pause(
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
