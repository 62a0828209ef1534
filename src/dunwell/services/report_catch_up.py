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
from datetime import timedelta

from sqlalchemy import select

from dunwell.bootstrap import App
from dunwell.channels.base import SmsInbox
from dunwell.services.delivery_status import RANK, apply_status
from dunwell.services.sites import site_now
from dunwell.store.tables import UNREPORTED_SMS, UNREPORTED_STATUSES, outbox

log = logging.getLogger(__name__)

#: Twilio's callbacks usually come within seconds; after this long, one is lost.
REPORT_WAIT = timedelta(minutes=15)
#: Texts sent longer ago than this are not asked about any more.
REPORT_LOOKBACK = timedelta(days=1)
#: Texts asked about per site and check, the oldest first (one request each,
#: in the worker's pass: at a few hundred milliseconds per request, this
#: bounds how long the other stages wait). The rest wait for the next check.
MAX_REPORTS = 100


def catch_up_reports(app: App, site_id: int, inbox: SmsInbox) -> int:
    """Ask Twilio about the site's texts with no report; return how many moved on.

    Raises :class:`~dunwell.channels.base.TransportError` when Twilio cannot
    be asked; nothing is changed then.
    """
    o = outbox
    with app.connect() as conn:
        now = site_now(conn, site_id, app.clock)
        ids = list(
            conn.execute(
                select(o.c.provider_id)
                .where(o.c.site_id == site_id, UNREPORTED_SMS)
                .where(o.c.sent_at >= now - REPORT_LOOKBACK, o.c.sent_at <= now - REPORT_WAIT)
                .order_by(o.c.sent_at)
                .limit(MAX_REPORTS)
            ).scalars()
        )
    if not ids:
        return 0
    reported = {
        sid: answer
        for sid, answer in inbox.statuses(ids).items()
        if answer[0] in RANK and answer[0] not in UNREPORTED_STATUSES
    }
    if not reported:
        return 0
    with app.begin() as conn:
        for sid, (status, error_code) in reported.items():
            apply_status(conn, site_id, sid, status, error_code, now)
    log.warning(
        "site %s: %d delivery reports Twilio could not post were read back",
        site_id,
        len(reported),
    )
    return len(reported)
