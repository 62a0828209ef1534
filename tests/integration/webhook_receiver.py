"""A merchant's webhook receiver on 127.0.0.1, verifying with the ``standardwebhooks`` package.

It checks every request the way a merchant would, with
``Webhook(secret).verify(body, headers)``, records what came and whether it
verified, and answers what the test asks for: a status code, possibly
after a delay. Requests that fail verification are answered 400.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from tests.integration.local_http import LocalHttpServer


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    #: The parsed body when the signature verified, else None.
    payload: Any
    #: Why verification failed, else None.
    error: str | None

    @property
    def type(self) -> str:
        kind: str = self.payload["type"]
        return kind

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.payload["data"]
        return data


class Receiver:
    def __init__(self) -> None:
        self.secret = ""
        self.host_name = "127.0.0.1"
        self.received: list[Received] = []
        self.status = 200  # the answer once the queued ones are used up
        self.delay = 0.0  # and how long it takes
        #: The most requests that were being answered at one moment.
        self.most_in_flight = 0
        self._in_flight = 0
        self._queued: list[tuple[int, float]] = []
        self._lock = threading.Lock()
        self._http = LocalHttpServer(_handler(self), ThreadingHTTPServer, join_timeout=5)

    @property
    def port(self) -> int:
        return self._http.port

    @property
    def url(self) -> str:
        return f"http://{self.host_name}:{self.port}/hooks/billing"

    def answer(self, *statuses: int, delay: float = 0.0) -> None:
        """Answer the next requests with these statuses, each after ``delay`` seconds."""
        with self._lock:
            self._queued.extend((status, delay) for status in statuses)

    def verified(self) -> list[Received]:
        return [r for r in self.received if r.error is None]

    def types(self) -> list[str]:
        return sorted(r.type for r in self.verified())

    def arrived(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)

    def answered(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, float, bytes]:
        try:
            payload = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError as error:
            with self._lock:
                self.received.append(Received(headers, body, None, str(error)))
            return 400, 0.0, b"signature rejected"
        with self._lock:
            self.received.append(Received(headers, body, payload, None))
            status, delay = self._queued.pop(0) if self._queued else (self.status, self.delay)
        return status, delay, f"answered {status}".encode()

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        with self._http:
            yield self


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            # In flight until the answer is ready to go: once it is written,
            # the sender may start its next request before this thread ends.
            receiver.arrived()
            try:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, delay, text = receiver.handle(headers, body)
                time.sleep(delay)
            finally:
                receiver.answered()
            try:
                self.send_response(status)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the sender gave up waiting: that is what a slow answer tests

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
