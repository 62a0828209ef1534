"""How long texts handed to the provider wait there before a carrier takes them.

A carrier takes only so many segments a second from one sender: one from a
US long code, three or more from a toll-free number, a hundred from a
short code, the sum of its numbers from a Messaging Service's pool.
Twilio accepts texts faster than that and queues them, for up to ten
hours. So the moment a text is handed over is not the moment it reaches
the customer: after a large dunning run, a text handed to a long code's
queue at 19:00 could leave it hours later, well after the customer's send
window has closed.

Each site therefore keeps *when its sender's queue is expected to be
empty* (``sms_sender_queues.clears_at``, on the site's clock). The gate
(:mod:`dunwell.services.sms_gate`) adds every text it admits: the text
leaves at ``max(clears_at, now) + segments / rate``, and that becomes the
new ``clears_at``. A text that would leave after its window closes waits
for the next one instead of being handed over. A text that was admitted
but not handed over after all (a transient or permanent error, a lane
turned away, the batch's deadline) is given back, so an outage does not
leave a queue that exists only in the estimate. A text whose fate is
unknown stays counted.

The estimate is Dunwell's own texts only: a merchant whose other software
shares the sender fills the queue unseen. The validity period each text
carries to Twilio (see :mod:`dunwell.channels.twilio_sms`) guards that
case: Twilio drops a text still queued when the window closes.

The row is read ``FOR UPDATE`` on PostgreSQL, so two workers admitting the
same site's texts add to it one after the other; the claim transaction that
reads it already holds the site's credits row the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from dunwell.store.sql import insert_ignore
from dunwell.store.tables import sms_sender_queues

#: Twilio refuses a text (error 21611) once its sender's queue holds more
#: than ten hours of its rate; Dunwell keeps it rather than be refused.
PROVIDER_QUEUE_LIMIT = timedelta(hours=10)


@dataclass
class SenderQueue:
    """One site's queue at the provider, as far as Dunwell's own texts fill it."""

    site_id: int
    segments_per_second: float
    clears_at: datetime
    changed: bool = False

    def leaves_at(self, now: datetime, segments: int) -> datetime:
        """When a text of ``segments`` handed over at ``now`` is expected to leave."""
        return max(self.clears_at, now) + self.wait(segments)

    def wait(self, segments: int) -> timedelta:
        """The time ``segments`` take the sender, once their turn has come."""
        return timedelta(seconds=segments / self.segments_per_second)

    def add(self, now: datetime, segments: int) -> None:
        self.clears_at = self.leaves_at(now, segments)
        self.changed = True


def load_queues(
    conn: Connection, rates: Mapping[int, float], now: Mapping[int, datetime]
) -> dict[int, SenderQueue]:
    """The queues of these sites, locked for this transaction; a new one is empty at ``now``."""
    t = sms_sender_queues
    missing = set(rates) - _existing(conn, rates)
    if missing:
        insert_ignore(
            conn,
            t,
            [
                {"site_id": site, "clears_at": now[site], "updated_at": now[site]}
                for site in sorted(missing)
            ],
            ["site_id"],
        )
    rows = conn.execute(
        select(t.c.site_id, t.c.clears_at)
        .where(t.c.site_id.in_(sorted(rates)))
        .order_by(t.c.site_id)  # the same locking order in every worker
        .with_for_update()
    )
    return {
        row.site_id: SenderQueue(row.site_id, rates[row.site_id], row.clears_at) for row in rows
    }


def save_queues(
    conn: Connection, queues: Iterable[SenderQueue], now: Mapping[int, datetime]
) -> None:
    """Store the queues texts were added to."""
    for queue in queues:
        if queue.changed:
            conn.execute(
                update(sms_sender_queues)
                .where(sms_sender_queues.c.site_id == queue.site_id)
                .values(clears_at=queue.clears_at, updated_at=now[queue.site_id])
            )


def give_back(conn: Connection, site_id: int, wait: timedelta, now: datetime) -> None:
    """Take ``wait``, the time of texts admitted but never handed over, off a site's queue.

    The queue never goes back before ``now``: what had left has left.
    """
    if wait <= timedelta(0):
        return
    t = sms_sender_queues
    clears_at = conn.execute(
        select(t.c.clears_at).where(t.c.site_id == site_id).with_for_update()
    ).scalar_one_or_none()
    if clears_at is None or clears_at <= now:
        return
    conn.execute(
        update(t)
        .where(t.c.site_id == site_id)
        .values(clears_at=max(clears_at - wait, now), updated_at=now)
    )


def _existing(conn: Connection, rates: Mapping[int, float]) -> set[int]:
    t = sms_sender_queues
    return set(conn.execute(select(t.c.site_id).where(t.c.site_id.in_(sorted(rates)))).scalars())
