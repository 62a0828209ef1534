"""A local HTTP server that speaks Twilio's Messages API (2010-04-01).

Enough of the wire format for the official SDK: form-encoded requests with
HTTP Basic auth (account SID : auth token), JSON answers shaped like
Twilio's Message resource, list pages, and legacy error bodies
(``{"code": 21211, "message": ..., "more_info": ..., "status": 400}``).

    with FakeTwilioServer() as server:
        config = TwilioConfig(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                              from_number=FROM_NUMBER, api_base=server.url)
        ...
        [message] = server.messages            # every accepted message
        server.post_status(message.sid, "delivered")

Endpoints: ``POST``/``GET /2010-04-01/Accounts/{sid}/Messages.json`` (with
``To``/``From``/``DateSent>``/``DateSent<`` filters and ``PageSize``/``Page``
paging) and ``GET
.../Messages/{MessageSid}.json``. As with Twilio's test credentials, the
``MAGIC_NUMBERS`` always fail; ``fail_for(number, status=, code=)`` fails
every message to a number, ``fail_next(n, status=, code=)`` the next n sends,
``fail_next_list(n, status=)`` the next n listings, ``fail_next_fetch(n,
status=)`` the next n fetches of one message. ``set_status(sid, status)``
moves a message on without posting its callback.

``receive(from_, body)`` adds a text a customer sent to the account, as
Twilio lists it (``direction`` ``inbound``, status ``received``) without
posting any webhook: a text whose webhook never got through.

Delivery reports go out only when a test calls ``post_status(sid, status,
error_code=None)``: posted to the message's ``StatusCallback``, signed with
``X-Twilio-Signature`` by the SDK's own ``RequestValidator``, as Twilio does.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from sqlalchemy import Connection
from twilio.request_validator import RequestValidator

from dunwell.security.secrets import SecretBox
from dunwell.services.channel_config import save_channel_config
from tests.integration.local_http import LocalHttpServer

ACCOUNT_SID = "AC5ef8732a3c49700934481addd5ce1659"
AUTH_TOKEN = "9a7c3e0f5b2d4c6e8f1a3b5c7d9e0f21"
FROM_NUMBER = "+15005550006"
MESSAGING_SERVICE_SID = "MG2172dd2db502e20dd981ef0d67850e1a"
#: The sender a Messaging Service picks from its pool once a message is sent.
POOL_NUMBER = "+15005550010"
API_VERSION = "2010-04-01"

_E164 = re.compile(r"\+[1-9]\d{6,14}")
_LIST = re.compile(rf"/{API_VERSION}/Accounts/(?P<account>AC\w+)/Messages\.json")
_ONE = re.compile(rf"/{API_VERSION}/Accounts/(?P<account>AC\w+)/Messages/(?P<sid>SM\w+)\.json")
#: The Messaging API (messaging.twilio.com, under /messaging here): a service's senders.
_SENDERS = re.compile(
    r"/messaging/v1/Services/(?P<service>MG\w+)/(?P<kind>PhoneNumbers|ShortCodes)"
)
_SENDER_KINDS = {
    "PhoneNumbers": ("phone_numbers", "phone_number", "PN"),
    "ShortCodes": ("short_codes", "short_code", "SC"),
}


@dataclass(frozen=True)
class Failure:
    """An error answer: HTTP status, Twilio code (None for none) and message."""

    status: int
    code: int | None
    message: str

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "status": self.status}
        if self.code is not None:
            body["code"] = self.code
            body["more_info"] = f"https://www.twilio.com/docs/errors/{self.code}"
        return body


_MESSAGES = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    20429: "Too Many Requests",
    21211: "The 'To' number is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number is not currently reachable via SMS.",
    21614: "'To' number is not a valid mobile number",
}
#: To numbers that fail the way they do with Twilio's test credentials.
MAGIC_NUMBERS: dict[str, Failure] = {
    number: Failure(400, code, _MESSAGES[code])
    for number, code in [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
    ]
}


@dataclass
class FakeMessage:
    """One accepted message, as the fake keeps and shows it."""

    sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str
    status_callback: str | None
    date_created: datetime
    status: str
    date_updated: datetime
    date_sent: datetime | None = None
    error_code: int | None = None
    direction: str = "outbound-api"
    #: The ValidityPeriod the request asked for (not part of Twilio's resource).
    validity_period: int | None = None

    def resource(self, account_sid: str) -> dict[str, Any]:
        """The Message resource JSON, field for field as Twilio sends it."""
        uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{self.sid}"
        return {
            "account_sid": account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": format_datetime(self.date_created),  # RFC 2822, +0000
            "date_sent": format_datetime(self.date_sent) if self.date_sent else None,
            "date_updated": format_datetime(self.date_updated),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": None if self.error_code is None else "Delivery failed",
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            # A Messaging Service has not chosen a sender yet, so Twilio says 0.
            "num_media": "0",
            "num_segments": "0" if self.from_ is None else str(segments(self.body)),
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
            "to": self.to,
            "uri": f"{uri}.json",
        }


_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")


def segments(body: str) -> int:
    """SMS segments: 160 GSM-7 units (153 when split), else 70 UCS-2 (67)."""
    if all(char in _GSM7 or char in _GSM7_EXTENDED for char in body):
        units, single, part = sum(2 if c in _GSM7_EXTENDED else 1 for c in body), 160, 153
    else:
        units, single, part = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else -(-units // part)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]


@dataclass
class FakeTwilio:
    """The state behind the server; safe to read from tests between calls."""

    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    messages: list[FakeMessage] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    rules: dict[str, Failure] = field(default_factory=lambda: dict(MAGIC_NUMBERS))
    upcoming: deque[Failure] = field(default_factory=deque)
    upcoming_lists: deque[Failure] = field(default_factory=deque)
    upcoming_fetches: deque[Failure] = field(default_factory=deque)
    #: Each Messaging Service's numbers and short codes.
    services: dict[str, dict[str, list[str]]] = field(
        default_factory=lambda: {
            MESSAGING_SERVICE_SID: {"PhoneNumbers": [POOL_NUMBER], "ShortCodes": []}
        }
    )
    lock: threading.RLock = field(default_factory=threading.RLock)
    #: Seconds to wait after accepting a message before answering: widens the
    #: window in which a killed client has sent but not heard back.
    delay: float = 0.0
    #: Requests being answered now, and the most ever answered at once.
    in_flight: int = 0
    most_in_flight: int = 0
    #: ("accepted" | "answered", To) for each message created, in the order they happened.
    sends: list[tuple[str, str]] = field(default_factory=list)
    #: Like an account's concurrency limit: a request beyond this many at
    #: once is answered 429 (error 20429) without being read.
    max_in_flight: int | None = None
    turned_away: int = 0

    def handle(
        self, method: str, target: str, form: dict[str, str], authorization: str | None
    ) -> tuple[int, dict[str, Any]]:
        """Answer one request: (HTTP status, JSON body); record it."""
        split = urlsplit(target)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        with self.lock:
            if self.max_in_flight is not None and self.in_flight >= self.max_in_flight:
                self.turned_away += 1
                return 429, _failure(429, 20429, "").body()
            self.requests.append(RecordedRequest(method, split.path, query, form))
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            answer = self._route(method, split.path, query, form, authorization)
            created = method == "POST" and answer[0] == 201
            if created:
                self.sends.append(("accepted", form["To"]))
        try:
            if self.delay and created:
                # Outside the lock, as Twilio answers many clients at once.
                time.sleep(self.delay)
            return answer
        finally:
            with self.lock:
                self.in_flight -= 1
                if created:
                    self.sends.append(("answered", form["To"]))

    def _route(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        form: dict[str, str],
        authorization: str | None,
    ) -> tuple[int, dict[str, Any]]:
        senders = _SENDERS.fullmatch(path)
        if senders is not None and method == "GET":
            if not self._authorized(self.account_sid, authorization):
                return 401, _unauthorized()
            return self._senders(senders["service"], senders["kind"], path, query)
        listing, one = _LIST.fullmatch(path), _ONE.fullmatch(path)
        match = listing or one
        if match is None or (one and method != "GET"):
            return 404, _not_found(path)
        if not self._authorized(match["account"], authorization):
            return 401, _unauthorized()
        if one:
            if self.upcoming_fetches:
                failure = self.upcoming_fetches.popleft()
                return failure.status, failure.body()
            return self._fetch(one["sid"], path)
        if method == "POST":
            return self._create(form)
        if self.upcoming_lists:
            failure = self.upcoming_lists.popleft()
            return failure.status, failure.body()
        return self._list(path, query)

    def _senders(
        self, service: str, kind: str, path: str, query: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        """One page of a service's PhoneNumbers or ShortCodes, as the Messaging API pages."""
        if service not in self.services:
            return 404, _not_found(path)
        key, field_name, prefix = _SENDER_KINDS[kind]
        size = min(int(query.get("PageSize", "50")), 1000)
        page = int(query.get("Page", "0"))
        every = self.services[service][kind]
        chunk = every[page * size : (page + 1) * size]
        base = f"https://messaging.twilio.com{path}"
        more = len(every) > (page + 1) * size
        return 200, {
            key: [
                {
                    "sid": f"{prefix}{n:032x}",
                    "account_sid": self.account_sid,
                    "service_sid": service,
                    field_name: value,
                    "country_code": "US",
                    "capabilities": ["SMS"],
                }
                for n, value in enumerate(chunk, start=page * size)
            ],
            "meta": {
                "key": key,
                "page": page,
                "page_size": size,
                "first_page_url": f"{base}?PageSize={size}&Page=0",
                "previous_page_url": f"{base}?PageSize={size}&Page={page - 1}" if page else None,
                "next_page_url": f"{base}?PageSize={size}&Page={page + 1}" if more else None,
                "url": f"{base}?PageSize={size}&Page={page}",
            },
        }

    def _authorized(self, account: str, authorization: str | None) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return account == self.account_sid and authorization == f"Basic {expected}"

    def _create(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        failure = self.upcoming.popleft() if self.upcoming else _invalid(form)
        failure = failure or self.rules.get(form["To"])
        if failure is not None:
            return failure.status, failure.body()
        now = self.now()
        service = form.get("MessagingServiceSid")
        message = FakeMessage(
            sid="SM" + secrets.token_hex(16),
            to=form["To"],
            from_=None if service else form["From"],
            messaging_service_sid=service,
            body=form["Body"],
            status_callback=form.get("StatusCallback"),
            date_created=now,
            date_updated=now,
            status="accepted" if service else "queued",
            validity_period=int(form["ValidityPeriod"]) if "ValidityPeriod" in form else None,
        )
        self.messages.append(message)
        return 201, message.resource(self.account_sid)

    def _fetch(self, sid: str, path: str) -> tuple[int, dict[str, Any]]:
        found = next((m for m in self.messages if m.sid == sid), None)
        if found is None:
            return 404, _not_found(path)
        return 200, found.resource(self.account_sid)

    def _list(self, path: str, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        size = min(int(query.get("PageSize", "50")), 1000)
        page = int(query.get("Page", "0"))
        after, before = _instant(query.get("DateSent>")), _instant(query.get("DateSent<"))
        wanted = [
            m
            for m in self.messages
            if query.get("To", m.to) == m.to
            and query.get("From", m.from_) == m.from_
            and (after is None or (m.date_sent is not None and m.date_sent >= after))
            and (before is None or (m.date_sent is not None and m.date_sent <= before))
        ]
        # Newest first, as Twilio lists them; ties keep the newest insertion first.
        wanted = sorted(reversed(wanted), key=lambda m: m.date_created, reverse=True)
        chunk = wanted[page * size : (page + 1) * size]
        filters = {k: query[k] for k in ("To", "From", "DateSent>", "DateSent<") if k in query}

        def uri(number: int, **extra: str) -> str:
            params = {**filters, "PageSize": str(size), "Page": str(number), **extra}
            return f"{path}?{urlencode(params)}"

        more = len(wanted) > (page + 1) * size
        token = {"PageToken": f"PA{chunk[-1].sid}"} if chunk else {}
        return 200, {
            "end": page * size + len(chunk) - 1 if chunk else 0,
            "first_page_uri": uri(0),
            "messages": [m.resource(self.account_sid) for m in chunk],
            "next_page_uri": uri(page + 1, **token) if more else None,
            "page": page,
            "page_size": size,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            "start": page * size,
            "uri": uri(page),
        }


def _instant(value: str | None) -> datetime | None:
    """A ``DateSent`` bound as the SDK sends it (``2026-11-23T09:00:00Z``)."""
    if value is None:
        return None
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _unauthorized() -> dict[str, Any]:
    return {
        "code": 20003,
        "detail": "Your AccountSid or AuthToken was incorrect.",
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }


def _not_found(path: str) -> dict[str, Any]:
    return Failure(404, 20404, f"The requested resource {path} was not found").body()


def _invalid(form: dict[str, str]) -> Failure | None:
    """Twilio's checks on the request itself, before any number rule."""
    if not form.get("To"):
        return Failure(400, 21604, "A 'To' phone number is required.")
    if not form.get("From") and not form.get("MessagingServiceSid"):
        return Failure(400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required.")
    if not form.get("Body"):
        return Failure(400, 21602, "Message body is required.")
    if not _E164.fullmatch(form["To"]):
        return Failure(400, 21211, f"The 'To' number {form['To']} is not a valid phone number.")
    validity = form.get("ValidityPeriod")
    if validity is not None and not (validity.isdigit() and 1 <= int(validity) <= 36000):
        return Failure(400, 21624, "Validity period must be an integer from 1 to 36000.")
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        form = dict(parse_qsl(raw, keep_blank_values=True))
        auth = self.headers.get("Authorization")
        status, payload = self.server.fake.handle(self.command, self.path, form, auth)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Twilio-Request-Id", "RQ" + secrets.token_hex(16))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet


class _Server(ThreadingHTTPServer):
    fake: FakeTwilio
    # The listen backlog: http.server's 5 drops connections when a worker's
    # lanes all connect at once, which Twilio's own servers never do.
    request_queue_size = 64


class FakeTwilioServer:
    """Serves a :class:`FakeTwilio` on 127.0.0.1; a context manager."""

    def __init__(
        self,
        *,
        account_sid: str = ACCOUNT_SID,
        auth_token: str = AUTH_TOKEN,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.fake = FakeTwilio(account_sid, auth_token, now or (lambda: datetime.now(UTC)))
        self._http = LocalHttpServer(_Handler, _Server)
        self._http.server.fake = self.fake

    @property
    def url(self) -> str:
        """Give this as ``api_base`` in place of https://api.twilio.com."""
        return self._http.url

    @property
    def messages(self) -> list[FakeMessage]:
        with self.fake.lock:
            return list(self.fake.messages)

    def fail_for(
        self, number: str, *, status: int = 400, code: int | None = 21211, message: str = ""
    ) -> None:
        """Answer every message to ``number`` with this error."""
        with self.fake.lock:
            self.fake.rules[number] = _failure(status, code, message)

    def fail_next(
        self, times: int = 1, *, status: int = 503, code: int | None = None, message: str = ""
    ) -> None:
        """Answer the next ``times`` requests to send with this error."""
        with self.fake.lock:
            self.fake.upcoming.extend([_failure(status, code, message)] * times)

    def set_status(self, sid: str, status: str, error_code: int | None = None) -> None:
        """Move a message to ``status`` without reporting it: a callback that never arrived."""
        with self.fake.lock:
            message = next(m for m in self.fake.messages if m.sid == sid)
            self._advance(message, status, error_code)

    def fail_next_fetch(self, times: int = 1, *, status: int = 503) -> None:
        """Answer the next ``times`` fetches of one message with this error."""
        with self.fake.lock:
            self.fake.upcoming_fetches.extend([_failure(status, None, "")] * times)

    def fail_next_list(self, times: int = 1, *, status: int = 503) -> None:
        """Answer the next ``times`` listings of messages with this error."""
        with self.fake.lock:
            self.fake.upcoming_lists.extend([_failure(status, None, "")] * times)

    def receive(
        self,
        from_: str,
        body: str,
        *,
        to: str = FROM_NUMBER,
        at: datetime | None = None,
        messaging_service_sid: str | None = None,
    ) -> FakeMessage:
        """A text a customer sent to the account, listed by Twilio but never posted."""
        with self.fake.lock:
            when = (at or self.fake.now()).replace(microsecond=0)  # Twilio keeps seconds
            message = FakeMessage(
                sid="SM" + secrets.token_hex(16),
                to=to,
                from_=from_,
                messaging_service_sid=messaging_service_sid,
                body=body,
                status_callback=None,
                date_created=when,
                status="received",
                date_updated=when,
                date_sent=when,
                direction="inbound",
            )
            self.fake.messages.append(message)
            return message

    def post_status(self, sid: str, status: str, error_code: int | None = None) -> int:
        """Move a message to ``status`` and report it to its StatusCallback,
        signed like Twilio; returns the HTTP status the receiver answered."""
        with self.fake.lock:
            message = next(m for m in self.fake.messages if m.sid == sid)
            url = message.status_callback
            if url is None:
                raise ValueError(f"message {sid} was sent without a StatusCallback")
            params = self._advance(message, status, error_code)
        signature = RequestValidator(self.fake.auth_token).compute_signature(url, params)
        request = urllib.request.Request(
            url,
            data=urlencode(params).encode(),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature,
                "User-Agent": "TwilioProxy/1.1",
            },
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            with error:
                return error.code

    def _advance(self, message: FakeMessage, status: str, error_code: int | None) -> dict[str, str]:
        now = self.fake.now()
        message.status, message.error_code, message.date_updated = status, error_code, now
        if message.from_ is None:
            message.from_ = POOL_NUMBER  # the service has picked a sender by now
        if status in ("sent", "delivered") and message.date_sent is None:
            message.date_sent = now
        params = {
            "AccountSid": self.fake.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.from_,
            "MessageSid": message.sid,
            "MessageStatus": status,
            "SmsSid": message.sid,
            "SmsStatus": status,
            "To": message.to,
        }
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return params

    def start(self) -> FakeTwilioServer:
        self._http.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the listening socket and end the thread."""
        self._http.stop()

    def __enter__(self) -> FakeTwilioServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def save_fake_twilio(
    conn: Connection,
    site_id: int,
    box: SecretBox,
    now: datetime,
    config: dict[str, str] | None = None,
) -> None:
    """Save this fake's account as the site's SMS provider: the From number, unless ``config``."""
    sender = config or {"account_sid": ACCOUNT_SID, "from_number": FROM_NUMBER}
    save_channel_config(conn, site_id, "sms", "twilio", sender, AUTH_TOKEN, box, now)


def _failure(status: int, code: int | None, message: str) -> Failure:
    known = _MESSAGES.get(code or 0) or _MESSAGES.get(status)
    text = message or known or f"HTTP {status}"
    return Failure(status, code, text)
