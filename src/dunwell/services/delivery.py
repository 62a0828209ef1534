"""Delivering outbox email and SMS in batches, never the same message twice.

One batch:

1. *Claim* (one transaction): lease due messages; send SMS through the
   compliance gate (:mod:`dunwell.services.sms_gate`), which holds or blocks
   what may not go out now; open an attempt row for each message to send.
2. *Send*, with no transaction open: per site and channel, one transport.
   A message whose earlier attempt never finished (the worker died between
   the provider's answer and the commit) is first looked up at the provider
   (:meth:`~dunwell.channels.base.SmsTransport.find_sent`); email is sent
   again with the same Message-ID.
3. *Record* each answer in its own short transaction, so a crash leaves at
   most one message per lane in doubt. A send whose answer never came (a
   read timeout) is recorded ``unknown``: the provider may have taken it,
   so the next attempt looks it up first, as after a crash.

**Lanes.** A relay or Twilio takes tens to hundreds of milliseconds to
answer, so one message after another caps a worker at a few to a few tens
a second, however idle the machine. A site's messages for SMTP or Twilio
are therefore sent by up to ``delivery_concurrency`` lanes side by side,
each a thread with its own connection (the time goes to waiting on the
network, which threads share well). The lanes take the messages from one
queue, all the messages to one address at a time and in order, so a
customer's texts never overtake each other. The sandbox stores messages
in the database and answers at once: its messages keep one lane, where
threads would only queue for SQLite's write lock.

A relay may allow fewer connections than there are lanes. A lane the
provider turns away (:attr:`~dunwell.channels.base.TransportError.turned_away`:
no connection, "421 too many connections", Twilio's 429) hands its unsent
chain back to the lanes still open and ends, so the batch goes out over
the connections the provider allows instead of failing. When the last lane
is turned away too, the provider is down or full: the rest of the batch
waits for its retry without being tried, so a relay that never answers
costs one timeout per lane, not one per message.

Lanes stop starting messages, the first of a chain or the next in one, in
time for the last message sent to end within the batch's lease
(``claims.start_window``, with the transports' timeout as the longest a
message takes). The messages no lane reached are put back as
they were before the claim, with no attempt counted, and go in the next
batch: a slow provider makes batches smaller, instead of letting the lease
expire while messages are in flight, which would let another worker send
them again.

Transient errors retry on :data:`RETRY_DELAYS` (about four days in all),
then the message fails; permanent errors fail at once. Dunning reminders
whose invoice was paid or voided while they waited are withdrawn
(``canceled``) instead of sent.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.utils import parseaddr
from functools import partial
from threading import Lock
from typing import Any

from sqlalchemy import Connection, insert, select, update

from dunwell.bootstrap import App
from dunwell.channels.base import EmailMessage, SendResult, SmsMessage, TransportError
from dunwell.channels.config import ChannelConfig, sandbox_config
from dunwell.domain.states import InvoiceStatus
from dunwell.services.channel_config import hold_unreadable, read_channel_configs
from dunwell.services.claims import put_back_unstarted, start_window
from dunwell.services.events import EventBatch
from dunwell.services.message_claims import (
    claim_due_messages,
    load_claimed,
    next_attempt_numbers,
    open_attempts,
)
from dunwell.services.sender_queue import give_back
from dunwell.services.sms_gate import Admission, SmsGate
from dunwell.settings import Settings
from dunwell.store.tables import invoices, message_attempts, outbox

log = logging.getLogger("dunwell.delivery")

#: Providers reached over the network: their messages are sent in lanes.
CONCURRENT_PROVIDERS = frozenset({"smtp", "twilio"})
#: Outcomes of an attempt the provider certainly did not take.
NOT_HANDED_OVER = frozenset({"transient", "permanent"})
#: The longest validity period Twilio takes: ten hours.
MAX_VALIDITY_SECONDS = 36_000
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 15, 60, 180, 360, 720, 1440, 1440, 1440))


@dataclass
class Outgoing:
    row: Any
    attempt_no: int
    in_doubt_since: datetime | None
    config: ChannelConfig
    #: For a text the send window holds: the ``time.monotonic()`` by which it
    #: must have left the provider, which becomes its validity period.
    leave_within: float | None = None
    #: A text's time in the sender's queue, given back if it is not handed over.
    queue_wait: timedelta = timedelta(0)


@dataclass(frozen=True)
class Outcome:
    kind: str  # sent | reconciled | transient | unknown | permanent
    result: SendResult | None = None
    error: TransportError | None = None


def deliver_due_messages(app: App, owner: str, limit: int) -> int:
    """Deliver one batch; return how many messages were claimed (0 when idle)."""
    real_now = app.clock.now()
    lease_until = real_now + timedelta(seconds=app.settings.lease_seconds)
    with app.begin() as conn:
        ids = claim_due_messages(conn, owner, real_now, lease_until, limit)
        if not ids:
            return 0
        outgoing = _prepare(app, conn, ids, real_now)
    until = time.monotonic() + start_window(
        (lease_until - app.clock.now()).total_seconds(), _longest_send(app)
    )
    lanes = [lane for group in _groups(outgoing) for lane in _lanes(group, app.settings, until)]
    concurrency = app.settings.delivery_concurrency
    try:
        if concurrency == 1 or len(lanes) == 1:
            for first, chains in lanes:
                _send_lane(app, owner, first, chains)
        elif lanes:
            _send_side_by_side(app, owner, lanes, concurrency)
    finally:
        # Also when a lane failed (the database, say): what no lane started
        # was never sent, and should not wait out the lease to be taken
        # again as if it might have been.
        queues = {id(chains): chains for _, chains in lanes}.values()
        _put_back(app, owner, [item for chains in queues for item in chains.left_behind()])
    return len(ids)


def _longest_send(app: App) -> float:
    # Measured like the lease it must fit in; a span of this process's time
    # (time.monotonic), never stored.
    options = app.channels.options
    return max(options.smtp_timeout, options.twilio_timeout)


def _put_back(app: App, owner: str, items: list[Outgoing]) -> None:
    """Return messages no lane reached in time to how they were before the claim.

    The attempt reserved for each is removed and not counted, so a message
    put back is due at once and loses none of its tries; an earlier attempt
    in doubt stays in doubt.
    """
    if not items:
        return
    real_now = app.clock.now()
    a = message_attempts
    with app.begin() as conn:
        put_back_unstarted(
            conn,
            outbox,
            {i.row.id: i.attempt_no for i in items},
            owner,
            attempt_of=a.c.outbox_id,
            unfinished=a.c.outcome.is_(None),
        )
        waits: dict[tuple[int, datetime], timedelta] = defaultdict(timedelta)
        for item in items:
            waits[(item.row.site_id, item.row.test_clock or real_now)] += item.queue_wait
        for (site_id, site_now), wait in sorted(waits.items()):
            give_back(conn, site_id, wait, site_now)


class Chains:
    """The queue of *chains* one site's lanes for one channel share.

    A chain is the messages to one address, in the order they were queued.
    A lane takes a whole chain at a time, so one address's messages never
    go out side by side or out of order.
    """

    def __init__(self, chains: list[list[Outgoing]], lanes: int, until: float | None) -> None:
        self._chains = deque(chains)
        self._lanes = lanes  # lanes that may still take a chain
        self._until = until  # time.monotonic() after which no message is started
        self._cut: list[Outgoing] = []  # the unsent ends of chains the time cut short
        self._lock = Lock()

    def take(self) -> list[Outgoing] | None:
        """The next chain; None when all are taken or the time is up, and the lane ends."""
        with self._lock:
            if self._chains and self._time_left():
                return self._chains.popleft()
            self._lanes -= 1
            return None

    def go_on(self, rest: list[Outgoing]) -> bool:
        """Whether a lane may start ``rest``, the unsent end of its chain.

        The start window holds for every message, not only a chain's first:
        a chain of several, each as slow as the timeout, would otherwise run
        past the lease. Once the time is up the rest is left behind with the
        chains no lane took; the earlier messages have gone, so the address
        keeps its order when the rest goes in the next batch.
        """
        if self._time_left():
            return True
        with self._lock:
            self._cut.extend(rest)
        return False

    def _time_left(self) -> bool:
        return self._until is None or time.monotonic() < self._until

    def left_behind(self) -> list[Outgoing]:
        """The messages no lane started (once every lane has ended)."""
        with self._lock:
            return [*self._cut, *(item for chain in self._chains for item in chain)]

    def hand_over(self, rest: list[Outgoing]) -> bool:
        """Put the unsent rest of a chain first in the queue, and end the lane.

        For a lane the provider turned away (a relay that allows fewer
        connections than there are lanes): the lanes whose connections are
        open send it. Returns False, and the lane goes on, when it is the
        last lane left, since no other would take the chain. Both happen
        under one lock with :meth:`take`, so a chain handed over is never
        left behind by lanes that have all just ended.
        """
        with self._lock:
            if self._lanes <= 1:
                return False
            self._chains.appendleft(rest)
            self._lanes -= 1
            return True

    def leave(self) -> None:
        """A lane that failed (the database, say) takes no more: it no
        longer counts as one that would take a chain handed over."""
        with self._lock:
            self._lanes -= 1


#: A lane: the first message of its group (which transport to open), and
#: the queue it takes its messages from.
Lane = tuple[Outgoing, Chains]


def _lanes(group: list[Outgoing], settings: Settings, until: float) -> list[Lane]:
    """The lanes that send one site's messages of one channel (see the module doc).

    Each lane takes the next chain when it has sent the last: a lane held
    up by a slow answer takes fewer, so none idles while another has a
    backlog.
    """
    first = group[0]
    if first.config.provider not in CONCURRENT_PROVIDERS:
        # One chain of the whole group: the sandbox answers from the
        # database at once, and its order is the queue's.
        return [(first, Chains([group], lanes=1, until=None))]
    by_address: dict[str, list[Outgoing]] = defaultdict(list)
    for item in group:
        by_address[item.row.recipient or ""].append(item)
    count = min(settings.delivery_concurrency, len(by_address))
    chains = Chains(list(by_address.values()), lanes=count, until=until)
    return [(first, chains)] * count


def _send_side_by_side(app: App, owner: str, lanes: list[Lane], concurrency: int) -> None:
    """Send every lane, up to ``concurrency`` at once; then raise the first failure, if any.

    Every lane runs to its end even when another fails, so each message is
    either recorded or left leased, never abandoned half-way by a sibling.
    """
    with ThreadPoolExecutor(min(concurrency, len(lanes)), "dunwell-send") as pool:
        futures = [pool.submit(_send_lane, app, owner, first, chains) for first, chains in lanes]
        wait(futures)
    for future in futures:
        future.result()


def _prepare(app: App, conn: Connection, ids: list[int], real_now: datetime) -> list[Outgoing]:
    rows = _withdraw_settled(conn, load_claimed(conn, ids, real_now), real_now)
    box = app.secret_box_or_none()
    configs, unreadable = read_channel_configs(conn, {r.site_id for r in rows}, box)
    rows = hold_unreadable(conn, rows, unreadable, real_now)
    sms_rows = [r for r in rows if r.channel == "sms"]
    admitted = SmsGate(conn, real_now).review(sms_rows) if sms_rows else {}
    started = time.monotonic()
    sendable = [r for r in rows if r.channel == "email" or r.id in admitted]
    if not sendable:
        return []
    numbers = next_attempt_numbers(conn, [r.id for r in sendable])
    doubtful = open_attempts(conn, [r.id for r in sendable])
    if doubtful:
        conn.execute(
            update(message_attempts)
            .where(message_attempts.c.id.in_([a.attempt_id for a in doubtful.values()]))
            .where(message_attempts.c.outcome.is_(None))
            .values(outcome="unknown", finished_at=real_now)
        )
    conn.execute(
        insert(message_attempts),
        [
            {
                "site_id": r.site_id,
                "outbox_id": r.id,
                "attempt_no": numbers[r.id],
                "provider": _config(configs, r).provider,
                "started_at": real_now,
            }
            for r in sendable
        ],
    )
    conn.execute(
        update(outbox)
        .where(outbox.c.id.in_([r.id for r in sendable]))
        .values(status="sending", attempts=outbox.c.attempts + 1, held_reason=None)
    )
    return [
        Outgoing(
            row=r,
            attempt_no=numbers[r.id],
            in_doubt_since=doubtful[r.id].since if r.id in doubtful else None,
            config=_config(configs, r),
            **_admission_terms(admitted.get(r.id), r.test_clock or real_now, started),
        )
        for r in sendable
    ]


def _admission_terms(
    admission: Admission | None, site_now: datetime, started: float
) -> dict[str, Any]:
    """An admitted text's deadline to leave the provider, as a ``time.monotonic()``, and wait."""
    if admission is None:
        return {}
    leave_within = None
    if admission.leave_by is not None:
        leave_within = started + (admission.leave_by - site_now).total_seconds()
    return {"leave_within": leave_within, "queue_wait": admission.queue_wait}


