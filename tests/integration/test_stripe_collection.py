"""The worker charging Stripe invoices: side by side, and within its lease.

Every test runs on SQLite and PostgreSQL, with the real SDK against a local
server that speaks Stripe's API and takes a while to answer, as Stripe does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest

from dunwell.bootstrap import App
from dunwell.gateways.base import CardDetails
from dunwell.gateways.stripe import StripeGateway
from dunwell.services import ledger, ledger_queries
from dunwell.services.claims import start_window
from dunwell.services.collection import attempt_key, process_due_cycles
from dunwell.store import tables
from tests.integration.factories import Shop
from tests.integration.fake_stripe import API_KEY, FakeStripeServer

DECLINES = "pm_card_chargeDeclinedInsufficientFunds"


@pytest.fixture
def server() -> Iterator[FakeStripeServer]:
    server = FakeStripeServer().start()
    yield server
    server.stop()


def use_stripe(app: App, server: FakeStripeServer, concurrency: int) -> StripeGateway:
    # No pace to speak of: these tests are about lanes and the lease.
    gateway = StripeGateway(
        API_KEY, api_base=server.url, concurrency=concurrency, max_per_second=1000
    )
    app.gateways.add(gateway)
    return gateway


def stripe_invoice(shop: Shop, token: str) -> int:
    """An invoice due now, for a customer whose saved card is a Stripe payment method."""
    customer = shop.customer(card=None)
    card = CardDetails(token, "visa", "4242", 12, 2031, gateway_customer="cus_Nv0001")
    with shop.app.begin() as conn:
        ledger.attach_payment_method(conn, shop.site_id, customer, "stripe", card, shop.now)
    return shop.invoice(customer)


def test_a_batch_of_stripe_charges_goes_out_side_by_side(
    app: App, server: FakeStripeServer
) -> None:
    server.fake.latency = 0.05
    with use_stripe(app, server, concurrency=4):
        shop = Shop.create(app)
        tokens = ["pm_card_visa", DECLINES] * 6
        invoices = [stripe_invoice(shop, token) for token in tokens]

        shop.run()

    statuses = [[a.status for a in shop.attempts_of(i)] for i in invoices]
    assert statuses == [["succeeded"], ["declined"]] * 6
    assert 1 < server.fake.most_in_flight <= 4
    keys = [attempt_key(shop.site_id, i, 1) for i in invoices]
    assert sorted(server.fake.executed, key=str) == sorted(keys)


def test_charges_the_lease_cannot_cover_wait_unchanged_for_the_next_batch(
    app: App, server: FakeStripeServer
) -> None:
    # A one-second lease, shorter than a Stripe request may take, leaves a
    # quarter of a second to start charges that take 0.2 s each, one at a
    # time: a batch of eight cannot all go out.
    app.settings = replace(app.settings, lease_seconds=1)
    server.fake.latency = 0.2
    with use_stripe(app, server, concurrency=1):
        shop = Shop.create(app)
        invoices = [stripe_invoice(shop, DECLINES) for _ in range(8)]
        before = {i: shop.cycle_of(i) for i in invoices}
        before_events = {i: shop.event_types(i) for i in invoices}

        process_due_cycles(app, "worker-1", limit=500)

        charged = [i for i in invoices if shop.attempts_of(i)[0].status == "declined"]
        waiting = [i for i in invoices if i not in charged]
        assert charged and waiting
        for invoice in waiting:
            [attempt] = shop.attempts_of(invoice)
            cycle = shop.cycle_of(invoice)
            assert attempt.status == "pending"
            assert (cycle.attempts, cycle.lease_owner, cycle.revision) == (0, None, 0)
            assert (cycle.phase, cycle.next_run_at) == (before[invoice].phase, shop.now)
            assert shop.event_types(invoice) == before_events[invoice]
            assert server.fake.requests_with_key(attempt.idempotency_key) == []

        shop.run()

    for invoice in invoices:
        [attempt] = shop.attempts_of(invoice)
        assert attempt.status == "declined"
        assert shop.cycle_of(invoice).attempts == 1
    keys = [attempt_key(shop.site_id, i, 1) for i in invoices]
    assert sorted(server.fake.executed, key=str) == sorted(keys)  # each charged once


@pytest.mark.parametrize(
    ("lease_left", "longest", "window"),
    [(60.0, 36.0, 24.0), (300.0, 36.0, 264.0), (20.0, 36.0, 5.0), (60.0, 0.0, 60.0)],
)
def test_charges_start_only_while_the_last_can_end_within_the_lease(
    lease_left: float, longest: float, window: float
) -> None:
    assert start_window(lease_left, longest) == window


def test_the_shop_has_no_sandbox_card_behind_its_stripe_invoices(
    app: App, server: FakeStripeServer
) -> None:
    with use_stripe(app, server, concurrency=2):
        shop = Shop.create(app)
        invoice = stripe_invoice(shop, "pm_card_visa")
        shop.run()
    [method] = shop.all(tables.payment_methods)
    assert method.gateway == "stripe"
    assert [a.gateway for a in shop.attempts_of(invoice)] == ["stripe"]


def test_a_retry_whose_charge_waits_for_the_next_batch_sends_nothing_before_it(
    app: App, server: FakeStripeServer
) -> None:
    # Day 3 of the default policy retries the charge and then emails the
    # customer: a cycle whose retry was not sent must not send that email.
    with use_stripe(app, server, concurrency=8):
        shop = Shop.create(app)
        invoices = [stripe_invoice(shop, DECLINES) for _ in range(8)]
        shop.run_days(1)
    shop.advance(1)
    before = {i: (shop.event_types(i), len(shop.outbox_of(i))) for i in invoices}
    app.settings = replace(app.settings, lease_seconds=1)
    server.fake.latency = 0.2
    with use_stripe(app, server, concurrency=1):
        process_due_cycles(app, "worker-1", limit=500)

        retried = [i for i in invoices if shop.attempts_of(i)[-1].status == "declined"]
        waiting = [i for i in invoices if i not in retried]
        assert retried and waiting
        for invoice in waiting:
            statuses = [a.status for a in shop.attempts_of(invoice)]
            assert statuses == ["declined", "declined", "pending"]
            assert (shop.event_types(invoice), len(shop.outbox_of(invoice))) == before[invoice]
            assert shop.cycle_of(invoice).attempts == 2

        shop.run()

    for invoice in invoices:
        assert [a.status for a in shop.attempts_of(invoice)] == ["declined"] * 3
        assert shop.event_types(invoice).count("payment.failed") == 3
        assert len(shop.outbox_of(invoice)) == before[invoice][1] + 1  # day 3's email


def test_a_subscription_canceled_while_its_charge_is_in_flight_stays_canceled(
    app: App, server: FakeStripeServer
) -> None:
    # The worker read the subscription as past due before calling Stripe;
    # the merchant cancels it while Stripe answers. Written over, the
    # canceled subscription came back to life and was billed again.
    with use_stripe(app, server, concurrency=1):
        shop = Shop.create(app)
        customer = shop.customer(card=None)
        with app.begin() as conn:
            card = CardDetails(DECLINES, "visa", "4242", 12, 2031, gateway_customer="cus_1")
            ledger.attach_payment_method(conn, shop.site_id, customer, "stripe", card, shop.now)
        subscription = shop.subscribe(customer)
        shop.run()
        assert shop.one(tables.subscriptions, id=subscription).status == "past_due"
        with app.begin() as conn:
            card = CardDetails("pm_card_visa", "visa", "4242", 12, 2031, gateway_customer="cus_1")
            ledger.attach_payment_method(conn, shop.site_id, customer, "stripe", card, shop.now)
        server.fake.latency = 1.0
        server.fake.most_in_flight = 0
        worker = threading.Thread(target=shop.run)
        worker.start()
        while not server.fake.most_in_flight:  # the retry is at Stripe
            time.sleep(0.01)
        with app.begin() as conn:
            ledger_queries.cancel_subscription(conn, shop.site_id, subscription, shop.now)
        worker.join()
        shop.advance(40)
        server.fake.latency = 0
        shop.run()

    assert [a.status for a in shop.attempts_of(shop.invoice_of(subscription).id)] == [
        "declined",
        "succeeded",
    ]
    assert shop.one(tables.subscriptions, id=subscription).status == "canceled"
    assert len(shop.all(tables.invoices, subscription_id=subscription)) == 1  # nothing renewed
    changes = [
        (e.data["previous"], e.data["current"])
        for e in shop.all(tables.events, subscription_id=subscription)
        if e.type == "subscription.state_changed"
    ]
    assert changes == [("active", "past_due"), ("past_due", "canceled")]
