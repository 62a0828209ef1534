"""Dashboard: email and SMS providers, SMS rules, credits and the concierge, on one page.

Each section is its own form and its own POST, so a mistake in one never
touches another; a refused form saves nothing and comes back with the
field named and what was typed kept. Secrets (the SMTP password, the
Twilio auth token, the help desk key) are write-only: the page says whether
one is set and shows its last four characters, never more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy import Connection

from dunwell.channels.config import ChannelConfig
from dunwell.domain.roles import Permission
from dunwell.messaging.redact import redact_card_numbers
from dunwell.security.secrets import SecretUnreadable
from dunwell.services import message_preview, sms_credits
from dunwell.services.channel_config import load_site_channels, save_channel_config
from dunwell.services.concierge_settings import (
    ConciergeSettings,
    load_concierge_settings,
    load_helpdesk_key,
    update_concierge_settings,
)
from dunwell.services.errors import InvalidInput, NotFound, ServiceError
from dunwell.services.ids import parse_id
from dunwell.services.messages import get_message
from dunwell.services.sites import site_now
from dunwell.services.sms_settings import SmsSettings, load_sms_settings, update_sms_settings
from dunwell.services.twilio_catch_up import catch_up_state
from dunwell.web.console import settings_forms as forms
from dunwell.web.console.desk import Desk, actor, viewer

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Desk, Depends(viewer(Permission.VIEW_CONFIGURATION))]
Editor = Annotated[Desk, Depends(actor(Permission.EDIT_SETTINGS))]
# Auto-refill buys credits on its own, so setting it up spends money as a top-up does.
Buyer = Annotated[Desk, Depends(actor(Permission.BUY_CREDITS))]

PAGE = "/dashboard/settings"
LEDGER_ROWS = 20

SMTP_TEXT_FIELDS = ("host", "security", "username", "from_addr", "reply_to", "bcc")
#: What the sandbox mailbox keeps of an email provider's settings.
SANDBOX_EMAIL_FIELDS = ("from_addr", "reply_to")
#: The test email is the first dunning email, rendered with sample values.
TEST_EMAIL_TEMPLATE = "payment_declined"
CHANNEL_FIELDS = {
    "email": (*SMTP_TEXT_FIELDS, "port"),
    "sms": ("account_sid", "from_number", "messaging_service_sid"),
}
SMS_TEXT_FIELDS = (
    "default_region",
    "window_start",
    "window_end",
    "opt_out_line",
    "help_contact",
    "stop_reply",
    "start_reply",
    "help_reply",
)
SMS_SWITCHES = ("enabled", "smart_encoding")
REFILL_FIELDS = ("auto_refill_threshold", "auto_refill_amount", "low_balance_threshold")
CONCIERGE_ACTIONS = (
    ("allow_skip", "Skip an order"),
    ("allow_delay", "Delay an order"),
    ("allow_change_date", "Change the next order date"),
    ("allow_ship_now", "Ship the next order now"),
    ("allow_add_product", "Add a product"),
    ("allow_swap_product", "Swap a product"),
    ("allow_change_quantity", "Change a quantity"),
    ("allow_retry_payment", "Retry a failed payment"),
    ("allow_promise_to_pay", "Record a promise to pay"),
)
CONCIERGE_MESSAGES = (
    ("send_welcome", "Welcome text to new subscribers"),
    ("send_upcoming_reminder", "Reminder before an upcoming order"),
    ("send_order_processed", "Order processed"),
    ("send_failed_payment", "Failed payment"),
    ("send_cancellation_prevention", "Cancellation prevention"),
    ("send_sentiment_survey", "Sentiment survey"),
    ("send_adjustment_survey", "Survey after a change"),
    ("send_nudge", "One nudge when a question goes unanswered"),
)
CONCIERGE_SWITCHES = (
    "enabled",
    *(name for name, _ in CONCIERGE_ACTIONS),
    *(name for name, _ in CONCIERGE_MESSAGES),
)
CONCIERGE_TEXT_FIELDS = ("escalation_email", "helpdesk_url", "helpdesk_username")
CONCIERGE_NUMBERS = ("upcoming_reminder_days", "nudge_after_minutes")


@router.get(PAGE)
def settings_page(desk: Viewer) -> Response:
    return _page(desk, first_look=True)


@router.post(f"{PAGE}/email-provider")
def save_email_provider(desk: Editor) -> Response:
    form = desk.form
    provider = form.get("provider", "smtp")
    smtp = provider == "smtp"
    # Spaces can belong to a password: it is kept exactly as typed.
    password = form.get("password") or None

    def write(conn: Connection, now: datetime) -> None:
        config: dict[str, Any] = {name: forms.text(form, name) for name in SMTP_TEXT_FIELDS}
        config["port"] = forms.whole(form, "port") if forms.text(form, "port") else None
        if not smtp:
            config = {name: config[name] for name in SANDBOX_EMAIL_FIELDS}
        box = desk.app.secret_box()
        secret = password if smtp else None
        save_channel_config(conn, desk.site_id, "email", provider, config, secret, box, now)

    return _save(desk, "email", "email-provider", f"Email provider saved ({provider}).", write)


@router.post(f"{PAGE}/email-provider/test")
def send_test_email(desk: Editor) -> Response:
    """Queue the first dunning email to an address; the page then follows that message."""
    to = forms.text(desk.form, "to")
    try:
        with desk.app.begin() as conn:
            now = site_now(conn, desk.site_id, desk.app.clock)
            message_id = message_preview.send_test(
                conn,
                desk.app.links(),
                desk.site_id,
                TEST_EMAIL_TEMPLATE,
                "email",
                to=to,
                customer_id=None,
                locale=None,
                now=now,
            )
    except ServiceError as error:
        return _page(desk, "email_test", error)
    notice = f"Test email {message_id} queued to {to}; the worker sends it with the saved provider."
    return desk.redirect(f"{PAGE}?test_email={message_id}#email-provider", notice)


@router.post(f"{PAGE}/sms-provider")
def save_sms_provider(desk: Editor) -> Response:
    form = desk.form
    provider = form.get("provider", "twilio")
    config = {
        "account_sid": forms.text(form, "account_sid"),
        "from_number": forms.text(form, "from_number"),
        "messaging_service_sid": forms.text(form, "messaging_service_sid"),
    }
    token = forms.text(form, "auth_token") or None
    twilio = provider == "twilio"

    def write(conn: Connection, now: datetime) -> None:
        box = desk.app.secret_box()
        config_shown = config if twilio else {}
        secret = token if twilio else None
        save_channel_config(conn, desk.site_id, "sms", provider, config_shown, secret, box, now)

    return _save(desk, "provider", "sms-provider", f"SMS provider saved ({provider}).", write)


@router.post(f"{PAGE}/sms")
def save_sms_rules(desk: Editor) -> Response:
    def write(conn: Connection, now: datetime) -> None:
        form = desk.form
        changes: dict[str, Any] = {name: forms.text(form, name) for name in SMS_TEXT_FIELDS}
        changes |= forms.switches(form, SMS_SWITCHES)
        changes["allowed_countries"] = forms.countries(form, "allowed_countries")
        changes["frequency_cap"] = forms.whole(form, "frequency_cap")
        changes["sender_segments_per_second"] = forms.number(form, "sender_segments_per_second")
        changes["prices"] = forms.prices(form)
        update_sms_settings(conn, desk.site_id, changes, now)

    return _save(desk, "sms", "sms-rules", "SMS settings saved.", write)


@router.post(f"{PAGE}/credits/top-up")
def top_up(desk: Buyer) -> Response:
    def write(conn: Connection, now: datetime) -> str:
        credits = forms.whole(desk.form, "credits")
        note = forms.text(desk.form, "note") or f"dashboard top-up by {desk.staff.email}"
        # A note too long is refused (and named), not cut short unseen.
        balance = sms_credits.top_up(conn, desk.site_id, credits, now, note)
        return f"Added {credits} credits; the balance is now {balance}."

    return _save(desk, "top_up", "credits", "", write)


@router.post(f"{PAGE}/credits/auto-refill")
def save_auto_refill(desk: Buyer) -> Response:
    def write(conn: Connection, now: datetime) -> None:
        changes = {name: forms.whole(desk.form, name) for name in REFILL_FIELDS}
        update_sms_settings(conn, desk.site_id, changes, now)

    return _save(desk, "refill", "credits", "Auto-refill and the low-balance alert saved.", write)


@router.post(f"{PAGE}/concierge")
def save_concierge(desk: Editor) -> Response:
    def write(conn: Connection, now: datetime) -> None:
        form = desk.form
        changes: dict[str, Any] = {name: forms.text(form, name) for name in CONCIERGE_TEXT_FIELDS}
        changes |= forms.switches(form, CONCIERGE_SWITCHES)
        changes |= {name: forms.whole(form, name) for name in CONCIERGE_NUMBERS}
        key = forms.text(form, "helpdesk_api_key") or None
        box = desk.app.secret_box() if key else None
        update_concierge_settings(conn, desk.site_id, changes, now, box=box, helpdesk_api_key=key)

    return _save(desk, "concierge", "concierge", "Concierge settings saved.", write)


def _save(
    desk: Desk,
    section: str,
    anchor: str,
    notice: str,
    write: Callable[[Connection, datetime], str | None],
) -> Response:
    """Run one section's save in one transaction at the site's now.

    ``write`` reads its form itself, so a refused field (raised while reading or
    saving) rolls back everything and the section comes back with what was
    typed; a notice it returns replaces ``notice`` (a top-up reports the balance).
    """
    try:
        with desk.app.begin() as conn:
            said = write(conn, site_now(conn, desk.site_id, desk.app.clock))
    except ServiceError as error:
        return _page(desk, section, error)
    return desk.redirect(f"{PAGE}#{anchor}", said or notice)


# -- the page -------------------------------------------------------------------------


def _page(
    desk: Desk, failed: str = "", error: ServiceError | None = None, first_look: bool = False
) -> Response:
    """The settings page; after a refused form, that form keeps what was typed.

    Only a plain visit (``first_look``) opens the credit account when it is not
    open yet: a refused form changes nothing, not even that.
    """
    box = desk.app.secret_box_or_none()
    with desk.app.connect() as conn:
        sms = load_sms_settings(conn, [desk.site_id])[desk.site_id]
        concierge = load_concierge_settings(conn, [desk.site_id])[desk.site_id]
        channels = load_site_channels(conn, desk.site_id, box)
        test_email = _test_email(conn, desk)
        helpdesk_key = _secret_hint(
            lambda: load_helpdesk_key(conn, desk.site_id, box) if box else None
        )
        balance = sms_credits.stored_balance(conn, desk.site_id)
        if balance is None and not first_look:
            balance = sms_credits.balance(conn, desk.site_id)
        ledger = sms_credits.recent_entries(conn, desk.site_id, LEDGER_ROWS)
        catch_up = catch_up_state(conn, desk.site_id)
    if balance is None:
        # Once per site: the first visit opens the credit account, so the ledger
        # shows where a sandbox site's free credits came from.
        with desk.app.begin() as conn:
            now = site_now(conn, desk.site_id, desk.app.clock)
            balance = sms_credits.balances(conn, [desk.site_id], now)[desk.site_id]
            ledger = sms_credits.recent_entries(conn, desk.site_id, LEDGER_ROWS)
    default = "sandbox" if desk.staff.site_mode == "sandbox" else "none"
    email, email_secret, email_unreadable = _channel(channels, "email", default)
    sms_provider, token, sms_unreadable = _channel(channels, "sms", default)
    values = {
        "email": email,
        "email_test": {"to": desk.staff.email},
        "provider": sms_provider,
        "sms": _sms_values(sms),
        "refill": {name: str(getattr(sms, name)) for name in REFILL_FIELDS},
        "top_up": {"credits": "", "note": ""},
        "concierge": _concierge_values(concierge),
    }
    if failed:
        values[failed] = _posted_values(desk.form, values[failed])
    context = {
        "active": PAGE,
        "values": values,
        "email_password": email_secret,
        "email_unreadable": email_unreadable,
        "test_email": test_email,
        "token": token,
        "provider_unreadable": sms_unreadable,
        "catch_up": catch_up,
        "catch_up_minutes": max(1, desk.app.settings.twilio_catch_up_seconds // 60),
        "catch_up_on": desk.app.settings.twilio_catch_up_seconds > 0,
        "helpdesk_key": helpdesk_key,
        "balance": balance,
        "ledger": ledger,
        "concierge_actions": CONCIERGE_ACTIONS,
        "concierge_messages": CONCIERGE_MESSAGES,
        "failed": failed,
        "errors": [str(error)] if error else [],
        "field": error.field if isinstance(error, InvalidInput) else "",
        "can_edit": desk.can(Permission.EDIT_SETTINGS),
        "can_buy": desk.can(Permission.BUY_CREDITS),
        "sandbox": desk.staff.site_mode == "sandbox",
    }
    return desk.page("settings.html", context, 422 if error else 200)


def _channel(
    channels: Mapping[str, tuple[ChannelConfig, bool]], channel: str, default: str
) -> tuple[dict[str, Any], str | None, bool]:
    """A provider form's values, its secret's hint, and whether the secret is unreadable.

    ``default`` is what a site with nothing saved uses: the sandbox, or on a
    live site nothing at all ("none").
    """
    saved, unreadable = channels.get(channel, (None, False))
    config = saved.config if saved else {}
    names = CHANNEL_FIELDS[channel]
    values = {name: str(config.get(name) or "") for name in names}
    values["provider"] = saved.provider if saved else default
    hint = _last_four(saved.secret) if saved else None
    if unreadable:
        hint = "set (cannot be read with the current secret key)"
    return values, hint, unreadable


def _test_email(conn: Connection, desk: Desk) -> dict[str, Any] | None:
    """The test email the page was sent back to follow (``?test_email=``), if it is one."""
    wanted = parse_id(desk.request.query_params.get("test_email", ""))
    if wanted is None:
        return None
    try:
        message = get_message(conn, desk.site_id, wanted)
    except NotFound:
        return None
    return message if (message["kind"], message["channel"]) == ("test", "email") else None


def _secret_hint(read: Callable[[], str | None]) -> str | None:
    """``"set, ending in …f00d"``, ``"set"`` when it cannot be read, or None."""
    try:
        return _last_four(read())
    except SecretUnreadable:
        return "set (cannot be read with the current secret key)"


def _last_four(secret: str | None) -> str | None:
    if not secret:
        return None
    # Only long secrets show an ending: four characters of a short one say too much.
    return f"set, ending in …{secret[-4:]}" if len(secret) >= 16 else "set"


def _sms_values(s: SmsSettings) -> dict[str, Any]:
    values: dict[str, Any] = {name: str(getattr(s, name)) for name in SMS_TEXT_FIELDS}
    values |= {name: bool(getattr(s, name)) for name in SMS_SWITCHES}
    values["allowed_countries"] = ", ".join(s.allowed_countries)
    values["frequency_cap"] = str(s.frequency_cap)
    # 1.0 shows as 1: the figure is usually a whole number of segments.
    values["sender_segments_per_second"] = f"{s.sender_segments_per_second:g}"
    values["prices"] = forms.prices_text(s.prices)
    return values


def _concierge_values(s: ConciergeSettings) -> dict[str, Any]:
    values: dict[str, Any] = {name: str(getattr(s, name)) for name in CONCIERGE_TEXT_FIELDS}
    values |= {name: bool(getattr(s, name)) for name in CONCIERGE_SWITCHES}
    values |= {name: str(getattr(s, name)) for name in CONCIERGE_NUMBERS}
    return values


def _posted_values(form: Mapping[str, str], shown: dict[str, Any]) -> dict[str, Any]:
    """What the refused form held: text as typed, a switch on only if it was ticked.

    A card number typed into a text is not shown again (it was refused, and
    the page would hold it in the browser's history and caches).
    """
    return {
        name: (name in form)
        if isinstance(current, bool)
        else redact_card_numbers(form.get(name, ""))
        for name, current in shown.items()
    }
