"""A local HTTP server that speaks the OpenAI chat-completions wire format.

Enough of it for the concierge's LLM adapter: ``POST /v1/chat/completions``
with a JSON body, answered with ``{"choices": [{"message": {"role":
"assistant", "content": ...}}], ...}``. Answers are scripted, in order;
with none left the model says ``{"intent": "unknown", "slots": {}}``.

    with FakeLlmServer() as server:
        server.script(Reply('{"intent": "change_address", "slots": {}}'))
        server.script(Reply(status=500), Reply("not json"), Reply("{}", delay=2.0))
        ...
        [request] = server.requests        # every request received, in order
        request.headers["authorization"], request.body["model"]
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.integration.local_http import LocalHttpServer

UNKNOWN = '{"intent": "unknown", "slots": {}}'


@dataclass(frozen=True)
class Reply:
    """One scripted answer: the message content, or an HTTP error status, after a delay."""

    content: str = UNKNOWN
    status: int = 200
    delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    #: Header names in lower case.
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class _State:
    replies: deque[Reply] = field(default_factory=deque)
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)

    def next_reply(self, request: RecordedRequest) -> Reply:
        with self.lock:
            self.requests.append(request)
            return self.replies.popleft() if self.replies else Reply()


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.state.next_reply(RecordedRequest(self.path, headers, body))
        # A delayed reply ends early when the server stops, so no thread lingers.
        if reply.delay and self.server.state.stopping.wait(reply.delay):
            return
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
        elif reply.status != 200:
            self._send(reply.status, {"error": {"message": "scripted failure"}})
        else:
            self._send(200, _completion(body.get("model", ""), reply.content))

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a timeout test)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1767225600,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


class _Server(ThreadingHTTPServer):
    state: _State


class FakeLlmServer:
    """Serves scripted chat completions on 127.0.0.1; a context manager."""

    def __init__(self) -> None:
        self._state = _State()
        # Stopping wakes delayed replies first, so no handler thread lingers.
        self._http = LocalHttpServer(_Handler, _Server, before_stop=self._state.stopping.set)
        self._http.server.state = self._state

    @property
    def base_url(self) -> str:
        """Give this as the LLM base URL (the adapter appends /chat/completions)."""
        return f"{self._http.url}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order."""
        with self._state.lock:
            self._state.replies.extend(replies)

    def start(self) -> FakeLlmServer:
        self._http.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake delayed replies, close the socket and end the thread."""
        self._http.stop()

    def __enter__(self) -> FakeLlmServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
