"""Every dashboard route, gathered into one router for the application."""

from __future__ import annotations

from pathlib import PurePath

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from dunwell.web.console import (
    routes_analytics,
    routes_customers,
    routes_inbox,
    routes_messages,
    routes_overview,
    routes_policies,
    routes_sandbox,
    routes_settings,
    routes_sign_in,
    routes_templates,
    routes_users,
)
from dunwell.web.render import STATIC
from dunwell.web.static_files import serve_static

router = APIRouter(include_in_schema=False)
for module in (
    routes_sign_in,
    routes_overview,
    routes_policies,
    routes_templates,
    routes_settings,
    routes_inbox,
    routes_customers,
    routes_messages,
    routes_analytics,
    routes_users,
    routes_sandbox,
):
    router.include_router(module.router)

_STATIC = STATIC / "console"
_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@router.get("/dashboard/static/{name}")
def static_file(name: str) -> Response:
    # Any file of these kinds in the folder: the dashboard's are its own, not a fixed list.
    return serve_static(_STATIC, name, _TYPES.get(PurePath(name).suffix), max_age=300)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=303)
