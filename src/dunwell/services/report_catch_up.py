"""Delivery reports Twilio could not post, read back from its API.

Twilio posts each status callback once, like the inbound webhook. A text
sent just before Dunwell went down, or whose callbacks got an error, would
stay ``sent`` with Twilio's first answer (``queued``, ``accepted``) for
ever: a failed text would keep its credits, and never count as failed.

So when the worker reads a site's inbox (:mod:`dunwell.services.twilio_catch_up`)
it also asks Twilio for the current status of the site's texts that got no
report at all within :data:`REPORT_WAIT` of being sent, and applies each
answer exactly as a callback would (:func:`~dunwell.services.delivery_status.apply_status`:
statuses only move forward, a failure gives the credits back). A text that
got any report, ``sent`` included, is never asked about: carriers that do
not confirm delivery leave texts ``sent`` for good, and asking again would
change nothing. The texts are found through a partial index that holds
only texts with no report, so the read stays small whatever the outbox's size.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, or_, select, update

from dunwell.bootstrap import App
from dunwell.channels.base import SmsInbox
from dunwell.services.delivery_status import RANK, apply_status
from dunwell.services.sites import site_now
from dunwell.store.tables import UNREPORTED_SMS, UNREPORTED_STATUSES, outbox, twilio_catch_up

log = logging.getLogger(__name__)

#: Twilio's callbacks usually come within seconds; after this long, one is lost.
REPORT_WAIT = timedelta(minutes=15)
#: Texts sent longer ago than this are not asked about any more.
REPORT_LOOKBACK = timedelta(days=1)
#: Texts asked about per site and check (one request each, in the worker's
#: pass: at a few hundred milliseconds per request, this bounds how long the
#: other stages wait). The rest are asked about at the next checks, in turn.
MAX_REPORTS = 100


def catch_up_reports(app: App, site_id: int, inbox: SmsInbox, limit: int = MAX_REPORTS) -> int:
    """Ask Twilio about up to ``limit`` texts with no report; return how many moved on.

    The texts are taken in the order they were sent, after the last one the
    previous check asked about (``twilio_catch_up.reports_after``), so when
    Twilio keeps more than ``limit`` queued, each is still asked about in
    turn. Raises :class:`~dunwell.channels.base.TransportError` when Twilio
    cannot be asked; nothing is changed then.
    """
    with app.connect() as conn:
        now = site_now(conn, site_id, app.clock)
        after = conn.execute(
            select(twilio_catch_up.c.reports_after, twilio_catch_up.c.reports_after_id).where(
                twilio_catch_up.c.site_id == site_id
            )
        ).first()
        start = (after.reports_after, after.reports_after_id) if after else (None, None)
        texts = conn.execute(_unreported(site_id, now, start, limit)).all()
    # A full page: the next check goes on after it. Less: it starts again.
    go_on = (texts[-1].sent_at, texts[-1].id) if len(texts) >= limit else (None, None)
    if not texts and start == go_on:
        return 0
    answers = inbox.statuses([text.provider_id for text in texts]) if texts else {}
    reported = {
        sid: answer
        for sid, answer in answers.items()
        if answer[0] in RANK and answer[0] not in UNREPORTED_STATUSES
    }
    with app.begin() as conn:
        for sid, (status, error_code) in reported.items():
            apply_status(conn, site_id, sid, status, error_code, now)
        if go_on != start:
            conn.execute(
                update(twilio_catch_up)
                .where(twilio_catch_up.c.site_id == site_id)
                .values(reports_after=go_on[0], reports_after_id=go_on[1])
            )
    if reported:
        log.warning(
            "site %s: %d delivery reports Twilio could not post were read back",
            site_id,
            len(reported),
        )
    return len(reported)


def _unreported(
    site_id: int, now: datetime, after: tuple[datetime | None, int | None], limit: int
) -> Select[tuple[int, datetime, str]]:
    """The site's texts with no report, sent within the window, after ``after`` (sent_at, id)."""
    o = outbox
    query = (
        select(o.c.id, o.c.sent_at, o.c.provider_id)
        .where(o.c.site_id == site_id, UNREPORTED_SMS)
        .where(o.c.sent_at >= now - REPORT_LOOKBACK, o.c.sent_at <= now - REPORT_WAIT)
    )
    sent_at, message_id = after
    if sent_at is not None and message_id is not None:
        # Texts sent in one delivery batch share their sent_at: the id breaks the tie.
        query = query.where(
            or_(o.c.sent_at > sent_at, and_(o.c.sent_at == sent_at, o.c.id > message_id))
        )
    return query.order_by(o.c.sent_at, o.c.id).limit(limit)
