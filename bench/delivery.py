"""Outbox delivery throughput against local servers; prints one JSON object.

    python bench/delivery.py [--messages 2000] [--concurrency 8]
                             [--provider-latency-ms 0] [--provider-connection-limit N]
                             [--database-url URL] [--json]

For each transport (the sandbox mailbox and phone, SMTP to an aiosmtpd
server on loopback, the real ``twilio`` SDK to a local server speaking
Twilio's API) it queues N rendered messages and times the real delivery
worker until the outbox is empty. SMS go through the compliance gate
(window, cap, opt-out, credits) like any other. Then it writes N events an
endpoint asked for and times the webhook worker until every delivery has
reached a local receiver, which verifies each signature as a merchant's
would (``webhooks``).

``--concurrency`` is the worker's ``delivery_concurrency`` (lanes per site
and channel for SMTP and Twilio) and its ``webhook_concurrency``.
``--provider-latency-ms`` makes the local relay, Twilio and the webhook
receiver wait that long before answering each message, as real ones do
(tens to hundreds of milliseconds), so the figure shows what the worker
does while it waits; 0 measures the worker's own cost per message.
``--provider-connection-limit`` makes the relay greet connections beyond
that many at once with "421", and Twilio answer requests beyond that many
with 429, as providers with such limits do.

Messages still waiting when nothing more is due (a transient error puts
them a minute away) are listed under ``undelivered``, and the script then
exits with an error after printing.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Table, func, insert, select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the local test servers live under tests/

from tests.integration.fake_twilio import (  # noqa: E402
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    FakeTwilioServer,
)
from tests.integration.smtp_server import SmtpServer  # noqa: E402
from tests.integration.webhook_receiver import Receiver  # noqa: E402

from dunwell.bootstrap import App, bootstrap  # noqa: E402
from dunwell.channels.registry import ChannelRegistry, TransportOptions  # noqa: E402
from dunwell.services import sms_credits  # noqa: E402
from dunwell.services.channel_config import save_channel_config  # noqa: E402
from dunwell.services.delivery import deliver_due_messages  # noqa: E402
from dunwell.services.events import EventBatch  # noqa: E402
from dunwell.services.sites import create_site  # noqa: E402
from dunwell.services.webhook_delivery import deliver_due_webhooks  # noqa: E402
from dunwell.services.webhook_endpoints import create_endpoint  # noqa: E402
from dunwell.settings import Settings  # noqa: E402
from dunwell.store import tables  # noqa: E402
from dunwell.store.migrate import upgrade  # noqa: E402

# Midday UTC: inside the send window of the UK numbers used.
NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def queue(app: App, slug: str, count: int, channel: str) -> int:
    with app.begin() as conn:
        site_id = create_site(conn, app.clock, slug=slug, name=slug, clock_start=NOON)
        sms_credits.top_up(conn, site_id, count * 2, NOON)
        rows: list[dict[str, Any]] = []
        for n in range(count):
            sms = channel == "sms"
            rows.append(
                {
                    "site_id": site_id,
                    "channel": channel,
                    "dedupe_key": f"{slug}:{n}",
                    "customer_id": None,
                    "template": "payment_declined",
                    "payload": {},
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": NOON,
                    "created_at": NOON,
                    "recipient": f"+4474{n:08d}" if sms else f"c{n}@bench.example",
                    "subject": None if sms else "Your payment failed",
                    "body_text": "Your payment of $49.00 was declined. Reply STOP to opt out",
                    "segments": 1 if sms else None,
                }
            )
        conn.execute(insert(tables.outbox), rows)
    return site_id


def drain(
    app: App,
    site_id: int,
    count: int,
    deliver: Callable[[App, str, int], int] = deliver_due_messages,
    table: Table = tables.outbox,
    done: tuple[str, ...] = ("sent", "delivered"),
) -> dict[str, Any]:
    """Deliver until nothing is due; the time, the rate, and what was left undelivered.

    ``deliver`` runs one batch of the worker's (messages by default, or
    webhooks), and ``table`` holds its rows, finished once in a ``done`` status.
    """
    started = time.perf_counter()
    while deliver(app, "bench", app.settings.delivery_batch_size):
        pass
    elapsed = time.perf_counter() - started
    with app.connect() as conn:
        left = conn.execute(
            select(table.c.status, table.c.last_error, func.count())
            .where(table.c.site_id == site_id, table.c.status.not_in(done))
            .group_by(table.c.status, table.c.last_error)
        ).all()
    figures: dict[str, Any] = {"seconds": round(elapsed, 3), "per_s": round(count / elapsed)}
    if left:
        # Waiting for a retry (a transient error) counts against the run:
        # main() prints the figures and then fails.
        figures["undelivered"] = {f"{status}: {error}": n for status, error, n in left}
    return figures


def webhooks(app: App, count: int, latency_ms: float) -> dict[str, Any]:
    """``count`` events to one endpoint on loopback, delivered by the webhook worker."""
    with Receiver().running() as receiver:
        receiver.delay = latency_ms / 1000
        with app.begin() as conn:
            site_id = create_site(conn, app.clock, slug="webhooks", name="Hooks", clock_start=NOON)
        endpoint = create_endpoint(app, site_id, url=receiver.url, events=["sms.opted_out"])
        receiver.secret = endpoint["secret"]
        batch = EventBatch()
        for n in range(count):
            batch.add(site_id, "sms.opted_out", NOON, phone=f"+4474{n:08d}", keyword="STOP")
        with app.begin() as conn:
            batch.write(conn)
        figures = drain(
            app, site_id, count, deliver_due_webhooks, tables.webhook_deliveries, ("delivered",)
        )
        figures["received"] = len(receiver.verified())
        figures["most_at_once"] = receiver.most_in_flight
    return figures


def run(
    url: str, count: int, concurrency: int, latency_ms: float, connection_limit: int | None
) -> dict[str, Any]:
    settings = Settings(database_url=url, secret_key="bench-secret")
    app = bootstrap(
        replace(settings, delivery_concurrency=concurrency, webhook_concurrency=concurrency)
    )
    upgrade(app.engine)
    results: dict[str, Any] = {
        "messages": count,
        "database": app.engine.dialect.name,
        "concurrency": concurrency,
        "provider_latency_ms": latency_ms,
        "provider_connection_limit": connection_limit,
    }
    for name, channel in (("sandbox_email", "email"), ("sandbox_sms", "sms")):
        results[name] = drain(app, queue(app, name.replace("_", "-"), count, channel), count)
    with SmtpServer() as smtp:
        smtp.delay = latency_ms / 1000
        smtp.max_connections = connection_limit
        site = queue(app, "smtp", count, "email")
        with app.begin() as conn:
            save_channel_config(
                conn,
                site,
                "email",
                "smtp",
                {
                    "host": "127.0.0.1",
                    "port": smtp.port,
                    "security": "none",
                    "from_addr": "billing@bench.example",
                },
                None,
                app.secret_box(),
                NOON,
            )
        results["smtp"] = drain(app, site, count)
        results["smtp"]["received"] = len(smtp.messages)
        results["smtp"]["turned_away"] = smtp.turned_away
    with FakeTwilioServer() as twilio:
        twilio.fake.delay = latency_ms / 1000
        twilio.fake.max_in_flight = connection_limit
        app.channels = ChannelRegistry(
            app.engine, app.clock.now, TransportOptions(twilio_api_base=twilio.url)
        )
        site = queue(app, "twilio", count, "sms")
        with app.begin() as conn:
            save_channel_config(
                conn,
                site,
                "sms",
                "twilio",
                {"account_sid": ACCOUNT_SID, "from_number": FROM_NUMBER},
                AUTH_TOKEN,
                app.secret_box(),
                NOON,
            )
        results["twilio"] = drain(app, site, count)
        results["twilio"]["received"] = len(twilio.messages)
        results["twilio"]["most_at_once"] = twilio.fake.most_in_flight
        results["twilio"]["turned_away"] = twilio.fake.turned_away
    results["webhooks"] = webhooks(app, count, latency_ms)
    app.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=Settings().delivery_concurrency)
    parser.add_argument("--provider-latency-ms", type=float, default=0.0)
    parser.add_argument(
        "--provider-connection-limit",
        type=int,
        default=None,
        help="the relay's connections, and Twilio's requests, allowed at once",
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", action="store_true", help="print JSON only (the default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        results = run(
            url,
            args.messages,
            args.concurrency,
            args.provider_latency_ms,
            args.provider_connection_limit,
        )
    print(json.dumps(results))
    if any("undelivered" in figures for figures in results.values() if isinstance(figures, dict)):
        raise SystemExit("some messages were not delivered: see 'undelivered'")


if __name__ == "__main__":
    main()
