"""A site's texting over a period: volume, segments, credits spent and opt-outs.

* **Sent**: texts handed to the provider in the period (by ``sent_at``),
  whatever became of them later; **delivered** and **failed** count those
  of them whose last status is that.
* **Segments**: the billable parts of those texts, as the provider counts them.
* **Credits used**: the credits debited in the period, less the refunds of
  texts that failed (the ledger's ``debit`` and ``refund`` rows).
* **Opt-outs**: ``sms.opted_out`` events in the period (STOP, the concierge,
  an import). A number that opts out, back in and out again counts twice:
  each is a customer saying stop.
* **Opt-out rate**: opt-outs over the distinct numbers texted in the period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import Connection, func, select

from dunwell.services.recovery_figures import Window
from dunwell.store.tables import events, inbound_messages, outbox, sms_credit_ledger


@dataclass
class SmsFigures:
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    segments: int = 0
    credits_used: int = 0
    received: int = 0
    opt_outs: int = 0
    numbers_texted: int = 0
    #: Texts sent per day (or week) of the window, empty buckets included.
    by_bucket: dict[date, int] = field(default_factory=dict)

    @property
    def opt_out_rate(self) -> float | None:
        return self.opt_outs / self.numbers_texted if self.numbers_texted else None


def sms_figures(conn: Connection, site_id: int, window: Window) -> SmsFigures:
    figures = SmsFigures(by_bucket={start: 0 for start in window.buckets()})
    numbers: set[str] = set()
    o = outbox
    sent = conn.execute(
        select(o.c.status, o.c.segments, o.c.recipient, o.c.sent_at)
        .where(o.c.site_id == site_id, o.c.channel == "sms")
        .where(o.c.sent_at >= window.since, o.c.sent_at < window.until)
    )
    for row in sent:
        figures.sent += 1
        figures.delivered += row.status == "delivered"
        figures.failed += row.status == "failed"
        figures.segments += row.segments or 0
        figures.by_bucket[window.bucket_of(row.sent_at)] += 1
        if row.recipient:
            numbers.add(row.recipient)
    figures.numbers_texted = len(numbers)
    figures.credits_used = _credits_used(conn, site_id, window)
    figures.received = _received(conn, site_id, window)
    figures.opt_outs = _opt_outs(conn, site_id, window)
    return figures


def _credits_used(conn: Connection, site_id: int, window: Window) -> int:
    ledger = sms_credit_ledger
    spent = conn.execute(
        select(func.coalesce(func.sum(ledger.c.delta), 0))
        .where(ledger.c.site_id == site_id, ledger.c.reason.in_(("debit", "refund")))
        .where(ledger.c.created_at >= window.since, ledger.c.created_at < window.until)
    ).scalar_one()
    # Debits are negative deltas and refunds positive: their sum is minus what was used.
    return -int(spent)


def _received(conn: Connection, site_id: int, window: Window) -> int:
    t = inbound_messages
    query = select(func.count()).where(
        t.c.site_id == site_id, t.c.received_at >= window.since, t.c.received_at < window.until
    )
    return int(conn.execute(query).scalar_one())


def _opt_outs(conn: Connection, site_id: int, window: Window) -> int:
    e = events
    query = select(func.count()).where(
        e.c.site_id == site_id,
        e.c.type == "sms.opted_out",
        e.c.occurred_at >= window.since,
        e.c.occurred_at < window.until,
    )
    return int(conn.execute(query).scalar_one())
