"""Operational figures for ``GET /metrics``, counted from the database at scrape time.

Nothing is kept in the process: every figure is an aggregate query over the
tables the workers write. So the figures are the same whichever server is
scraped, they add up the work of every worker on every machine, and they
survive restarts. The ``*_total`` counters count rows that never change
once written (finished payment attempts, ``message.failed`` events), so
they only grow, as Prometheus expects of a counter; the other figures are
gauges of the current state.

"Due" is judged like the workers judge it: at each site's now, which is the
test clock on sandbox sites. Delivery latency is measured only on sites
without a test clock, whose times are real times.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, Table, case, cast, func, select

from dunwell.domain.states import AttemptStatus, InvoiceStatus
from dunwell.services.messages import STATUSES as MESSAGE_STATUSES
from dunwell.services.renewals import RENEWING
from dunwell.store.sql import utc_param
from dunwell.store.tables import (
    MESSAGE_FAILED,
    OUTBOX_CHANNELS,
    dunning_cycles,
    escalations,
    events,
    inbound_messages,
    invoices,
    outbox,
    payment_attempts,
    sites,
    sms_credits,
    sms_sender_queues,
    subscriptions,
    twilio_catch_up,
    webhook_deliveries,
)
from dunwell.store.types import Id

CHANNELS = ("email", "sms")
#: Every channel the outbox's check constraint allows: a sample for the
#: others appears only when such messages exist.
ALL_CHANNELS = OUTBOX_CHANNELS
QUANTILES = (0.5, 0.9, 0.99)
LATENCY_WINDOW = timedelta(hours=1)
#: Only messages due at most this long before the window are read, so the
#: query stays on the (status, next_attempt_at) index. A message that
#: waited longer than this is not in the quantiles.
LATENCY_LOOKBACK = timedelta(days=1)
FINISHED_ATTEMPTS = tuple(s.value for s in AttemptStatus if s is not AttemptStatus.PENDING)

Labels = dict[str, str]


@dataclass
class Metric:
    """One metric family: name, type (gauge, counter or summary), help and samples."""

    name: str
    kind: str
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)


def gather(conn: Connection, real_now: datetime) -> list[Metric]:
    """Every figure, from a dozen aggregate queries on ``conn``."""
    due = _Due(real_now)
    return [
        _cycles_due(conn, due),
        _subscriptions_due(conn, due),
        *_outbox(conn, due),
        _outbox_failed_total(conn),
        _delivery_latency(conn, real_now),
        _webhooks_pending(conn, due),
        _inbound_waiting(conn),
        _escalations_pending(conn),
        _twilio_catch_up_failing(conn),
        _sms_credits(conn),
        _sender_queues(conn, due),
        _payment_attempts_total(conn),
        _invoices(conn),
    ]


@dataclass(frozen=True)
class _Due:
    """Builds "due at its site's now" conditions, as the workers' claims do."""

    real_now: datetime

    def at(self, column: ColumnElement[datetime]) -> ColumnElement[bool]:
        return column <= func.coalesce(sites.c.clock_now, utc_param("now", self.real_now))


def _scalar(conn: Connection, query: Select[Any]) -> int:
    return int(conn.execute(query).scalar_one())


def _gauge(name: str, help_: str, value: float) -> Metric:
    return Metric(name, "gauge", help_, [({}, value)])


def _by(
    conn: Connection, query: Select[Any], label: str, known: Iterable[str] = ()
) -> list[tuple[Labels, float]]:
    """Samples of a ``(label value, count)`` query; known values count 0 when absent."""
    found = {str(key): float(n) for key, n in conn.execute(query)}
    return [({label: key}, found.get(key, 0.0)) for key in sorted({*known, *found})]


def _cycles_due(conn: Connection, due: _Due) -> Metric:
    c = dunning_cycles
    query = (
        select(func.count())
        .select_from(c.join(sites, sites.c.id == c.c.site_id))
        .where(c.c.next_run_at.is_not(None), due.at(c.c.next_run_at))
    )
    return _gauge(
        "dunwell_cycles_due",
        "Dunning cycles whose next run has come, claimed or not (the collection backlog).",
        _scalar(conn, query),
    )