def _withdraw_settled(conn: Connection, rows: list[Any], real_now: datetime) -> list[Any]:
    """Drop dunning reminders whose invoice was paid or voided while they waited.

    A text held overnight for quiet hours must not ask a customer who paid
    in the meantime to pay again. The final notice is kept: it reports what
    was done. A text still holding its charge (a transient error sent it
    back to wait) gets it back.
    """
    reminders = {
        r.invoice_id
        for r in rows
        if r.invoice_id and r.payload.get("event") == "dunning.step_reached"
    }
    if not reminders:
        return rows
    settled = set(
        conn.execute(
            select(invoices.c.id)
            .where(invoices.c.id.in_(reminders))
            .where(invoices.c.status.in_((InvoiceStatus.PAID.value, InvoiceStatus.VOIDED.value)))
        ).scalars()
    )
    withdrawn = [
        r.id
        for r in rows
        if r.invoice_id in settled and r.payload.get("event") == "dunning.step_reached"
    ]
    if not withdrawn:
        return rows
    conn.execute(
        update(outbox)
        .where(outbox.c.id.in_(withdrawn))
        .values(
            status="canceled",
            last_error="the invoice was settled before the message went out",
            lease_owner=None,
            lease_until=None,
            updated_at=real_now,
        )
    )
    gone = set(withdrawn)
    _refund_withdrawn(conn, [r for r in rows if r.id in gone], real_now)
    return [r for r in rows if r.id not in gone]


