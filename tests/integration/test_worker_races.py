"""What the worker does when the world changes while it is charging."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from dunwell.bootstrap import App
from dunwell.domain.states import AttemptStatus
from dunwell.gateways.base import ChargeRequest, ChargeResponse, GatewayRegistry
from dunwell.gateways.sandbox import SandboxGateway
from dunwell.services import invoice_actions
from dunwell.services.collection_requests import request_collection_for_customer
from dunwell.store import tables
from dunwell.worker import Worker
from tests.integration.factories import GOOD, INSUFFICIENT, Shop


class InterruptingGateway:
    """A sandbox gateway that runs ``meanwhile`` once, in the middle of a charge."""

    name = "sandbox"
    longest_charge_seconds = 0.0

    def __init__(self, inner: SandboxGateway, meanwhile: Callable[[], None]) -> None:
        self.inner = inner
        self.meanwhile: Callable[[], None] | None = meanwhile

    def charge_many(
        self, requests: Sequence[ChargeRequest], *, until: float | None = None
    ) -> list[ChargeResponse]:
        answers = self.inner.charge_many(requests, until=until)
        if self.meanwhile is not None:
            action, self.meanwhile = self.meanwhile, None
            action()
        return answers


def test_a_charge_that_succeeds_while_the_card_changes_still_pays_the_invoice(app: App) -> None:
    shop = Shop.create(app)
    customer = shop.customer(INSUFFICIENT)
    subscription = shop.subscribe(customer)
    shop.run()
    invoice = shop.invoice_of(subscription)
    assert invoice.status == "past_due"
    shop.change_card(customer, GOOD)  # a retry is due now, with the good card

    def another_request() -> None:
        with app.begin() as conn:
            request_collection_for_customer(conn, shop.site_id, customer, shop.now, "test")

    sandbox = SandboxGateway(app.engine, app.clock.now)
    app.gateways = GatewayRegistry([InterruptingGateway(sandbox, another_request)])
    Worker(app, "racer").run_until_idle()

    assert shop.invoice_of(subscription).status == "paid"
    attempts = shop.all(tables.payment_attempts, invoice_id=invoice.id)
    assert [a.status for a in attempts] == ["declined", "succeeded"]
    assert len(shop.all(tables.sandbox_charges)) == 2  # the good card was charged once


def test_a_charge_that_succeeds_after_the_merchant_marked_it_paid_is_flagged_not_applied(
    app: App,
) -> None:
    shop = Shop.create(app)
    customer = shop.customer(INSUFFICIENT)
    subscription = shop.subscribe(customer)
    shop.run()
    invoice_id = shop.invoice_of(subscription).id
    shop.change_card(customer, GOOD)

    def merchant_marks_paid() -> None:
        with app.begin() as conn:
            invoice_actions.mark_paid(conn, shop.site_id, invoice_id, shop.now)

    sandbox = SandboxGateway(app.engine, app.clock.now)
    app.gateways = GatewayRegistry([InterruptingGateway(sandbox, merchant_marks_paid)])
    Worker(app, "racer").run_until_idle()

    assert shop.invoice_of(subscription).status == "paid"
    assert shop.cycle_of(invoice_id).outcome == "marked_paid"
    assert "payment.succeeded_after_change" in shop.event_types(invoice_id)
    assert shop.event_types(invoice_id).count("invoice.paid") == 1


def test_a_card_on_a_gateway_this_process_lacks_errors_and_does_not_block_others(
    app: App,
) -> None:
    shop = Shop.create(app)
    stranded_customer = shop.customer(GOOD)
    stranded = shop.subscribe(stranded_customer)
    fine = shop.subscribe(shop.customer(GOOD))
    with app.begin() as conn:
        conn.execute(
            tables.payment_methods.update()
            .where(tables.payment_methods.c.customer_id == stranded_customer)
            .values(gateway="stripe")
        )
    shop.run()
    assert shop.invoice_of(fine).status == "paid"
    stuck = shop.invoice_of(stranded)
    attempt = shop.one(tables.payment_attempts, invoice_id=stuck.id)
    assert attempt.status == AttemptStatus.ERROR.value
    assert attempt.decline_code == "gateway_not_configured"
    for _ in range(2):  # asked again after 15, then 30 minutes
        shop.advance(1 / 24)
        shop.run()
    # After three unanswered tries the attempt counts as a soft decline.
    assert shop.invoice_of(stranded).status == "past_due"
    assert shop.cycle_of(stuck.id).attempts == 1
