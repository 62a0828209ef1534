"""Outgoing webhooks end to end: endpoints through the API, events through the real
worker, and a receiver on 127.0.0.1 that verifies every request with the
``standardwebhooks`` package, as a merchant would.

Every test runs on SQLite and on PostgreSQL (the ``app`` fixture). Time for
retries moves on the site's test clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy.exc import DBAPIError
from standardwebhooks import Webhook, WebhookVerificationError

from dunwell.bootstrap import App
from dunwell.cli import main
from dunwell.domain.states import SiteMode
from dunwell.services import api_keys
from dunwell.services.events import EventBatch
from dunwell.services.inbound_sms import InboundSms, receive_sms
from dunwell.services.sandbox_phone import reply_as_customer
from dunwell.services.sites import advance_clock, create_site
from dunwell.services.webhook_delivery import RETRY_DELAYS, Sender, deliver_due_webhooks
from dunwell.services.webhook_endpoints import create_endpoint, new_secret
from dunwell.store import tables
from tests.integration.db_faults import (
    REFUSAL,
    allow_finishing_attempts,
    refuse_finishing_attempts,
)
from tests.integration.factories import INSUFFICIENT, Shop
from tests.integration.local_http import LocalHttpServer
from tests.integration.webhook_receiver import Receiver

MOBILE = "+447400123456"
OTHER_MOBILE = "+447400123457"
STEP_ONLY_ON_DAY_3: dict[str, Any] = {
    "retry_interval_hours": 48,
    "max_attempts": 4,
    "final_day": 10,
    "steps": [
        {"day": 1, "email_template": "payment_declined"},
        {"day": 3, "retry": True, "webhook": True},
    ],
    "final": {"subscription_action": "pause", "invoice_outcome": "fail"},
}


@pytest.fixture
def receivers() -> Iterator[Callable[[], Receiver]]:
    with ExitStack() as stack:
        yield lambda: stack.enter_context(Receiver().running())


@pytest.fixture
def receiver(receivers: Callable[[], Receiver]) -> Receiver:
    return receivers()


def bearer(shop: Shop, scope: str = "admin") -> dict[str, str]:
    with shop.app.begin() as conn:
        key = api_keys.create_key(conn, shop.site_id, f"{scope} key", scope, shop.now)
    return {"Authorization": f"Bearer {key}"}


def add_endpoint(
    client: TestClient, shop: Shop, receiver: Receiver, **fields: Any
) -> dict[str, Any]:
    response = client.post(
        "/v1/webhook_endpoints", json={"url": receiver.url, **fields}, headers=bearer(shop)
    )
    assert response.status_code == 201, response.text
    endpoint: dict[str, Any] = response.json()
    receiver.secret = endpoint["secret"]
    return endpoint


def opt_out(shop: Shop, phone: str = MOBILE) -> None:
    """The customer texts STOP: one ``sms.opted_out`` event."""
    with shop.app.begin() as conn:
        reply_as_customer(conn, shop.site_id, phone, "STOP", shop.now)


def deliveries(shop: Shop, endpoint_id: int) -> list[Any]:
    return shop.all(tables.webhook_deliveries, endpoint_id=endpoint_id)


def attempts(shop: Shop, delivery_id: int) -> list[Any]:
    return shop.all(tables.webhook_attempts, delivery_id=delivery_id)


def advance(shop: Shop, by: timedelta) -> None:
    with shop.app.begin() as conn:
        advance_clock(conn, shop.site_id, by)


def live_site(app: App) -> tuple[int, dict[str, str]]:
    """A live site (no test clock) and an admin key for it."""
    with app.begin() as conn:
        site_id = create_site(conn, app.clock, slug="live-shop", name="Live", mode=SiteMode.LIVE)
        key = api_keys.create_key(conn, site_id, "admin", "admin", app.clock.now())
    return site_id, {"Authorization": f"Bearer {key}"}


def texted_stop(app: App, site_id: int) -> None:
    """A customer of a live site texts STOP through Twilio."""
    with app.begin() as conn:
        sms = InboundSms(site_id, "twilio", "SM" + "0" * 32, MOBILE, None, "STOP")
        receive_sms(conn, sms, app.clock.now())


# -- what is sent ---------------------------------------------------------------------------


def test_a_failed_payment_posts_signed_past_due_failure_and_step_webhooks(
    client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    endpoint = add_endpoint(client, shop, receiver, description="billing")
    assert endpoint["secret"].startswith("whsec_")

    subscription_id = shop.subscribe(shop.customer(INSUFFICIENT))
    shop.run()
    invoice = shop.invoice_of(subscription_id)

    assert [r.error for r in receiver.received] == [None] * len(receiver.received)
    assert receiver.types() == [
        "dunning.step_reached",
        "invoice.past_due",
        "payment.failed",
        "subscription.state_changed",
    ]
    sent = {r.type: r.payload for r in receiver.verified()}
    step = sent["dunning.step_reached"]
    assert step["timestamp"] == shop.now.isoformat().replace("+00:00", "Z")
    assert step["data"]["invoice_id"] == invoice.id
    assert step["data"]["subscription_id"] == subscription_id
    assert (step["data"]["step"]["day"], step["data"]["next_step"]["day"]) == (1, 3)
    assert step["data"]["step"]["email_template"] == "payment_declined"
    assert sent["payment.failed"]["data"]["decline_code"] == "insufficient_funds"
    assert sent["invoice.past_due"]["data"]["amount_minor"] == invoice.amount_due_minor
    changed = sent["subscription.state_changed"]["data"]
    assert (changed["previous"], changed["current"]) == ("active", "past_due")

    read = client.get(
        f"/v1/webhook_endpoints/{endpoint['id']}/deliveries", headers=bearer(shop, "read")
    )
    log = read.json()["data"]
    assert {d["status"] for d in log} == {"delivered"}
    assert sorted(r.headers["webhook-id"] for r in receiver.received) == sorted(
        d["webhook_id"] for d in log
    )
    for delivery in log:
        [attempt] = delivery["delivery_attempts"]
        assert (attempt["attempt_no"], attempt["status_code"]) == (1, 200)
        assert attempt["response_excerpt"] == "answered 200"
        assert attempt["duration_ms"] >= 0


def test_an_endpoint_receives_only_the_event_types_it_asked_for(
    client: TestClient, shop: Shop, receivers: Callable[[], Receiver]
) -> None:
    only_failures, everything = receivers(), receivers()
    add_endpoint(client, shop, only_failures, events=["payment.failed"])
    add_endpoint(client, shop, everything)

    shop.subscribe(shop.customer(INSUFFICIENT))
    shop.run()
    opt_out(shop)
    shop.run()

    assert only_failures.types() == ["payment.failed"]
    assert "payment.failed" in everything.types()
    assert "sms.opted_out" in everything.types()


def test_each_delivery_of_a_batch_carries_its_own_event(
    client: TestClient, shop: Shop, receivers: Callable[[], Receiver]
) -> None:
    """Events written together: every delivery points at the event it was made for."""
    failures, everything = receivers(), receivers()
    add_endpoint(client, shop, failures, events=["payment.failed"])
    add_endpoint(client, shop, everything)
    batch = EventBatch()
    for n in range(6):
        # Interleaved with events no endpoint receives, which take ids too.
        batch.add(shop.site_id, "payment.failed", shop.now, invoice_id=1000 + n, n=n)
        batch.add(shop.site_id, "invoice.created", shop.now, invoice_id=2000 + n, n=n)
        batch.add(shop.site_id, "sms.opted_out", shop.now, phone=f"+4474001234{n:02d}", n=n)
    with shop.app.begin() as conn:
        batch.write(conn)

    written = {row.id: row for row in shop.all(tables.events)}
    made = shop.all(tables.webhook_deliveries)
    assert len(made) == 6 + 12
    for delivery in made:
        event = written[delivery.event_id]
        assert delivery.event_type == event.type
        assert delivery.payload["type"] == event.type
        assert delivery.payload["data"]["event_id"] == event.id
        assert delivery.payload["data"]["n"] == event.data["n"]
        assert delivery.payload["data"]["invoice_id"] == event.invoice_id


def test_a_step_sends_a_webhook_only_when_its_policy_asks_for_one(
    client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    shop.save_policy(STEP_ONLY_ON_DAY_3)
    add_endpoint(client, shop, receiver, events=["dunning.step_reached"])
    shop.subscribe(shop.customer(INSUFFICIENT))
    shop.run()
    assert receiver.received == []

    shop.run_days(2)

    [step] = receiver.verified()
    assert step.data["step"]["day"] == 3
    assert step.data["next_step"] is None


def test_an_event_type_that_does_not_exist_is_422_naming_the_filter_entry(
    client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    response = client.post(
        "/v1/webhook_endpoints",
        json={"url": receiver.url, "events": ["payment.failed", "payment.maybe"]},
        headers=bearer(shop),
    )
    assert response.status_code == 422
    assert response.json()["field"] == "events[1]"
    assert "payment.maybe" in response.json()["detail"]


# -- failures and retries ---------------------------------------------------------------------


def test_a_500_is_retried_after_one_then_five_minutes_with_the_same_webhook_id(
    client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    endpoint = add_endpoint(client, shop, receiver, events=["sms.opted_out"])
    receiver.answer(500, 500)
    opt_out(shop)
    shop.run()
    [delivery] = deliveries(shop, endpoint["id"])
    assert (delivery.status, delivery.last_status_code) == ("pending", 500)
    assert delivery.next_attempt_at == shop.now + timedelta(minutes=1)
    shop.run()
    assert len(receiver.received) == 1  # not due yet on the site's clock

    advance(shop, timedelta(minutes=1))
    shop.run()
    [delivery] = deliveries(shop, endpoint["id"])
    assert delivery.next_attempt_at == shop.now + timedelta(minutes=5)
    advance(shop, timedelta(minutes=5))
    shop.run()

    [delivery] = deliveries(shop, endpoint["id"])
    assert (delivery.status, delivery.delivered_at, delivery.attempts) == ("delivered", shop.now, 3)
    assert [(a.attempt_no, a.status_code) for a in attempts(shop, delivery.id)] == [
        (1, 500),
        (2, 500),
        (3, 200),
    ]
    assert len(receiver.verified()) == 3
    assert {r.headers["webhook-id"] for r in receiver.received} == {f"msg_{delivery.id}"}


def test_a_receiver_that_keeps_failing_gets_ten_attempts_over_about_three_days(
    client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    endpoint = add_endpoint(client, shop, receiver, events=["sms.opted_out"])
    receiver.status = 503
    opt_out(shop)
    start = shop.now
    shop.run()
    for delay in RETRY_DELAYS:
        advance(shop, delay)
        shop.run()

    [delivery] = deliveries(shop, endpoint["id"])
    assert (delivery.status, delivery.last_status_code) == ("failed", 503)
    assert len(attempts(shop, delivery.id)) == len(receiver.received) == 10
    assert timedelta(days=2) < shop.now - start < timedelta(days=3)
    advance(shop, timedelta(days=7))
    shop.run()
    assert len(receiver.received) == 10


def test_a_slow_answer_times_out_and_is_retried(
    app: App, client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    endpoint = add_endpoint(client, shop, receiver, events=["sms.opted_out"])
    receiver.answer(200, delay=1.0)
    opt_out(shop)

    assert deliver_due_webhooks(app, "test-worker", 10, Sender(timeout=0.2)) == 1

    [delivery] = deliveries(shop, endpoint["id"])
    assert delivery.status == "pending"
    [attempt] = attempts(shop, delivery.id)
    assert (attempt.status_code, attempt.error) == (None, "no answer within 0.2 s")


class _StallingHandler(BaseHTTPRequestHandler):
    """Answers 200 with a body that stops short of its Content-Length, then waits."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        self.server.requests += 1  # type: ignore[attr-defined]
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nok")
        self.wfile.flush()
        self.server.stop.wait(2)  # type: ignore[attr-defined]

    def log_message(self, *_: Any) -> None:
        pass


