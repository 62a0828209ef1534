"""The dashboard's settings page: email and SMS providers, SMS rules, credits, concierge, roles."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, update

from dunwell.bootstrap import App
from dunwell.security.secrets import SecretBox
from dunwell.services import message_preview
from dunwell.services.channel_config import load_channel_configs
from dunwell.services.concierge_settings import load_concierge_settings, load_helpdesk_key
from dunwell.services.sites import site_now
from dunwell.services.sms_credits import balances
from dunwell.services.sms_settings import load_sms_settings, settings_to_dict
from dunwell.store import tables
from tests.integration.console_helpers import assert_refused_for_the_role, signed_in_as
from tests.integration.factories import INSUFFICIENT, Shop
from tests.integration.refused_notes import POSTABLE
from tests.integration.smtp_server import SmtpServer

PAGE = "/dashboard/settings"
SID = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token-9f8e7d6c"
PASSWORD = " smtp-password-4b3a"  # the leading space is part of it


def _sms_form(csrf: str, **changes: str | None) -> dict[str, str]:
    """The SMS rules form as the page posts it; a change of None leaves a box unticked."""
    form: dict[str, str | None] = {
        "csrf": csrf,
        "enabled": "on",
        "smart_encoding": "on",
        "window_start": "08:00",
        "window_end": "20:30",
        "frequency_cap": "3",
        "sender_segments_per_second": "1",
        "default_region": "US",
        "allowed_countries": "",
        "opt_out_line": "Reply STOP to opt out",
        "help_contact": "",
        "stop_reply": "Unsubscribed from {company}. Reply START to resubscribe.",
        "start_reply": "Resubscribed to {company}. Reply STOP to opt out.",
        "help_reply": "{company}: {help_contact}. Reply STOP to opt out.",
        "prices": "default = 1",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def _twilio_form(csrf: str) -> dict[str, str]:
    """The SMS provider form as the page posts it, with Twilio and a From number."""
    return {
        "csrf": csrf,
        "provider": "twilio",
        "account_sid": SID,
        "auth_token": TOKEN,
        "from_number": "+14155550123",
        "messaging_service_sid": "",
    }


def _smtp_form(csrf: str, port: int | str = 2525, **changes: str) -> dict[str, str]:
    """The email provider form as the page posts it, with an SMTP relay."""
    form = {
        "csrf": csrf,
        "provider": "smtp",
        "host": "127.0.0.1",
        "port": str(port),
        "security": "none",
        "username": "",
        "password": PASSWORD,
        "from_addr": "billing@shop.example",
        "reply_to": "help@shop.example",
        "bcc": "",
    }
    form.update(changes)
    return form


def _concierge_form(csrf: str, **changes: str) -> dict[str, str]:
    form = {
        "csrf": csrf,
        "enabled": "on",
        "allow_skip": "on",
        "allow_retry_payment": "on",
        "send_nudge": "on",
        "upcoming_reminder_days": "3",
        "nudge_after_minutes": "120",
        "escalation_email": "",
        "helpdesk_url": "",
        "helpdesk_username": "",
        "helpdesk_api_key": "",
    }
    form.update(changes)
    return form


def _stored(app: App, site_id: int) -> dict[str, Any]:
    """Everything the settings page can change, as stored."""
    with app.connect() as conn:
        channels = conn.execute(select(tables.site_channels)).all()
        ledger = conn.execute(select(func.count()).select_from(tables.sms_credit_ledger)).scalar()
        balance = conn.execute(
            select(tables.sms_credits.c.balance).where(tables.sms_credits.c.site_id == site_id)
        ).scalar()
        return {
            "sms": settings_to_dict(load_sms_settings(conn, [site_id])[site_id]),
            "concierge": load_concierge_settings(conn, [site_id])[site_id],
            "channels": [tuple(row) for row in channels],
            "ledger": ledger,
            "balance": balance,
        }


def test_twilio_credentials_are_stored_encrypted_and_never_shown_back(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    form = _twilio_form(csrf)
    saved = client.post(f"{PAGE}/sms-provider", data=form, follow_redirects=False)
    assert saved.status_code == 303
    with app.connect() as conn:
        row = conn.execute(select(tables.site_channels)).one()
        config = load_channel_configs(conn, [shop.site_id], app.secret_box())
    assert row.provider == "twilio"
    assert TOKEN not in str(row.secret) and TOKEN not in str(row.config)
    assert config[(shop.site_id, "sms")].secret == TOKEN  # sealed, and opens with the key

    page = client.get(PAGE)
    assert TOKEN not in page.text
    assert "set, ending in …6c" not in page.text  # last four only
    assert "set, ending in …7d6c" in page.text
    assert SID in page.text and "+14155550123" in page.text

    # Saving again with the token field empty keeps the stored token.
    again = {**form, "auth_token": "", "from_number": "+14155550199"}
    assert client.post(f"{PAGE}/sms-provider", data=again).status_code == 200
    with app.connect() as conn:
        kept = load_channel_configs(conn, [shop.site_id], app.secret_box())
    assert kept[(shop.site_id, "sms")].secret == TOKEN
    assert kept[(shop.site_id, "sms")].config["from_number"] == "+14155550199"


def test_smtp_settings_are_saved_with_the_password_sealed_and_never_shown_back(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    assert "emails stay in the sandbox mailbox" in client.get(PAGE).text
    form = _smtp_form(csrf, port="", username="billing")
    saved = client.post(f"{PAGE}/email-provider", data=form, follow_redirects=False)
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{PAGE}#email-provider"
    with app.connect() as conn:
        row = conn.execute(select(tables.site_channels)).one()
        config = load_channel_configs(conn, [shop.site_id], app.secret_box())
    assert (row.channel, row.provider) == ("email", "smtp")
    assert PASSWORD not in str(row.secret) and PASSWORD not in str(row.config)
    email = config[(shop.site_id, "email")]
    assert email.secret == PASSWORD  # sealed, opened with the key, spaces kept
    # An empty port takes the security's usual one; empty optional fields are unset.
    assert dict(email.config) == {
        "host": "127.0.0.1",
        "port": 25,
        "security": "none",
        "username": "billing",
        "from_addr": "billing@shop.example",
        "reply_to": "help@shop.example",
        "bcc": None,
    }

    page = client.get(PAGE).text
    assert PASSWORD.strip() not in page
    assert "set, ending in …4b3a" in page  # the last four characters only
    assert 'value="billing@shop.example"' in page and 'value="25"' in page

    # Saving again with the password empty keeps it; the sandbox keeps only the addresses.
    client.post(f"{PAGE}/email-provider", data={**form, "password": "", "port": "2525"})
    client.post(f"{PAGE}/sms-provider", data=_twilio_form(csrf))
    with app.connect() as conn:
        kept = load_channel_configs(conn, [shop.site_id], app.secret_box())
    assert kept[(shop.site_id, "email")].secret == PASSWORD
    assert kept[(shop.site_id, "email")].config["port"] == 2525
    assert kept[(shop.site_id, "sms")].secret == TOKEN  # the other channel is untouched
    client.post(f"{PAGE}/email-provider", data={**form, "provider": "sandbox"})
    with app.connect() as conn:
        sandbox = load_channel_configs(conn, [shop.site_id], app.secret_box())
    assert sandbox[(shop.site_id, "email")].provider == "sandbox"
    assert dict(sandbox[(shop.site_id, "email")].config) == {
        "from_addr": "billing@shop.example",
        "reply_to": "help@shop.example",
    }


def test_secrets_sealed_under_another_key_are_flagged_and_the_rest_still_shows(
    app: App, shop: Shop, client: TestClient
) -> None:
    signed_in_as(client, app, shop.site_id, "owner")
    foreign = SecretBox("a-key-this-server-never-had")
    with app.begin() as conn:
        for channel, provider, config in (
            ("email", "smtp", {"host": "smtp.shop.example", "from_addr": "b@shop.example"}),
            ("sms", "twilio", {"account_sid": SID, "from_number": "+14155550123"}),
        ):
            conn.execute(
                insert(tables.site_channels).values(
                    site_id=shop.site_id,
                    channel=channel,
                    provider=provider,
                    config=config,
                    secret=foreign.seal("sealed-elsewhere-wxyz"),
                    updated_at=shop.now,
                )
            )
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "The saved SMTP password cannot be read with the current secret key" in page.text
    assert "The saved auth token cannot be read with the current secret key" in page.text
    assert 'value="smtp.shop.example"' in page.text and SID in page.text
    assert "wxyz" not in page.text


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"from_addr": "billing at shop"}, "from_addr: must be an email address"),
        ({"port": "smtp"}, "port: &#39;smtp&#39; is not a whole number"),
        ({"port": "70000"}, "port: must be a port number"),
        ({"host": " "}, "host: is required for SMTP"),
        ({"security": "ssl3"}, "security: must be starttls, tls or none"),
        ({"bcc": "audit@"}, "bcc: must be an email address"),
    ],
)
def test_a_bad_smtp_field_is_named_and_nothing_is_saved(
    app: App, shop: Shop, client: TestClient, change: dict[str, str], said: str
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    refused = client.post(f"{PAGE}/email-provider", data=_smtp_form(csrf, **change))
    assert refused.status_code == 422
    assert said in refused.text
    for name, value in change.items():
        if value.strip() and name != "security":  # a select offers only the modes it knows
            assert f'value="{value}"' in refused.text  # what was typed is kept
    assert PASSWORD.strip() not in refused.text  # a refused form never echoes the password
    assert _stored(app, shop.site_id)["channels"] == []


def test_a_test_email_goes_through_the_saved_relay_and_the_page_follows_it(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    with SmtpServer() as server:
        form = _smtp_form(csrf, port=server.port, password="")
        assert client.post(f"{PAGE}/email-provider", data=form).status_code == 200
        server.reject("nobody@shop.example")
        queued = client.post(
            f"{PAGE}/email-provider/test",
            data={"csrf": csrf, "to": "me@shop.example"},
            follow_redirects=False,
        )
        assert queued.status_code == 303
        location = queued.headers["location"]
        assert location.startswith(f"{PAGE}?test_email=") and location.endswith("#email-provider")
        waiting = _test_email_state(client.get(location).text)
        assert waiting is not None and "the worker sends it on its next pass" in waiting
        shop.run()
        (received,) = server.messages
        assert received.rcpt_tos == ("me@shop.example",)
        assert received.message["From"].endswith("<billing@shop.example>")
        with app.connect() as conn:
            subject = conn.execute(select(tables.outbox.c.subject)).scalar_one()
        assert received.message["Subject"] == subject
        sent = _test_email_state(client.get(location).text)
        assert sent is not None and "to me@shop.example: sent at" in sent
        assert sent.endswith("through smtp.")

        refused = client.post(
            f"{PAGE}/email-provider/test",
            data={"csrf": csrf, "to": "nobody@shop.example"},
            follow_redirects=False,
        )
        shop.run()
        failed_page = client.get(refused.headers["location"]).text
    assert len(server.messages) == 1
    assert 'id="test-email-state" class="warning"' in failed_page
    failed = _test_email_state(failed_page)
    assert failed is not None and "to nobody@shop.example: failed: " in failed
    assert "550" in failed


def test_the_page_follows_only_this_sites_test_emails(
    app: App, shop: Shop, client: TestClient
) -> None:
    signed_in_as(client, app, shop.site_id, "owner")
    other = Shop.create(app, slug="other")
    theirs = _queue_test_email(app, other.site_id)
    ours = _queue_test_email(app, shop.site_id)
    invoice = shop.invoice(shop.customer(INSUFFICIENT), 4900)
    shop.run()
    (dunning,) = [m.id for m in shop.outbox_of(invoice) if m.channel == "email"]
    assert _test_email_state(client.get(f"{PAGE}?test_email={ours}").text) is not None
    for wanted in (theirs, dunning, 999999, "x1", "1" * 40):
        assert _test_email_state(client.get(f"{PAGE}?test_email={wanted}").text) is None


def _test_email_state(page: str) -> str | None:
    """The text of the page's paragraph on the followed test email, spaces collapsed."""
    found = re.search(r'<p id="test-email-state"[^>]*>(.*?)</p>', page, re.DOTALL)
    return " ".join(html.unescape(found.group(1)).split()) if found else None


