"""A failed payment's whole life, driven day by day through the real worker.

Every test runs on SQLite and on PostgreSQL (the ``app`` fixture). Days are
counted as the domain counts them: day 1 starts at the first failure, day N
at ``start + (N - 1) days``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.exc import SQLAlchemyError

from dunwell.bootstrap import App
from dunwell.clock import FixedClock
from dunwell.domain.states import Collection
from dunwell.services import invoice_actions, policies, templates
from dunwell.services.errors import Conflict, InvalidInput, NotFound
from dunwell.store import tables
from tests.integration.factories import GOOD, INSUFFICIENT, LOST, RECOVERS, Shop

DAY = timedelta(days=1)

#: What the default automatic policy sends, as (dedupe key suffix, template).
#: Its steps' webhooks are not outbox rows: they fan out from the
#: ``dunning.step_reached`` events (tests/integration/test_webhooks.py).
DEFAULT_AUTOMATIC_MESSAGES = {
    "d1:email": "payment_declined",
    "d1:sms": "payment_declined",
    "d3:email": "payment_declined",
    "d7:email": "payment_declined",
    "d7:sms": "payment_declined",
    "d14:email": "final_notice",
    "final:email": "final_notice",
}


def day_start(start: datetime, day: int) -> datetime:
    return start + (day - 1) * DAY


def messages(shop: Shop, invoice_id: int) -> dict[str, Any]:
    """Outbox rows of an invoice by dedupe key, without the ``invoice:version:`` prefix."""
    rows = shop.outbox_of(invoice_id)
    keys = [row.dedupe_key for row in rows]
    assert len(keys) == len(set(keys)), "a dedupe key appears twice"
    return {row.dedupe_key.split(":", 2)[2]: row for row in rows}


def events_of(shop: Shop, **where: Any) -> list[Any]:
    return shop.all(tables.events, **where)


def subscription_status(shop: Shop, subscription_id: int) -> str:
    status: str = shop.one(tables.subscriptions, id=subscription_id).status
    return status


def invoice_status(shop: Shop, invoice_id: int) -> str:
    status: str = shop.one(tables.invoices, id=invoice_id).status
    return status


def failing_subscription(shop: Shop, card: str = INSUFFICIENT) -> tuple[int, int]:
    """A subscription whose first renewal has just failed; returns (subscription, invoice)."""
    subscription_id = shop.subscribe(shop.customer(card))
    shop.run()
    invoice = shop.invoice_of(subscription_id)
    assert invoice.status == "past_due"
    return subscription_id, invoice.id


def snapshot(shop: Shop, invoice_id: int) -> tuple[list[str], int, int]:
    return (
        shop.event_types(invoice_id),
        len(shop.attempts_of(invoice_id)),
        len(shop.outbox_of(invoice_id)),
    )


# -- the default automatic cycle -----------------------------------------------------


def test_a_soft_decline_is_retried_daily_and_written_off_with_a_cancel_on_day_15(
    app: App,
) -> None:
    shop = Shop.create(app)
    subscription_id, invoice_id = failing_subscription(shop)
    cycle = shop.cycle_of(invoice_id)
    start = cycle.started_at
    assert start == shop.now
    assert cycle.phase == "dunning"

    attempts_by_day: dict[int, int] = {}
    failures_by_day: dict[int, int] = {}
    for day in range(1, 15):
        if day > 1:
            shop.advance(1)
            shop.run()
        attempts_by_day[day] = shop.cycle_of(invoice_id).attempts
        failures_by_day[day] = shop.event_types(invoice_id).count("payment.failed")
        # Until the final day, the invoice and the subscription stay past due.
        assert invoice_status(shop, invoice_id) == "past_due"
        assert subscription_status(shop, subscription_id) == "past_due"

    # One attempt a day until the retry threshold (8 attempts), then none.
    expected = {day: min(day, 8) for day in range(1, 15)}
    assert attempts_by_day == expected
    assert failures_by_day == expected
    attempts = shop.attempts_of(invoice_id)
    assert [a.attempt_no for a in attempts] == list(range(1, 9))
    assert [a.created_at for a in attempts] == [day_start(start, d) for d in range(1, 9)]
    assert {(a.status, a.decline_code, a.decline_class) for a in attempts} == {
        ("declined", "insufficient_funds", "soft")
    }

    # Each step happened once, on its day.
    steps = [e for e in events_of(shop, invoice_id=invoice_id) if e.type == "dunning.step_reached"]
    assert [(e.data["day"], e.occurred_at) for e in steps] == [
        (day, day_start(start, day)) for day in (1, 3, 7, 14)
    ]
    assert all(e.data["step"]["webhook"] for e in steps)

    # Day 15: the final action cancels the subscription and writes the invoice off.
    shop.advance(1)
    shop.run()
    assert shop.now == day_start(start, 15)
    invoice = shop.one(tables.invoices, id=invoice_id)
    assert invoice.status == "failed"
    assert invoice.closed_at == shop.now
    subscription = shop.one(tables.subscriptions, id=subscription_id)
    assert subscription.status == "canceled"
    assert subscription.canceled_at == shop.now
    cycle = shop.cycle_of(invoice_id)
    assert (cycle.phase, cycle.outcome, cycle.next_run_at) == ("closed", "written_off", None)

    types = shop.event_types(invoice_id)
    assert types[-2:] == ["invoice.failed", "dunning.ended"]
    ended = events_of(shop, invoice_id=invoice_id, type="dunning.ended")
    assert [e.data for e in ended] == [{"outcome": "written_off", "subscription_action": "cancel"}]
    expired = events_of(shop, subscription_id=subscription_id, type="subscription.expired")
    assert [(e.data, e.occurred_at) for e in expired] == [({"reason": "dunning"}, shop.now)]
    changes = events_of(shop, subscription_id=subscription_id, type="subscription.state_changed")
    assert [(e.data["previous"], e.data["current"]) for e in changes] == [
        ("active", "past_due"),
        ("past_due", "canceled"),
    ]

    # The messages of every step and of the final action, each exactly once.
    sent = messages(shop, invoice_id)
    version_id = cycle.policy_version_id
    assert {key: row.template for key, row in sent.items()} == DEFAULT_AUTOMATIC_MESSAGES
    assert all(row.dedupe_key.startswith(f"{invoice_id}:v{version_id}:") for row in sent.values())
    assert {key: row.channel for key, row in sent.items()} == {
        key: key.rsplit(":", 1)[1] for key in DEFAULT_AUTOMATIC_MESSAGES
    }
    for key, row in sent.items():
        day = 15 if key.startswith("final") else int(key.split(":")[0][1:])
        assert row.created_at == day_start(start, day), key
        # Email goes to the sandbox mailbox; this customer has no phone.
        expected = {"email": "delivered", "sms": "skipped"}
        assert row.status == expected[row.channel], key

    # Nothing more happens: no attempts, events or messages, and no renewal of
    # the canceled subscription when its next period comes (April 2).
    before = snapshot(shop, invoice_id)
    shop.run()
    shop.run_days(35)
    assert snapshot(shop, invoice_id) == before
    assert len(shop.all(tables.invoices, subscription_id=subscription_id)) == 1


def test_the_recovers_after_two_card_is_recovered_by_the_third_attempt(app: App) -> None:
    shop = Shop.create(app)
    subscription_id, invoice_id = failing_subscription(shop, RECOVERS)
    start = shop.now
    shop.run_days(1)
    assert shop.cycle_of(invoice_id).attempts == 2
    assert invoice_status(shop, invoice_id) == "past_due"

    shop.advance(1)
    shop.run()

    invoice = shop.one(tables.invoices, id=invoice_id)
    assert invoice.status == "paid"
    assert invoice.paid_at == day_start(start, 3)
    assert invoice.amount_paid_minor == invoice.amount_due_minor
    attempts = shop.attempts_of(invoice_id)
    assert [(a.attempt_no, a.status) for a in attempts] == [
        (1, "declined"),
        (2, "declined"),
        (3, "succeeded"),
    ]
    cycle = shop.cycle_of(invoice_id)
    assert (cycle.phase, cycle.outcome, cycle.next_run_at) == ("closed", "recovered", None)
    assert subscription_status(shop, subscription_id) == "active"
    ended = events_of(shop, invoice_id=invoice_id, type="dunning.ended")
    assert [e.data["outcome"] for e in ended] == ["recovered"]
    assert shop.event_types(invoice_id)[-3:] == [
        "payment.succeeded",
        "invoice.paid",
        "dunning.ended",
    ]

    # Day 3's step (and every later one) is not carried out for a paid invoice.
    assert set(messages(shop, invoice_id)) == {"d1:email", "d1:sms"}
    before = snapshot(shop, invoice_id)
    shop.run_days(20)
    assert snapshot(shop, invoice_id) == before
    assert subscription_status(shop, subscription_id) == "active"


def test_a_hard_decline_stops_retries_until_a_new_card_is_collected_at_once(app: App) -> None:
    shop = Shop.create(app)
    customer_id = shop.customer(LOST)
    subscription_id = shop.subscribe(customer_id)
    shop.run()
    invoice_id = shop.invoice_of(subscription_id).id
    [first] = shop.attempts_of(invoice_id)
    assert (first.decline_code, first.decline_class) == ("lost_card", "hard")
    assert shop.cycle_of(invoice_id).hard_declined

    # Days 2..8: the steps on days 3 and 7 send their messages but do not retry.
    shop.run_days(7)
    assert len(shop.attempts_of(invoice_id)) == 1
    assert shop.cycle_of(invoice_id).attempts == 1
    assert {"d3:email", "d7:email"} <= set(messages(shop, invoice_id))
    assert invoice_status(shop, invoice_id) == "past_due"

    shop.change_card(customer_id, GOOD)
    cycle = shop.cycle_of(invoice_id)
    assert cycle.retry_at == shop.now
    assert cycle.next_run_at == shop.now
    assert not cycle.hard_declined
    requested = events_of(shop, invoice_id=invoice_id, type="invoice.collection_requested")
    assert [e.data["reason"] for e in requested] == ["payment_method_updated"]

    shop.run()
    attempts = shop.attempts_of(invoice_id)
    assert [(a.attempt_no, a.status, a.created_at) for a in attempts][1:] == [
        (2, "succeeded", shop.now)
    ]
    assert invoice_status(shop, invoice_id) == "paid"
    assert shop.cycle_of(invoice_id).outcome == "recovered"
    assert subscription_status(shop, subscription_id) == "active"


# -- policy versions -------------------------------------------------------------------

SHORT_POLICY: dict[str, Any] = {
    "retry_interval_hours": 24,
    "max_attempts": 8,
    "final_day": 5,
    "steps": [{"day": 1, "email_template": "short_notice"}],
    "final": {"subscription_action": "mark_unpaid", "invoice_outcome": "leave_past_due"},
}


def test_an_invoice_keeps_its_policy_version_when_the_merchant_saves_a_new_one(
    app: App,
) -> None:
    shop = Shop.create(app)
    sub_a, invoice_a = failing_subscription(shop)
    start_a = shop.now
    v1 = shop.cycle_of(invoice_a).policy_version_id
    assert v1 is not None

    with app.begin() as conn:
        templates.save_template(
            conn,
            shop.site_id,
            "short_notice",
            "email",
            "en",
            subject="Payment failed",
            body_text="Please pay {{ billing_link }}",
            now=shop.now,
        )
    v2 = shop.save_policy(SHORT_POLICY)
    assert v2 != v1
    with app.connect() as conn:
        versions = policies.list_versions(conn, shop.site_id, Collection.AUTOMATIC)
    assert [(v.id, v.version) for v in versions] == [(v1, 1), (v2, 2)]
    assert versions[0].first_used_at == start_a
    assert versions[1].first_used_at is None
    assert versions[1].policy.final_day == 5

    # Invoice B fails a day later and is pinned to version 2.
    shop.advance(1)
    sub_b, invoice_b = failing_subscription(shop)
    start_b = shop.now
    assert shop.cycle_of(invoice_b).policy_version_id == v2
    assert shop.cycle_of(invoice_a).policy_version_id == v1
    with app.connect() as conn:
        versions = policies.list_versions(conn, shop.site_id, Collection.AUTOMATIC)
    assert [v.first_used_at for v in versions] == [start_a, start_b]

    # Day 5 of B: version 2's final action marks the subscription unpaid and
    # leaves the invoice past due; A, on version 1, is still being dunned.
    shop.run_days(4)
    assert shop.now == day_start(start_b, 5)
    cycle_b = shop.cycle_of(invoice_b)
    assert (cycle_b.phase, cycle_b.outcome, cycle_b.next_run_at) == (
        "closed",
        "left_past_due",
        None,
    )
    assert cycle_b.attempts == 5  # days 1-5, the last just before the final action
    assert invoice_status(shop, invoice_b) == "past_due"
    assert subscription_status(shop, sub_b) == "unpaid"
    assert "invoice.failed" not in shop.event_types(invoice_b)
    ended = events_of(shop, invoice_id=invoice_b, type="dunning.ended")
    assert [e.data for e in ended] == [
        {"outcome": "left_past_due", "subscription_action": "mark_unpaid"}
    ]
    sent_b = shop.outbox_of(invoice_b)
    assert [(r.dedupe_key, r.template) for r in sent_b] == [
        (f"{invoice_b}:v{v2}:d1:email", "short_notice")
    ]

    assert shop.cycle_of(invoice_a).phase == "dunning"
    assert invoice_status(shop, invoice_a) == "past_due"
    assert subscription_status(shop, sub_a) == "past_due"

    # Day 15 of A: version 1's final action, cancel and write off.
    shop.run_days(9)
    assert shop.now == day_start(start_a, 15)
    assert invoice_status(shop, invoice_a) == "failed"
    assert subscription_status(shop, sub_a) == "canceled"
    assert shop.cycle_of(invoice_a).outcome == "written_off"
    sent_a = messages(shop, invoice_a)
    assert set(sent_a) == set(DEFAULT_AUTOMATIC_MESSAGES)
    assert all(f":v{v1}:" in row.dedupe_key for row in sent_a.values())

    # B stays as version 2 left it.
    assert invoice_status(shop, invoice_b) == "past_due"
    assert subscription_status(shop, sub_b) == "unpaid"
    assert shop.cycle_of(invoice_b).attempts == 5


# -- manual invoices -------------------------------------------------------------------


def test_a_manual_invoice_waits_for_net_terms_is_never_charged_and_is_left_past_due(
    app: App,
) -> None:
    shop = Shop.create(app)
    customer_id = shop.customer(GOOD)  # a card on file must not be charged
    invoice_id = shop.invoice(customer_id, collection=Collection.MANUAL, net_terms_days=7)
    issued = shop.now

    shop.run_days(6)
    assert invoice_status(shop, invoice_id) == "open"
    assert shop.cycle_of(invoice_id).phase == "initial"
    assert shop.outbox_of(invoice_id) == []

    # Net terms pass: day 1 of the manual policy.
    shop.advance(1)
    shop.run()
    start = issued + 7 * DAY
    assert invoice_status(shop, invoice_id) == "past_due"
    cycle = shop.cycle_of(invoice_id)
    assert (cycle.phase, cycle.started_at) == ("dunning", start)
    with app.connect() as conn:
        manual = policies.current_version(conn, shop.site_id, Collection.MANUAL)
    assert cycle.policy_version_id == manual.id
    assert {k: r.template for k, r in messages(shop, invoice_id).items()} == {
        "d1:email": "invoice_past_due",
    }

    # Up to day 29 the cycle runs; on day 30 the final action leaves it past due.
    shop.run_days(28)
    assert shop.now == day_start(start, 29)
    assert shop.cycle_of(invoice_id).phase == "dunning"
    shop.advance(1)
    shop.run()
    invoice = shop.one(tables.invoices, id=invoice_id)
    assert (invoice.status, invoice.closed_at, invoice.subscription_id) == ("past_due", None, None)
    cycle = shop.cycle_of(invoice_id)
    assert (cycle.phase, cycle.outcome, cycle.attempts) == ("closed", "left_past_due", 0)
    ended = events_of(shop, invoice_id=invoice_id, type="dunning.ended")
    assert [(e.data["outcome"], e.occurred_at) for e in ended] == [
        ("left_past_due", day_start(start, 30))
    ]
    # A one-off invoice has no subscription to mark unpaid.
    assert events_of(shop, customer_id=customer_id, type="subscription.state_changed") == []
    assert {k: r.template for k, r in messages(shop, invoice_id).items()} == {
        "d1:email": "invoice_past_due",
        "d8:email": "invoice_past_due",
        "d22:email": "final_notice",
    }
    # Never a charge, and the sandbox gateway never saw one.
    assert shop.attempts_of(invoice_id) == []
    assert not any(t.startswith("payment.") for t in shop.event_types(invoice_id))
    assert shop.all(tables.sandbox_charges) == []

    # Stop collecting writes it off; reopening opens it but dunning does not restart.
    shop.act(invoice_actions.stop_collecting, invoice_id)
    assert invoice_status(shop, invoice_id) == "failed"
    shop.act(invoice_actions.reopen, invoice_id)
    invoice = shop.one(tables.invoices, id=invoice_id)
    assert (invoice.status, invoice.closed_at) == ("open", None)
    assert shop.event_types(invoice_id)[-2:] == ["invoice.failed", "invoice.reopened"]
    before = snapshot(shop, invoice_id)
    shop.run_days(40)
    assert snapshot(shop, invoice_id) == before
    assert invoice_status(shop, invoice_id) == "open"
    assert shop.cycle_of(invoice_id).next_run_at is None


def test_only_a_failed_manual_invoice_can_be_reopened(app: App) -> None:
    shop = Shop.create(app)
    _, automatic = failing_subscription(shop)
    shop.act(invoice_actions.stop_collecting, automatic)
    with pytest.raises(Conflict):
        shop.act(invoice_actions.reopen, automatic)
    manual = shop.invoice(shop.customer(), collection=Collection.MANUAL, net_terms_days=3)
    with pytest.raises(Conflict):
        shop.act(invoice_actions.reopen, manual)


# -- invoice actions ---------------------------------------------------------------------


def test_mark_paid_ends_dunning_and_reactivates_the_subscription(app: App) -> None:
    shop = Shop.create(app)
    subscription_id, invoice_id = failing_subscription(shop)
    shop.run_days(1)

    shop.act(invoice_actions.mark_paid, invoice_id)

    invoice = shop.one(tables.invoices, id=invoice_id)
    assert (invoice.status, invoice.paid_at) == ("paid", shop.now)
    assert invoice.amount_paid_minor == invoice.amount_due_minor
    cycle = shop.cycle_of(invoice_id)
    assert (cycle.phase, cycle.outcome, cycle.next_run_at) == ("closed", "marked_paid", None)
    assert subscription_status(shop, subscription_id) == "active"
    ended = events_of(shop, invoice_id=invoice_id, type="dunning.ended")
    assert [e.data["outcome"] for e in ended] == ["marked_paid"]
    before = snapshot(shop, invoice_id)
    shop.run_days(20)
    assert snapshot(shop, invoice_id) == before
    assert shop.cycle_of(invoice_id).attempts == 2


def test_stop_dunning_leaves_the_invoice_past_due_and_the_subscription_alone(
    app: App,
) -> None:
    shop = Shop.create(app)
    subscription_id, invoice_id = failing_subscription(shop)

    shop.act(invoice_actions.stop_dunning, invoice_id)

    assert invoice_status(shop, invoice_id) == "past_due"
    assert subscription_status(shop, subscription_id) == "past_due"
    cycle = shop.cycle_of(invoice_id)
    assert (cycle.phase, cycle.outcome, cycle.next_run_at) == ("closed", "dunning_stopped", None)
    before = snapshot(shop, invoice_id)
    shop.run_days(20)
    assert snapshot(shop, invoice_id) == before
    assert set(messages(shop, invoice_id)) == {"d1:email", "d1:sms"}
    assert invoice_status(shop, invoice_id) == "past_due"
    assert subscription_status(shop, subscription_id) == "past_due"
    with pytest.raises(Conflict):
        shop.act(invoice_actions.stop_dunning, invoice_id)


def test_collect_now_charges_at_once_without_waiting_for_the_cadence(app: App) -> None:
    shop = Shop.create(app)
    _, invoice_id = failing_subscription(shop)
    shop.advance(0.25)  # the next scheduled retry is 18 hours away

    shop.act(invoice_actions.collect_now, invoice_id)
    shop.run()

    attempts = shop.attempts_of(invoice_id)
    assert [(a.attempt_no, a.created_at) for a in attempts][1:] == [(2, shop.now)]
    requested = events_of(shop, invoice_id=invoice_id, type="invoice.collection_requested")
    assert [e.data["reason"] for e in requested] == ["collect_now"]
    # The cadence then counts from this attempt.
    assert shop.cycle_of(invoice_id).next_run_at == shop.now + DAY


def test_a_promise_to_pay_moves_the_next_retry_to_the_promised_date(app: App) -> None:
    shop = Shop.create(app)
    _, invoice_id = failing_subscription(shop)
    start = shop.now
    promised = day_start(start, 6)

    at = shop.act(invoice_actions.promise_to_pay, invoice_id, promised)

    assert at == promised
    assert shop.cycle_of(invoice_id).retry_at == promised
    # Day 3: the step's messages go out on time, but its retry waits for the promise.
    shop.run_days(2)
    assert shop.now == day_start(start, 3)
    assert len(shop.attempts_of(invoice_id)) == 1
    sent = messages(shop, invoice_id)
    assert sent["d3:email"].created_at == shop.now
    assert shop.cycle_of(invoice_id).next_run_at == promised
    # Days 4-5: still no charge.
    shop.run_days(2)
    assert shop.now == day_start(start, 5)
    assert len(shop.attempts_of(invoice_id)) == 1
    # Day 6: the promised retry.
    shop.advance(1)
    shop.run()
    attempts = shop.attempts_of(invoice_id)
    assert [(a.attempt_no, a.created_at) for a in attempts][1:] == [(2, promised)]
    promises = events_of(shop, invoice_id=invoice_id, type="invoice.promise_to_pay")
    assert [e.data["retry_at"] for e in promises] == [promised.isoformat()]


def test_a_promise_to_pay_is_clamped_to_the_final_day_and_cannot_be_in_the_past(
    app: App,
) -> None:
    shop = Shop.create(app)
    _, invoice_id = failing_subscription(shop)
    start = shop.now

    at = shop.act(invoice_actions.promise_to_pay, invoice_id, start + 40 * DAY)
    assert at == day_start(start, 15)
    with pytest.raises(InvalidInput) as raised:
        shop.act(invoice_actions.promise_to_pay, invoice_id, start - DAY)
    assert raised.value.field == "date"


CLOSED_INVOICE_ACTIONS: dict[str, Callable[[Shop, int], Any]] = {
    "stop_collecting": lambda shop, i: shop.act(invoice_actions.stop_collecting, i),
    "mark_paid": lambda shop, i: shop.act(invoice_actions.mark_paid, i),
    "stop_dunning": lambda shop, i: shop.act(invoice_actions.stop_dunning, i),
    "collect_now": lambda shop, i: shop.act(invoice_actions.collect_now, i),
    "promise_to_pay": lambda shop, i: shop.act(
        invoice_actions.promise_to_pay, i, shop.now + 2 * DAY
    ),
}


@pytest.mark.parametrize("action", sorted(CLOSED_INVOICE_ACTIONS))
@pytest.mark.parametrize("closed_as", ["paid", "failed"])
def test_an_action_on_a_closed_invoice_is_a_conflict(app: App, action: str, closed_as: str) -> None:
    shop = Shop.create(app)
    _, invoice_id = failing_subscription(shop)
    close = invoice_actions.mark_paid if closed_as == "paid" else invoice_actions.stop_collecting
    shop.act(close, invoice_id)
    before = snapshot(shop, invoice_id), shop.cycle_of(invoice_id)

    with pytest.raises(Conflict):
        CLOSED_INVOICE_ACTIONS[action](shop, invoice_id)

    assert invoice_status(shop, invoice_id) == closed_as
    assert (snapshot(shop, invoice_id), shop.cycle_of(invoice_id)) == before


@pytest.mark.parametrize("action", sorted(CLOSED_INVOICE_ACTIONS))
def test_an_action_on_another_sites_invoice_is_not_found(app: App, action: str) -> None:
    ours = Shop.create(app, "ours")
    theirs = Shop.create(app, "theirs")
    _, their_invoice = failing_subscription(theirs)
    before = snapshot(theirs, their_invoice), theirs.cycle_of(their_invoice)

    with pytest.raises(NotFound):
        CLOSED_INVOICE_ACTIONS[action](ours, their_invoice)

    assert invoice_status(theirs, their_invoice) == "past_due"
    assert (snapshot(theirs, their_invoice), theirs.cycle_of(their_invoice)) == before


def test_reopen_and_load_do_not_find_another_sites_invoice(app: App) -> None:
    ours = Shop.create(app, "ours")
    theirs = Shop.create(app, "theirs")
    their_invoice = theirs.invoice(theirs.customer(), collection=Collection.MANUAL)
    with pytest.raises(NotFound):
        ours.act(invoice_actions.reopen, their_invoice)
    with app.connect() as conn, pytest.raises(NotFound):
        invoice_actions.load_invoice(conn, ours.site_id, their_invoice, lock=False)


# -- collection requests, the event log ----------------------------------------------------


def test_a_new_subscription_sends_the_customers_past_due_invoice_to_collection(
    app: App,
) -> None:
    shop = Shop.create(app)
    customer_id = shop.customer(INSUFFICIENT)
    old_subscription = shop.subscribe(customer_id)
    shop.run()
    invoice_id = shop.invoice_of(old_subscription).id
    shop.advance(0.5)  # half a day before the next scheduled retry

    shop.subscribe(customer_id)

    requested = events_of(shop, invoice_id=invoice_id, type="invoice.collection_requested")
    assert [(e.data["reason"], e.occurred_at) for e in requested] == [
        ("new_subscription", shop.now)
    ]
    assert shop.cycle_of(invoice_id).next_run_at == shop.now
    shop.run()
    attempts = shop.attempts_of(invoice_id)
    assert [(a.attempt_no, a.created_at) for a in attempts] == [
        (1, shop.now - timedelta(hours=12)),
        (2, shop.now),
    ]


@pytest.mark.parametrize("statement", ["update", "delete"])
def test_the_event_log_is_append_only(app: App, statement: str) -> None:
    shop = Shop.create(app)
    _, invoice_id = failing_subscription(shop)
    before = events_of(shop)
    assert before

    query = (
        update(tables.events).values(type="tampered")
        if statement == "update"
        else delete(tables.events)
    )
    with pytest.raises(SQLAlchemyError), app.begin() as conn:
        conn.execute(query.where(tables.events.c.invoice_id == invoice_id))

    assert events_of(shop) == before
    with app.connect() as conn:
        assert "tampered" not in conn.execute(select(tables.events.c.type)).scalars().all()


# -- renewals and test clocks ----------------------------------------------------------------


def test_a_monthly_subscription_started_on_the_31st_bills_once_a_month_on_its_anchor(
    app: App, clock: FixedClock
) -> None:
    clock.set(datetime(2026, 1, 31, 9, 0, tzinfo=UTC))  # the new site's test clock starts here
    shop = Shop.create(app)
    subscription_id = shop.subscribe(shop.customer(GOOD))

    shop.run_days(65)

    assert shop.now == datetime(2026, 4, 6, 9, 0, tzinfo=UTC)
    billed = shop.all(tables.invoices, subscription_id=subscription_id)
    assert [(i.period, i.issued_at, i.status) for i in billed] == [
        (0, datetime(2026, 1, 31, 9, 0, tzinfo=UTC), "paid"),
        (1, datetime(2026, 2, 28, 9, 0, tzinfo=UTC), "paid"),
        (2, datetime(2026, 3, 31, 9, 0, tzinfo=UTC), "paid"),
    ]
    assert [i.paid_at for i in billed] == [i.issued_at for i in billed]
    subscription = shop.one(tables.subscriptions, id=subscription_id)
    assert subscription.periods_billed == 3
    assert subscription.next_charge_at == datetime(2026, 4, 30, 9, 0, tzinfo=UTC)
    assert subscription.status == "active"


def test_a_future_start_is_billed_on_its_day_and_then_on_the_same_day_of_month(
    app: App,
) -> None:
    shop = Shop.create(app)
    starts = shop.now + 29 * DAY  # 2026-03-31
    assert starts.day == 31
    subscription_id = shop.subscribe(shop.customer(GOOD), starts_at=starts)

    shop.run_days(28)
    assert shop.all(tables.invoices, subscription_id=subscription_id) == []
    shop.run_days(32)  # to May 1st

    billed = shop.all(tables.invoices, subscription_id=subscription_id)
    assert [(i.period, i.issued_at.month, i.issued_at.day) for i in billed] == [
        (0, 3, 31),
        (1, 4, 30),
    ]
    assert {i.status for i in billed} == {"paid"}


def test_advancing_one_sites_test_clock_leaves_another_sites_invoices_alone(
    app: App,
) -> None:
    shop_a = Shop.create(app, "alpha")
    shop_b = Shop.create(app, "beta")
    b_customer = shop_b.customer(INSUFFICIENT)
    b_subscription = shop_b.subscribe(b_customer, starts_at=shop_b.now + 3 * DAY)
    b_manual = shop_b.invoice(b_customer, collection=Collection.MANUAL, net_terms_days=3)
    b_start = shop_b.now

    shop_a.advance(10)
    shop_a.run()
    shop_b.run()

    assert shop_a.now == b_start + 10 * DAY
    assert shop_b.now == b_start
    assert shop_b.all(tables.invoices, subscription_id=b_subscription) == []
    assert invoice_status(shop_b, b_manual) == "open"
    assert shop_b.cycle_of(b_manual).phase == "initial"

    shop_b.advance(3)
    shop_b.run()
    assert shop_b.invoice_of(b_subscription).status == "past_due"
    assert invoice_status(shop_b, b_manual) == "past_due"
