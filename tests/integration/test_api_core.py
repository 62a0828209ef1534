"""The ``/v1`` core API in process, through FastAPI's TestClient.

Every test runs on SQLite and on PostgreSQL (the ``app`` fixture). The
server run as a separate process is tested elsewhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dunwell.bootstrap import App
from dunwell.domain.states import Collection
from dunwell.services import api_keys
from dunwell.store import tables
from tests.integration.factories import GOOD, INSUFFICIENT, Shop

PROBLEM = "application/problem+json"


def bearer(shop: Shop, scope: str = "write") -> dict[str, str]:
    with shop.app.begin() as conn:
        key = api_keys.create_key(conn, shop.site_id, f"{scope} key", scope, shop.now)
    return {"Authorization": f"Bearer {key}"}


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Check an RFC 9457 error response and return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


def in_dunning(shop: Shop, card: str = INSUFFICIENT) -> int:
    """A renewal invoice whose first charge has just failed."""
    subscription_id = shop.subscribe(shop.customer(card))
    shop.run()
    invoice_id: int = shop.invoice_of(subscription_id).id
    return invoice_id


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- authentication and scopes ---------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"}],
    ids=["no header", "empty bearer", "basic scheme"],
)
def test_a_request_without_an_api_key_is_401_problem_json(
    client: TestClient, shop: Shop, headers: dict[str, str]
) -> None:
    response = client.get("/v1/invoices", headers=headers)
    body = problem(response, 401)
    assert body["detail"] == "Missing API key"
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_wrong_or_revoked_api_key_is_401_problem_json(client: TestClient, shop: Shop) -> None:
    wrong = client.get("/v1/invoices", headers={"Authorization": "Bearer dwk_not-a-real-key"})
    assert problem(wrong, 401)["detail"] == "Unknown or revoked API key"
    assert wrong.headers["www-authenticate"] == "Bearer"

    headers = bearer(shop, "read")
    assert client.get("/v1/invoices", headers=headers).status_code == 200
    with shop.app.begin() as conn:
        key_id = conn.execute(select(tables.api_keys.c.id)).scalar_one()
        api_keys.revoke_key(conn, shop.site_id, key_id, shop.now)
    problem(client.get("/v1/invoices", headers=headers), 401)


def test_a_read_key_can_read_but_not_post_an_action(client: TestClient, shop: Shop) -> None:
    invoice_id = in_dunning(shop)
    headers = bearer(shop, "read")
    cycle_before = shop.cycle_of(invoice_id)

    assert client.get(f"/v1/invoices/{invoice_id}", headers=headers).status_code == 200
    for path in (f"/v1/invoices/{invoice_id}/collect", f"/v1/invoices/{invoice_id}/stop"):
        body = problem(client.post(path, headers=headers), 403)
        assert "read" in body["detail"]
    problem(client.post("/v1/clock/advance", json={"by": "1d"}, headers=headers), 403)

    assert shop.cycle_of(invoice_id) == cycle_before
    assert shop.one(tables.invoices, id=invoice_id).status == "past_due"


def test_saving_a_policy_needs_an_admin_key(client: TestClient, shop: Shop) -> None:
    response = client.post(
        "/v1/dunning_policies/automatic",
        json={"policy": {"final_day": 10}},
        headers=bearer(shop, "write"),
    )
    problem(response, 403)
    versions = client.get(
        "/v1/dunning_policies/automatic/versions", headers=bearer(shop, "read")
    ).json()["data"]
    assert [v["version"] for v in versions] == [1]


# -- reading invoices ---------------------------------------------------------------------


def test_invoices_are_listed_page_by_page_with_a_cursor(
    client: TestClient, shop: Shop, app: App
) -> None:
    customer_id = shop.customer(INSUFFICIENT)
    failed = [shop.invoice(customer_id, 1000 + n) for n in range(4)]
    manual = shop.invoice(customer_id, collection=Collection.MANUAL, net_terms_days=30)
    shop.run()
    other = Shop.create(app, "other-shop")
    other.invoice(other.customer(GOOD))  # another site's invoice is never listed
    headers = bearer(shop, "read")

    pages: list[list[int]] = []
    cursors: list[int | None] = []
    after = 0
    while True:
        page = client.get("/v1/invoices", params={"limit": 2, "after": after}, headers=headers)
        assert page.status_code == 200
        body = page.json()
        pages.append([row["id"] for row in body["data"]])
        cursors.append(body["next_cursor"])
        if body["next_cursor"] is None:
            break
        after = body["next_cursor"]

    everything = [*failed, manual]
    assert pages == [everything[0:2], everything[2:4], everything[4:5]]
    assert cursors == [everything[1], everything[3], None]

    listed = client.get("/v1/invoices", headers=headers).json()
    assert [row["id"] for row in listed["data"]] == everything
    assert listed["next_cursor"] is None
    first = listed["data"][0]
    assert (first["status"], first["phase"], first["attempts"]) == ("past_due", "dunning", 1)
    assert first["amount_due_minor"] == 1000

    open_only = client.get("/v1/invoices", params={"status": "open"}, headers=headers).json()
    assert [row["id"] for row in open_only["data"]] == [manual]
    past_due = client.get("/v1/invoices", params={"status": "past_due"}, headers=headers).json()
    assert [row["id"] for row in past_due["data"]] == failed


@pytest.mark.parametrize("limit", [0, 501, "ten"])
def test_a_bad_page_size_is_422_naming_the_limit(
    client: TestClient, shop: Shop, limit: object
) -> None:
    response = client.get("/v1/invoices", params={"limit": limit}, headers=bearer(shop, "read"))
    assert problem(response, 422)["field"].endswith("limit")


def test_an_invoice_is_shown_with_its_attempts_log_and_events(
    client: TestClient, shop: Shop
) -> None:
    invoice_id = in_dunning(shop)
    start = shop.now
    shop.run_days(1)

    response = client.get(f"/v1/invoices/{invoice_id}", headers=bearer(shop, "read"))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["id"] == invoice_id
    assert (body["status"], body["phase"], body["attempts"]) == ("past_due", "dunning", 2)
    assert at(body["next_run_at"]) == start + timedelta(days=2)
    assert body["policy_version_id"] == shop.cycle_of(invoice_id).policy_version_id
    log = [
        (a["attempt_no"], a["status"], a["decline_code"], a["decline_class"], at(a["created_at"]))
        for a in body["attempts_log"]
    ]
    assert log == [
        (1, "declined", "insufficient_funds", "soft", start),
        (2, "declined", "insufficient_funds", "soft", start + timedelta(days=1)),
    ]
    billing = [e["type"] for e in body["events"] if not e["type"].startswith("message.")]
    assert billing == shop.event_types(invoice_id)
    failed = [e for e in body["events"] if e["type"] == "payment.failed"]
    assert [e["data"]["attempt"] for e in failed] == [1, 2]


# -- invoice actions ------------------------------------------------------------------------


def test_collect_sends_the_invoice_to_collection_and_the_next_run_charges_it(
    client: TestClient, shop: Shop
) -> None:
    invoice_id = in_dunning(shop)
    shop.advance(0.25)

    response = client.post(f"/v1/invoices/{invoice_id}/collect", headers=bearer(shop))

    assert response.status_code == 200
    assert response.json() == {"id": invoice_id, "action": "collect", "done": True}
    assert shop.cycle_of(invoice_id).retry_at == shop.now
    assert shop.event_types(invoice_id)[-1] == "invoice.collection_requested"
    shop.run()
    attempts = shop.attempts_of(invoice_id)
    assert [(a.attempt_no, a.created_at) for a in attempts][1:] == [(2, shop.now)]


def test_stop_writes_the_invoice_off_and_collection_ends(client: TestClient, shop: Shop) -> None:
    invoice_id = in_dunning(shop)

    response = client.post(f"/v1/invoices/{invoice_id}/stop", headers=bearer(shop))

    assert response.json() == {"id": invoice_id, "action": "stop", "done": True}
    assert shop.one(tables.invoices, id=invoice_id).status == "failed"
    cycle = shop.cycle_of(invoice_id)
    assert (cycle.phase, cycle.outcome, cycle.next_run_at) == ("closed", "stopped", None)
    shop.run_days(5)
    assert len(shop.attempts_of(invoice_id)) == 1


@pytest.mark.parametrize("action", ["stop", "mark_paid", "stop_dunning", "collect"])
def test_an_action_on_a_closed_invoice_is_409_problem_json(
    client: TestClient, shop: Shop, action: str
) -> None:
    invoice_id = in_dunning(shop)
    headers = bearer(shop)
    assert client.post(f"/v1/invoices/{invoice_id}/mark_paid", headers=headers).status_code == 200

    body = problem(client.post(f"/v1/invoices/{invoice_id}/{action}", headers=headers), 409)

    assert body["title"] == "Conflict"
    assert "paid" in body["detail"]
    assert shop.one(tables.invoices, id=invoice_id).status == "paid"


def test_another_sites_invoice_is_404_problem_json(
    client: TestClient, shop: Shop, app: App
) -> None:
    other = Shop.create(app, "other-shop")
    theirs = in_dunning(other)
    headers = bearer(shop, "admin")
    cycle_before = other.cycle_of(theirs)

    problem(client.get(f"/v1/invoices/{theirs}", headers=headers), 404)
    for action in ("stop", "mark_paid", "stop_dunning", "collect", "reopen"):
        problem(client.post(f"/v1/invoices/{theirs}/{action}", headers=headers), 404)
    problem(client.get("/v1/invoices/999999", headers=headers), 404)

    assert other.one(tables.invoices, id=theirs).status == "past_due"
    assert other.cycle_of(theirs) == cycle_before
    listed = client.get("/v1/invoices", headers=headers).json()["data"]
    assert theirs not in [row["id"] for row in listed]


def test_an_unknown_action_is_422(client: TestClient, shop: Shop) -> None:
    invoice_id = in_dunning(shop)
    response = client.post(f"/v1/invoices/{invoice_id}/refund", headers=bearer(shop))
    assert problem(response, 422)["field"].endswith("action")


# -- the test clock ---------------------------------------------------------------------------


def test_advancing_the_test_clock_moves_the_sites_now(client: TestClient, shop: Shop) -> None:
    headers = bearer(shop)
    start = at(client.get("/v1/clock", headers=headers).json()["now"])
    assert start == shop.now

    moved = client.post("/v1/clock/advance", json={"by": "2d"}, headers=headers)

    assert moved.status_code == 200
    assert at(moved.json()["now"]) == start + timedelta(days=2)
    assert at(client.get("/v1/clock", headers=headers).json()["now"]) == start + timedelta(days=2)
    assert shop.now == start + timedelta(days=2)
    again = client.post("/v1/clock/advance", json={"by": "1d12h"}, headers=headers)
    assert at(again.json()["now"]) == start + timedelta(days=3, hours=12)


def test_advancing_the_clock_makes_due_work_happen_on_the_next_run(
    client: TestClient, shop: Shop
) -> None:
    invoice_id = in_dunning(shop)
    client.post("/v1/clock/advance", json={"by": "1d"}, headers=bearer(shop))
    shop.run()
    assert shop.cycle_of(invoice_id).attempts == 2


@pytest.mark.parametrize("by", ["2 days", "soon", "", "-1d", "0d", 3])
def test_a_malformed_duration_is_422_naming_the_by_field(
    client: TestClient, shop: Shop, by: object
) -> None:
    start = shop.now
    response = client.post("/v1/clock/advance", json={"by": by}, headers=bearer(shop))
    body = problem(response, 422)
    assert body["field"] == "by"
    assert body["title"] == "Invalid field"
    assert shop.now == start


def test_a_clock_advance_without_a_duration_is_422_naming_the_by_field(
    client: TestClient, shop: Shop
) -> None:
    response = client.post("/v1/clock/advance", json={}, headers=bearer(shop))
    assert problem(response, 422)["field"] == "by"


# -- dunning policies ---------------------------------------------------------------------------

GOOD_POLICY: dict[str, Any] = {
    "retry_interval_hours": 48,
    "max_attempts": 4,
    "final_day": 10,
    "steps": [
        {"day": 1, "email_template": "payment_declined", "webhook": True},
        {"day": 5, "retry": True, "sms_template": "payment_declined"},
    ],
    "final": {"subscription_action": "pause", "invoice_outcome": "fail"},
}


@pytest.mark.parametrize(
    ("steps", "field"),
    [
        ([{"day": 0, "email_template": "payment_declined"}], "steps[0].day"),
        ([{"day": 16, "email_template": "payment_declined"}], "steps[0].day"),
        ([{"email_template": "payment_declined"}], "steps[0].day"),
        ([{"day": "3", "email_template": "payment_declined"}], "steps[0].day"),
        (
            [{"day": 3, "webhook": True}, {"day": 3, "retry": True}],
            "steps[1].day",
        ),
        ([{"day": 2}], "steps[0]"),
    ],
    ids=["day 0", "after the final day", "no day", "day as text", "day twice", "does nothing"],
)
def test_a_policy_with_a_bad_step_is_422_naming_the_step_field(
    client: TestClient, shop: Shop, steps: list[dict[str, Any]], field: str
) -> None:
    headers = bearer(shop, "admin")
    response = client.post(
        "/v1/dunning_policies/automatic", json={"policy": {"steps": steps}}, headers=headers
    )
    assert problem(response, 422)["field"] == field
    versions = client.get("/v1/dunning_policies/automatic/versions", headers=headers)
    assert [v["version"] for v in versions.json()["data"]] == [1]


def test_a_good_policy_becomes_version_2_and_governs_the_next_failure(
    client: TestClient, shop: Shop
) -> None:
    pinned = in_dunning(shop)  # enters dunning under version 1
    headers = bearer(shop, "admin")

    saved = client.post(
        "/v1/dunning_policies/automatic",
        json={"policy": GOOD_POLICY, "note": "gentler"},
        headers=headers,
    )

    assert saved.status_code == 200
    version_2 = saved.json()
    assert (version_2["version"], version_2["kind"], version_2["note"]) == (
        2,
        "automatic",
        "gentler",
    )
    assert version_2["first_used_at"] is None
    assert version_2["policy"]["final_day"] == 10
    assert version_2["policy"]["final"]["subscription_action"] == "pause"

    listed = client.get("/v1/dunning_policies/automatic/versions", headers=headers).json()["data"]
    assert [(v["id"], v["version"]) for v in listed] == [
        (shop.cycle_of(pinned).policy_version_id, 1),
        (version_2["id"], 2),
    ]
    assert at(listed[0]["first_used_at"]) == shop.now
    assert listed[0]["policy"]["final_day"] == 15
    assert listed[1]["policy"] == version_2["policy"]
    manual = client.get("/v1/dunning_policies/manual/versions", headers=headers).json()["data"]
    assert [v["version"] for v in manual] == [1]

    later = in_dunning(shop)
    assert shop.cycle_of(later).policy_version_id == version_2["id"]
    assert shop.cycle_of(pinned).policy_version_id == listed[0]["id"]
    # Version 2 retries every 48 hours; version 1 every 24.
    assert shop.cycle_of(later).next_run_at == shop.now + timedelta(days=2)
    assert shop.cycle_of(pinned).next_run_at == shop.now + timedelta(days=1)
