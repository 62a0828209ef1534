"""Idempotent POSTs under ``/v1``, with Stripe's semantics.

A client that sends ``Idempotency-Key: <any string of 1-255 characters>``
with a POST can send the same request again after a timeout or a dropped
connection without doing the work twice:

* The first request runs. Its status and JSON body are stored under the key,
  in the same transaction as the route's work when the route writes through
  ``WriteConn``, else just after it.
* The same key with the same method, path and body returns the stored
  response, with ``Idempotent-Replayed: true``; nothing runs again.
* The same key with another path or body is refused (422, ``field:
  "Idempotency-Key"``): it is a client bug, and guessing would be worse.
* While the first request is still running, the same key gets 409.
* Responses that say the request was refused before it ran (400, 401, 403,
  422) and server errors (5xx) are not stored: nothing was done, so the key
  may be sent again, with a corrected request.
* Keys belong to the API key's site; two sites may use the same key.
* A replay answers only the API key that made the first request: the same
  key sent with another API key is refused like another body (422). A
  stored answer may hold what only that key's scope may see (a webhook
  endpoint's signing secret, for an admin key), and a read key that
  learnt the idempotency key must not get it.
* A key is kept 24 hours (real time, not a sandbox test clock); after that
  it may be reused for another request. :func:`delete_expired` removes old keys.
  A request that died without an answer (its process was killed) leaves its
  claim; after 10 minutes another request with the key runs instead.

Why a middleware and not a dependency: it covers every POST under ``/v1``,
including routes added later, without each route opting in; and it sees
the final status and body, including those made by the exception handlers,
which a dependency cannot. It holds the response back until the route's
transaction has committed (FastAPI closes a route's dependencies after the
response is produced), so a client never sees an answer whose work was
rolled back, and it hands the route's transaction a hook (see
``deps.BEFORE_COMMIT``) that writes the response in that same transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Connection, delete, select, update
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dunwell.api.deps import BEFORE_COMMIT, bearer_key
from dunwell.api.problems import PROBLEM, problem
from dunwell.bootstrap import App
from dunwell.services.api_keys import Caller, authenticate
from dunwell.services.housekeeping import delete_expired_idempotency_keys
from dunwell.store.sql import insert_skipping_conflicts
from dunwell.store.tables import idempotency_keys

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEY_TTL = timedelta(hours=24)
STALE_CLAIM = timedelta(minutes=10)
#: Refused before anything ran: the same key may come back with a fixed request.
NOT_STORED = frozenset({400, 401, 403, 422})

PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Any string of 1-255 characters, unique per request you mean to make "
    "once (a UUID). A retry with the same key and body returns the first answer.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}


@dataclass(frozen=True)
class Incoming:
    site_id: int
    key: str
    method: str
    path: str
    request_hash: str


@dataclass
class Claim:
    """A key this request holds while it runs, and the answer it gave."""

    site_id: int
    row_id: int
    status: int = 0
    body: Any = None
    is_json: bool = False
    answered: bool = False  # the full response has gone through the middleware
    settled: bool = False  # stored (or released) in the route's own transaction

    @property
    def storable(self) -> bool:
        return self.is_json and self.status < 500 and self.status not in NOT_STORED

    def settle(self, conn: Connection) -> None:
        """Store the answer, or free the key when the answer is not kept."""
        if not self.answered or self.settled:
            return
        table = idempotency_keys
        where = (table.c.site_id == self.site_id, table.c.id == self.row_id)
        if self.storable:
            values = {"status_code": self.status, "response_body": self.body}
            conn.execute(update(table).where(*where).values(**values))
        else:
            conn.execute(delete(table).where(*where))
        self.settled = True


def install(api: FastAPI) -> None:
    """Add the middleware and the ``Idempotency-Key`` header to every POST in the schema."""
    api.add_middleware(IdempotencyMiddleware)
    plain_openapi = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = plain_openapi()
            for path, item in schema.get("paths", {}).items():
                if path.startswith("/v1/") and "post" in item:
                    item["post"].setdefault("parameters", []).append(dict(PARAMETER))
        assert api.openapi_schema is not None
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented hook


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, HEADER.lower().encode())
        if key is None or not _applies(scope):
            await self.app(scope, receive, send)
            return
        dunwell: App = scope["app"].state.dunwell
        body = await _read_body(receive)
        if not 1 <= len(key) <= 255 or not key.isprintable():
            detail = "must be 1-255 printable characters"
            await problem(422, "Invalid field", detail, field=HEADER)(scope, receive, send)
            return
        authorization = _header(scope, b"authorization") or ""
        caller = await run_in_threadpool(_caller, dunwell, authorization)
        if caller is None:  # the route answers 401 itself
            await self.app(scope, _replay_body(body, receive), send)
            return
        incoming = Incoming(
            caller.site_id, key, scope["method"], _full_path(scope), _hash(caller, key, body)
        )
        held = await run_in_threadpool(claim_key, dunwell, incoming)
        if isinstance(held, Response):
            await held(scope, receive, send)
            return
        await self._run(scope, _replay_body(body, receive), send, dunwell, held)

    async def _run(self, scope: Scope, receive: Receive, send: Send, app: App, held: Claim) -> None:
        messages: list[Message] = []

        async def capture(message: Message) -> None:
            messages.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                held.status, held.body, held.is_json = _answer(messages)
                held.answered = True

        hooks: list[Callable[[Connection], None]] = scope.setdefault(BEFORE_COMMIT, [])
        hooks.append(held.settle)
        try:
            await self.app(scope, receive, capture)
            if not held.settled:
                await run_in_threadpool(_settle_after, app, held)
        except BaseException:
            await run_in_threadpool(release, app, held)
            raise
        for message in messages:
            await send(message)


def claim_key(app: App, incoming: Incoming) -> Claim | Response:
    """Take the key for this request, or say why it cannot run (replay, 409, 422)."""
    now = app.clock.now()
    table = idempotency_keys
    with app.begin() as conn:
        row_id = conn.execute(
            insert_skipping_conflicts(conn, table, ["site_id", "key"])
            .values(**incoming.__dict__, created_at=now)
            .returning(table.c.id)
        ).scalar()
        if row_id is not None:
            return Claim(incoming.site_id, row_id)
        query = select(table).where(
            table.c.site_id == incoming.site_id, table.c.key == incoming.key
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:  # freed between the two statements: the other request gave up
            return _busy()
        if _expired(row, now):
            fresh = {**incoming.__dict__, "status_code": None, "response_body": None}
            conn.execute(update(table).where(table.c.id == row.id).values(**fresh, created_at=now))
            return Claim(incoming.site_id, row.id)
        if (row.method, row.path, row.request_hash) != (
            incoming.method,
            incoming.path,
            incoming.request_hash,
        ):
            detail = (
                "this key was used with another request or another API key; "
                "use a new key for a new request"
            )
            return problem(422, "Invalid field", detail, field=HEADER)
        if row.status_code is None:
            return _busy()
        return _replayed(row.status_code, row.response_body)


def release(app: App, held: Claim) -> None:
    """Free a key whose request failed without an answer worth keeping."""
    table = idempotency_keys
    with app.begin() as conn:
        conn.execute(
            delete(table)
            .where(table.c.site_id == held.site_id, table.c.id == held.row_id)
            .where(table.c.status_code.is_(None))
        )


def delete_expired(conn: Connection, now: datetime) -> int:
    """Delete keys older than 24 hours (any site); the worker does this hourly."""
    return delete_expired_idempotency_keys(conn, now)


def _settle_after(app: App, held: Claim) -> None:
    with app.begin() as conn:
        held.settle(conn)


def _expired(row: Any, now: datetime) -> bool:
    age = now - row.created_at
    return age >= KEY_TTL or (row.status_code is None and age >= STALE_CLAIM)


def _busy() -> Response:
    detail = "a request with this Idempotency-Key is still running; retry in a moment"
    return problem(409, "Conflict", detail)


def _replayed(status: int, body: Any) -> Response:
    media_type = PROBLEM if status >= 400 else "application/json"
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(content, status, {REPLAYED: "true"}, media_type)


def _answer(messages: list[Message]) -> tuple[int, Any, bool]:
    """A captured response's status, its body and whether that body is JSON.

    Only JSON is stored (every ``/v1`` POST answers JSON); anything else runs
    again on a retry.
    """
    start = next(m for m in messages if m["type"] == "http.response.start")
    status = int(start["status"])
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start["headers"]}
    raw = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    if "json" not in headers.get("content-type", ""):
        return status, None, False
    try:
        return status, json.loads(raw), True
    except ValueError:
        return status, None, False


def _caller(app: App, authorization: str) -> Caller | None:
    key = bearer_key(authorization)
    if key is None:
        return None
    with app.connect() as conn:
        return authenticate(conn, key)


def _applies(scope: Scope) -> bool:
    return bool(
        scope["type"] == "http" and scope["method"] == "POST" and scope["path"].startswith("/v1/")
    )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _full_path(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope['path']}?{query}" if query else str(scope["path"])


def _hash(caller: Caller, key: str, body: bytes) -> str:
    """SHA-256 of the body, keyed by site, API key and idempotency key.

    JSON is compared by value, so a retry that serialises its body with
    other spacing or key order is the same request. The API key's id is
    mixed in so that another API key's retry is another request (see the
    module docstring), and the site and idempotency key so the stored hash
    says nothing on its own about the body.
    """
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        canonical = body
    salt = f"{caller.site_id}\n{caller.key_id}\n{key}\n".encode()
    return hashlib.sha256(salt + canonical).hexdigest()


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay_body(body: bytes, original: Receive) -> Receive:
    """Give the route the body already read; then wait on the client as usual."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await original()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
