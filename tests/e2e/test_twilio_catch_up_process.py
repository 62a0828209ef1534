"""A STOP texted while the server was down is found in Twilio's log by a real worker process.

No server runs while the customer texts: the webhook has nowhere to go,
and Twilio (a local server speaking its API, reached through the real
SDK) keeps the text in its message log only. ``dunwell worker`` then
reads the site's inbox back and applies the STOP.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from dunwell.bootstrap import bootstrap
from dunwell.clock import SystemClock
from dunwell.domain.states import SiteMode
from dunwell.services.sites import create_site
from dunwell.settings import Settings
from dunwell.store import tables
from tests.e2e.conftest import Cli
from tests.integration.fake_twilio import FakeTwilioServer, save_fake_twilio

CUSTOMER = "+447400123456"


def test_a_worker_process_stores_a_stop_whose_webhook_never_came(cli: Cli) -> None:
    url = cli.env["DUNWELL_DATABASE_URL"]
    app = bootstrap(Settings(database_url=url, secret_key=cli.env["DUNWELL_SECRET_KEY"]))
    now = datetime.now(UTC)
    with FakeTwilioServer() as twilio:
        with app.begin() as conn:
            site_id = create_site(conn, SystemClock(), slug="shop", name="Shop", mode=SiteMode.LIVE)
            save_fake_twilio(conn, site_id, app.secret_box(), now)
            # The site was last read ten minutes ago, and is due now.
            conn.execute(
                tables.twilio_catch_up.insert().values(
                    site_id=site_id,
                    synced_until=now - timedelta(minutes=10),
                    next_check_at=now,
                    updated_at=now,
                )
            )
        stop = twilio.receive(CUSTOMER, "STOP", at=now - timedelta(minutes=5))
        cli.env["DUNWELL_TWILIO_API_BASE"] = twilio.url
        cli("worker", "--until-idle")
    with app.connect() as conn:
        stored = conn.execute(select(tables.inbound_messages)).all()
        opt_out = conn.execute(select(tables.sms_opt_outs)).one()
        reading = conn.execute(select(tables.twilio_catch_up)).one()
    app.close()
    assert [(t.provider_sid, t.keyword) for t in stored] == [(stop.sid, "opt_out")]
    assert (opt_out.phone, opt_out.opted_out) == (CUSTOMER, True)
    assert reading.last_error is None and reading.synced_until > now - timedelta(minutes=3)
