"""What Twilio's webhooks could not tell Dunwell, read back from its API.

Texts whose inbound webhook never got through are stored here; delivery
reports that never came are read in :mod:`dunwell.services.report_catch_up`,
during the same check of the site.

Twilio posts an inbound text to the site's webhook once. If Dunwell is
down, restarting, or answers 500 because its database is, Twilio logs the
error and does nothing more (unless the number's webhook URL asks for
retries). Without this, a STOP sent during a deploy would be lost, and the
number would keep getting texts it refused.

So each worker pass checks, for every site that sends through Twilio,
whether the site's inbox is due for a read (every ``twilio_catch_up_seconds``).
One worker takes a due site by moving its ``next_check_at`` forward in a
conditional update, so several workers do not read the same inbox. It then
lists, through Twilio's API, the texts received since the site's
``synced_until`` and stores them exactly as the webhook does
(:func:`~dunwell.services.inbound_store.store_texts`): a MessageSid already
stored changes nothing, STOP / START / HELP are applied, and a text for the
concierge waits for the worker's concierge stage, which answers it by SMS.

With the webhook went its TwiML reply: a late HELP or START is answered by
a text through the outbox instead, and a late STOP is not confirmed (see
:mod:`dunwell.services.late_answers`).
A late text keeps the time Twilio received it, and a late keyword changes a
number's consent only if nothing newer was recorded since.

Texts younger than :data:`GRACE` are left for the next read: their webhook
may still be on its way, and it is the webhook that can reply. A site is
first read from the moment it is first seen; what Twilio received before
is not imported, nor is anything more than :data:`MAX_BACKLOG` old. A
read covers at most :data:`SLICE` of time and :data:`MAX_TEXTS` texts; a
site still behind after one is due again at once, so a long outage is
caught up slice by slice, pass after pass.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Select, or_, select, update

from dunwell.bootstrap import App
from dunwell.channels.base import ReceivedSms, SmsInbox, TransportError
from dunwell.channels.config import ChannelConfig
from dunwell.services.channel_config import load_channel_configs
from dunwell.services.inbound_sms import InboundResult, InboundSms
from dunwell.services.inbound_store import store_texts
from dunwell.services.report_catch_up import catch_up_reports
from dunwell.store.sql import insert_ignore
from dunwell.store.tables import site_channels, twilio_catch_up

log = logging.getLogger(__name__)

#: A text this recent may still have its webhook in flight (Twilio waits up
#: to 15 s for an answer, more with retries configured); the webhook can
#: reply, a read cannot.
GRACE = timedelta(minutes=2)
#: The most time one read covers: a long outage is caught up in slices.
SLICE = timedelta(hours=1)
#: The most texts stored from one read. A slice with more goes on from the
#: last one stored at the next read (MessageSids already stored are skipped).
MAX_TEXTS = 2000
#: The furthest back a read goes. A site whose reading stopped longer ago
#: (Twilio switched off for a while, workers stopped for days) starts again
#: here: older texts would be answered too late to help, and are skipped.
MAX_BACKLOG = timedelta(days=1)
NO_TOKEN = "Twilio: the auth token cannot be read (was the server key changed?)"
#: Sites checked per worker pass: each check calls Twilio, and the pass's
#: other stages (charges, deliveries) wait for it.
SITES_PER_PASS = 5


@dataclass(frozen=True)
class CatchUpState:
    """How far a site's Twilio log has been read, for the dashboard."""

    synced_until: datetime
    last_error: str | None
    checked_at: datetime


def catch_up_state(conn: Connection, site_id: int) -> CatchUpState | None:
    """The site's reading of Twilio's log, or None if no worker has read it yet."""
    t = twilio_catch_up
    row = conn.execute(
        select(t.c.synced_until, t.c.last_error, t.c.updated_at).where(t.c.site_id == site_id)
    ).first()
    return None if row is None else CatchUpState(row.synced_until, row.last_error, row.updated_at)


@dataclass(frozen=True)
class _Read:
    site_id: int
    since: datetime
    config: ChannelConfig


def catch_up_with_twilio(app: App, limit: int = SITES_PER_PASS) -> int:
    """Check every due Twilio site; return the texts stored and reports applied."""
    every = app.settings.twilio_catch_up_seconds
    if every <= 0:
        return 0
    now = app.clock.now()
    with app.connect() as conn:  # most passes find nothing due: no write transaction
        due = conn.execute(_due_sites(now).limit(limit)).all()
    if not due:
        return 0
    with app.begin() as conn:
        reads = _claim(app, conn, due, now, timedelta(seconds=every))
    return sum(_catch_up_site(app, read, now) for read in reads)


def _due_sites(now: datetime) -> Select[tuple[int, datetime | None]]:
    """Sites that send through Twilio, with their reading point (None: never read)."""
    t, sc = twilio_catch_up, site_channels
    return (
        select(sc.c.site_id, t.c.synced_until)
        .outerjoin(t, t.c.site_id == sc.c.site_id)
        .where(sc.c.channel == "sms", sc.c.provider == "twilio")
        .where(or_(t.c.id.is_(None), t.c.next_check_at <= now))
        .order_by(t.c.next_check_at.is_not(None), t.c.next_check_at)
    )


