"""The texts the concierge starts on its own, queued by the worker.

:func:`send_concierge_messages` looks, for every site that turned each one
on (see :mod:`dunwell.services.concierge_settings`), for who is due:

* **welcome**: a subscription created in the window;
* **upcoming order**: ``upcoming_reminder_days`` before an active
  subscription's next charge;
* **order processed**: a subscription invoice paid in the window;
* **failed payment**: a dunning step email written in the window for an
  invoice still unpaid, when that step sends no SMS of its own;
* **cancellation prevention**: the customer's last subscription canceled
  in the window;
* **nudge**: an open conversation still awaiting a yes or no when its
  ``nudge_at`` comes (on unless the site turned it off).

The window is the last :data:`WINDOW` of site time (for the reminder: its
due moment lies in it). Nothing older is ever texted, so turning a message
on, or a worker coming back after a long stop, never texts the history.

Each message is queued at most once: its dedupe key names what it is about
(``concierge:welcome:{subscription}``...), the scans leave out keys already
in the outbox, and a key two workers race for is written once (the loser's
savepoint rolls back). Every text joins the customer's live conversation,
so a reply is read in context, and goes out through the outbox and so
through every SMS check (consent, opt-out, quiet hours, frequency cap,
credits): a welcome queued at 23:00 is held until the morning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from dunwell.bootstrap import App
from dunwell.concierge.outbound import Text, render_text
from dunwell.concierge.proposals import ORDER_DATE
from dunwell.concierge.texts import when
from dunwell.domain.compliance import local_zone
from dunwell.messaging.phones import phone_time_zone
from dunwell.security.links import LinkSigner
from dunwell.services import concierge_scans as scans
from dunwell.services.claims import site_scope
from dunwell.services.concierge_settings import ConciergeSettings, load_concierge_settings
from dunwell.services.conversations import (
    Conversation,
    current_conversation,
    load_conversation,
    note_topic,
    queue_text,
)
from dunwell.services.hosted_links import portal_url
from dunwell.store.tables import (
    concierge_settings,
    conversations,
    customers,
    outbox,
    sites,
    subscriptions,
)

#: How far back the scans look, in site time.
WINDOW = timedelta(days=2)
#: Candidates taken per kind of message and worker pass.
BATCH = 500


@dataclass(frozen=True)
class OutboundSite:
    """A site with saved concierge settings, as of this pass."""

    id: int
    name: str
    time_zone: str
    now: datetime  # site time: the test clock of a sandbox site
    settings: ConciergeSettings

    def sends(self, switch: str) -> bool:
        return self.settings.enabled and bool(getattr(self.settings, switch))


@dataclass
class _Pass:
    """What one pass shares: the app, the batch size, links made on demand."""

    app: App
    limit: int
    _links: LinkSigner | None = None

    @property
    def links(self) -> LinkSigner:
        # Resolved only when a message with a link is due: the secret key
        # is needed for nothing else here.
        if self._links is None:
            self._links = self.app.links()
        return self._links


def send_concierge_messages(app: App, limit: int = BATCH) -> int:
    """Queue the concierge's due messages; return how many texts were queued."""
    real_now = app.clock.now()
    with app.connect() as conn:
        loaded = load_outbound_sites(conn, real_now)
    run = _Pass(app, limit)
    queued = 0
    for switch, job in _JOBS:
        on = {site.id: site for site in loaded if site.sends(switch)}
        if on:
            with app.begin() as conn:
                queued += job(conn, run, on)
    off = {site.id for site in loaded if not site.sends("send_nudge")}
    with app.begin() as conn:
        queued += _nudges(conn, real_now, off, limit)
    return queued


def load_outbound_sites(conn: Connection, real_now: datetime) -> list[OutboundSite]:
    """Every site that saved concierge settings (the others send nothing but nudges)."""
    rows = conn.execute(
        select(sites.c.id, sites.c.name, sites.c.time_zone, sites.c.clock_now)
        .join(concierge_settings, concierge_settings.c.site_id == sites.c.id)
        .where(*site_scope())
        .order_by(sites.c.id)
    ).all()
    settings = load_concierge_settings(conn, [row.id for row in rows])
    return [
        OutboundSite(row.id, row.name, row.time_zone, row.clock_now or real_now, settings[row.id])
        for row in rows
    ]


# -- one function per kind of message --------------------------------------------