def _subscriptions_due(conn: Connection, due: _Due) -> Metric:
    s = subscriptions
    query = (
        select(func.count())
        .select_from(s.join(sites, sites.c.id == s.c.site_id))
        .where(s.c.status.in_(RENEWING), s.c.external_id.is_(None), due.at(s.c.next_charge_at))
    )
    return _gauge(
        "dunwell_subscriptions_due",
        "Subscriptions whose renewal has come and is not yet invoiced.",
        _scalar(conn, query),
    )


def _outbox(conn: Connection, due: _Due) -> list[Metric]:
    o = outbox
    # Both counts read ix_outbox_pending alone (status, next_attempt_at,
    # site_id, channel), never the rows and their rendered bodies. The
    # channels are summed as columns rather than grouped on, so the rows
    # arrive already grouped in the index's status order and need no sort.
    per_channel = [func.sum(case((o.c.channel == ch, 1), else_=0)) for ch in ALL_CHANNELS]
    pending = (
        select(*per_channel)
        .select_from(o.join(sites, sites.c.id == o.c.site_id))
        .where(o.c.status == "pending", due.at(o.c.next_attempt_at))
    )
    due_now = dict(zip(ALL_CHANNELS, conn.execute(pending).one(), strict=True))
    found: dict[tuple[str, str], float] = {}
    for status, *counts in conn.execute(select(o.c.status, *per_channel).group_by(o.c.status)):
        for channel, n in zip(ALL_CHANNELS, counts, strict=True):
            if n:
                found[(channel, status)] = float(n)
    combos = sorted({*((ch, st) for ch in CHANNELS for st in MESSAGE_STATUSES), *found})
    return [
        Metric(
            "dunwell_outbox_pending",
            "gauge",
            "Emails and texts due now and not yet sent (the delivery backlog; not counting "
            "messages waiting for a retry, the send window or credits).",
            [
                ({"channel": ch}, float(due_now[ch] or 0))
                for ch in ALL_CHANNELS
                if ch in CHANNELS or due_now[ch]
            ],
        ),
        Metric(
            "dunwell_outbox_messages",
            "gauge",
            "Outbox messages by channel and status.",
            [({"channel": ch, "status": st}, found.get((ch, st), 0.0)) for ch, st in combos],
        ),
    ]


def _outbox_failed_total(conn: Connection) -> Metric:
    """Counted from ``message.failed`` events: the outbox status can leave
    ``failed`` again (a resend), an event cannot, so the count never drops."""
    # BIGINT like outbox.id (as_integer() would cast to a 32-bit INTEGER on PostgreSQL).
    message_id = cast(events.c.data["message_id"].as_string(), Id)
    query = (
        select(outbox.c.channel, func.count())
        .select_from(events.join(outbox, outbox.c.id == message_id))
        .where(MESSAGE_FAILED)  # SQL text, so the partial index matches it
        .group_by(outbox.c.channel)
    )
    return Metric(
        "dunwell_outbox_failed_total",
        "counter",
        "Emails and texts that failed for good (refused, out of retries, or reported "
        "undelivered by the carrier); a resent message that fails again counts again.",
        _by(conn, query, "channel", CHANNELS),
    )


def _delivery_latency(conn: Connection, real_now: datetime) -> Metric:
    o = outbox
    since = real_now - LATENCY_WINDOW
    rows = conn.execute(
        select(o.c.sent_at, o.c.next_attempt_at)
        .join(sites, sites.c.id == o.c.site_id)
        .where(
            sites.c.clock_now.is_(None),
            o.c.status.in_(("sent", "delivered")),
            o.c.next_attempt_at >= utc_param("oldest_due", since - LATENCY_LOOKBACK),
            o.c.sent_at >= utc_param("since", since),
        )
    )
    waits = sorted(max(0.0, (r.sent_at - r.next_attempt_at).total_seconds()) for r in rows)
    return Metric(
        "dunwell_delivery_latency_seconds",
        "summary",
        "Seconds from when an email or text was due to when it was sent, over the messages "
        "sent in the last hour (sites on a test clock left out); NaN when none were.",
        [({"quantile": str(q)}, quantile(waits, q)) for q in QUANTILES],
    )