def test_a_2xx_whose_body_stalls_is_delivered_not_retried(app: App, shop: Shop) -> None:
    # The status line decides the attempt; the body is only an excerpt for
    # the log. Read as "no answer", the accepted event went out again.
    http = LocalHttpServer(_StallingHandler, ThreadingHTTPServer, join_timeout=5)
    http.server.requests = 0  # type: ignore[attr-defined]
    http.server.stop = threading.Event()  # type: ignore[attr-defined]
    with http:
        saved = create_endpoint(
            app, shop.site_id, url=f"{http.url}/hooks", events=["sms.opted_out"]
        )
        opt_out(shop)
        try:
            assert deliver_due_webhooks(app, "test-worker", 10, Sender(timeout=0.3)) == 1
        finally:
            http.server.stop.set()  # type: ignore[attr-defined]
        assert http.server.requests == 1  # type: ignore[attr-defined]

    [delivery] = deliveries(shop, saved["id"])
    assert (delivery.status, delivery.last_status_code) == ("delivered", 200)
    [attempt] = attempts(shop, delivery.id)
    assert (attempt.status_code, attempt.error, attempt.response_excerpt) == (200, None, "ok")


def test_an_address_that_refuses_the_connection_gives_way_to_the_next_one(
    app: App, client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    # A host with a broken IPv6 route still gets its webhooks over IPv4.
    endpoint = add_endpoint(client, shop, receiver, events=["sms.opted_out"])
    opt_out(shop)
    both = Sender(resolve=lambda host, port: ["::1", "127.0.0.1"])

    assert deliver_due_webhooks(app, "test-worker", 10, both) == 1

    [delivery] = deliveries(shop, endpoint["id"])
    assert (delivery.status, delivery.last_status_code) == ("delivered", 200)
    assert len(receiver.verified()) == 1


def _stops(shop: Shop, count: int) -> None:
    """``count`` customers text STOP: one ``sms.opted_out`` event each."""
    for n in range(count):
        opt_out(shop, f"+4474001235{n:02d}")


def test_a_batch_goes_out_in_lanes_side_by_side_up_to_the_setting(
    app: App, client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    endpoint = add_endpoint(client, shop, receiver, events=["sms.opted_out"])
    _stops(shop, 12)
    receiver.answer(*[200] * 12, delay=0.1)
    app.settings = replace(app.settings, webhook_concurrency=4)

    assert deliver_due_webhooks(app, "test-worker", 50) == 12

    assert [d.status for d in deliveries(shop, endpoint["id"])] == ["delivered"] * 12
    assert 1 < receiver.most_in_flight <= 4


def test_deliveries_no_lane_starts_within_the_lease_wait_untouched_for_the_next_batch(
    app: App, client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    """A two-second lease, with attempts that may take 1.6 s (four 0.4 s
    timeouts), leaves 0.4 s to start requests the receiver answers in
    0.1 s each, one lane after another: twelve cannot all go."""
    endpoint = add_endpoint(client, shop, receiver, events=["sms.opted_out"])
    _stops(shop, 12)
    receiver.answer(*[200] * 12, delay=0.1)
    app.settings = replace(app.settings, lease_seconds=2, webhook_concurrency=1)
    sender = Sender(timeout=0.4)

    assert deliver_due_webhooks(app, "test-worker", 50, sender) == 12

    rows = deliveries(shop, endpoint["id"])
    delivered = [d for d in rows if d.status == "delivered"]
    waiting = [d for d in rows if d.status != "delivered"]
    assert delivered and waiting
    for delivery in waiting:
        assert (delivery.status, delivery.attempts, delivery.lease_owner) == ("pending", 0, None)
        assert delivery.next_attempt_at <= shop.now  # due at once
        assert attempts(shop, delivery.id) == []
    while deliver_due_webhooks(app, "test-worker", 50, sender):
        pass
    ids = sorted(r.headers["webhook-id"] for r in receiver.verified())
    assert ids == sorted(f"msg_{d.id}" for d in rows)  # each once
    for delivery in deliveries(shop, endpoint["id"]):
        assert delivery.status == "delivered"
        assert [a.attempt_no for a in attempts(shop, delivery.id)] == [1]


def test_when_recording_fails_the_deliveries_no_lane_started_are_put_back_at_once(
    app: App, client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    """The database refuses to record the first answer: the lane fails, and
    the batch with it. The delivery it sent stays leased, in doubt, as after
    a crash; the two it never started are due at once, not after the lease."""
    endpoint = add_endpoint(client, shop, receiver, events=["sms.opted_out"])
    _stops(shop, 3)
    receiver.answer(*[200] * 3)
    app.settings = replace(app.settings, webhook_concurrency=1)
    refuse_finishing_attempts(app, "webhook_attempts")

    with pytest.raises(DBAPIError, match=REFUSAL):
        deliver_due_webhooks(app, "test-worker", 50)

    assert len(receiver.verified()) == 1
    rows = deliveries(shop, endpoint["id"])
    (in_doubt,) = [d for d in rows if d.lease_owner is not None]
    assert (in_doubt.status, in_doubt.attempts) == ("sending", 1)
    put_back = [d for d in rows if d.lease_owner is None]
    assert len(put_back) == 2
    for delivery in put_back:
        assert (delivery.status, delivery.attempts) == ("pending", 0)
        assert attempts(shop, delivery.id) == []

    allow_finishing_attempts(app, "webhook_attempts")
    assert deliver_due_webhooks(app, "test-worker", 50) == 2  # without waiting for the lease
    assert len(receiver.verified()) == 3


def test_a_410_disables_the_endpoint_and_cancels_its_pending_deliveries(
    client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    endpoint = add_endpoint(client, shop, receiver, events=["sms.opted_out"])
    receiver.answer(500, 410)
    opt_out(shop, MOBILE)
    shop.run()  # the first one fails and waits a minute
    opt_out(shop, OTHER_MOBILE)
    shop.run()  # the second one is told 410 Gone

    first, second = deliveries(shop, endpoint["id"])
    assert (second.status, second.last_status_code) == ("failed", 410)
    assert (first.status, first.last_error) == ("canceled", "the endpoint answered 410 Gone")
    shown = client.get(f"/v1/webhook_endpoints/{endpoint['id']}", headers=bearer(shop, "read"))
    assert shown.json()["enabled"] is False
    assert "410 Gone" in shown.json()["disabled_reason"]

    opt_out(shop, "+447400123458")
    advance(shop, timedelta(hours=1))
    shop.run()
    assert len(deliveries(shop, endpoint["id"])) == 2
    assert len(receiver.received) == 2


def test_a_delivery_can_be_redelivered_by_hand_even_after_it_was_delivered(
    client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    endpoint = add_endpoint(client, shop, receiver, events=["sms.opted_out"])
    opt_out(shop)
    shop.run()
    [delivery] = deliveries(shop, endpoint["id"])
    assert delivery.status == "delivered"

    response = client.post(
        f"/v1/webhook_deliveries/{delivery.id}/redeliver", headers=bearer(shop, "write")
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "pending"
    shop.run()

    first, again = receiver.verified()
    assert first.headers["webhook-id"] == again.headers["webhook-id"] == f"msg_{delivery.id}"
    assert first.payload == again.payload
    assert [a.attempt_no for a in attempts(shop, delivery.id)] == [1, 2]

    client.patch(
        f"/v1/webhook_endpoints/{endpoint['id']}", json={"enabled": False}, headers=bearer(shop)
    )
    refused = client.post(
        f"/v1/webhook_deliveries/{delivery.id}/redeliver", headers=bearer(shop, "write")
    )
    assert refused.status_code == 409


# -- signatures --------------------------------------------------------------------------------


def test_an_altered_body_or_another_secret_fails_verification_at_the_receiver(
    client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    add_endpoint(client, shop, receiver, events=["sms.opted_out"])
    opt_out(shop)
    shop.run()
    [genuine] = receiver.verified()

    altered = genuine.body.replace(MOBILE.encode(), b"+447400999999")
    assert altered != genuine.body
    forged = httpx.post(receiver.url, content=altered, headers=genuine.headers)
    assert forged.status_code == 400
    assert receiver.received[-1].error == "No matching signature found"

    # A receiver holding another secret (say, another endpoint's) refuses it too.
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(genuine.body, genuine.headers)


def test_a_rotated_secret_signs_the_next_deliveries(
    client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    endpoint = add_endpoint(client, shop, receiver, events=["sms.opted_out"])
    old = receiver.secret
    rotated = client.post(
        f"/v1/webhook_endpoints/{endpoint['id']}/rotate_secret", headers=bearer(shop)
    ).json()
    assert rotated["secret"] != old
    listed = client.get("/v1/webhook_endpoints", headers=bearer(shop, "read")).json()["data"]
    assert all("secret" not in e for e in listed)

    opt_out(shop)
    shop.run()
    assert [r.error for r in receiver.received] == ["No matching signature found"]
    receiver.secret = rotated["secret"]
    [delivery] = deliveries(shop, endpoint["id"])
    advance(shop, timedelta(minutes=1))
    shop.run()
    assert receiver.received[-1].error is None
    assert receiver.received[-1].headers["webhook-id"] == f"msg_{delivery.id}"


# -- where webhooks may go ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1:9/hooks", "loopback"),
        ("http://localhost:9/hooks", "loopback"),
        ("http://[::1]:9/hooks", "loopback"),
        ("http://10.1.2.3/hooks", "not a public address"),
        ("https://192.168.0.10/hooks", "not a public address"),
        ("http://169.254.169.254/latest/meta-data", "not a public address"),
        ("http://[::ffff:10.0.0.1]/hooks", "not a public address"),
        # IPv4 carried in other IPv6 forms, which Python counts as global
        ("http://[::10.0.0.1]/hooks", "not a public address"),  # IPv4-compatible
        ("http://[::127.0.0.1]:9/hooks", "loopback"),
        ("http://[::ffff:0:10.0.0.1]/hooks", "not a public address"),  # SIIT
        ("http://[64:ff9b:1::a00:1]/hooks", "not a public address"),  # local-use NAT64
        ("http://[fec0::1]/hooks", "not a public address"),  # site-local
        ("ftp://example.com/hooks", "http or https"),
        ("hooks.example.com/no-scheme", "http or https"),
    ],
)
def test_a_live_site_cannot_save_a_loopback_private_or_non_http_target(
    app: App, client: TestClient, url: str, says: str
) -> None:
    _, admin = live_site(app)
    response = client.post("/v1/webhook_endpoints", json={"url": url}, headers=admin)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "url"
    assert says in response.json()["detail"]


def test_a_sandbox_site_may_use_loopback_but_not_private_ranges(
    client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    add_endpoint(client, shop, receiver)
    private = client.post(
        "/v1/webhook_endpoints", json={"url": "http://10.1.2.3/hooks"}, headers=bearer(shop)
    )
    assert private.status_code == 422
    assert private.json()["field"] == "url"


def test_a_live_target_is_checked_again_at_delivery_when_its_dns_has_changed(
    app: App, receiver: Receiver
) -> None:
    site_id, _ = live_site(app)
    receiver.host_name = "hooks.shop.example"
    saved = create_endpoint(
        app, site_id, url=receiver.url, resolve=lambda host, port: ["93.184.215.14"]
    )
    receiver.secret = saved["secret"]
    texted_stop(app, site_id)

    # The name now points at the machine Dunwell runs on, where the receiver listens.
    rebound = Sender(resolve=lambda host, port: ["127.0.0.1"])
    assert deliver_due_webhooks(app, "test-worker", 10, rebound) == 1

    assert receiver.received == []
    with app.connect() as conn:
        delivery = conn.execute(tables.webhook_deliveries.select()).one()
        [attempt] = conn.execute(tables.webhook_attempts.select()).all()
    assert delivery.status == "pending"
    assert attempt.status_code is None
    assert attempt.error == (
        "not sent: its host resolves to 127.0.0.1, "
        "a loopback address (allowed on sandbox sites only)"
    )


def test_an_attempt_goes_to_the_address_checked_and_keeps_the_host_name(
    app: App, shop: Shop, receiver: Receiver
) -> None:
    receiver.host_name = "hooks.shop.example"
    to_receiver = Sender(resolve=lambda host, port: ["127.0.0.1"])
    saved = create_endpoint(app, shop.site_id, url=receiver.url, resolve=to_receiver.resolve)
    receiver.secret = saved["secret"]
    opt_out(shop)

    deliver_due_webhooks(app, "test-worker", 10, to_receiver)

    [request] = receiver.verified()
    assert request.headers["host"] == f"hooks.shop.example:{receiver.port}"
    assert request.type == "sms.opted_out"


def test_an_https_attempt_names_the_host_for_tls_while_connecting_to_the_checked_address(
    app: App, shop: Shop
) -> None:
    seen: list[httpx.Request] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    public = Sender(
        transport=httpx.MockTransport(endpoint), resolve=lambda host, port: ["93.184.215.14"]
    )
    url = "https://hooks.shop.example/billing"
    saved = create_endpoint(app, shop.site_id, url=url, resolve=public.resolve)
    opt_out(shop)

    deliver_due_webhooks(app, "test-worker", 10, public)

    [request] = seen
    assert str(request.url) == "https://93.184.215.14/billing"
    assert request.headers["host"] == "hooks.shop.example"
    assert request.extensions["sni_hostname"] == "hooks.shop.example"
    verified = Webhook(saved["secret"]).verify(request.content, dict(request.headers))
    assert verified["type"] == "sms.opted_out"


# -- the API: scopes, sites, changes ----------------------------------------------------------


def test_another_sites_key_can_neither_see_nor_change_endpoints_or_deliveries(
    app: App, client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    endpoint = add_endpoint(client, shop, receiver)
    opt_out(shop)
    shop.run()
    [delivery] = deliveries(shop, endpoint["id"])
    other = Shop.create(app, "other")
    theirs = bearer(other)
    base = f"/v1/webhook_endpoints/{endpoint['id']}"

    assert client.get("/v1/webhook_endpoints", headers=theirs).json()["data"] == []
    assert client.get(base, headers=theirs).status_code == 404
    assert (
        client.patch(base, json={"url": "http://127.0.0.1:1/"}, headers=theirs).status_code == 404
    )
    assert client.post(f"{base}/rotate_secret", headers=theirs).status_code == 404
    assert client.get(f"{base}/deliveries", headers=theirs).status_code == 404
    assert client.delete(base, headers=theirs).status_code == 404
    redeliver = f"/v1/webhook_deliveries/{delivery.id}/redeliver"
    assert client.post(redeliver, headers=theirs).status_code == 404
    theirs_events = client.get("/v1/events", headers=theirs).json()["data"]
    assert "sms.opted_out" not in {e["type"] for e in theirs_events}

    # Nor do the other site's events reach this site's endpoint.
    other.subscribe(other.customer(INSUFFICIENT))
    other.run()
    assert len(deliveries(shop, endpoint["id"])) == 1
    assert client.get(base, headers=bearer(shop, "read")).json()["url"] == receiver.url


def test_endpoint_changes_need_an_admin_key_and_reads_a_read_key(
    client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    endpoint = add_endpoint(client, shop, receiver)
    base = f"/v1/webhook_endpoints/{endpoint['id']}"
    for scope in ("read", "write"):
        headers = bearer(shop, scope)
        assert (
            client.post(
                "/v1/webhook_endpoints", json={"url": receiver.url}, headers=headers
            ).status_code
            == 403
        )
        assert client.patch(base, json={"enabled": False}, headers=headers).status_code == 403
        assert client.delete(base, headers=headers).status_code == 403
        assert client.get(base, headers=headers).status_code == 200


def test_disabling_or_deleting_an_endpoint_cancels_its_pending_deliveries(
    client: TestClient, shop: Shop, receiver: Receiver
) -> None:
    endpoint = add_endpoint(client, shop, receiver, events=["sms.opted_out"])
    base = f"/v1/webhook_endpoints/{endpoint['id']}"
    receiver.status = 500
    opt_out(shop)
    shop.run()

    changed = client.patch(
        base, json={"enabled": False, "description": "paused"}, headers=bearer(shop)
    ).json()
    assert (changed["enabled"], changed["description"]) == (False, "paused")
    [delivery] = deliveries(shop, endpoint["id"])
    assert (delivery.status, delivery.last_error) == ("canceled", "the endpoint was disabled")

    enabled = client.patch(base, json={"enabled": True}, headers=bearer(shop)).json()
    assert (enabled["enabled"], enabled["disabled_reason"]) == (True, None)
    opt_out(shop, OTHER_MOBILE)
    deleted = client.delete(base, headers=bearer(shop)).json()
    assert deleted == {"id": endpoint["id"], "deleted": True, "canceled_deliveries": 1}
    assert client.get(base, headers=bearer(shop)).status_code == 404
    assert {d.status for d in deliveries(shop, endpoint["id"])} == {"canceled"}
    advance(shop, timedelta(hours=1))
    shop.run()
    assert len(receiver.received) == 1


def test_the_event_log_is_paged_with_a_cursor_and_filtered_by_type(
    client: TestClient, shop: Shop
) -> None:
    for number in (MOBILE, OTHER_MOBILE, "+447400123458"):
        opt_out(shop, number)
    read = bearer(shop, "read")

    first = client.get("/v1/events", params={"type": "sms.opted_out", "limit": 2}, headers=read)
    page = first.json()
    assert [e["type"] for e in page["data"]] == ["sms.opted_out"] * 2
    assert page["next_cursor"] == page["data"][-1]["id"]
    rest = client.get(
        "/v1/events",
        params={"type": "sms.opted_out", "limit": 2, "after": page["next_cursor"]},
        headers=read,
    ).json()
    assert [e["data"]["phone"] for e in rest["data"]] == ["+447400123458"]
    assert rest["next_cursor"] is None


def test_the_cli_adds_lists_shows_deliveries_and_redelivers(
    app: App, shop: Shop, receiver: Receiver
) -> None:
    def cli(*args: str) -> str:
        settings = ["--database-url", str(app.engine.url.render_as_string(hide_password=False))]
        result = CliRunner().invoke(main, [*settings, "--secret-key", "test-secret-key", *args])
        assert result.exit_code == 0, result.output
        return result.output

    added = cli("webhooks", "add", "--site", "shop", receiver.url, "--event", "sms.opted_out")
    receiver.secret = added.rsplit(": ", 1)[1].strip()
    assert receiver.secret.startswith("whsec_")
    assert receiver.url in cli("webhooks", "list", "--site", "shop", "--json")

    opt_out(shop)
    shop.run()
    [delivery] = shop.all(tables.webhook_deliveries)
    shown = cli("webhooks", "deliveries", "--site", "shop", str(delivery.endpoint_id), "--json")
    assert '"status": "delivered"' in shown
    assert "queued again" in cli("webhooks", "redeliver", "--site", "shop", str(delivery.id))
    shop.run()
    assert len(receiver.verified()) == 2