def _queue_test_email(app: App, site_id: int) -> int:
    with app.begin() as conn:
        return message_preview.send_test(
            conn,
            app.links(),
            site_id,
            "payment_declined",
            "email",
            to="me@shop.example",
            customer_id=None,
            locale=None,
            now=site_now(conn, site_id, app.clock),
        )


def test_a_test_email_to_a_bad_address_is_refused_and_nothing_is_queued(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    refused = client.post(f"{PAGE}/email-provider/test", data={"csrf": csrf, "to": "me at shop"})
    assert refused.status_code == 422
    assert "to: &#39;me at shop&#39; is not an email address" in refused.text
    assert 'value="me at shop"' in refused.text
    with app.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tables.outbox)).scalar() == 0


def test_the_twilio_section_says_how_far_twilios_log_was_read_and_why_it_failed(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    assert 'id="twilio-catch-up"' not in client.get(PAGE).text  # the sandbox phone has no log
    form = _twilio_form(csrf)
    assert client.post(f"{PAGE}/sms-provider", data=form, follow_redirects=False).status_code == 303
    assert "no worker has read it yet" in client.get(PAGE).text
    now = shop.now
    with app.begin() as conn:
        conn.execute(
            insert(tables.twilio_catch_up).values(
                site_id=shop.site_id,
                synced_until=now,
                next_check_at=now,
                last_error="Twilio: <Authenticate> (20003)",
                updated_at=now,
            )
        )
    page = client.get(PAGE).text
    assert "The last check of Twilio's message log failed" in page
    assert "Twilio: &lt;Authenticate&gt; (20003)" in page  # escaped, never markup
    with app.begin() as conn:
        conn.execute(update(tables.twilio_catch_up).values(last_error=None))
    page = client.get(PAGE).text
    assert "The last check of Twilio's message log failed" not in page
    assert "read up to" in page


def test_a_bad_twilio_sid_names_the_field_and_saves_nothing(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    form = {"csrf": csrf, "provider": "twilio", "account_sid": "AC123", "auth_token": TOKEN}
    refused = client.post(f"{PAGE}/sms-provider", data={**form, "from_number": "+14155550123"})
    assert refused.status_code == 422
    assert "account_sid: must look like AC followed by 32 hex digits" in refused.text
    assert 'value="AC123"' in refused.text  # what was typed is kept
    assert TOKEN not in refused.text
    assert _stored(app, shop.site_id)["channels"] == []


def test_sms_rules_are_saved_and_an_invalid_send_window_is_refused_by_name(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    saved = client.post(
        f"{PAGE}/sms",
        data=_sms_form(
            csrf,
            window_start="09:00",
            window_end="19:00",
            frequency_cap="2",
            sender_segments_per_second="2.5",
            allowed_countries="us, ca",
            prices="CA = 2\ndefault = 1",
            smart_encoding=None,
        ),
        follow_redirects=False,
    )
    assert saved.status_code == 303
    rules = _stored(app, shop.site_id)["sms"]
    assert (rules["window_start"], rules["window_end"], rules["frequency_cap"]) == (
        "09:00",
        "19:00",
        2,
    )
    assert rules["sender_segments_per_second"] == 2.5
    assert rules["allowed_countries"] == ["US", "CA"]
    assert rules["prices"] == {"CA": 2, "default": 1}
    assert rules["smart_encoding"] is False

    before = _stored(app, shop.site_id)
    for field, changes, message in [
        ("window_end", {"window_end": "23:30"}, "window_end:"),
        ("window_start", {"window_start": "6am"}, "window_start: '6am' is not a time"),
        ("frequency_cap", {"frequency_cap": "lots"}, "frequency_cap: 'lots' is not a whole"),
        ("frequency_cap", {"frequency_cap": "50"}, "frequency_cap: must be between 1 and 20"),
        (
            "sender_segments_per_second",
            {"sender_segments_per_second": "fast"},
            "sender_segments_per_second: 'fast' is not a number",
        ),
        (
            "sender_segments_per_second",
            {"sender_segments_per_second": "0"},
            "sender_segments_per_second: must be above 0",
        ),
        ("opt_out_line", {"opt_out_line": "Thanks!"}, "opt_out_line: must tell the customer"),
        ("prices", {"prices": "FR = 2"}, "prices: add a default line"),
    ]:
        refused = client.post(f"{PAGE}/sms", data=_sms_form(csrf, **changes))
        assert refused.status_code == 422, field
        assert message in html.unescape(refused.text), field
        assert _stored(app, shop.site_id) == before


def test_top_up_adds_exactly_the_credits_and_writes_a_ledger_row(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    assert client.get(PAGE).status_code == 200  # opens the account (sandbox credits)
    before = _stored(app, shop.site_id)
    answer = client.post(
        f"{PAGE}/credits/top-up",
        data={"csrf": csrf, "credits": "250", "note": "PO 77"},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    after = _stored(app, shop.site_id)
    assert after["balance"] == before["balance"] + 250
    assert after["ledger"] == before["ledger"] + 1
    with app.connect() as conn:
        row = conn.execute(
            select(tables.sms_credit_ledger).order_by(tables.sms_credit_ledger.c.id.desc())
        ).first()
    assert row is not None
    assert (row.site_id, row.delta, row.reason, row.note) == (shop.site_id, 250, "top_up", "PO 77")
    assert row.balance_after == after["balance"]
    page = client.get(PAGE)
    assert f"{after['balance']} credits" in page.text and "PO 77" in page.text

    for credits in ("0", "-5", "ten"):
        refused = client.post(f"{PAGE}/credits/top-up", data={"csrf": csrf, "credits": credits})
        assert refused.status_code == 422
        assert "credits:" in refused.text
    assert _stored(app, shop.site_id) == after


@pytest.mark.parametrize(("note", "message"), POSTABLE)
def test_a_top_up_note_the_api_would_refuse_is_named_and_nothing_is_added(
    app: App, shop: Shop, client: TestClient, note: str, message: str
) -> None:
    # A long note used to be cut to 500 characters unseen; a NUL failed in PostgreSQL.
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    assert client.get(PAGE).status_code == 200  # opens the account (sandbox credits)
    before = _stored(app, shop.site_id)
    answer = client.post(
        f"{PAGE}/credits/top-up", data={"csrf": csrf, "credits": "250", "note": note}
    )
    assert answer.status_code == 422
    assert f"note: {message}" in answer.text
    assert _stored(app, shop.site_id) == before


def test_a_refused_top_up_does_not_show_a_card_number_typed_in_the_note_again(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    for credits in ("250", "ten"):  # refused for the note, or for the credits
        answer = client.post(
            f"{PAGE}/credits/top-up",
            data={"csrf": csrf, "credits": credits, "note": "PO 4242 4242 4242 4242"},
        )
        assert answer.status_code == 422
        assert "4242 4242" not in answer.text
        assert 'value="PO [card number removed]"' in answer.text


def test_auto_refill_is_saved(app: App, shop: Shop, client: TestClient) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    form = {
        "csrf": csrf,
        "auto_refill_threshold": "100",
        "auto_refill_amount": "500",
        "low_balance_threshold": "50",
    }
    assert client.post(f"{PAGE}/credits/auto-refill", data=form).status_code == 200
    rules = _stored(app, shop.site_id)["sms"]
    assert (rules["auto_refill_threshold"], rules["auto_refill_amount"]) == (100, 500)
    refused = client.post(f"{PAGE}/credits/auto-refill", data={**form, "auto_refill_amount": "-1"})
    assert refused.status_code == 422
    assert "auto_refill_amount: cannot be negative" in refused.text
    assert _stored(app, shop.site_id)["sms"]["auto_refill_amount"] == 500


def test_concierge_switches_and_escalation_are_saved_and_the_key_stays_secret(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "owner")
    key = "helpdesk-key-0000-1111-abcd"
    saved = client.post(
        f"{PAGE}/concierge",
        data=_concierge_form(
            csrf,
            escalation_email="help@shop.test",
            send_welcome="on",
            helpdesk_url="https://shop.gorgias.com/api",
            helpdesk_username="bot@shop.test",
            helpdesk_api_key=key,
        ),
        follow_redirects=False,
    )
    assert saved.status_code == 303
    stored = _stored(app, shop.site_id)["concierge"]
    assert stored.escalation_email == "help@shop.test"
    assert stored.send_welcome and stored.allow_skip and stored.allow_retry_payment
    # Switches not ticked are off.
    assert not stored.allow_ship_now and not stored.allow_promise_to_pay
    with app.connect() as conn:
        sealed = conn.execute(select(tables.concierge_settings.c.helpdesk_secret)).scalar_one()
        assert load_helpdesk_key(conn, shop.site_id, app.secret_box()) == key
    assert key not in sealed
    page = client.get(PAGE)
    assert key not in page.text and "set, ending in …abcd" in page.text

    before = _stored(app, shop.site_id)
    refused = client.post(
        f"{PAGE}/concierge",
        data=_concierge_form(csrf, escalation_email="not an address", allow_ship_now="on"),
    )
    assert refused.status_code == 422
    assert "escalation_email: &#39;not an address&#39; is not an email address" in refused.text
    assert _stored(app, shop.site_id) == before


@pytest.mark.parametrize("role", ["analytics", "support"])
def test_roles_that_may_not_change_settings_are_refused_and_nothing_changes(
    app: App, shop: Shop, client: TestClient, role: str
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, role)
    with app.begin() as conn:  # open the credit account, as any page view would
        balances(conn, [shop.site_id], shop.now)
    before = _stored(app, shop.site_id)
    posts = {
        f"{PAGE}/sms-provider": {
            "provider": "twilio",
            "account_sid": SID,
            "auth_token": TOKEN,
            "from_number": "+14155550123",
        },
        f"{PAGE}/email-provider": _smtp_form(csrf),
        f"{PAGE}/email-provider/test": {"to": "me@shop.example"},
        f"{PAGE}/sms": _sms_form(csrf, frequency_cap="7"),
        f"{PAGE}/credits/top-up": {"credits": "1000"},
        f"{PAGE}/credits/auto-refill": {
            "auto_refill_threshold": "1",
            "auto_refill_amount": "1",
            "low_balance_threshold": "1",
        },
        f"{PAGE}/concierge": _concierge_form(csrf, escalation_email="x@y.test"),
    }
    for path, form in posts.items():
        answer = client.post(path, data={**form, "csrf": csrf})
        assert answer.status_code == 403, path
        assert "does not allow this" in answer.text
    assert _stored(app, shop.site_id) == before
    page = client.get(PAGE)
    if role == "analytics":
        assert page.status_code == 200
        assert "may read these settings but not change them" in page.text
        assert "Save SMS rules" not in page.text and "Top up" not in page.text
    else:
        assert_refused_for_the_role(page)


def test_the_configuration_role_edits_settings_but_does_not_buy_credits(
    app: App, shop: Shop, client: TestClient
) -> None:
    csrf = signed_in_as(client, app, shop.site_id, "configuration")
    page = client.get(PAGE)
    assert "Save SMS rules" in page.text and "Top up" not in page.text
    before = _stored(app, shop.site_id)["balance"]
    refused = client.post(f"{PAGE}/credits/top-up", data={"csrf": csrf, "credits": "5"})
    assert refused.status_code == 403
    assert "does not allow this" in refused.text
    assert _stored(app, shop.site_id)["balance"] == before
    saved = client.post(f"{PAGE}/sms", data=_sms_form(csrf, frequency_cap="4"))
    assert saved.status_code == 200
    assert _stored(app, shop.site_id)["sms"]["frequency_cap"] == 4