def quantile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of sorted values (NaN when there are none)."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _webhooks_pending(conn: Connection, due: _Due) -> Metric:
    d = webhook_deliveries
    query = (
        select(func.count())
        .select_from(d.join(sites, sites.c.id == d.c.site_id))
        .where(d.c.status == "pending", due.at(d.c.next_attempt_at))
    )
    return _gauge(
        "dunwell_webhook_deliveries_pending",
        "Webhook deliveries due now and not yet sent (not counting those waiting for a retry).",
        _scalar(conn, query),
    )


def _inbound_waiting(conn: Connection) -> Metric:
    t = inbound_messages
    query = select(func.count()).select_from(t).where(t.c.answered_at.is_(None))
    return _gauge(
        "dunwell_inbound_texts_waiting",
        "Customers' texts the concierge has not answered yet.",
        _scalar(conn, query),
    )


def _escalations_pending(conn: Connection) -> Metric:
    e = escalations
    query = select(func.count()).select_from(e).where(e.c.status == "pending")
    return _gauge(
        "dunwell_escalations_pending",
        "Conversations waiting to be handed to a person (help desk or email).",
        _scalar(conn, query),
    )


def _twilio_catch_up_failing(conn: Connection) -> Metric:
    t = twilio_catch_up
    query = select(func.count()).select_from(t).where(t.c.last_error.is_not(None))
    return _gauge(
        "dunwell_twilio_catch_up_failing",
        "Sites whose last check of Twilio's received texts and missing delivery reports "
        "failed (what their webhooks missed is not being recovered).",
        _scalar(conn, query),
    )


def _sms_credits(conn: Connection) -> Metric:
    query = select(sites.c.slug, sms_credits.c.balance).join(
        sites, sites.c.id == sms_credits.c.site_id
    )
    return Metric(
        "dunwell_sms_credits",
        "gauge",
        "Each site's SMS credit balance (sites that never had credits are left out).",
        _by(conn, query, "site"),
    )


def _sender_queues(conn: Connection, due: _Due) -> Metric:
    q = sms_sender_queues
    rows = conn.execute(
        select(sites.c.slug, sites.c.clock_now, q.c.clears_at).join(
            sites, sites.c.id == q.c.site_id
        )
    )
    return Metric(
        "dunwell_sms_sender_queue_seconds",
        "gauge",
        "Seconds until the texts each site has handed to its SMS provider are expected to "
        "have left its sender's queue, at the sender's rate (0 when it is empty).",
        [
            (
                {"site": row.slug},
                max(0.0, (row.clears_at - (row.clock_now or due.real_now)).total_seconds()),
            )
            for row in rows
        ],
    )


def _payment_attempts_total(conn: Connection) -> Metric:
    a = payment_attempts
    return Metric(
        "dunwell_payment_attempts_total",
        "counter",
        "Finished charge attempts by outcome (succeeded, declined, error).",
        _by_site_status(conn, a, a.c.status.in_(FINISHED_ATTEMPTS), FINISHED_ATTEMPTS),
    )


def _invoices(conn: Connection) -> Metric:
    return Metric(
        "dunwell_invoices",
        "gauge",
        "Invoices by status.",
        _by_site_status(conn, invoices, None, [s.value for s in InvoiceStatus]),
    )


def _by_site_status(
    conn: Connection,
    table: Table,
    where: ColumnElement[bool] | None,
    known: Sequence[str],
) -> list[tuple[Labels, float]]:
    """Rows by status over every site, counted from the ``(site_id, status)`` index.

    Grouped by site and status, the index's own order, then added up here:
    grouped by status alone the database would sort the whole index first.
    """
    query = select(table.c.site_id, table.c.status, func.count()).group_by(
        table.c.site_id, table.c.status
    )
    if where is not None:
        query = query.where(where)
    totals: dict[str, float] = {}
    for _site, status, n in conn.execute(query):
        totals[status] = totals.get(status, 0.0) + n
    return [({"status": st}, totals.get(st, 0.0)) for st in sorted({*known, *totals})]
