"""Signed Twilio webhooks per second the real server answers with p99 under 50 ms.

    python bench/inbound_sms.py [--json] [--database-url URL] [--step-seconds 5]
                                [--max-rate N] [--quick]

Starts ``dunwell serve`` as its own process on a loopback port, after
``dunwell migrate`` and a sandbox site with a Twilio SMS channel (account
SID, auth token, from number) and customers with phone numbers, cards and
subscriptions, so concierge texts have orders to talk about. No Twilio is
contacted: an inbound text needs none, and the concierge's replies are only
queued in the outbox, because no worker runs to deliver them.

The load is open-loop. At each rate requests fall due at fixed intervals
and go out when due, whatever is still in flight, over keep-alive
connections (a minimal HTTP/1.1 client on asyncio, see ``Connections``).
A request's latency runs from when it was due to when its whole response
was read, so a server that falls behind is charged for the wait instead of
slowing the sender (no coordinated omission). Each request is the form
POST Twilio makes to ``/twilio/{slug}/sms``, signed with the SDK's
``RequestValidator`` against the server's public URL, with its own
MessageSid. One in five is a carrier keyword: HELP, STOP, START in that
order per number, from numbers that send nothing else, so an opt-out never
blocks a later text. The rest are concierge texts from customers.

The server stores each text before its 200 (texts that arrive together
share one commit) and answers concierge texts in a thread of its own only
while they come slower than ten a second; the rest wait for ``dunwell
worker`` (see ``services/concierge_answerer.py``). No worker runs during a
step: a worker needs about 11 ms of CPU per answer, so on this machine it
would measure the concierge, not the webhook, and a deployment sizes its
workers (on this machine or others) for its rate of texts. After each step
the bench answers every text still waiting exactly as a worker does, with
the worker's concierge stage (``answer_pending_texts``, claims with a
lease) in its own process, and waits for the server's thread to finish
(``drain_s``), so that one step's backlog does not weigh on the next.
``left_for_worker`` is how many texts of the step the server left to it.

Rates rise stepwise, ``--step-seconds`` each (longer at low rates: every
step sends at least 200 requests), until a step fails. A step holds when
every request got a 200, p99 < 50 ms and the achieved rate (200s per second
of the step) is at least 95% of the target. ``max_rate`` is the highest
step held; ``p50_ms`` and ``p99_ms`` are measured at that step. ``capped``
says the highest rate tried still held; ``bound_capped`` says the same of
the bound, whose real rate is then higher and the real share lower.
``--quick`` takes 2 s steps of at least 50 requests, whose p99 is close
to their slowest request: a smoke test, not a figure.

The bound, ``bound_max_rate``, is the same ramp against
``bench/_bare_twiml_app.py``: the same uvicorn and FastAPI in one process,
one route at the same path returning fixed TwiML. The load generator shares
the machine with the server (``client_cpu`` and ``server_cpu`` per step are
in cores, and ``store_cpu`` is the server's child process that commits the
texts), so on a small machine the bound includes the client's own cost.
The load average at the start is recorded: other work on the machine shows
in every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from twilio.request_validator import RequestValidator

from dunwell.bootstrap import App, bootstrap
from dunwell.gateways.sandbox import tokenize
from dunwell.services import ledger
from dunwell.services.channel_config import save_channel_config
from dunwell.services.concierge import answer_pending_texts
from dunwell.services.sites import create_site, site_now
from dunwell.settings import Settings
from dunwell.store.db import make_engine
from dunwell.store.tables import inbound_messages

DUNWELL = str(Path(sys.executable).parent / "dunwell")
BARE_APP = str(Path(__file__).with_name("_bare_twiml_app.py"))
SECRET = "bench-secret-key-of-at-least-32-characters"
SLUG = "bench"
ACCOUNT_SID = "AC5ef8732a3c49700934481addd5ce1659"
AUTH_TOKEN = "9a7c3e0f5b2d4c6e8f1a3b5c7d9e0f21"
FROM_NUMBER = "+15005550006"
GOOD_CARD = "4111111111111111"
KEYWORDS = ("HELP", "STOP", "START")
KEYWORD_EVERY = 5  # one text in five is a keyword
CONCIERGE = (
    "skip my next order",
    "can you push it 2 weeks",
    "where is my order",
    "try my card again",
    "move my order to the 20th",
    "can I get 2 next time",
)
# Requests per second: fine steps low down, where the real route's limit lies,
# and high enough at the top that the bare endpoint fails a step: a bound that
# held its highest step is only a floor, and the share of it would be too high.
RATES = (
    *(5, 10, 25, 35, 50, 75, 100, 150, 200, 300, 400, 500, 600, 800),
    *(1000, 1200, 1500, 1750, 2000, 2500, 3000, 3500, 4000, 5000),
    *(6000, 7000, 8000, 10000, 12000),
)
P99_LIMIT_MS = 50.0
WARMUP_RATE = 25
# Per step at least: with fewer, one stall (a GC pause, another process) is the p99.
MIN_REQUESTS = 200
QUICK_MIN_REQUESTS = 50
REQUEST_TIMEOUT = 10.0
IDLE_LIMIT = 2.0  # seconds a keep-alive connection may sit unused before it is closed
BENCH_WORKER = "bench-worker"  # lease owner of the texts the bench answers between steps


# -- the database and the site -------------------------------------------------------


@contextmanager
def database(given: str | None, folder: str) -> Iterator[str]:
    """The URL to run on; a PostgreSQL one is created fresh here and dropped afterwards."""
    if not given:
        yield f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    url = make_url(given)
    if url.get_backend_name() != "postgresql":
        yield given
        return
    name = url.database or f"dunwell_bench_inbound_{os.getpid()}"
    admin = make_engine(url.set(database="postgres").render_as_string(hide_password=False))
    try:
        # No DROP first: a database that already exists is someone's, not ours to reset.
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def phones(first: int, count: int) -> list[str]:
    return [f"+1415555{n:04d}" for n in range(first, first + count)]


def populate(url: str, numbers: list[str]) -> None:
    """One sandbox site on Twilio; a customer with a card and a monthly order per number."""
    app = bootstrap(Settings(database_url=url, secret_key=SECRET))
    with app.begin() as conn:
        site = create_site(
            conn, app.clock, slug=SLUG, name="Bench Coffee", support_email="help@bench.example"
        )
        now = site_now(conn, site, app.clock)
        product = ledger.create_product(
            conn, site, "roast", "Dark Roast Coffee 12oz", 1800, "USD", now
        )
        config = {"account_sid": ACCOUNT_SID, "from_number": FROM_NUMBER}
        save_channel_config(conn, site, "sms", "twilio", config, AUTH_TOKEN, app.secret_box(), now)
        for n, phone in enumerate(numbers):
            new = ledger.NewCustomer(first_name=f"C{n}", email=f"c{n}@bench.example", phone=phone)
            customer = ledger.create_customer(conn, site, new, now)
            card = tokenize(GOOD_CARD, 12, 2031)
            ledger.attach_payment_method(conn, site, customer, "sandbox", card, now)
            ledger.create_subscription(
                conn, site, customer, [ledger.Item(product)], now, starts_at=now + timedelta(days=9)
            )
    app.close()


# -- the requests --------------------------------------------------------------------


class Texts:
    """Signed inbound-text webhooks as raw HTTP/1.1 requests, numbered across the run.

    Of every five, four are concierge texts (customer by customer, each
    customer working through ``CONCIERGE`` in order) and one a keyword.
    """

    def __init__(self, public_url: str, customers: list[str], keyword_numbers: list[str]) -> None:
        self.path = f"/twilio/{SLUG}/sms"
        self.url = public_url + self.path
        self.host = public_url.removeprefix("http://")
        self.validator = RequestValidator(AUTH_TOKEN)
        self.customers = customers
        self.keyword_numbers = keyword_numbers
        self.tag = secrets.token_hex(4)  # a rerun against the same database stays unique
        self.sent = 0
        self.keywords = 0

    def take(self, count: int) -> list[bytes]:
        return [self._request(self._params()) for _ in range(count)]

    def _params(self) -> dict[str, str]:
        seq, self.sent = self.sent, self.sent + 1
        if seq % KEYWORD_EVERY == KEYWORD_EVERY - 1:
            k, self.keywords = self.keywords, self.keywords + 1
            sender = self.keyword_numbers[(k // len(KEYWORDS)) % len(self.keyword_numbers)]
            body = KEYWORDS[k % len(KEYWORDS)]
        else:
            c = seq - seq // KEYWORD_EVERY
            sender = self.customers[c % len(self.customers)]
            body = CONCIERGE[(c // len(self.customers)) % len(CONCIERGE)]
        return {
            "MessageSid": f"SM{self.tag}{seq:024x}",
            "AccountSid": ACCOUNT_SID,
            "From": sender,
            "To": FROM_NUMBER,
            "Body": body,
            "NumSegments": "1",
        }

    def _request(self, params: dict[str, str]) -> bytes:
        body = urlencode(params).encode()
        signature = self.validator.compute_signature(self.url, params)
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.host}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nX-Twilio-Signature: {signature}\r\n\r\n"
        )
        return head.encode() + body


class Connections:
    """Keep-alive HTTP/1.1 connections to one server, opened when none is idle.

    Deliberately minimal (responses must carry Content-Length, as both
    servers' do) because the client shares the machine with the server:
    on the 2-core machine this was written on, httpx's AsyncClient spent
    about 1.8 ms of CPU per request against 0.14 ms for this class, and the
    bound would have measured the client instead of the server stack.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        # (reader, writer, idle since), most recently used last
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []

    async def send(self, request: bytes) -> int:
        """The response's status code, its body read to the end."""
        reader, writer = await self._connection()
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status, length = _status_and_length(head)
            await reader.readexactly(length)
        except BaseException:
            writer.close()  # its state is unknown: never reuse it
            raise
        self.idle.append((reader, writer, time.monotonic()))
        return status

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # Uvicorn closes a connection idle for 5 s; one reused just then would
        # fail a request the server never saw. Idle ones are dropped well before.
        stale = time.monotonic() - IDLE_LIMIT
        while self.idle:
            reader, writer, since = self.idle.pop()
            if since > stale:
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        for _, writer, _ in self.idle:
            writer.close()
        self.idle.clear()


def _status_and_length(head: bytes) -> tuple[int, int]:
    lines = head.split(b"\r\n")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(lines[0].split()[1]), int(value)
    raise ValueError("a response without Content-Length")


# -- open-loop load ------------------------------------------------------------------


@dataclass
class Step:
    """One rate held for ``--step-seconds``; latencies in ms, CPU in cores (CPU s per s)."""

    target: int  # requests due per second
    #: 200 responses per second, over the step or until the last response if later.
    achieved: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int  # anything but a 200: status, refused or dropped connection, 10 s timeout
    error_kinds: dict[str, int]  # "HTTP 500", "ConnectionResetError", "TimeoutError"...
    sent: int
    client_cpu: float
    server_cpu: float | None  # the server process's user + system time (Linux only)
    #: Its child processes' (the inbound store that commits the texts), in cores.
    store_cpu: float | None = None
    #: From the step's last response until no text waited for the concierge (real server).
    drain_s: float | None = None
    #: Texts the server left to the worker: waiting when the step's last response came.
    left_for_worker: int | None = None
    #: Texts still unanswered when draining gave up (5 s without progress).
    unanswered: int | None = None
    held: bool = False


def percentile(sorted_values: list[float], share: float) -> float | None:
    """Nearest-rank percentile: the smallest value with ``share`` of all at or below it."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(len(sorted_values) * share))
    return sorted_values[rank - 1]


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time of process ``pid`` (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds(pid: int) -> float | None:
    """CPU time of ``pid``'s child processes, alive now (Linux; None elsewhere)."""
    try:
        entries = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    total = 0.0
    for entry in entries:
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def send_at_rate(
    client: Connections, requests: list[bytes], rate: int
) -> tuple[list[float], Counter[str], float]:
    """Send each request when due; returns sorted latencies (s), errors by kind, elapsed time."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    last_done = 0.0

    async def one(request: bytes, due: float) -> None:
        nonlocal last_done
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                status = await client.send(request)
            error = None if status == 200 else f"HTTP {status}"
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, TimeoutError) as e:
            error = type(e).__name__
        last_done = time.perf_counter()
        if error is None:
            latencies.append(last_done - due)
        else:
            errors[error] += 1

    tasks = []
    start = time.perf_counter()
    for i, request in enumerate(requests):
        due = start + i / rate
        # sleep(0) when late still yields, so sends already due can progress.
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(one(request, due)))
    await asyncio.gather(*tasks)
    return sorted(latencies), errors, max(last_done - start, len(requests) / rate)


async def ramp(
    port: int,
    texts: Texts,
    rates: list[int],
    seconds: float,
    server_pid: int,
    min_requests: int,
    settle: Callable[[], Awaitable[tuple[float, int, int]]] | None = None,
) -> list[Step]:
    """Steps of rising rate until one does not hold (after an unrecorded warm-up)."""
    client = Connections("127.0.0.1", port)
    try:
        await send_at_rate(client, texts.take(WARMUP_RATE * 2), WARMUP_RATE)
        if settle is not None:
            await settle()
        steps: list[Step] = []
        for rate in rates:
            count = max(min_requests, round(rate * seconds))
            step = await measure(client, texts.take(count), rate, server_pid)
            if settle is not None:
                step.drain_s, step.left_for_worker, step.unanswered = await settle()
            steps.append(step)
            if not step.held:
                break
        return steps
    finally:
        client.close()


async def measure(client: Connections, requests: list[bytes], rate: int, server_pid: int) -> Step:
    client_before, server_before = own_cpu_seconds(), cpu_seconds(server_pid)
    store_before = children_cpu_seconds(server_pid)
    with collector_paused():
        latencies, errors, elapsed = await send_at_rate(client, requests, rate)
    server_after, store_after = cpu_seconds(server_pid), children_cpu_seconds(server_pid)
    step = Step(
        target=rate,
        achieved=round(len(latencies) / elapsed, 1),
        p50_ms=_ms(percentile(latencies, 0.50)),
        p99_ms=_ms(percentile(latencies, 0.99)),
        errors=errors.total(),
        error_kinds=dict(errors),
        sent=len(requests),
        client_cpu=round((own_cpu_seconds() - client_before) / elapsed, 2),
        server_cpu=None
        if server_before is None or server_after is None
        else round((server_after - server_before) / elapsed, 2),
        store_cpu=None
        if store_before is None or store_after is None
        else round((store_after - store_before) / elapsed, 2),
    )
    step.held = (
        step.errors == 0
        and step.p99_ms is not None
        and step.p99_ms < P99_LIMIT_MS
        and step.achieved >= 0.95 * rate
    )
    return step


@contextmanager
def collector_paused() -> Iterator[None]:
    """No garbage collection in the client while a step sends.

    A step holds thousands of requests, tasks and latencies, on top of the
    worker's app in the same process; a full collection of all that stalled
    the sender for 30 to 80 ms, and every request due meanwhile was charged
    to the server (latency runs from when a request was due). The garbage
    of a step is collected after it, outside the measurement.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def answer_the_rest(app: App, patience: float = 5.0) -> tuple[float, int, int]:
    """Answer every waiting text as a worker would, until none waits or none was answered
    for ``patience`` s; returns the time taken, how many waited at first, how many still do."""
    unanswered = select(func.count()).where(inbound_messages.c.answered_at.is_(None))
    started = last_change = time.perf_counter()
    first = last = -1
    while True:
        with app.connect() as conn:
            left = int(conn.execute(unanswered).scalar_one())
        first = left if first < 0 else first
        now = time.perf_counter()
        if left != last:
            last, last_change = left, now
        if left == 0 or now - last_change > patience:
            return round(now - started, 2), first, left
        # Texts the server's own thread has claimed are skipped here; it finishes them.
        if not answer_pending_texts(app, BENCH_WORKER, 200):
            time.sleep(0.05)


# -- the server processes ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def server(command: list[str], base_url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` until the block ends, once ``/health`` answers."""
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while not _healthy(base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the server did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(timeout=30)


def _healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health", trust_env=False).status_code == 200
    except httpx.TransportError:
        return False


def dunwell(url: str, port: int, *args: str) -> list[str]:
    settings = {
        "--database-url": url,
        "--public-url": f"http://127.0.0.1:{port}",
        "--port": str(port),
        "--secret-key": SECRET,
        # Uvicorn logs every request at INFO; the bound runs at the same level.
        "--log-level": "WARNING",
    }
    return [DUNWELL, *(part for pair in settings.items() for part in pair), *args]


# -- the run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Senders:
    customers: list[str]
    keyword_numbers: list[str]


def run(args: argparse.Namespace, folder: str) -> dict[str, Any]:
    rates = [r for r in RATES if r <= args.max_rate] or [args.max_rate]
    customers = phones(0, args.customers)
    senders = Senders(customers, phones(len(customers), max(1, len(customers) // 4)))
    with database(args.database_url, folder) as url:
        steps = measure_dunwell(url, senders, rates, args.step_seconds, args.least, Path(folder))
        errored = _concierge_errors(url)
        database_name = make_url(url).get_backend_name()
    bound = measure_bound(senders, rates, args.step_seconds, args.least, Path(folder))
    return report(steps, bound, database_name, args, errored, senders)


def measure_dunwell(
    url: str, senders: Senders, rates: list[int], seconds: float, least: int, folder: Path
) -> list[Step]:
    port = free_port()
    subprocess.run(dunwell(url, port, "migrate"), check=True, stdout=subprocess.DEVNULL)
    populate(url, senders.customers + senders.keyword_numbers)
    base = f"http://127.0.0.1:{port}"

    worker = bootstrap(Settings(database_url=url, secret_key=SECRET))

    async def settle() -> tuple[float, int, int]:
        return await asyncio.to_thread(answer_the_rest, worker)

    try:
        with server(dunwell(url, port, "serve"), base, folder / "server.log") as process:
            texts = Texts(base, senders.customers, senders.keyword_numbers)
            return asyncio.run(ramp(port, texts, rates, seconds, process.pid, least, settle))
    finally:
        worker.close()


def measure_bound(
    senders: Senders, rates: list[int], seconds: float, least: int, folder: Path
) -> list[Step]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bare = [sys.executable, BARE_APP, "--port", str(port), "--log-level", "warning"]
    with server(bare, base, folder / "bound.log") as process:
        texts = Texts(base, senders.customers, senders.keyword_numbers)
        return asyncio.run(ramp(port, texts, rates, seconds, process.pid, least))


def _concierge_errors(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        count = conn.execute(
            select(func.count()).where(inbound_messages.c.concierge_error.is_not(None))
        ).scalar_one()
    engine.dispose()
    return int(count)


def report(
    steps: list[Step],
    bound: list[Step],
    database_name: str,
    args: argparse.Namespace,
    texts_errored: int,
    senders: Senders,
) -> dict[str, Any]:
    best = _best(steps)
    best_bound = _best(bound)
    max_rate = best.target if best else 0
    bound_rate = best_bound.target if best_bound else 0
    return {
        "max_rate": max_rate,
        "p50_ms": best.p50_ms if best else None,
        "p99_ms": best.p99_ms if best else None,
        "bound_max_rate": bound_rate,
        "bound_p50_ms": best_bound.p50_ms if best_bound else None,
        "bound_p99_ms": best_bound.p99_ms if best_bound else None,
        "ratio_to_bound": round(max_rate / bound_rate, 3) if bound_rate else None,
        # True when the highest rate tried still held: the figure is a floor, not the limit.
        "capped": bool(steps) and steps[-1].held,
        # A capped bound is a floor of the real one: the ratio is then at most this.
        "bound_capped": bool(bound) and bound[-1].held,
        "database": database_name,
        # Other work on the machine shows in every figure: recorded, not corrected for.
        "load_average_at_start": args.load_average,
        "step_seconds": args.step_seconds,
        "min_requests_per_step": args.least,
        "p99_limit_ms": P99_LIMIT_MS,
        "mix": {
            "keywords": 1 / KEYWORD_EVERY,
            "concierge": 1 - 1 / KEYWORD_EVERY,
            "keyword_texts": list(KEYWORDS),
            "concierge_texts": list(CONCIERGE),
            "customers": len(senders.customers),
            "keyword_numbers": len(senders.keyword_numbers),
        },
        "concierge": (
            "answered by the server's own thread while texts come slower than 10/s;"
            " the rest answered between steps by the worker's concierge stage, outside"
            " the measurement (left_for_worker per step)"
        ),
        "concierge_errors": texts_errored,
        "steps": {"dunwell": [asdict(s) for s in steps], "bound": [asdict(s) for s in bound]},
    }


def _best(steps: list[Step]) -> Step | None:
    held = [s for s in steps if s.held]
    return held[-1] if held else None


def print_human(result: dict[str, Any]) -> None:
    print(
        f"database {result['database']}, steps of {result['step_seconds']} s,"
        f" load average at start {result['load_average_at_start']}"
    )
    columns = (
        "target",
        "achieved",
        "p50_ms",
        "p99_ms",
        "errors",
        "client_cpu",
        "server_cpu",
        "store_cpu",
    )
    after = ("drain_s", "left_for_worker")
    for name, steps in result["steps"].items():
        print(f"\n{name}:\n " + "".join(f"{c:>16}" for c in (*columns, *after)))
        for step in steps:
            cells = [step[c] for c in (*columns, *after)]
            kinds = ", ".join(f"{n} {kind}" for kind, n in step["error_kinds"].items())
            print(" " + "".join(f"{'-' if v is None else v:>16}" for v in cells), kinds)
    print(
        f"\nmax_rate {result['max_rate']}/s (p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms);"
        f" bound {result['bound_max_rate']}/s (p50 {result['bound_p50_ms']} ms,"
        f" p99 {result['bound_p99_ms']} ms); ratio {result['ratio_to_bound']}"
    )
    for name in ("capped", "bound_capped"):
        if result[name]:
            print(f"{name}: the highest rate tried still held, so the figure is a floor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: SQLite in a temporary folder; a PostgreSQL URL names the server and a"
        " database that must not exist yet (dunwell_bench_inbound_<pid> if none is named):"
        " it is created for the run and dropped afterwards",
    )
    parser.add_argument("--step-seconds", type=float, default=5.0)
    parser.add_argument("--max-rate", type=int, default=RATES[-1], help="highest rate tried")
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke test: 2 s steps of at least {QUICK_MIN_REQUESTS} requests, 50 customers",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    args.load_average = [round(x, 2) for x in os.getloadavg()]
    args.least = MIN_REQUESTS
    if args.quick:
        args.step_seconds, args.customers, args.least = 2.0, 50, QUICK_MIN_REQUESTS
    with tempfile.TemporaryDirectory() as folder:
        result = run(args, folder)
    if args.json:
        print(json.dumps(result))
    else:
        print_human(result)


if __name__ == "__main__":
    main()
