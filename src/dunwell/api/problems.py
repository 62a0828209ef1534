"""Errors as RFC 9457 ``application/problem+json``, naming the field at fault."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from dunwell.services.errors import Conflict, InvalidInput, NotFound, ServiceError

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
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
        return problem(400, "Bad request", str(error))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        # Named like the services name fields: items[0].product_id.
        parts = [p for p in first["loc"] if p != "body"]
        field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
        # A validator's own message, without pydantic's "Value error, " prefix.
        detail = str(first["msg"]).removeprefix("Value error, ")
        return problem(422, "Invalid field", detail, field=field)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, error: HTTPException) -> JSONResponse:
        response = problem(error.status_code, str(error.detail), str(error.detail))
        for name, value in (error.headers or {}).items():
            response.headers[name] = value
        return response
