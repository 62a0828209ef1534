"""Delivering webhooks: signed POSTs to the merchant's endpoints, retried for about three days.

One batch:

1. *Claim* (one transaction): lease due deliveries (``pending``, or
   ``sending`` under an expired lease); cancel those whose endpoint has been
   disabled meanwhile; open an attempt row for each of the others.
2. *Send*, with no transaction open, in up to ``webhook_concurrency``
   lanes side by side: check the target again
   (:func:`~dunwell.services.webhook_endpoints.target_addresses`), then POST
   the payload, signed per Standard Webhooks, to the address checked.
3. *Record* each answer in its own short transaction, in the lane that sent it.

Lanes stop starting requests in time for the last one to end within the
batch's lease (``claims.start_window``; an attempt takes at most four
timeouts: connecting, to each address in turn, sending, waiting for the
answer, and reading the start of its body). The deliveries no lane reached are
put back as they were before the claim, with no attempt counted, and go in
the next batch. So a batch can be as large as the delivery batch: receivers
that answer quickly get a whole batch at once, and slow ones make batches
smaller instead of letting the lease expire while requests are in flight.

A 2xx answer delivers. 410 Gone disables the endpoint and cancels its
pending deliveries. Anything else (another status, a timeout, a refused or
unresolvable target) is tried again after :data:`RETRY_DELAYS`, then the
delivery fails. Redirects are not followed: the target they name was never
checked.

Receivers get a delivery at least once. A worker that dies between the
receiver's answer and the commit leaves the delivery ``sending``; it is
claimed again when the lease expires and sent again with the same
``webhook-id``, by which the receiver recognises it.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import Connection, bindparam, func, insert, select, update
from standardwebhooks import Webhook

from dunwell import __version__
from dunwell.bootstrap import App
from dunwell.clock import Clock, SystemClock
from dunwell.security.secrets import SecretBox, SecretUnreadable
from dunwell.security.tls import client_tls
from dunwell.services.claims import claim_due, put_back_unstarted, start_window
from dunwell.services.webhook_endpoints import (
    Resolver,
    TargetRefused,
    disable_gone,
    resolve_host,
    target_addresses,
)
from dunwell.store.sql import utc_param
from dunwell.store.tables import sites, webhook_attempts, webhook_deliveries, webhook_endpoints

log = logging.getLogger("dunwell.webhooks")

#: Waits after the 1st, 2nd... failed attempt: 2 days 13 hours 36 minutes
#: in all, so a delivery that never gets through fails after its 10th attempt.
RETRY_DELAYS = tuple(timedelta(minutes=m) for m in (1, 5, 30, 120, 300, 600, 600, 840, 1200))
TIMEOUT = 10.0
EXCERPT_CHARS = 500
USER_AGENT = f"Dunwell-Webhooks/{__version__}"
IN_DOUBT = "no answer was recorded: the worker stopped during the attempt"


@dataclass(frozen=True)
class Sender:
    """How requests leave the process; tests pass their own transport or resolver.

    ``wall_clock`` stamps ``webhook-timestamp``. Receivers compare it with
    their own clock to refuse replayed requests (five minutes either way in
    the Standard Webhooks libraries), so it must be the real time even when
    Dunwell runs on an injected clock or a site on a test clock.
    """

    timeout: float = TIMEOUT
    transport: httpx.BaseTransport | None = None
    resolve: Resolver = resolve_host
    wall_clock: Clock = field(default_factory=SystemClock)

    @property
    def longest_attempt(self) -> float:
        """Seconds an attempt can take: a timeout each to connect (all addresses
        together), send, wait for the answer and read the start of its body."""
        return 4 * self.timeout


@dataclass(frozen=True)
class Outgoing:
    id: int
    site_id: int
    endpoint_id: int
    url: str
    secret: str | None  # None when it cannot be decrypted (the server key changed)
    site_mode: str
    test_clock: datetime | None
    payload: dict[str, Any]
    attempt_no: int
    round: int  # attempts since the delivery was (re)queued, this one included


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    excerpt: str | None
    error: str | None
    duration_ms: int


def webhook_id(delivery_id: int) -> str:
    """The ``webhook-id`` header: the same on every attempt and redelivery."""
    return f"msg_{delivery_id}"


def deliver_due_webhooks(app: App, owner: str, limit: int, sender: Sender | None = None) -> int:
    """Deliver one batch; return how many deliveries were claimed (0 when idle)."""
    sender = sender or Sender()
    real_now = app.clock.now()
    lease_until = real_now + timedelta(seconds=app.settings.lease_seconds)
    with app.begin() as conn:
        d = webhook_deliveries
        due = [d.c.status.in_(("pending", "sending"))]
        ids = claim_due(conn, d, d.c.next_attempt_at, due, owner, real_now, lease_until, limit)
        if not ids:
            return 0
        outgoing = _prepare(app, conn, ids, real_now)
    if outgoing:
        lease_left = (lease_until - app.clock.now()).total_seconds()
        until = time.monotonic() + start_window(lease_left, sender.longest_attempt)
        queue = deque(outgoing)
        try:
            _send_in_lanes(app, owner, sender, queue, until)
        finally:
            # Also when the lanes failed (the database, say): what none of
            # them started was never sent, and should not wait out the lease
            # to be taken again as if it might have been.
            _put_back(app, owner, list(queue))
    return len(ids)


def _send_in_lanes(
    app: App, owner: str, sender: Sender, queue: deque[Outgoing], until: float
) -> None:
    """Send from ``queue`` in lanes until it is empty or the time is up; then
    raise the first failure, if any. What no lane started stays in ``queue``.

    Every lane runs to its end even when another fails (the database, say),
    so each delivery is either recorded, left leased or left in the queue.
    """

    def lane() -> None:
        while time.monotonic() < until:
            try:
                item = queue.popleft()  # atomic: lanes share the queue without a lock
            except IndexError:
                return
            _record(app, owner, item, send(sender, item))

    count = min(app.settings.webhook_concurrency, len(queue))
    with ThreadPoolExecutor(count, thread_name_prefix="dunwell-webhook") as pool:
        lanes = [pool.submit(lane) for _ in range(count)]
        wait(lanes)
    for finished in lanes:
        finished.result()


def _put_back(app: App, owner: str, items: list[Outgoing]) -> None:
    """Return deliveries no lane reached in time to how they were before the claim.

    The attempt reserved for each is removed and not counted, so a delivery
    put back is due at once and loses none of its tries.
    """
    if not items:
        return
    a = webhook_attempts
    with app.begin() as conn:
        put_back_unstarted(
            conn,
            webhook_deliveries,
            {i.id: i.attempt_no for i in items},
            owner,
            attempt_of=a.c.delivery_id,
            unfinished=a.c.finished_at.is_(None),
        )


def _prepare(app: App, conn: Connection, ids: list[int], real_now: datetime) -> list[Outgoing]:
    d, a, e = webhook_deliveries, webhook_attempts, webhook_endpoints
    rows = conn.execute(
        select(
            d,
            e.c.url,
            e.c.secret,
            e.c.enabled,
            sites.c.mode.label("site_mode"),
            sites.c.clock_now.label("test_clock"),
            func.coalesce(sites.c.clock_now, utc_param("now", real_now)).label("site_now"),
        )
        .join(e, e.c.id == d.c.endpoint_id)
        .join(sites, sites.c.id == d.c.site_id)
        .where(d.c.id.in_(ids))
        .order_by(d.c.next_attempt_at, d.c.id)
    ).all()
    off = [{"b_id": r.id, "at": r.site_now} for r in rows if not r.enabled]
    if off:
        conn.execute(
            update(d)
            .where(d.c.id == bindparam("b_id"))
            .values(
                status="canceled",
                last_error="the endpoint is disabled",
                lease_owner=None,
                lease_until=None,
                updated_at=bindparam("at"),
            ),
            off,
        )
    live = [r for r in rows if r.enabled]
    if not live:
        return []
    live_ids = [r.id for r in live]
    conn.execute(
        update(a)
        .where(a.c.delivery_id.in_(live_ids), a.c.finished_at.is_(None))
        .values(finished_at=real_now, error=IN_DOUBT)
    )
    numbers = _next_attempt_numbers(conn, live_ids)
    conn.execute(
        insert(a),
        [
            {
                "site_id": r.site_id,
                "delivery_id": r.id,
                "attempt_no": numbers[r.id],
                "started_at": real_now,
            }
            for r in live
        ],
    )
    conn.execute(
        update(d).where(d.c.id.in_(live_ids)).values(status="sending", attempts=d.c.attempts + 1)
    )
    box = app.secret_box_or_none()
    return [
        Outgoing(
            id=r.id,
            site_id=r.site_id,
            endpoint_id=r.endpoint_id,
            url=r.url,
            secret=_open(box, r.secret),
            site_mode=r.site_mode,
            test_clock=r.test_clock,
            payload=r.payload,
            attempt_no=numbers[r.id],
            round=r.attempts + 1,
        )
        for r in live
    ]


def _open(box: SecretBox | None, sealed: str) -> str | None:
    try:
        return box.open(sealed) if box is not None else None
    except SecretUnreadable:
        return None


def _next_attempt_numbers(conn: Connection, ids: list[int]) -> dict[int, int]:
    a = webhook_attempts
    rows = conn.execute(
        select(a.c.delivery_id, func.max(a.c.attempt_no).label("n"))
        .where(a.c.delivery_id.in_(ids))
        .group_by(a.c.delivery_id)
    )
    done = {row.delivery_id: row.n for row in rows}
    return {i: done.get(i, 0) + 1 for i in ids}


# -- sending (no database) -------------------------------------------------------------


def send(sender: Sender, item: Outgoing) -> Answer:
    """One attempt; every failure becomes an :class:`Answer`, nothing raises."""
    started = time.monotonic()

    def answer(code: int | None, excerpt: str | None, error: str | None) -> Answer:
        return Answer(code, excerpt, error, int((time.monotonic() - started) * 1000))

    if item.secret is None:
        return answer(
            None, None, "not signed: the secret cannot be decrypted (server key changed?)"
        )
    try:
        addresses = target_addresses(item.url, item.site_mode, sender.resolve)
        code, excerpt = _post_to_first_reachable(sender, item, item.secret, addresses, started)
    except TargetRefused as error:
        return answer(None, None, f"not sent: {error}")
    except httpx.TimeoutException:
        return answer(None, None, f"no answer within {sender.timeout:g} s")
    except httpx.HTTPError as error:
        return answer(None, None, f"{type(error).__name__}: {error}")
    except Exception as error:  # a bug here must not lose the delivery
        log.exception("webhook attempt %s of delivery %s raised", item.attempt_no, item.id)
        return answer(None, None, repr(error))
    if 200 <= code < 300:
        return answer(code, excerpt, None)
    moved = " (redirects are not followed)" if 300 <= code < 400 else ""
    return answer(code, excerpt, f"HTTP {code}{moved}")


def _post_to_first_reachable(
    sender: Sender, item: Outgoing, secret: str, addresses: list[str], started: float
) -> tuple[int, str]:
    """POST to each checked address in turn until one takes the connection.

    A name with an IPv6 and an IPv4 address whose IPv6 route is broken
    still gets its webhooks, as any HTTP client would. The addresses share
    one timeout for connecting, so the attempt keeps to ``longest_attempt``;
    once a request has gone out it is never repeated to another address.
    """
    deadline = started + sender.longest_attempt
    for index, address in enumerate(addresses):
        connect_left = sender.timeout - (time.monotonic() - started)
        last = index == len(addresses) - 1
        try:
            return _post(sender, item, secret, address, deadline, max(connect_left, 0.001))
        except (httpx.ConnectError, httpx.ConnectTimeout):
            if last or time.monotonic() - started >= sender.timeout:
                raise
    raise AssertionError("target_addresses returns at least one address")


def _post(
    sender: Sender,
    item: Outgoing,
    secret: str,
    address: str,
    deadline: float,
    connect_timeout: float,
) -> tuple[int, str]:
    body = json.dumps(item.payload, separators=(",", ":"), ensure_ascii=False)
    msg_id = webhook_id(item.id)
    at = sender.wall_clock.now().replace(microsecond=0)
    url = httpx.URL(item.url)
    headers = {
        # The request goes to the address that was checked, not to a second
        # DNS answer that could differ; Host and SNI keep the name.
        "host": url.netloc.decode("ascii"),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, at, body),
    }
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if url.scheme == "https" else {}
    # trust_env=False: a proxy from the environment would connect somewhere
    # other than the address checked. A client per attempt, so no connection
    # made for one endpoint's name carries another's request to the same address.
    with httpx.Client(
        transport=sender.transport, timeout=sender.timeout, trust_env=False, verify=client_tls()
    ) as client:
        request = client.build_request(
            "POST",
            url.copy_with(host=address),
            content=body.encode(),
            headers=headers,
            extensions=extensions,
            timeout=httpx.Timeout(sender.timeout, connect=connect_timeout),
        )
        response = client.send(request, stream=True)
        try:
            return response.status_code, _excerpt(response, deadline)
        finally:
            response.close()


def _excerpt(response: httpx.Response, deadline: float) -> str:
    """The start of the answer; the rest is never read (it could be endless).

    The status line has arrived by now and decides the attempt: a body that
    stalls or breaks off leaves the excerpt short, not the answer unknown
    (a 2xx read as "no answer" would be sent again, and in the end failed).
    """
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= 4 * EXCERPT_CHARS or time.monotonic() > deadline:
                break
    except httpx.HTTPError:
        pass
    return data.decode("utf-8", "replace")[:EXCERPT_CHARS]


# -- recording -------------------------------------------------------------------------


def _record(app: App, owner: str, item: Outgoing, answer: Answer) -> None:
    real_now = app.clock.now()
    site_now = item.test_clock or real_now
    a, d = webhook_attempts, webhook_deliveries
    with app.begin() as conn:
        conn.execute(
            update(a)
            .where(a.c.delivery_id == item.id, a.c.attempt_no == item.attempt_no)
            .values(
                finished_at=real_now,
                status_code=answer.status_code,
                response_excerpt=answer.excerpt,
                error=answer.error,
                duration_ms=answer.duration_ms,
            )
        )
        held = conn.execute(
            update(d)
            .where(d.c.id == item.id, d.c.lease_owner == owner)
            .values(
                **_outcome(item, answer, site_now),
                lease_owner=None,
                lease_until=None,
                updated_at=site_now,
            )
        ).rowcount
        if held and answer.status_code == 410:
            disable_gone(conn, item.endpoint_id, site_now)


def _outcome(item: Outgoing, answer: Answer, site_now: datetime) -> dict[str, Any]:
    code = answer.status_code
    if code is not None and 200 <= code < 300:
        return {
            "status": "delivered",
            "delivered_at": site_now,
            "last_status_code": code,
            "last_error": None,
        }
    if code == 410:
        return {"status": "failed", "last_status_code": code, "last_error": "410 Gone"}
    values: dict[str, Any] = {"last_status_code": code, "last_error": answer.error}
    if item.round > len(RETRY_DELAYS):
        return values | {"status": "failed"}
    return values | {
        "status": "pending",
        "next_attempt_at": site_now + RETRY_DELAYS[item.round - 1],
    }
