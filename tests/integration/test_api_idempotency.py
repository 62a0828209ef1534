"""``Idempotency-Key`` on POSTs under ``/v1``: replays, mismatches, sites, in-flight, expiry."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from dunwell.api.app import create_app
from dunwell.api.deps import WriteConn, Writer
from dunwell.api.idempotency import delete_expired
from dunwell.bootstrap import App
from dunwell.clock import FixedClock
from dunwell.store import tables
from tests.integration.factories import Shop
from tests.integration.test_api_core import bearer, problem

ADA = {"first_name": "Ada", "email": "ada@x.test"}


@pytest.fixture
def gate() -> threading.Event:
    return threading.Event()


@pytest.fixture
def api(app: App, gate: threading.Event) -> FastAPI:
    """The application, plus two routes that exist only to misbehave on purpose."""
    api = create_app(app)
    entered = threading.Event()
    api.state.entered = entered

    @api.post("/v1/test/crash")
    def crash(who: Writer, conn: WriteConn) -> dict[str, Any]:
        conn.execute(
            insert(tables.products).values(
                site_id=who.site_id,
                code="crash",
                name="Crash",
                price_minor=1,
                currency="USD",
                created_at=app.clock.now(),
            )
        )
        raise RuntimeError("the route crashed after writing")

    @api.post("/v1/test/slow")
    def slow(who: Writer) -> dict[str, Any]:
        entered.set()
        gate.wait(10)
        return {"done": True}

    return api


@pytest.fixture
def client(api: FastAPI) -> Iterator[TestClient]:
    with TestClient(api, raise_server_exceptions=False) as test_client:
        yield test_client


#: One API key per site and scope for a test: a replay must come with the key
#: that made the first request.
_KEYS: dict[tuple[int, str], dict[str, str]] = {}


@pytest.fixture(autouse=True)
def _fresh_keys() -> Iterator[None]:
    _KEYS.clear()
    yield
    _KEYS.clear()


def post(
    client: TestClient,
    shop: Shop,
    path: str,
    body: Any = None,
    key: str = "key-1",
    scope: str = "write",
) -> httpx.Response:
    auth = _KEYS.get((shop.site_id, scope))
    if auth is None:
        auth = _KEYS[(shop.site_id, scope)] = bearer(shop, scope)
    return client.post(path, json=body, headers={**auth, "Idempotency-Key": key})


def test_a_retry_with_the_same_key_and_body_returns_the_first_answer_without_running_again(
    client: TestClient, shop: Shop
) -> None:
    first = post(client, shop, "/v1/customers", ADA)
    retry = post(client, shop, "/v1/customers", {"email": "ada@x.test", "first_name": "Ada"})

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert len(shop.all(tables.customers)) == 1


def test_requests_without_a_key_each_run(client: TestClient, shop: Shop) -> None:
    for _ in range(2):
        assert client.post("/v1/customers", json=ADA, headers=bearer(shop)).status_code == 201
    assert len(shop.all(tables.customers)) == 2
    assert shop.all(tables.idempotency_keys) == []


def test_the_same_key_with_another_body_or_path_is_422_naming_the_header(
    client: TestClient, shop: Shop
) -> None:
    post(client, shop, "/v1/customers", ADA)

    other_body = post(client, shop, "/v1/customers", {**ADA, "first_name": "Bo"})
    other_path = post(client, shop, "/v1/products", ADA)

    for response in (other_body, other_path):
        assert problem(response, 422)["field"] == "Idempotency-Key"
    assert len(shop.all(tables.customers)) == 1


def test_keys_belong_to_one_site(client: TestClient, shop: Shop, app: App) -> None:
    other = Shop.create(app, slug="other")
    mine = post(client, shop, "/v1/customers", ADA)
    theirs = post(client, other, "/v1/customers", ADA)

    assert theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]


def test_a_replay_answers_only_the_api_key_that_made_the_first_request(
    client: TestClient, shop: Shop
) -> None:
    # The first answer holds the endpoint's signing secret, shown once and
    # to an admin key only: a read key that learnt the idempotency key must
    # not get it back as a replay.
    endpoint = {"url": "http://127.0.0.1:9/hook"}
    first = post(client, shop, "/v1/webhook_endpoints", endpoint, scope="admin")
    replay = post(client, shop, "/v1/webhook_endpoints", endpoint, scope="admin")
    by_a_read_key = post(client, shop, "/v1/webhook_endpoints", endpoint, scope="read")

    assert first.status_code == 201 and first.json()["secret"]
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["secret"] == first.json()["secret"]
    assert "idempotent-replayed" not in by_a_read_key.headers
    assert problem(by_a_read_key, 422)["field"] == "Idempotency-Key"
    assert first.json()["secret"] not in by_a_read_key.text
    assert len(shop.all(tables.webhook_endpoints)) == 1


def test_a_request_refused_before_it_ran_is_not_kept_so_the_key_can_carry_a_fixed_one(
    client: TestClient, shop: Shop
) -> None:
    refused = post(client, shop, "/v1/customers", {**ADA, "phone": "123"})
    fixed = post(client, shop, "/v1/customers", ADA)

    assert problem(refused, 422)["field"] == "phone"
    assert fixed.status_code == 201
    assert "idempotent-replayed" not in fixed.headers


def test_a_conflict_is_kept_and_replayed_as_a_problem(client: TestClient, shop: Shop) -> None:
    invoice_id = shop.invoice(shop.customer())
    shop.run()  # paid
    path = f"/v1/invoices/{invoice_id}/stop"

    first, retry = post(client, shop, path), post(client, shop, path)

    problem(first, 409)
    assert problem(retry, 409) == first.json()
    assert retry.headers["idempotent-replayed"] == "true"


def test_a_server_error_is_not_kept_and_its_work_is_rolled_back(
    client: TestClient, shop: Shop
) -> None:
    for _ in range(2):  # the second try runs again: nothing was kept
        assert post(client, shop, "/v1/test/crash", {}).status_code == 500
    assert shop.all(tables.idempotency_keys) == []
    assert [p.code for p in shop.all(tables.products)] == ["plan"]


def test_the_kept_answer_is_written_with_the_work(client: TestClient, shop: Shop) -> None:
    created = post(client, shop, "/v1/customers", ADA).json()
    kept = shop.one(tables.idempotency_keys, key="key-1")

    assert (kept.site_id, kept.method, kept.path) == (shop.site_id, "POST", "/v1/customers")
    assert (kept.status_code, kept.response_body) == (201, created)
    assert kept.created_at == shop.app.clock.now()


def test_a_request_still_running_makes_a_retry_wait_with_409(
    client: TestClient, shop: Shop, api: FastAPI, gate: threading.Event
) -> None:
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(post, client, shop, "/v1/test/slow", {})
        assert api.state.entered.wait(10)
        retry = post(client, shop, "/v1/test/slow", {})
        gate.set()
        first = running.result(10)

    assert problem(retry, 409)["title"] == "Conflict"
    assert first.json() == {"done": True}
    again = post(client, shop, "/v1/test/slow", {})
    assert again.headers["idempotent-replayed"] == "true"


def test_a_claim_left_by_a_request_that_died_is_taken_over_after_ten_minutes(
    client: TestClient, shop: Shop, clock: FixedClock
) -> None:
    post(client, shop, "/v1/customers", ADA)
    with shop.app.begin() as conn:  # as if the process had died before answering
        conn.execute(update(tables.idempotency_keys).values(status_code=None, response_body=None))
    problem(post(client, shop, "/v1/customers", ADA), 409)

    clock.set(clock.now() + timedelta(minutes=10))

    taken_over = post(client, shop, "/v1/customers", ADA)
    assert taken_over.status_code == 201
    assert "idempotent-replayed" not in taken_over.headers


def test_a_key_older_than_24_hours_may_be_used_for_a_new_request(
    client: TestClient, shop: Shop, clock: FixedClock
) -> None:
    post(client, shop, "/v1/customers", ADA)
    clock.set(clock.now() + timedelta(hours=24))

    reused = post(client, shop, "/v1/customers", {"first_name": "Bo"})

    assert reused.status_code == 201
    assert reused.json()["first_name"] == "Bo"


def test_old_keys_can_be_deleted(client: TestClient, shop: Shop, clock: FixedClock) -> None:
    post(client, shop, "/v1/customers", ADA, key="old")
    clock.set(clock.now() + timedelta(hours=25))
    post(client, shop, "/v1/customers", ADA, key="new")

    with shop.app.begin() as conn:
        assert delete_expired(conn, clock.now()) == 1
    assert [k.key for k in shop.all(tables.idempotency_keys)] == ["new"]


@pytest.mark.parametrize("key", ["", "k" * 256, "tab\tkey"], ids=["empty", "too long", "tab"])
def test_a_malformed_key_is_422_naming_the_header(client: TestClient, shop: Shop, key: str) -> None:
    response = post(client, shop, "/v1/customers", ADA, key=key)
    assert problem(response, 422)["field"] == "Idempotency-Key"
    assert shop.all(tables.customers) == []


def test_a_key_on_a_get_is_ignored(client: TestClient, shop: Shop) -> None:
    headers = {**bearer(shop, "read"), "Idempotency-Key": "key-1"}
    assert client.get("/v1/customers", headers=headers).status_code == 200
    assert shop.all(tables.idempotency_keys) == []


def test_the_openapi_document_offers_the_header_on_every_post(api: FastAPI) -> None:
    paths = api.openapi()["paths"]
    posts = {
        p: item["post"] for p, item in paths.items() if p.startswith("/v1/") and "post" in item
    }
    assert posts
    for path, operation in posts.items():
        names = [param["name"] for param in operation.get("parameters", [])]
        assert "Idempotency-Key" in names, path
