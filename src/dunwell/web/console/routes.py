"""Every dashboard route, gathered into one router for the application."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse, Response

from dunwell.web.console import (
    routes_analytics,
    routes_customers,
    routes_inbox,
    routes_overview,
    routes_policies,
    routes_sandbox,
    routes_settings,
    routes_sign_in,
    routes_templates,
    routes_users,
)
from dunwell.web.render import STATIC

router = APIRouter(include_in_schema=False)
for module in (
    routes_sign_in,
    routes_overview,
    routes_policies,
    routes_templates,
    routes_settings,
    routes_inbox,
    routes_customers,
    routes_analytics,
    routes_users,
    routes_sandbox,
):
    router.include_router(module.router)

_STATIC = STATIC / "console"
_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}


@router.get("/dashboard/static/{name}")
def static_file(name: str) -> Response:
    path = _STATIC / name
    # Only files that sit directly in the folder: no "..", no subfolders.
    if path.parent != _STATIC or not path.is_file() or path.suffix not in _TYPES:
        return Response(status_code=404)
    return FileResponse(
        path, media_type=_TYPES[path.suffix], headers={"Cache-Control": "public, max-age=300"}
    )


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/dashboard", status_code=303)
