"""``GET /metrics``: the figures of :mod:`dunwell.services.metrics` for Prometheus.

The body is the text exposition format 0.0.4: for each family a ``# HELP``
and a ``# TYPE`` line, then one ``name{label="value"} number`` line per
sample. The route needs no API key (metrics span every site, and a
scraper is not a site): bind the server to an internal address or
firewall the path, or set ``metrics_token`` so that the scraper must send
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse

from dunwell.api.deps import AppDep, bearer_key
from dunwell.security.links import tokens_match
from dunwell.services.metrics import Labels, Metric, gather

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

router = APIRouter()


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, app: AppDep) -> PlainTextResponse:
    _check_token(app.settings.metrics_token, request.headers.get("authorization", ""))
    with app.connect() as conn:
        families = gather(conn, app.clock.now())
    return PlainTextResponse(render(families), media_type=CONTENT_TYPE)


def _check_token(expected: str, authorization: str) -> None:
    if not expected:
        return
    given = bearer_key(authorization) or ""
    # Constant time, so the token cannot be guessed one character at a time.
    if not tokens_match(given, expected):
        raise HTTPException(401, "Missing or wrong metrics token", {"WWW-Authenticate": "Bearer"})


def render(families: list[Metric]) -> str:
    """The families in the text exposition format, ending with a newline."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        lines.extend(
            f"{family.name}{_labels(labels)} {_number(value)}" for labels, value in family.samples
        )
    return "\n".join(lines) + "\n"


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape_label(value)}"' for key, value in labels.items())
    return "{" + inner + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value):
        return str(int(value))
    return repr(value)
