"""The only way an SMS reaches a transport: every compliance check, in order.

The delivery worker hands each claimed SMS to :meth:`SmsGate.review`; only
the ids it returns are sent. For the others it writes why, in the same
transaction:

* **blocked** (never sent): the number opted out (STOP), SMS is turned off
  for the site, a marketing text without marketing opt-in, or a number that
  is invalid or outside the site's allowed countries. A text already paid
  for (a transient error sent it back to wait) gets its charge back;
* **held** (sent later, nothing dropped): outside the send window in the
  customer's local time, over the frequency cap, or not enough credits.
  An answer to a text the customer just sent (kinds ``reply``,
  ``opt_out_reply``, ``help_reply``) is held only for credits: see
  :data:`ANSWERS`.
  The row goes back to ``pending`` with ``next_attempt_at`` at the earliest
  allowed moment and ``held_reason`` saying why; a top-up releases texts
  held for credits at once.

A text inside its window is also held (``sender_queue``) when it could not
leave the provider's queue for the site's sender before the window closes,
or when that queue is already as long as the provider allows: see
:mod:`dunwell.services.sender_queue`. Each admitted text is told by when it
must have left (:class:`Admission`), which goes to Twilio as its validity
period.

Admitted texts are paid for here, before they are sent, so two workers can
never spend the same credits (see :mod:`dunwell.services.sms_credits`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, func, select, update

from dunwell.domain.compliance import (
    SendWindow,
    earliest_send_time,
    local_zone,
    next_window_opening,
    window_closing,
)
from dunwell.messaging.phones import PhoneError, normalize_phone, phone_region, phone_time_zone
from dunwell.services.events import EventBatch
from dunwell.services.sender_queue import (
    PROVIDER_QUEUE_LIMIT,
    SenderQueue,
    load_queues,
    save_queues,
)
from dunwell.services.sms_alerts import after_debit
from dunwell.services.sms_credits import balances, debit_message, debited, refund_message
from dunwell.services.sms_settings import SmsSettings, load_sms_settings
from dunwell.store.tables import customers, outbox, sites, sms_opt_outs

CAP_PERIOD = timedelta(hours=24)
#: A concierge answer to a text the customer just sent. The customer is
#: holding the conversation, so neither the send window nor the cap holds it
#: back (an answer to a 9 pm question arriving at 8 am is no answer); it
#: still needs consent, a valid number and credits.
REPLY = "reply"
#: The confirmation of an opt-out asked for in words: the one text a number
#: that just opted out may still receive, as after the STOP keyword.
OPT_OUT_REPLY = "opt_out_reply"
#: The answer to a HELP keyword whose webhook was lost, found later in
#: Twilio's log (see :mod:`dunwell.services.late_answers`). Carriers require
#: HELP to be answered whatever the number's consent, so it reaches a number
#: that opted out, and like any answer it is not held by the window or cap.
HELP_REPLY = "help_reply"
#: Answers to something the customer just texted: never held by the send
#: window or the frequency cap, only for credits.
ANSWERS = frozenset({REPLY, OPT_OUT_REPLY, HELP_REPLY})
#: The kinds a number that opted out still receives.
PAST_OPT_OUT = frozenset({OPT_OUT_REPLY, HELP_REPLY})
NO_CREDITS_RECHECK = timedelta(hours=6)


@dataclass(frozen=True)
class Admission:
    """What the sending needs to know of an admitted text."""

    #: When the text must have left the provider's queue (the customer's
    #: window closes), on the site's clock; None for an answer, which no
    #: window holds.
    leave_by: datetime | None
    #: Its time in the sender's queue, given back if it is not handed over.
    queue_wait: timedelta


class SmsGate:
    def __init__(self, conn: Connection, real_now: datetime) -> None:
        self.conn = conn
        self.real_now = real_now

    def review(self, rows: Sequence[Any]) -> dict[int, Admission]:
        """Decide every claimed SMS; return the ones that may be sent now, by id."""
        site_ids = {r.site_id for r in rows}
        settings = load_sms_settings(self.conn, site_ids)
        site_zones = dict(
            self.conn.execute(select(sites.c.id, sites.c.time_zone).where(sites.c.id.in_(site_ids)))
            .tuples()
            .all()
        )
        people = self._customers({r.customer_id for r in rows if r.customer_id})
        opted_out = self._opted_out(rows)
        earliest = min(r.test_clock or self.real_now for r in rows)
        recent = self._recent_sends(
            {(r.site_id, r.recipient) for r in rows if r.recipient}, earliest
        )
        credit = balances(self.conn, site_ids, self.real_now)
        paid = debited(self.conn, [r.id for r in rows])
        site_now = {r.site_id: r.test_clock or self.real_now for r in rows}
        queues = load_queues(
            self.conn,
            {site: settings[site].sender_segments_per_second for site in site_ids},
            site_now,
        )
        admitted: dict[int, Admission] = {}
        events = EventBatch()
        for row in sorted(rows, key=lambda r: (r.next_attempt_at, r.id)):
            now = row.test_clock or self.real_now
            s = settings[row.site_id]
            person = people.get(row.customer_id)
            blocked = _blocked(row, s, person, opted_out)
            if blocked is not None:
                self._block(row, blocked, now, events)
                if row.id in paid:
                    self._refund(row, now, credit)
                continue
            zone = local_zone(
                person.time_zone if person else None,
                phone_time_zone(row.recipient),
                site_zones[row.site_id],
            )
            sends = recent[(row.site_id, row.recipient)]
            at = earliest_send_time(now, zone, s.window, sends, s.frequency_cap, CAP_PERIOD)
            if at > now and row.kind not in ANSWERS:
                reason = "quiet_hours" if _outside_window(now, zone, s) else "frequency_cap"
                self._hold(row, at, reason)
                continue
            segments = row.segments or 1
            queue = queues[row.site_id]
            leave_by = None if row.kind in ANSWERS else window_closing(now, zone, s.window)
            room_at = _queue_room_at(queue, now, segments, leave_by, zone, s.window)
            if room_at is not None:
                self._hold(row, room_at, "sender_queue")
                continue
            cost = segments * s.price(phone_region(row.recipient))
            if row.id not in paid:
                if credit[row.site_id] < cost:
                    self._hold(row, now + NO_CREDITS_RECHECK, "no_credits")
                    continue
                credit[row.site_id] = debit_message(self.conn, row.site_id, row.id, cost, now)
                credit[row.site_id] = after_debit(
                    self.conn, row.site_id, s, credit[row.site_id], now
                )
            sends.append(now)
            queue.add(now, segments)
            admitted[row.id] = Admission(leave_by, queue.wait(segments))
        save_queues(self.conn, queues.values(), site_now)
        events.write(self.conn)
        return admitted

    # -- loading ------------------------------------------------------------

    def _customers(self, ids: set[int]) -> dict[int, Any]:
        if not ids:
            return {}
        c = customers
        rows = self.conn.execute(
            select(c.c.id, c.c.time_zone, c.c.marketing_sms_opt_in_at).where(c.c.id.in_(ids))
        )
        return {row.id: row for row in rows}

    def _opted_out(self, rows: Sequence[Any]) -> set[tuple[int, str]]:
        phones = {r.recipient for r in rows if r.recipient}
        if not phones:
            return set()
        t = sms_opt_outs
        found = self.conn.execute(
            select(t.c.site_id, t.c.phone)
            .where(t.c.site_id.in_({r.site_id for r in rows}), t.c.phone.in_(phones))
            .where(t.c.opted_out.is_(True))
        )
        return {(row.site_id, row.phone) for row in found}

    def _recent_sends(
        self, numbers: set[tuple[int, str]], earliest_now: datetime
    ) -> defaultdict[tuple[int, str], list[datetime]]:
        """Texts each site sent each number within a day before the batch's earliest clock.

        The cap counts per site and number, not per customer record: two
        records sharing a phone are one person's phone, and test sends have
        no customer at all. Each site keeps to its own rows and its own clock.
        """
        sends: defaultdict[tuple[int, str], list[datetime]] = defaultdict(list)
        if not numbers:
            return sends
        o = outbox
        since = earliest_now - CAP_PERIOD
        at = func.coalesce(o.c.sent_at, o.c.updated_at)
        rows = self.conn.execute(
            select(o.c.site_id, o.c.recipient, at.label("at"))
            .where(o.c.channel == "sms")
            .where(o.c.site_id.in_({site for site, _ in numbers}))
            .where(o.c.recipient.in_({phone for _, phone in numbers}))
            .where(o.c.status.in_(("sent", "delivered", "sending")))
            .where(at >= since)
        )
        for row in rows:
            if row.at is not None:
                sends[(row.site_id, row.recipient)].append(row.at)
        return sends

    # -- writing ------------------------------------------------------------

    def _hold(self, row: Any, until: datetime, reason: str) -> None:
        self.conn.execute(
            update(outbox)
            .where(outbox.c.id == row.id)
            .values(
                status="pending",
                next_attempt_at=until,
                held_reason=reason,
                lease_owner=None,
                lease_until=None,
            )
        )

    def _refund(self, row: Any, now: datetime, credit: dict[int, int]) -> None:
        """Give back the charge of a blocked text a transient error sent back to wait.

        It was paid for when first admitted and will never go out now. The
        balance read for this batch follows, so later texts may spend it.
        """
        refunded = refund_message(self.conn, row.site_id, row.id, now)
        if refunded is not None:
            credit[row.site_id] = refunded

    def _block(self, row: Any, reason: str, now: datetime, events: EventBatch) -> None:
        self.conn.execute(
            update(outbox)
            .where(outbox.c.id == row.id)
            .values(
                status="blocked",
                last_error=reason,
                held_reason=None,
                lease_owner=None,
                lease_until=None,
                updated_at=now,
            )
        )
        events.add(
            row.site_id,
            "message.blocked",
            now,
            customer_id=row.customer_id,
            invoice_id=row.invoice_id,
            message_id=row.id,
            reason=reason,
        )


def _blocked(row: Any, s: SmsSettings, person: Any, opted_out: set[tuple[int, str]]) -> str | None:
    if not s.enabled:
        return "sms_disabled"
    if not row.recipient:
        return "no_phone"
    try:
        normalize_phone(row.recipient, s.default_region, s.allowed_countries or None)
    except PhoneError as error:
        return f"phone_{error.reason}"
    if (row.site_id, row.recipient) in opted_out and row.kind not in PAST_OPT_OUT:
        return "opted_out"
    # Dunning is transactional; marketing texts need their own opt-in, and
    # an opt-in to marketing never stands in for transactional consent.
    if row.kind == "marketing" and (person is None or person.marketing_sms_opt_in_at is None):
        return "no_marketing_consent"
    return None


def _queue_room_at(
    queue: SenderQueue,
    now: datetime,
    segments: int,
    leave_by: datetime | None,
    zone: ZoneInfo,
    window: SendWindow,
) -> datetime | None:
    """When to look again at a text the sender's queue has no room for; None: it has room.

    A text that would leave after its window closes waits for the next
    opening, when the queue has long emptied. One that would find the queue
    fuller than the provider takes waits until enough of it has left.
    """
    leaves_at = queue.leaves_at(now, segments)
    if leave_by is not None and leaves_at > leave_by:
        return next_window_opening(leave_by, zone, window)
    if leaves_at - now > PROVIDER_QUEUE_LIMIT:
        return leaves_at - PROVIDER_QUEUE_LIMIT
    return None


def _outside_window(now: datetime, zone: Any, s: SmsSettings) -> bool:
    local = now.astimezone(zone).time()
    window = s.window
    return not (window.start <= local < window.end)
