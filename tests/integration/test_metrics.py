"""``GET /metrics``: Prometheus text that parses, and figures that follow the real worker."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from dunwell.api.routes_metrics import render
from dunwell.bootstrap import App
from dunwell.channels.base import EmailMessage, SendResult, TransportError
from dunwell.clock import FixedClock
from dunwell.services import sms_credits
from dunwell.services.collection import process_due_cycles
from dunwell.services.message_render import MessageRenderer
from dunwell.services.messages import resend_message
from dunwell.services.metrics import Metric
from dunwell.store import tables
from tests.conftest import START
from tests.integration.factories import GOOD, INSUFFICIENT, Shop

UK_MOBILE = "+447400123456"
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(rf"^({NAME})(?:\{{(.*)\}})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
COMMENT = re.compile(rf"^# (HELP|TYPE) ({NAME}) (.*)$")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """A strict reader of the 0.0.4 text format: every line must be understood.

    Each sample's family must have been announced by ``# HELP`` and
    ``# TYPE`` first, as Prometheus expects.
    """
    assert text.endswith("\n")
    announced: dict[str, set[str]] = {}
    samples: Samples = {}
    for line in text.splitlines():
        if comment := COMMENT.match(line):
            announced.setdefault(comment[2], set()).add(comment[1])
            continue
        sample = SAMPLE.match(line)
        assert sample, f"not a sample line: {line!r}"
        name, inner, value = sample.groups()
        family = re.sub(r"_(sum|count|bucket)$", "", name)
        assert announced.get(family) == {"HELP", "TYPE"}, f"{name} sampled before HELP/TYPE"
        key = (name, frozenset(_labels(inner or "").items()))
        assert key not in samples, f"duplicate sample {key}"
        samples[key] = float(value)
    return samples


def _labels(inner: str) -> dict[str, str]:
    found = list(LABEL.finditer(inner))
    assert "".join(m[0] for m in found) == inner, f"bad labels: {inner!r}"
    unescape = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}
    return {m[1]: re.sub(r"\\[\\\"n]", lambda e: unescape[e[0]], m[2]) for m in found}


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


class RefusingMailbox:
    """An email transport whose relay refuses every message for good."""

    @contextmanager
    def session(self) -> Iterator[RefusingMailbox]:
        yield self

    def send(self, message: EmailMessage) -> SendResult:
        raise TransportError("mailbox unavailable", permanent=True, code="550")


def test_the_endpoint_answers_prometheus_text_that_parses_line_by_line(
    shop: Shop, client: TestClient
) -> None:
    shop.subscribe(shop.customer(INSUFFICIENT, phone=UK_MOBILE))
    shop.run()
    samples = scrape(client)
    names = {name for name, _ in samples}
    assert {
        "dunwell_cycles_due",
        "dunwell_subscriptions_due",
        "dunwell_outbox_pending",
        "dunwell_outbox_failed_total",
        "dunwell_outbox_messages",
        "dunwell_webhook_deliveries_pending",
        "dunwell_inbound_texts_waiting",
        "dunwell_escalations_pending",
        "dunwell_twilio_catch_up_failing",
        "dunwell_sms_credits",
        "dunwell_sms_sender_queue_seconds",
        "dunwell_delivery_latency_seconds",
        "dunwell_payment_attempts_total",
        "dunwell_invoices",
    } <= names
    # Known label values are present at zero, so alerts never see a missing series.
    assert value(samples, "dunwell_outbox_pending", channel="sms") == 0
    assert value(samples, "dunwell_payment_attempts_total", status="error") == 0


def test_the_figures_follow_the_worker_through_a_renewal_a_decline_and_a_retry(
    shop: Shop, client: TestClient
) -> None:
    shop.subscribe(shop.customer(GOOD))
    declining = shop.subscribe(shop.customer(INSUFFICIENT, phone=UK_MOBILE))
    with shop.app.begin() as conn:
        sms_credits.top_up(conn, shop.site_id, 50, shop.now)
    before = scrape(client)
    assert value(before, "dunwell_subscriptions_due") == 2
    assert value(before, "dunwell_payment_attempts_total", status="declined") == 0
    assert value(before, "dunwell_invoices", status="paid") == 0
    credits = value(before, "dunwell_sms_credits", site="shop")

    shop.run()
    after = scrape(client)
    assert value(after, "dunwell_subscriptions_due") == 0
    assert value(after, "dunwell_cycles_due") == 0
    assert value(after, "dunwell_payment_attempts_total", status="succeeded") == 1
    assert value(after, "dunwell_payment_attempts_total", status="declined") == 1
    assert value(after, "dunwell_invoices", status="paid") == 1
    assert value(after, "dunwell_invoices", status="past_due") == 1
    assert value(after, "dunwell_outbox_messages", channel="email", status="delivered") == 1
    assert value(after, "dunwell_outbox_messages", channel="sms", status="delivered") == 1
    assert value(after, "dunwell_outbox_pending", channel="email") == 0
    assert value(after, "dunwell_sms_credits", site="shop") < credits
    # One text handed to a sender of one segment a second, on a clock that stands still.
    (text,) = [m for m in shop.all(tables.outbox, channel="sms")]
    assert value(after, "dunwell_sms_sender_queue_seconds", site="shop") == text.segments

    retry_at = shop.cycle_of(shop.invoice_of(declining).id).next_run_at
    shop.advance((retry_at - shop.now) / timedelta(days=1))
    assert value(scrape(client), "dunwell_cycles_due") == 1
    shop.run()
    retried = scrape(client)
    assert value(retried, "dunwell_cycles_due") == 0
    assert value(retried, "dunwell_sms_sender_queue_seconds", site="shop") == 0  # long left
    assert value(retried, "dunwell_payment_attempts_total", status="declined") == 2


def test_a_failed_message_is_counted_and_a_resend_never_lowers_the_total(
    app: App, shop: Shop, client: TestClient
) -> None:
    app.channels.register_email("sandbox", lambda _site, _config: RefusingMailbox())
    invoice = shop.invoice(shop.customer(INSUFFICIENT))
    shop.run()
    samples = scrape(client)
    assert value(samples, "dunwell_outbox_failed_total", channel="email") == 1
    assert value(samples, "dunwell_outbox_messages", channel="email", status="failed") == 1

    (email,) = [m for m in shop.outbox_of(invoice) if m.channel == "email"]
    with app.begin() as conn:
        resend_message(conn, shop.site_id, email.id, MessageRenderer(app.links), shop.now)
    resent = scrape(client)
    assert value(resent, "dunwell_outbox_messages", channel="email", status="failed") == 0
    assert value(resent, "dunwell_outbox_pending", channel="email") == 1
    assert value(resent, "dunwell_outbox_failed_total", channel="email") == 1

    shop.run()
    assert value(scrape(client), "dunwell_outbox_failed_total", channel="email") == 2


def test_delivery_latency_is_the_wait_from_due_to_sent_over_the_last_hour(
    app: App, shop: Shop, clock: FixedClock, client: TestClient
) -> None:
    # Latency is measured on real time only: take the site off its test clock.
    with app.begin() as conn:
        conn.execute(
            update(tables.sites).where(tables.sites.c.id == shop.site_id).values(clock_now=None)
        )
    shop.invoice(shop.customer(INSUFFICIENT))
    process_due_cycles(app, "test", 10)  # the dunning email is now due, not yet sent
    assert value(scrape(client), "dunwell_outbox_pending", channel="email") == 1

    clock.set(START + timedelta(seconds=90))
    shop.run()
    samples = scrape(client)
    for q in ("0.5", "0.9", "0.99"):
        assert value(samples, "dunwell_delivery_latency_seconds", quantile=q) == 90

    clock.set(START + timedelta(hours=2))
    later = scrape(client)
    assert math.isnan(value(later, "dunwell_delivery_latency_seconds", quantile="0.5"))


def test_a_metrics_token_when_set_is_required_as_a_bearer_token(
    app: App, client: TestClient
) -> None:
    assert client.get("/metrics").status_code == 200
    app.settings = replace(app.settings, metrics_token="scrape-me")
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert scrape(client, Authorization="Bearer scrape-me")


def test_label_values_are_escaped_so_quotes_backslashes_and_newlines_survive() -> None:
    awkward = 'say "hi"\\bye\nnow'
    text = render([Metric("x_total", "counter", "help\\with\nlines", [({"v": awkward}, 2.5)])])
    assert value(parse(text), "x_total", v=awkward) == 2.5
    assert "# HELP x_total help\\\\with\\nlines\n" in text
