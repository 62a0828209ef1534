"""Errors as RFC 9457 ``application/problem+json``, naming the field at fault."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from dunwell.messaging.redact import redact_card_numbers
from dunwell.services.errors import Busy, Conflict, InvalidInput, NotFound, ServiceError

PROBLEM = "application/problem+json"
#: Where FastAPI found a parameter: the first part of a validation error's loc.
LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    # Whatever a message quotes (a value, an unknown field's name), a card
    # number in it is never sent back.
    shown = {k: redact_card_numbers(v) if isinstance(v, str) else v for k, v in extra.items()}
    body = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": redact_card_numbers(detail),
        **shown,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def install(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, error: ServiceError) -> JSONResponse:
        if isinstance(error, NotFound):
            return problem(404, "Not found", str(error))
        if isinstance(error, InvalidInput):
            return problem(422, "Invalid field", error.message, field=error.field)
        if isinstance(error, Conflict):
            return problem(409, "Conflict", str(error))
        if isinstance(error, Busy):
            response = problem(503, "Busy", str(error))
            response.headers["Retry-After"] = str(error.retry_after_seconds)
            return response
        return problem(400, "Bad request", str(error))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        # Only the message: pydantic's "input" would repeat what was sent,
        # which may be a card number.
        return problem(422, "Invalid field", _message(first), field=field_name(first))

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        response = problem(error.status_code, str(error.detail), str(error.detail))
        for name, value in (error.headers or {}).items():
            response.headers[name] = value
        return response


def field_name(error: Mapping[str, Any]) -> str:
    """The field a validation error is about, named like the services name them.

    ``items[0].product_id``, ``limit``: the location (body, query...) is
    dropped, and only it, since a field may well be called ``body`` too.
    A body that is not JSON, or not an object, is ``body``.
    """
    loc = list(error["loc"])
    where = loc.pop(0) if loc and loc[0] in LOCATIONS else ""
    if error["type"] == "json_invalid":
        return str(where)  # the rest of its loc is a position in the text
    parts = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    return parts or str(where)


_TEXT_LENGTHS = {"too_long": ("most", "max_length"), "too_short": ("least", "min_length")}


def _message(error: Mapping[str, Any]) -> str:
    """Pydantic's message for a validation error, in the words it uses for text."""
    ctx = error.get("ctx") or {}
    # The length of an optional text field (Text | None) is checked as any
    # sized value's: "Value should have at most 16 items after validation".
    if isinstance(error.get("input"), str) and error["type"] in _TEXT_LENGTHS:
        bound, key = _TEXT_LENGTHS[error["type"]]
        n = ctx[key]
        return f"String should have at {bound} {n} character{'' if n == 1 else 's'}"
    # A validator's own message, without pydantic's "Value error, " prefix.
    return str(error["msg"]).removeprefix("Value error, ")
