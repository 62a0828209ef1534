"""Polling ``GET /v1/events`` by cursor never passes an event for good (PostgreSQL).

On PostgreSQL an event's id is taken when it is inserted, not when its
transaction commits, so an open transaction can hold a lower id than one
already committed. These tests hold such a transaction open on a second
connection and read the log meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from dunwell.bootstrap import App, bootstrap
from dunwell.clock import FixedClock
from dunwell.services import api_keys, events
from dunwell.services.events import EventBatch
from dunwell.settings import Settings
from tests.integration.factories import Shop

pytestmark = pytest.mark.postgres


@pytest.fixture
def app(postgres_url: str, clock: FixedClock) -> Iterator[App]:
    built = bootstrap(
        Settings(database_url=postgres_url, secret_key="test-secret-key"), clock=clock
    )
    yield built
    built.close()


def write_event(conn: Connection, shop: Shop, phone: str) -> None:
    batch = EventBatch()
    batch.add(shop.site_id, "sms.opted_out", shop.now, phone=phone)
    batch.write(conn)


def read_key(shop: Shop) -> dict[str, str]:
    with shop.app.begin() as conn:
        key = api_keys.create_key(conn, shop.site_id, "read key", "read", shop.now)
    return {"Authorization": f"Bearer {key}"}


def test_a_reader_waits_for_an_earlier_id_still_being_written_then_sees_both_in_order(
    client: TestClient, shop: Shop
) -> None:
    headers = read_key(shop)
    slow = shop.app.engine.connect()
    slow_txn = slow.begin()
    write_event(slow, shop, "+15550000001")  # takes the lower id, not committed yet
    with shop.app.begin() as conn:  # a second writer is not held back by the first
        write_event(conn, shop, "+15550000002")

    answers: list[httpx.Response] = []
    reader = threading.Thread(
        target=lambda: answers.append(client.get("/v1/events", headers=headers))
    )
    reader.start()
    reader.join(0.5)
    still_waiting = reader.is_alive()
    slow_txn.commit()
    slow.close()
    reader.join(10)

    assert still_waiting, "the reader answered while an earlier id was still being written"
    assert answers[0].status_code == 200, answers[0].text
    phones = [e["data"]["phone"] for e in answers[0].json()["data"]]
    assert phones == ["+15550000001", "+15550000002"]


def test_a_reader_that_waited_too_long_gets_503_with_retry_after_and_writers_go_on(
    client: TestClient, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "READ_WAIT_SECONDS", 0.2)
    headers = read_key(shop)
    with shop.app.engine.connect() as slow:
        write_event(slow, shop, "+15550000001")
        answer = client.get("/v1/events", headers=headers)
        slow.commit()

    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert "ask again" in answer.json()["detail"]
    with shop.app.begin() as conn:  # the reader's lock is gone with its transaction
        write_event(conn, shop, "+15550000002")
    assert len(client.get("/v1/events", headers=headers).json()["data"]) == 2