def _welcome(conn: Connection, run: _Pass, on: Mapping[int, OutboundSite]) -> int:
    queued = 0
    for row in scans.new_subscriptions(conn, _recent(on), run.limit):
        site = on[row.site_id]
        body = render_text(
            Text.WELCOME, {"company": site.name, "first_name": _or_nil(row.first_name)}
        )
        key = scans.dedupe_key("welcome", row.id)
        queued += queue_once(conn, site, row, Text.WELCOME, body, key)
    return queued


def _upcoming(conn: Connection, run: _Pass, on: Mapping[int, OutboundSite]) -> int:
    bounds = {
        site.id: (site.now + _days(site) - WINDOW, site.now + _days(site)) for site in on.values()
    }
    rows = scans.upcoming_orders(conn, bounds, run.limit)
    lines = scans.order_lines(conn, {row.id for row in rows})
    queued = 0
    for row in rows:
        site = on[row.site_id]
        order = _in_period(lines.get(row.id, []), row.periods_billed)
        total = sum(line.quantity * line.unit_price_minor for line in order)
        context = {
            "company": site.name,
            "date": when(row.next_charge_at.astimezone(_zone(site, row)).date()),
            "items": _names(order),
            "total": {"amount_minor": total, "currency": row.currency},
        }
        body = render_text(Text.UPCOMING_ORDER, context)
        key = scans.dedupe_key("upcoming", row.id, row.periods_billed)
        topic = {"subscription_id": row.id}
        queued += queue_once(
            conn, site, row, Text.UPCOMING_ORDER, body, key, ("upcoming_order", topic)
        )
    return queued


def _processed(conn: Connection, run: _Pass, on: Mapping[int, OutboundSite]) -> int:
    rows = scans.processed_orders(conn, _recent(on), run.limit)
    lines = scans.order_lines(conn, {row.subscription_id for row in rows})
    queued = 0
    for row in rows:
        site = on[row.site_id]
        billed_here = row.subscription_status == "active" and row.subscription_external_id is None
        context = {
            "company": site.name,
            "items": _names(_in_period(lines.get(row.subscription_id, []), row.period)),
            "total": {"amount_minor": row.amount_paid_minor, "currency": row.currency},
            # A mirrored subscription's next date is its billing system's to tell.
            "next_date": (
                when(row.next_charge_at.astimezone(_zone(site, row)).date())
                if billed_here
                else None
            ),
        }
        body = render_text(Text.ORDER_PROCESSED, context)
        key = scans.dedupe_key("processed", row.id)
        queued += queue_once(conn, site, row, Text.ORDER_PROCESSED, body, key)
    return queued


def _failed(conn: Connection, run: _Pass, on: Mapping[int, OutboundSite]) -> int:
    queued = 0
    for row in scans.dunning_emails(conn, _recent(on), run.limit):
        site = on[row.site_id]
        link = run.links.billing_url(site.id, row.customer_id, row.invoice_id)
        context = {
            "company": site.name,
            "amount": {"amount_minor": row.amount_minor, "currency": row.currency},
            "link": link,
        }
        body = render_text(Text.FAILED_PAYMENT, context)
        key = scans.dedupe_key("failed", row.id)
        topic = ("failed_payment", {"invoice_id": row.invoice_id})
        queued += queue_once(conn, site, row, Text.FAILED_PAYMENT, body, key, topic)
    return queued


def _cancellation(conn: Connection, run: _Pass, on: Mapping[int, OutboundSite]) -> int:
    queued = 0
    public_url = run.app.settings.public_url
    for row in scans.last_cancellations(conn, _recent(on), run.limit):
        site = on[row.site_id]
        link = portal_url(run.links, public_url, site.id, row.customer_id)
        context = {"company": site.name, "first_name": _or_nil(row.first_name), "link": link}
        body = render_text(Text.CANCELLATION, context)
        key = scans.dedupe_key("winback", row.id)
        queued += queue_once(conn, site, row, Text.CANCELLATION, body, key)
    return queued


def _nudges(conn: Connection, real_now: datetime, off: set[int], limit: int) -> int:
    """One reminder per unanswered question; a nudge missed by more than the window is dropped."""
    due = scans.due_nudges(conn, real_now, off, limit)
    queued = 0
    for row in due:
        if row.nudge_at < row.site_now - WINDOW:
            continue
        conversation = load_conversation(conn, row.site_id, row.id)
        if conversation is None or _order_moved_since_asked(conn, conversation):
            continue
        question = conversation.state.get("question")
        body = render_text(Text.NUDGE, {"question": _or_nil(question)})
        key = scans.dedupe_key("nudge", row.id, int(row.nudge_at.timestamp()))
        write = partial(_text, conn, conversation, body, row.site_now, key, Text.NUDGE)
        queued += _once(conn, key, write)
    if due:
        conn.execute(
            update(conversations)
            .where(conversations.c.id.in_([row.id for row in due]))
            .values(nudge_at=None)
        )
    return queued


