"""A local HTTP server that speaks a Gorgias-compatible help desk's tickets API.

    with FakeHelpdeskServer(username="ops@shop.test", api_key=KEY) as server:
        ... settings helpdesk_url=server.url ...
        server.answer(500, 500)        # the next two requests fail
        [ticket] = server.tickets      # every ticket created

``POST /api/tickets`` checks HTTP Basic auth (username : API key; 401 with
Gorgias's error body otherwise) and the body's required parts (customer
email, at least one message with ``channel``, ``via``, ``from_agent`` and
a sender; 400 otherwise), then answers 201 with the ticket and its ``id``.
``GET /api/tickets?external_id=X&limit=N`` answers 200 with Gorgias's
list, ``{"object": "list", "data": [...], "meta": {...}}``, newest first.
Every request is recorded, answered or not. ``answer(*statuses, delay=)``
scripts the next creates (an error status, or 201 after ``delay`` seconds
for a slow help desk); ``answer_lookups(*statuses)`` the next listings.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.integration.local_http import LocalHttpServer

TICKETS_PATH = "/api/tickets"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeHelpdesk:
    """The state behind the server; safe to read from tests between calls."""

    username: str
    api_key: str
    tickets: list[dict[str, Any]] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    upcoming: deque[tuple[int, float]] = field(default_factory=deque)
    upcoming_lookups: deque[int] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(
        self, method: str, path: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, Any]:
        """Answer one request: (HTTP status, JSON body); record it."""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        url = urlsplit(path)
        with self.lock:
            self.requests.append(RecordedRequest(method, path, headers, body))
            if method == "GET":
                status, delay = (
                    (self.upcoming_lookups.popleft(), 0.0) if self.upcoming_lookups else (200, 0.0)
                )
            else:
                status, delay = self.upcoming.popleft() if self.upcoming else (201, 0.0)
        if delay:
            time.sleep(delay)
        if url.path.rstrip("/") != TICKETS_PATH or method not in ("POST", "GET"):
            return 404, _error("Not found")
        if not self._authorized(headers.get("authorization")):
            return 401, _error("Unauthorized: bad username or API key")
        if status not in (200, 201):
            return status, _error(f"scripted failure {status}")
        if method == "GET":
            return self._list(parse_qs(url.query))
        return self._create(body)

    def _list(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        wanted = query.get("external_id", [None])[0]
        limit = int(query.get("limit", ["30"])[0])
        with self.lock:
            found = [
                t
                for t in reversed(self.tickets)
                if wanted is None or t.get("external_id") == wanted
            ]
        meta = {"next_cursor": None, "prev_cursor": None}
        return 200, {"object": "list", "uri": TICKETS_PATH, "data": found[:limit], "meta": meta}

    def _authorized(self, authorization: str | None) -> bool:
        token = base64.b64encode(f"{self.username}:{self.api_key}".encode()).decode()
        return authorization == f"Basic {token}"

    def _create(self, body: Any) -> tuple[int, Any]:
        problem = _invalid(body)
        if problem:
            return 400, _error(problem)
        with self.lock:
            ticket = {"id": 9000 + len(self.tickets) + 1, **body, "status": "open"}
            self.tickets.append(ticket)
        return 201, ticket


def _error(message: str) -> dict[str, Any]:
    return {"error": {"msg": message}}


def _invalid(body: Any) -> str | None:
    """The checks the help desk makes on a new ticket."""
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    if not (body.get("customer") or {}).get("email"):
        return "customer.email is required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for message in messages:
        for name in ("channel", "via", "from_agent", "sender"):
            if name not in message:
                return f"messages[].{name} is required"
        if not message.get("body_text") and not message.get("body_html"):
            return "messages[]: a body is required"
    return None


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, payload = self.server.fake.handle(self.command, self.path, headers, raw)
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up waiting (the slow answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet


class _Server(ThreadingHTTPServer):
    fake: FakeHelpdesk


class FakeHelpdeskServer:
    """Serves a :class:`FakeHelpdesk` on 127.0.0.1; a context manager."""

    def __init__(self, *, username: str, api_key: str) -> None:
        self.fake = FakeHelpdesk(username, api_key)
        self._http = LocalHttpServer(_Handler, _Server)
        self._http.server.fake = self.fake

    @property
    def url(self) -> str:
        """The API root to save as the help desk URL."""
        return f"{self._http.url}/api"

    @property
    def tickets(self) -> list[dict[str, Any]]:
        with self.fake.lock:
            return list(self.fake.tickets)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.fake.lock:
            return list(self.fake.requests)

    def answer(self, *statuses: int, delay: float = 0.0) -> None:
        """Answer the next creates with these statuses (201 creates), after ``delay`` s."""
        with self.fake.lock:
            self.fake.upcoming.extend((status, delay) for status in statuses)

    def answer_lookups(self, *statuses: int) -> None:
        """Answer the next listings with these statuses (200 lists)."""
        with self.fake.lock:
            self.fake.upcoming_lookups.extend(statuses)

    @property
    def methods(self) -> list[str]:
        """The method of every request so far, in order."""
        return [r.method for r in self.requests]

    def __enter__(self) -> FakeHelpdeskServer:
        self._http.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._http.stop()