def _refund_withdrawn(conn: Connection, rows: list[Any], real_now: datetime) -> None:
    """Give back the charges withdrawn texts still hold: they will never go out."""
    # Imported here, as in _record: the rest of this module never needs credits.
    from dunwell.services.sms_credits import debited, refund_message

    texts = [r for r in rows if r.channel == "sms"]
    if not texts:
        return
    paid = debited(conn, [r.id for r in texts])
    # In site order, so workers lock the sites' credit rows in the gate's order.
    for row in sorted(texts, key=lambda r: (r.site_id, r.id)):
        if row.id in paid:
            refund_message(conn, row.site_id, row.id, row.test_clock or real_now)


def _config(configs: dict[tuple[int, str], ChannelConfig], row: Any) -> ChannelConfig:
    found = configs.get((row.site_id, row.channel))
    if found is not None:
        return found
    # A sandbox site delivers to the sandbox mailbox and phone; a live site
    # must never appear to send while nothing leaves the building.
    if row.site_mode == "sandbox":
        return sandbox_config(row.channel)
    return ChannelConfig(row.channel, "unconfigured", {}, None)


def _groups(outgoing: list[Outgoing]) -> list[list[Outgoing]]:
    groups: dict[tuple[int, str], list[Outgoing]] = defaultdict(list)
    for item in outgoing:
        groups[(item.row.site_id, item.row.channel)].append(item)
    return list(groups.values())


