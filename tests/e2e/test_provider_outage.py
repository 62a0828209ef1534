"""SMTP and Twilio fail for a while under a running worker; every message still goes once.

Two identical shops send their dunning emails through a real SMTP server
(aiosmtpd) and their texts through the real Twilio SDK to a local server
that speaks Twilio's API. One shop's providers always answer. The other's
refuse for a while: SMTP answers 451 and 421, then goes down altogether
(connection refused) and comes back on the same port; Twilio answers 500,
429 and 503. The long-running worker keeps going and retries on its
schedule as the test clock passes each retry delay; at the end the servers
have received every email and text exactly once, and the shop is in the
state of the shop whose providers never failed (its attempt log aside).

Each day the clock stops at the day's start and again 1, 6, 21 and 81
minutes later, where the first four retry delays fall, in both shops.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from dunwell.bootstrap import bootstrap
from dunwell.services.channel_config import save_channel_config
from dunwell.services.delivery import RETRY_DELAYS
from dunwell.settings import Settings
from dunwell.store import tables
from tests.e2e.dunning_runs import (
    Run,
    assert_each_charge_made_once,
    assert_each_message_written_once,
    assert_same_end_state,
    build_shop,
    polling_run,
    snapshot,
)
from tests.integration.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, FakeTwilioServer
from tests.integration.smtp_server import SmtpServer

SECRET = "e2e-secret-key"
SUBSCRIBERS = 90
DAYS = 5
#: Where the clock stops within a day: the day's start, then each of the
#: first retry delays after the one before.
STEPS = (timedelta(0), *RETRY_DELAYS[:4])
LEASE_SECONDS = 1


class RestartableSmtpServer(SmtpServer):
    """An SMTP server that can go down and come back on the same port.

    What it received before going down is kept, so counting by Message-ID
    covers the whole run.
    """

    running = False

    def start(self) -> RestartableSmtpServer:
        super().start()
        self.running = True
        return self

    def __enter__(self) -> RestartableSmtpServer:
        return self.start()

    def stop(self) -> None:
        # Also called on leaving the ``with`` block, maybe while it is down.
        if self.running:
            super().stop()
            self.running = False

    def restart(self) -> None:
        # aiosmtpd closes its event loop when it stops; listening again on
        # the port it had needs a fresh one.
        self._controller.loop = asyncio.new_event_loop()
        self.start()


@dataclass
class Providers:
    smtp: RestartableSmtpServer
    twilio: FakeTwilioServer

    def twilio_down(self, status: int, code: int | None = None) -> None:
        """Answer every send with this error until :meth:`twilio_up`."""
        self.twilio_up()
        self.twilio.fail_next(100_000, status=status, code=code)

    def twilio_up(self) -> None:
        with self.twilio.fake.lock:
            self.twilio.fake.upcoming.clear()


@contextmanager
def providers() -> Iterator[Providers]:
    with RestartableSmtpServer() as smtp, FakeTwilioServer() as twilio:
        yield Providers(smtp, twilio)


def configure(url: str, site_id: int, found: Providers) -> None:
    """Send the site's email through the SMTP server and its texts through Twilio."""
    app = bootstrap(Settings(database_url=url, secret_key=SECRET))
    with app.begin() as conn:
        now = conn.execute(select(tables.sites.c.clock_now)).scalar_one()
        email = {
            "host": found.smtp.host,
            "port": found.smtp.port,
            "security": "none",
            "from_addr": "billing@shop.example",
        }
        sms = {"account_sid": ACCOUNT_SID, "from_number": FROM_NUMBER}
        box = app.secret_box()
        save_channel_config(conn, site_id, "email", "smtp", email, None, box, now)
        save_channel_config(conn, site_id, "sms", "twilio", sms, AUTH_TOKEN, box, now)
    app.close()


#: (day, step) -> what happens to the providers just before the clock gets there.
Outages = dict[tuple[int, int], Callable[[Providers], None]]


def smtp_refuses_and_twilio_errs(found: Providers) -> None:
    found.smtp.fail_next("RCPT", 451, times=6)
    found.smtp.fail_next("DATA", 421, times=3)
    found.twilio.fail_next(4, status=500)
    found.twilio.fail_next(3, status=429, code=20429)


def both_down(found: Providers) -> None:
    found.smtp.stop()
    found.twilio_down(429, 20429)


def both_back(found: Providers) -> None:
    found.smtp.restart()
    found.twilio_up()


OUTAGES: Outages = {
    (1, 0): smtp_refuses_and_twilio_errs,
    (2, 0): both_down,  # down at the day's start and at its first retry
    (2, 2): both_back,
    (3, 0): lambda found: found.twilio_down(503),
    (3, 1): lambda found: found.twilio_up(),
}


