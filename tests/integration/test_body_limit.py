"""Request bodies over the bound get 413 before any route reads or stores them.

Every test runs on SQLite and PostgreSQL, against an app whose bounds are
the smallest the settings allow: 64 KiB for a request, 128 KiB for the CSV
import.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from dunwell.api.app import create_app
from dunwell.bootstrap import App, bootstrap
from dunwell.clock import FixedClock
from dunwell.services import api_keys
from dunwell.settings import Settings
from dunwell.store import tables
from tests.integration.factories import Shop

REQUEST_LIMIT, UPLOAD_LIMIT = 65_536, 131_072


@pytest.fixture
def app(db_url: str, clock: FixedClock) -> Iterator[App]:
    settings = Settings(
        database_url=db_url,
        secret_key="test-secret-key",
        max_request_bytes=REQUEST_LIMIT,
        max_upload_bytes=UPLOAD_LIMIT,
    ).checked()
    built = bootstrap(settings, clock=clock)
    yield built
    built.close()


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(create_app(app)) as test_client:
        yield test_client


@pytest.fixture
def headers(shop: Shop) -> dict[str, str]:
    with shop.app.begin() as conn:
        key = api_keys.create_key(conn, shop.site_id, "writer", "write", shop.now)
    return {"Authorization": f"Bearer {key}"}


def chunks(data: bytes, size: int = 8192) -> Iterator[bytes]:
    """The body sent in pieces, without Content-Length (chunked)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def a_customer(padding: int) -> bytes:
    return json.dumps({"email": "ada@example.com", "first_name": "x" * padding}).encode()


def test_a_body_declared_too_large_is_refused_with_413_and_nothing_stored(
    client: TestClient, shop: Shop, headers: dict[str, str]
) -> None:
    body = a_customer(REQUEST_LIMIT)
    answer = client.post(
        "/v1/customers", content=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "the request body is larger than 65,536 bytes"
    assert shop.all(tables.customers, email="ada@example.com") == []


def test_a_body_sent_in_chunks_is_counted_and_refused_when_it_passes_the_bound(
    client: TestClient, shop: Shop, headers: dict[str, str]
) -> None:
    body = a_customer(REQUEST_LIMIT)
    answer = client.post(
        "/v1/customers",
        content=chunks(body),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 413
    assert answer.json()["detail"] == "the request body is larger than 65,536 bytes"
    assert shop.all(tables.customers, email="ada@example.com") == []


def test_a_body_under_the_bound_goes_through(
    client: TestClient, shop: Shop, headers: dict[str, str]
) -> None:
    answer = client.post(
        "/v1/customers",
        content=chunks(a_customer(100)),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 201, answer.text


def test_the_csv_import_takes_files_up_to_the_upload_bound(
    client: TestClient, shop: Shop, headers: dict[str, str]
) -> None:
    csv_headers = {**headers, "Content-Type": "text/csv"}
    rows = "".join(f"+1415555{n % 10000:04d},nobody{n}@example.com\n" for n in range(3000))
    under = ("phone,email\n" + rows).encode()
    assert REQUEST_LIMIT < len(under) < UPLOAD_LIMIT
    answer = client.post("/v1/phones/import", content=under, headers=csv_headers)
    assert answer.status_code == 200, answer.text  # a report: no such customers

    over = under + under
    answer = client.post("/v1/phones/import", content=chunks(over), headers=csv_headers)
    assert answer.status_code == 413
    assert answer.json()["detail"] == "the request body is larger than 131,072 bytes"