def _send_lane(app: App, owner: str, first: Outgoing, chains: Chains) -> None:
    try:
        if first.row.channel == "email":
            transport = app.channels.email(first.row.site_id, first.config)
            with transport.session() as sender:
                _send_chains(app, owner, chains, lambda i: _send_email(app, sender.send, i))
        else:
            sms = app.channels.sms(first.row.site_id, first.config)
            try:
                _send_chains(app, owner, chains, lambda i: _send_sms(app, sms, i))
            finally:
                close = getattr(sms, "close", None)  # Twilio keeps a connection pool
                if close is not None:
                    close()
    except TransportError as error:  # the transport itself could not be made
        # The same holds for every lane of this site and channel: whatever
        # is left waits for the next try, in a minute, rather than be lost.
        _as_lane(chains, partial(_record_unsent, app, owner, [], chains, error))


def _send_chains(app: App, owner: str, chains: Chains, send: Callable[[Outgoing], Outcome]) -> None:
    _as_lane(chains, lambda: _take_and_send(app, owner, chains, send))


def _as_lane(chains: Chains, work: Callable[[], None]) -> None:
    """Run a lane's work; a lane that fails on the way leaves the count.

    ``work`` leaves it itself when it ends normally, as its last step (a
    ``take`` that finds nothing, or a ``hand_over``), so nothing after that
    can raise and leave it twice.
    """
    try:
        work()
    except BaseException:
        chains.leave()
        raise


