"""``GET .../dunning_status``: where a subscription or customer stands, through real cycles.

The default automatic policy: a retry every 24 hours, steps on days 1, 3, 7
and 14, and on day 15 the final action (cancel the subscription, write the
invoice off).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from dunwell.services import invoice_actions
from tests.integration.factories import GOOD, INSUFFICIENT, RECOVERS, Shop
from tests.integration.test_api_core import bearer, problem

DAY = timedelta(days=1)


def status(client: TestClient, shop: Shop, path: str) -> dict[str, Any]:
    response = client.get(f"/v1/{path}/dunning_status", headers=bearer(shop, "read"))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def at(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def test_a_subscription_goes_from_full_access_through_grace_to_ended_at_the_final_action(
    client: TestClient, shop: Shop
) -> None:
    customer_id = shop.customer(INSUFFICIENT)
    subscription_id = shop.subscribe(customer_id)
    path = f"subscriptions/{subscription_id}"
    before = status(client, shop, path)
    assert (before["access"], before["in_dunning"], before["invoices"]) == ("full", False, [])

    shop.run()  # the first charge fails: day 1
    started = shop.now
    day1 = status(client, shop, path)
    assert (day1["access"], day1["in_dunning"], day1["subscription_status"]) == (
        "grace",
        True,
        "past_due",
    )
    assert at(day1["final_at"]) == at(day1["access_ends_at"]) == started + 14 * DAY
    assert day1["final_action"] == {
        "subscription_action": "cancel",
        "downgrade_plan": None,
        "invoice_outcome": "fail",
    }
    assert at(day1["next_retry_at"]) == started + DAY
    invoice = day1["invoices"][0]
    assert (invoice["day"], invoice["step"]["day"], invoice["attempts"]) == (1, 1, 1)
    assert invoice["attempts_left"] == 7

    shop.run_days(3)
    day4 = status(client, shop, path)["invoices"][0]
    assert (day4["day"], day4["step"]["day"]) == (4, 3)
    assert at(day4["next_retry_at"]) == started + 4 * DAY

    shop.run_days(11)  # day 15: the final action
    ended = status(client, shop, path)
    assert (ended["access"], ended["in_dunning"], ended["subscription_status"]) == (
        "ended",
        False,
        "canceled",
    )
    assert (ended["final_at"], ended["access_ends_at"], ended["invoices"]) == (None, None, [])
    assert status(client, shop, f"customers/{customer_id}")["access"] == "ended"


def test_a_recovered_payment_brings_full_access_back(client: TestClient, shop: Shop) -> None:
    subscription_id = shop.subscribe(shop.customer(RECOVERS))
    shop.run()
    assert status(client, shop, f"subscriptions/{subscription_id}")["access"] == "grace"

    shop.run_days(2)  # the third charge succeeds

    recovered = status(client, shop, f"subscriptions/{subscription_id}")
    assert (recovered["access"], recovered["subscription_status"]) == ("full", "active")


def test_a_final_action_that_leaves_access_shows_grace_with_no_end(
    client: TestClient, shop: Shop
) -> None:
    final = {"subscription_action": "leave_active", "invoice_outcome": "leave_past_due"}
    shop.save_policy({"final_day": 3, "final": final})
    subscription_id = shop.subscribe(shop.customer(INSUFFICIENT))
    shop.run()
    during = status(client, shop, f"subscriptions/{subscription_id}")
    assert (during["access"], during["access_ends_at"]) == ("grace", None)
    assert during["final_at"] is not None

    shop.run_days(3)

    after = status(client, shop, f"subscriptions/{subscription_id}")
    assert (after["access"], after["in_dunning"], after["access_ends_at"]) == ("grace", False, None)
    assert after["invoices"][0]["outcome"] == "left_past_due"
    assert after["next_retry_at"] is None


def test_a_subscription_paused_by_its_final_action_is_ended_until_its_invoice_is_paid(
    client: TestClient, shop: Shop
) -> None:
    final = {"subscription_action": "pause", "invoice_outcome": "leave_past_due"}
    shop.save_policy({"final_day": 2, "final": final})
    customer_id = shop.customer(INSUFFICIENT)
    paused_id = shop.subscribe(customer_id)
    shop.run_days(2)
    healthy_id = shop.subscribe(customer_id)

    paused = status(client, shop, f"subscriptions/{paused_id}")
    assert (paused["access"], paused["subscription_status"]) == ("ended", "paused")
    customer = status(client, shop, f"customers/{customer_id}")
    assert customer["access"] == "grace"  # one live subscription, but money is owed
    assert [(s["id"], s["access"]) for s in customer["subscriptions"]] == [
        (paused_id, "ended"),
        (healthy_id, "full"),
    ]

    shop.change_card(customer_id, GOOD)
    shop.run()

    assert status(client, shop, f"subscriptions/{paused_id}")["access"] == "full"
    assert status(client, shop, f"customers/{customer_id}")["access"] == "full"


def test_a_past_due_one_off_invoice_is_grace_without_an_end(client: TestClient, shop: Shop) -> None:
    customer_id = shop.customer(INSUFFICIENT)
    shop.invoice(customer_id)
    shop.run()

    body = status(client, shop, f"customers/{customer_id}")

    assert (body["access"], body["in_dunning"], body["subscriptions"]) == ("grace", True, [])
    assert body["final_at"] is not None
    assert body["access_ends_at"] is None  # no subscription for the final action to end


def test_a_promise_to_pay_is_the_next_retry(client: TestClient, shop: Shop) -> None:
    subscription_id = shop.subscribe(shop.customer(INSUFFICIENT))
    shop.run()
    promised = shop.now + 5 * DAY
    shop.act(invoice_actions.promise_to_pay, shop.invoice_of(subscription_id).id, promised)

    body = status(client, shop, f"subscriptions/{subscription_id}")

    assert at(body["next_retry_at"]) == promised


def test_a_promise_to_pay_moves_the_next_retry_to_the_promised_date(
    client: TestClient, shop: Shop
) -> None:
    subscription_id = shop.subscribe(shop.customer(INSUFFICIENT))
    shop.run()
    invoice_id = shop.invoice_of(subscription_id).id
    promised = shop.now + timedelta(days=5)

    response = client.post(
        f"/v1/invoices/{invoice_id}/promise",
        json={"date": promised.isoformat()},
        headers=bearer(shop),
    )

    assert response.status_code == 200, response.text
    assert at(response.json()["retry_at"]) == promised
    assert shop.cycle_of(invoice_id).retry_at == promised
    past = {"date": (shop.now - timedelta(days=1)).isoformat()}
    url = f"/v1/invoices/{invoice_id}/promise"
    assert problem(client.post(url, json=past, headers=bearer(shop)), 422)["field"] == "date"


def test_an_unknown_customer_or_subscription_is_404(client: TestClient, shop: Shop) -> None:
    for path in ("customers/999", "subscriptions/999"):
        response = client.get(f"/v1/{path}/dunning_status", headers=bearer(shop, "read"))
        problem(response, 404)
