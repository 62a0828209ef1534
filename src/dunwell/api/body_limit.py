"""A bound on the size of request bodies, checked before a route reads them.

Every route reads its whole body into memory (JSON, a form, a CSV), and a
policy or a template is validated piece by piece, so one request of tens
of megabytes held a worker thread for seconds and its memory with it. The
bound is ``max_request_bytes`` for every route and ``max_upload_bytes``
for the CSV import, whose files are legitimately larger. A body declared
larger (``Content-Length``) is refused at once; one sent in chunks is
counted as it arrives and refused when it passes the bound. Either way the
answer is ``413`` in the API's problem format, before any route has
stored anything.
"""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Routes that take files, and so the larger bound.
UPLOAD_PATHS = frozenset({"/v1/phones/import"})


def _too_large(limit: int) -> str:
    return f"the request body is larger than {limit:,} bytes"


class BodyLimit:
    """ASGI middleware refusing request bodies over the bound with 413."""

    def __init__(self, app: ASGIApp, max_request_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_upload_bytes if scope["path"] in UPLOAD_PATHS else self.max_request_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, limit)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # An HTTPException, so that FastAPI's body parsing passes
                    # it on (it turns other errors into a 400) and the API's
                    # handler answers it in the problem format.
                    raise HTTPException(413, _too_large(limit))
            return message

        await self.app(scope, counted_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            # The server has already refused a malformed one; be safe anyway.
            return int(value) if value.isdigit() else None
    return None


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": _too_large(limit),
            "status": 413,
            "detail": _too_large(limit),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