def work_days(run: Run, found: Providers, outages: Outages) -> list[int]:
    """Move the clock through every day's steps; returns, per step, how many
    messages waited for a retry once the worker was done with the step."""
    waiting = []
    for day in range(DAYS):
        for step, by in enumerate(STEPS):
            if (day, step) in outages:
                outages[day, step](found)
            if day or step:
                run.advance(by if step else timedelta(days=1) - sum(STEPS, timedelta(0)))
            run.finish()
            waiting.append(retrying(run.url))
    return waiting


def retrying(url: str) -> int:
    """Messages that failed and wait, not yet due, for their next attempt."""
    o, now = tables.outbox, tables.sites.c.clock_now
    app = bootstrap(Settings(database_url=url))
    with app.connect() as conn:
        rows = conn.execute(
            select(o.c.id)
            .join(tables.sites)
            .where(o.c.status == "pending", o.c.last_error.is_not(None), o.c.next_attempt_at > now)
        ).all()
    app.close()
    return len(rows)


def run_shop(url: str, site_id: int, log: Path, outages: Outages) -> tuple[Providers, list[int]]:
    """Work the shop to its end with one long-running worker; return its providers
    (stopped, with what they received) and the retries waiting after each step."""
    with providers() as found:
        configure(url, site_id, found)
        run = polling_run(
            url,
            site_id,
            log,
            LEASE_SECONDS,
            secret_key=SECRET,
            twilio_api_base=found.twilio.url,
        )
        try:
            run.start_worker()
            worker = run.worker
            waiting = work_days(run, found, outages)
            assert run.worker is worker, "the worker was never restarted"
            # The same process is still running: it rode out the outages rather than died.
            run.assert_worker_alive()
            assert run.stop_worker() == 0, run.log_text()
        finally:
            run.close()
    return found, waiting


def sent_messages(url: str) -> list[tuple[str, str, str | None]]:
    o = tables.outbox
    app = bootstrap(Settings(database_url=url))
    with app.connect() as conn:
        rows = conn.execute(
            select(o.c.channel, o.c.recipient, o.c.body_text, o.c.site_id, o.c.id).where(
                o.c.status == "sent"
            )
        ).all()
    app.close()
    return [
        (r.channel, r.recipient, f"<outbox-{r.id}.site-{r.site_id}@shop.example>")
        if r.channel == "email"
        else (r.channel, r.recipient, r.body_text)
        for r in rows
    ]


def attempt_outcomes(url: str) -> Counter[tuple[str, str | None]]:
    a = tables.message_attempts
    app = bootstrap(Settings(database_url=url))
    with app.connect() as conn:
        rows = conn.execute(select(a.c.outcome, a.c.error_code)).all()
    app.close()
    return Counter((r.outcome, r.error_code) for r in rows)


@pytest.mark.slow
def test_every_email_and_text_goes_out_once_through_provider_outages(tmp_path: Path) -> None:
    calm_url = f"sqlite:///{tmp_path / 'calm.db'}"
    outage_url = f"sqlite:///{tmp_path / 'outage.db'}"
    site_id = build_shop(calm_url, SUBSCRIBERS, contacts=True, secret_key=SECRET)
    assert build_shop(outage_url, SUBSCRIBERS, contacts=True, secret_key=SECRET) == site_id

    run_shop(calm_url, site_id, tmp_path / "calm.log", {})
    found, waiting = run_shop(outage_url, site_id, tmp_path / "outage.log", OUTAGES)

    expected, got = snapshot(calm_url), snapshot(outage_url)
    assert_same_end_state(expected, got, "provider outages")
    assert_each_charge_made_once(got)
    assert_each_message_written_once(got)
    # Each email reached the SMTP server once, under its own Message-ID;
    # each text reached Twilio once.
    sent = sent_messages(outage_url)
    received_mail = Counter(m.message["Message-ID"] for m in found.smtp.messages)
    assert received_mail == Counter(key for channel, _, key in sent if channel == "email")
    received_texts = Counter((m.to, m.body) for m in found.twilio.messages)
    assert received_texts == Counter((to, body) for channel, to, body in sent if channel == "sms")
    assert len(received_mail) > 50 and len(received_texts) > 30
    # The outages were felt, the failures were waited out rather than
    # retried at once, and none was taken for a permanent one.
    outcomes = attempt_outcomes(outage_url)
    transient = {code for (outcome, code), _ in outcomes.items() if outcome == "transient"}
    assert transient == {"smtp-451", "smtp-421", "smtp-connect", "http-500", "20429", "http-503"}
    assert not any(outcome == "permanent" for outcome, _ in outcomes)
    assert max(waiting) > 10 and waiting[-1] == 0
    assert all(outcome == "sent" for outcome, _ in attempt_outcomes(calm_url))