def _take_and_send(
    app: App, owner: str, chains: Chains, send: Callable[[Outgoing], Outcome]
) -> None:
    while (chain := chains.take()) is not None:
        for index, item in enumerate(chain):
            if index and not chains.go_on(chain[index:]):
                break  # the next take ends the lane: the time is up
            outcome = _attempt(item, send)
            error = outcome.error
            if error is not None and error.turned_away:
                if chains.hand_over(chain[index:]):
                    log.info(
                        "site %s: %s turned a %s lane away (%s); the other lanes go on",
                        item.row.site_id,
                        item.config.provider,
                        item.row.channel,
                        error.code,
                    )
                    return
                # The last lane, turned away too: the provider is down or
                # full, not short of a connection. The rest would fail the
                # same way, each after its own timeout, so it waits instead.
                _record(app, owner, item, outcome)
                _record_unsent(app, owner, chain[index + 1 :], chains, error)
                return
            _record(app, owner, item, outcome)


def _record_unsent(
    app: App, owner: str, rest: list[Outgoing], chains: Chains, error: TransportError
) -> None:
    """Record ``rest`` and every chain not yet taken as not sent this time.

    A message whose earlier attempt is in doubt stays in doubt (``unknown``),
    so its next attempt still looks before sending.
    """
    # Chains are taken one at a time, each recorded before the next, so the
    # lane leaves the count only at the end (see _as_lane).
    for item in rest:
        _record_not_tried(app, owner, item, error)
    while (chain := chains.take()) is not None:
        for item in chain:
            _record_not_tried(app, owner, item, error)


def _record_not_tried(app: App, owner: str, item: Outgoing, error: TransportError) -> None:
    kind = "unknown" if item.in_doubt_since is not None else "transient"
    _record(app, owner, item, Outcome(kind, error=error))


def _attempt(item: Outgoing, send: Callable[[Outgoing], Outcome]) -> Outcome:
    try:
        return send(item)
    except TransportError as error:
        return Outcome(_error_kind(error), error=error)
    except Exception as error:  # a bug in a transport must not lose the message
        log.exception("transport raised unexpectedly for message %s", item.row.id)
        return Outcome("transient", error=TransportError(repr(error), permanent=False))


def _error_kind(error: TransportError) -> str:
    if error.permanent:
        return "permanent"
    # Retried like a transient error, but the attempt stays in doubt, so
    # the next one asks the provider before sending again.
    return "unknown" if error.in_doubt else "transient"


def _send_email(app: App, send: Callable[[EmailMessage], SendResult], item: Outgoing) -> Outcome:
    return Outcome("sent", send(email_message(app, item)))


def _send_sms(app: App, transport: Any, item: Outgoing) -> Outcome:
    message = sms_message(app, item)
    if item.in_doubt_since is not None:
        try:
            found = transport.find_sent(message, item.in_doubt_since)
        except TransportError as unchecked:
            # Whether an earlier attempt got through is still not known:
            # the next attempt must look again, not send blind.
            raise TransportError(
                f"could not check for an earlier send: {unchecked.message}",
                permanent=unchecked.permanent,
                code=unchecked.code,
                turned_away=unchecked.turned_away,
                in_doubt=True,
            ) from unchecked
        if found is not None and found.status in ("failed", "undelivered"):
            # Accepted before the crash, then refused by the carrier.
            error = TransportError(
                f"the provider reports this text {found.status}",
                permanent=True,
                code=f"twilio-{found.status}",
            )
            return Outcome("permanent", error=error)
        if found is not None:
            return Outcome("reconciled", found)
    return Outcome("sent", transport.send(message))


def email_message(app: App, item: Outgoing) -> EmailMessage:
    row, config = item.row, item.config.config
    from_addr = config.get("from_addr") or app.settings.mail_from
    domain = parseaddr(from_addr)[1].rpartition("@")[2] or "dunwell.localhost"
    bcc = config.get("bcc") or row.support_email
    return EmailMessage(
        to=row.recipient,
        from_addr=_named(row.site_name, from_addr),
        subject=row.subject or "",
        text=row.body_text or "",
        html=row.body_html,
        # The same on every attempt, so a re-send after a crash is one
        # message to the receiving side.
        message_id=f"<outbox-{row.id}.site-{row.site_id}@{domain}>",
        reply_to=config.get("reply_to") or row.support_email,
        bcc=(bcc,) if bcc and row.payload.get("bcc_merchant") else (),
        headers={"X-Dunwell-Message": str(row.id)},
    )