def _order_moved_since_asked(conn: Connection, conversation: Conversation) -> bool:
    """Whether the question waits on an order that has since been billed or moved.

    Its yes would be refused (see ``concierge_actions``), so reminding the
    customer to give it would only lead to "nothing was done".
    """
    proposal = conversation.state.get("proposal")
    params = proposal.get("params") if isinstance(proposal, dict) else None
    if not isinstance(params, dict) or ORDER_DATE not in params:
        return False
    s, c = subscriptions, customers
    row = conn.execute(
        select(s.c.next_charge_at, c.c.time_zone, sites.c.time_zone.label("site_zone"))
        .join(c, c.c.id == s.c.customer_id)
        .join(sites, sites.c.id == s.c.site_id)
        .where(s.c.site_id == conversation.site_id, s.c.id == params.get("subscription_id"))
    ).first()
    if row is None or row.next_charge_at is None:
        return True
    zone = local_zone(row.time_zone, phone_time_zone(conversation.phone), row.site_zone)
    return bool(row.next_charge_at.astimezone(zone).date().isoformat() != params[ORDER_DATE])


_JOBS: Sequence[tuple[str, Callable[[Connection, _Pass, Mapping[int, OutboundSite]], int]]] = (
    ("send_welcome", _welcome),
    ("send_upcoming_reminder", _upcoming),
    ("send_order_processed", _processed),
    ("send_failed_payment", _failed),
    ("send_cancellation_prevention", _cancellation),
)


# -- queuing ---------------------------------------------------------------------


def queue_once(
    conn: Connection,
    site: OutboundSite,
    row: Any,
    text: Text,
    body: str,
    key: str,
    topic: tuple[str, dict[str, int]] | None = None,
) -> int:
    """Queue ``body`` in the live conversation with ``row.phone``; 1 if queued, 0 if not.

    0 means another worker queued ``key`` first: this one's conversation,
    text and topic are rolled back together. ``row`` needs ``phone`` and
    ``customer_id``; ``topic`` is (topic, details) for the conversation state.
    """

    def write() -> None:
        conversation = current_conversation(conn, site.id, row.phone, row.customer_id, site.now)
        _text(conn, conversation, body, site.now, key, text)
        if topic is not None:
            note_topic(conn, conversation, topic[0], **topic[1])

    return _once(conn, key, write)


def _text(
    conn: Connection, conversation: Conversation, body: str, now: datetime, key: str, text: Text
) -> None:
    # Transactional, not a reply: the send window and the frequency cap apply.
    queue_text(
        conn, conversation, body, now, kind="transactional", template=text.value, dedupe_key=key
    )


def _once(conn: Connection, key: str, write: Callable[[], None]) -> int:
    """Run ``write`` in a savepoint; 0 when another worker queued ``key`` first.

    The scans already leave out keys in the outbox; this covers two workers
    taking the same candidate at once. Any other integrity error is raised.
    """
    try:
        with conn.begin_nested():
            write()
    except IntegrityError:
        if conn.execute(select(outbox.c.id).where(outbox.c.dedupe_key == key)).first() is None:
            raise
        return 0
    return 1


# -- small helpers ------------------------------------------------------------------


def _recent(on: Mapping[int, OutboundSite]) -> dict[int, tuple[datetime, datetime]]:
    return {site.id: (site.now - WINDOW, site.now) for site in on.values()}


def _days(site: OutboundSite) -> timedelta:
    return timedelta(days=site.settings.upcoming_reminder_days)


def _zone(site: OutboundSite, row: Any) -> ZoneInfo:
    """The customer's zone, else their number's, else the site's (as the SMS gate judges)."""
    return local_zone(row.customer_zone, phone_time_zone(row.phone), site.time_zone)


def _in_period(lines: list[scans.Line], period: int | None) -> list[scans.Line]:
    """The lines billed in ``period``: every regular item, and add-ons for that order only."""
    return [line for line in lines if line.one_time_period in (None, period)]


def _or_nil(value: object) -> str | None:
    """A text worth showing, else None (Liquid's nil: an empty string would count as true)."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def _names(lines: list[scans.Line]) -> list[str]:
    return [line.name if line.quantity == 1 else f"{line.quantity} x {line.name}" for line in lines]