def _claim(
    app: App, conn: Connection, due: Sequence[Row[Any]], now: datetime, every: timedelta
) -> list[_Read]:
    """Take each due site by moving its next check ``every`` ahead.

    Only one worker's update finds a row still due, so only one reads it. A
    site seen for the first time gets a row that starts its reading now
    (nothing to read yet).
    """
    t = twilio_catch_up
    new = [
        {"site_id": row.site_id, "synced_until": now - GRACE, "next_check_at": now + every}
        for row in due
        if row.synced_until is None
    ]
    if new:
        insert_ignore(conn, t, [{**row, "updated_at": now} for row in new], ["site_id"])
    taken = [
        row.site_id
        for row in due
        if row.synced_until is not None
        and conn.execute(
            update(t)
            .where(t.c.site_id == row.site_id, t.c.next_check_at <= now)
            .values(next_check_at=now + every, updated_at=now)
        ).rowcount
    ]
    if not taken:
        return []
    # Read again under the claim: another worker may have moved it since.
    rows = conn.execute(select(t.c.site_id, t.c.synced_until).where(t.c.site_id.in_(taken)))
    since = {row.site_id: row.synced_until for row in rows}
    configs = load_channel_configs(conn, taken, app.secret_box_or_none())
    return [_Read(s, since[s], configs[(s, "sms")]) for s in taken]


def _catch_up_site(app: App, read: _Read, now: datetime) -> int:
    """Read one site's inbox, then its missing delivery reports; return texts and reports."""
    if not read.config.secret:
        _note(app, read.site_id, NO_TOKEN, now)
        return 0
    inbox = app.channels.inbox(read.site_id, read.config)
    if inbox is None:
        return 0
    try:
        stored = _read_texts(app, read, inbox, now)
        try:
            return stored + catch_up_reports(app, read.site_id, inbox)
        except TransportError as error:
            log.warning(
                "site %s: Twilio could not be asked for delivery reports (%s)",
                read.site_id,
                error.message,
            )
            _note(app, read.site_id, f"Twilio: {error.message}", now)
            return stored
    finally:
        inbox.close()


def _read_texts(app: App, read: _Read, inbox: SmsInbox, now: datetime) -> int:
    oldest = now - MAX_BACKLOG
    if read.since < oldest:
        log.warning(
            "site %s: Twilio's inbox was last read at %s; texts before %s are skipped",
            read.site_id,
            read.since.isoformat(),
            oldest.isoformat(),
        )
        read = replace(read, since=oldest)
    until = min(now - GRACE, read.since + SLICE)
    if until <= read.since:
        return 0
    try:
        texts = inbox.received(read.since, until, MAX_TEXTS)
    except TransportError as error:
        log.warning(
            "site %s: Twilio's inbox could not be read (%s); tried again at the next check",
            read.site_id,
            error.message,
        )
        _note(app, read.site_id, f"Twilio: {error.message}", now)
        return 0
    outcomes = store_texts(app, [_inbound(read.site_id, text) for text in texts]) if texts else []
    failed = [o for o in outcomes if isinstance(o, Exception)]
    if failed:
        # The cursor stays: the read is repeated, and what was stored is skipped.
        _note(app, read.site_id, f"{len(failed)} texts could not be stored", now)
        return 0
    new = sum(1 for o in outcomes if isinstance(o, InboundResult) and not o.duplicate)
    if new:
        log.warning(
            "site %s: %d texts Twilio received never reached the webhook; stored them now",
            read.site_id,
            new,
        )
    # Capped: go on from the last text stored (its second may hold more).
    synced = texts[-1].received_at if len(texts) >= MAX_TEXTS else until
    # Behind after an outage: the next pass reads on, not the next check.
    _note(app, read.site_id, None, now, synced_until=synced, due_again=synced < now - GRACE)
    return new


def _inbound(site_id: int, text: ReceivedSms) -> InboundSms:
    return InboundSms(
        site_id=site_id,
        provider="twilio",
        sid=text.sid,
        from_phone=text.from_phone,
        to_phone=text.to_phone,
        body=text.body,
        received_at=text.received_at,
    )


def _note(
    app: App,
    site_id: int,
    error: str | None,
    now: datetime,
    *,
    synced_until: datetime | None = None,
    due_again: bool = False,
) -> None:
    """Record a check's outcome: its error (None: it went well) and, if given,
    the new reading point, which only ever moves forward."""
    t = twilio_catch_up
    values: dict[str, Any] = {"last_error": error, "updated_at": now}
    where = [t.c.site_id == site_id]
    if synced_until is not None:
        values["synced_until"] = synced_until
        where.append(t.c.synced_until <= synced_until)
    if due_again:
        values["next_check_at"] = now
    with app.begin() as conn:
        conn.execute(update(t).where(*where).values(values))