def sms_message(app: App, item: Outgoing) -> SmsMessage:
    row = item.row
    callback = None
    if item.config.provider == "twilio":
        callback = f"{app.settings.public_url.rstrip('/')}/twilio/{row.site_slug}/status"
    validity = None
    if item.leave_within is not None:
        # Whole seconds, rounded down, so the text never outlives the window;
        # Twilio takes 1 to 36,000 (ten hours).
        left = int(item.leave_within - time.monotonic())
        validity = min(max(left, 1), MAX_VALIDITY_SECONDS)
    return SmsMessage(
        to=row.recipient,
        body=row.body_text or "",
        status_callback=callback,
        validity_seconds=validity,
    )


def _named(name: str, address: str) -> str:
    """``address`` with the site's name shown, quoted and escaped as RFC 5322 asks.

    A name is the merchant's own text: a quote, a backslash or a line break
    in it must not break the header or the envelope sender read from it.
    """
    display = " ".join(name.split())
    if "<" in address or not display:
        return address
    try:
        return str(Address(display_name=display, addr_spec=address))
    except (ValueError, HeaderParseError):  # the transport refuses the address itself
        return address


def _record(app: App, owner: str, item: Outgoing, outcome: Outcome) -> None:
    row, real_now = item.row, app.clock.now()
    site_now = row.test_clock or real_now
    values = _outbox_values(row, outcome, site_now)
    error = outcome.error
    with app.begin() as conn:
        conn.execute(
            update(message_attempts)
            .where(message_attempts.c.outbox_id == row.id)
            .where(message_attempts.c.attempt_no == item.attempt_no)
            .values(
                outcome=outcome.kind,
                finished_at=real_now,
                error_code=error.code if error else None,
                error=error.message if error else None,
                provider_id=outcome.result.provider_id if outcome.result else None,
            )
        )
        held = conn.execute(
            update(outbox)
            .where(outbox.c.id == row.id, outbox.c.lease_owner == owner)
            .values(
                **values,
                provider=item.config.provider,
                lease_owner=None,
                lease_until=None,
                updated_at=site_now,
            )
        ).rowcount
        if held and values["status"] in ("sent", "delivered", "failed"):
            _event(conn, row, values, site_now)
        if held and values["status"] == "failed" and row.channel == "sms":
            from dunwell.services.sms_credits import refund_message

            refund_message(conn, row.site_id, row.id, site_now)
        if outcome.kind in NOT_HANDED_OVER:
            # Whether or not this worker still holds the lease: it admitted
            # the text into the estimate, and it did not hand it over. After
            # the refund, so the site's credits row is locked before its queue
            # row, in the order of the claim (a reversed order could deadlock).
            give_back(conn, row.site_id, item.queue_wait, site_now)


def _outbox_values(row: Any, outcome: Outcome, site_now: datetime) -> dict[str, Any]:
    if outcome.result is not None:
        delivered = outcome.result.status == "delivered"
        return {
            "status": "delivered" if delivered else "sent",
            "provider_id": outcome.result.provider_id,
            "provider_status": outcome.result.status,
            "sent_at": site_now,
            "delivered_at": site_now if delivered else None,
            "last_error": None,
            "error_code": None,
        }
    assert outcome.error is not None
    error = outcome.error
    tries = row.attempts + 1
    gave_up = outcome.kind == "permanent" or tries > len(RETRY_DELAYS)
    return {
        "status": "failed" if gave_up else "pending",
        "next_attempt_at": row.next_attempt_at if gave_up else site_now + RETRY_DELAYS[tries - 1],
        "last_error": error.message,
        "error_code": error.code,
    }


def _event(conn: Connection, row: Any, values: dict[str, Any], at: datetime) -> None:
    events = EventBatch()
    kind = "message.failed" if values["status"] == "failed" else "message.sent"
    events.add(
        row.site_id,
        kind,
        at,
        customer_id=row.customer_id,
        invoice_id=row.invoice_id,
        message_id=row.id,
        channel=row.channel,
        template=row.template,
        error=values.get("last_error"),
    )
    events.write(conn)
