"""Property: whatever the customers, clocks, opt-outs and schedules, no text is
ever handed to a transport for an opted-out number, outside the send window
in the customer's local time, over the frequency cap, or without the credits
to pay for it.

Hypothesis builds a site with random settings, customers (numbers in several
zones, some with their own zone), opt-outs, credits and a schedule of due
texts; the real worker then runs over two simulated days on the site's test
clock, and a recording transport checks every text at the moment it is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, update

from dunwell.bootstrap import App
from dunwell.channels.base import SendResult, SmsMessage
from dunwell.channels.sandbox import SandboxPhone
from dunwell.domain.compliance import local_zone
from dunwell.messaging.phones import phone_time_zone
from dunwell.services import ledger, sms_credits
from dunwell.services.inbound_sms import InboundSms, receive_sms
from dunwell.services.sites import advance_clock, create_site, site_now
from dunwell.services.sms_settings import load_sms_settings, update_sms_settings
from dunwell.store import tables
from dunwell.worker import Worker

NUMBERS = ["+14155552671", "+12125550143", "+33612345678", "+447400123456", "+61412345678"]
ZONES = [None, "America/Chicago", "Asia/Kolkata", "Europe/Berlin", "Pacific/Auckland"]


@dataclass
class Sent:
    site_id: int
    to: str
    at: datetime


class RecordingPhone(SandboxPhone):
    """The sandbox phone, checking each text against the rules as it is sent."""

    def __init__(self, app: App, site_id: int, log: list[Sent]) -> None:
        super().__init__(app.engine, site_id, app.clock.now)
        self.app, self.site_id, self.log = app, site_id, log

    def send(self, message: SmsMessage) -> SendResult:
        with self.app.connect() as conn:
            now = site_now(conn, self.site_id, self.app.clock)
        self.log.append(Sent(self.site_id, message.to, now))
        return super().send(message)


scenario = st.fixed_dictionaries(
    {
        "start_hour": st.integers(0, 23),
        "window": st.sampled_from([("08:00", "20:30"), ("09:00", "17:00"), ("08:00", "21:00")]),
        "cap": st.integers(1, 3),
        "credits": st.integers(0, 8),
        "customers": st.lists(
            st.tuples(
                st.sampled_from(NUMBERS),
                st.sampled_from(ZONES),
                st.booleans(),  # opted out before the run
                st.lists(st.integers(0, 47), min_size=1, max_size=5),  # hours texts fall due
                st.sampled_from(["transactional", "transactional", "marketing"]),
            ),
            min_size=1,
            max_size=4,
            unique_by=lambda c: c[0],
        ),
        "stop_at_hour": st.none() | st.integers(0, 47),
    }
)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=scenario)
def test_no_text_ever_breaks_opt_out_window_cap_or_credits(app: App, case: dict[str, Any]) -> None:
    start = datetime(2026, 3, 2, case["start_hour"], tzinfo=UTC)
    site_id, customers = _build(app, case, start)
    log: list[Sent] = []
    app.channels.register_sms("sandbox", lambda site, _c: RecordingPhone(app, site, log))
    worker = Worker(app, name="property")
    stopped: dict[str, datetime] = {}
    for hour in range(49):
        if case["stop_at_hour"] == hour:
            phone = case["customers"][0][0]
            with app.begin() as conn:
                receive_sms(
                    conn,
                    InboundSms(site_id, "sandbox", f"SB{hour}{site_id}", phone, None, "STOP"),
                    _now(app, site_id),
                )
            stopped[phone] = _now(app, site_id)
        worker.run_until_idle()
        with app.begin() as conn:
            advance_clock(conn, site_id, timedelta(hours=1))
    # Examples share one database; earlier sites' texts may still fall due.
    ours = [sent for sent in log if sent.site_id == site_id]
    _check(app, site_id, case, customers, ours, stopped)


def _now(app: App, site_id: int) -> datetime:
    with app.connect() as conn:
        return site_now(conn, site_id, app.clock)


def _build(app: App, case: dict[str, Any], start: datetime) -> tuple[int, dict[str, Any]]:
    with app.begin() as conn:
        n = conn.execute(select(tables.sites.c.id)).scalars().all()
        site_id = create_site(conn, app.clock, slug=f"p{len(n)}", name="Prop", clock_start=start)
        update_sms_settings(
            conn,
            site_id,
            {
                "window_start": case["window"][0],
                "window_end": case["window"][1],
                "frequency_cap": case["cap"],
            },
            start,
        )
        sms_credits.balances(conn, [site_id], start)
        conn.execute(
            update(tables.sms_credits)
            .where(tables.sms_credits.c.site_id == site_id)
            .values(balance=case["credits"])
        )
        customers = {}
        for i, (phone, zone, opted_out, hours, kind) in enumerate(case["customers"]):
            cid = ledger.create_customer(
                conn,
                site_id,
                ledger.NewCustomer(first_name=f"C{i}", phone=phone, time_zone=zone),
                start,
            )
            customers[phone] = (cid, zone)
            if opted_out:
                receive_sms(
                    conn,
                    InboundSms(site_id, "sandbox", f"SBpre{site_id}{i}", phone, None, "STOP"),
                    start,
                )
            conn.execute(
                insert(tables.outbox),
                [
                    {
                        "site_id": site_id,
                        "channel": "sms",
                        "dedupe_key": f"p{site_id}:{i}:{j}",
                        "customer_id": cid,
                        "template": "payment_declined",
                        "payload": {},
                        "status": "pending",
                        "attempts": 0,
                        "kind": kind,
                        "next_attempt_at": start + timedelta(hours=h),
                        "created_at": start,
                        "recipient": phone,
                        "body_text": "Pay now. Reply STOP to opt out",
                        "segments": 1,
                        "encoding": "GSM-7",
                    }
                    for j, h in enumerate(hours)
                ],
            )
    return site_id, customers


def _check(
    app: App,
    site_id: int,
    case: dict[str, Any],
    customers: dict[str, Any],
    log: list[Sent],
    stopped: dict[str, datetime],
) -> None:
    with app.connect() as conn:
        s = load_sms_settings(conn, [site_id])[site_id]
    opted_out_before = {c[0] for c in case["customers"] if c[2]}
    marketing = {c[0] for c in case["customers"] if c[4] == "marketing"}
    assert len(log) <= case["credits"], "more texts than credits"
    for sent in log:
        assert sent.to not in opted_out_before, "text to an opted-out number"
        assert sent.to not in marketing, "marketing text without marketing consent"
        assert sent.to not in stopped or sent.at < stopped[sent.to], "text after STOP"
        zone = local_zone(customers[sent.to][1], phone_time_zone(sent.to), "UTC")
        local = sent.at.astimezone(zone).time()
        assert s.window.start <= local < s.window.end, f"text at {local} local"
        recent = [
            o for o in log if o.to == sent.to and sent.at - timedelta(hours=24) < o.at <= sent.at
        ]
        assert len(recent) <= case["cap"], "over the frequency cap"
    with app.connect() as conn:
        balance = conn.execute(
            select(tables.sms_credits.c.balance).where(tables.sms_credits.c.site_id == site_id)
        ).scalar_one()
    assert balance == case["credits"] - len(log)
