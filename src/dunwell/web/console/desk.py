"""One dashboard request: who is signed in, what they may do, and the page to render.

Every route takes a ``Desk`` from ``viewer(permission)`` (pages) or
``actor(permission)`` (forms). Both refuse on the server: no session sends
the browser to sign in, a role without the permission gets a 403 page, a
path whose id is past the 64-bit range gets a 404 page, and a form without
this session's CSRF token gets a 403 before anything runs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dunwell.bootstrap import App
from dunwell.domain.roles import Permission, allows
from dunwell.security.keys import derive_key
from dunwell.security.links import tokens_match
from dunwell.services.console_sessions import Staff, find_session, touch_due, touch_session
from dunwell.services.errors import Conflict, NotFound, ServiceError
from dunwell.services.ids import out_of_range
from dunwell.web.console.views import console_page, message_page

COOKIE = "dunwell_console"
FLASH_COOKIE = "dunwell_notice"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
#: Posted fields longer than this are cut (template bodies are the longest).
MAX_FIELD = 100_000


class SignInNeeded(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class NotAllowed(Exception):
    def __init__(self, staff: Staff, permission: Permission) -> None:
        self.staff = staff
        self.permission = permission


class BadFormToken(Exception):
    pass


class NoSuchId(Exception):
    """A path names an id no row can have."""


@dataclass
class Desk:
    request: Request
    app: App
    staff: Staff
    token: str
    real_now: datetime
    form: Mapping[str, str] = field(default_factory=dict)
    #: Every value of repeated fields (checkboxes, multi-selects).
    lists: Mapping[str, list[str]] = field(default_factory=dict)

    @property
    def site_id(self) -> int:
        return self.staff.site_id

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.staff.site_zone)

    @property
    def csrf(self) -> str:
        return csrf_token(self.app.secret_key, self.token)

    def can(self, permission: Permission | str) -> bool:
        return allows(self.staff.role, Permission(permission))

    def page(
        self, name: str, context: Mapping[str, Any] | None = None, status: int = 200
    ) -> HTMLResponse:
        """Render ``console/<name>`` inside the dashboard layout."""
        notice = self.request.cookies.get(FLASH_COOKIE, "")
        response = console_page(name, {**(context or {}), "desk": self, "notice": notice}, status)
        if notice:
            response.delete_cookie(FLASH_COOKIE, path="/dashboard")
        return response

    def fragment(
        self, name: str, context: Mapping[str, Any] | None = None, status: int = 200
    ) -> HTMLResponse:
        """Render a partial (live previews) without the layout."""
        return console_page(name, {**(context or {}), "desk": self}, status)

    def redirect(self, path: str, notice: str = "") -> RedirectResponse:
        """After a post: 303 to a page, with a one-time notice shown there."""
        response = RedirectResponse(path, status_code=303)
        if notice:
            response.set_cookie(
                FLASH_COOKIE,
                quote(notice[:300]),
                path="/dashboard",
                httponly=True,
                samesite="strict",
                secure=self.app.settings.public_url.startswith("https:"),
            )
        return response


def refusal_status(error: ServiceError) -> int:
    """The HTTP status of a page that shows a refused action again: 404, 409 or 422."""
    return 404 if isinstance(error, NotFound) else 409 if isinstance(error, Conflict) else 422


def csrf_token(secret_key: str, session_token: str) -> str:
    """This session's form token: an HMAC of the session, so nothing more is stored."""
    key = derive_key(secret_key, "dunwell/console-csrf/v1")
    return hmac.new(key, session_token.encode(), hashlib.sha256).hexdigest()


def _app(request: Request) -> App:
    app: App = request.app.state.dunwell
    return app


def _open_desk(request: Request, permission: Permission) -> Desk:
    app = _app(request)
    token = request.cookies.get(COOKIE, "")
    now = app.clock.now()
    staff = None
    if token:
        # A page view only reads; the session's expiry is pushed on in a
        # short write every few minutes, not on every request.
        with app.connect() as conn:
            staff = find_session(conn, token, now)
        if staff is not None and touch_due(staff, now):
            with app.begin() as conn:
                touch_session(conn, staff, now)
    if staff is None:
        raise SignInNeeded(_path_with_query(request))
    if not allows(staff.role, permission):
        raise NotAllowed(staff, permission)
    # Checked here, once for every route with an id in its path: such an id
    # would reach the database, whose driver fails on it rather than finding
    # nothing. Only ASCII digits count; other text is the route's to refuse.
    if any(out_of_range(value) for value in request.path_params.values()):
        raise NoSuchId()
    return Desk(request, app, staff, token, now)


def viewer(permission: Permission) -> Callable[[Request], Desk]:
    """A page: a signed-in user whose role has ``permission``."""

    def dependency(request: Request) -> Desk:
        return _open_desk(request, permission)

    return dependency


async def posted_form(request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The posted text fields: the last value of each, and every value of each."""
    form = await request.form()
    try:
        single: dict[str, str] = {}
        lists: dict[str, list[str]] = {}
        for name, value in form.multi_items():
            if isinstance(value, str):
                single[name] = value[:MAX_FIELD]
                lists.setdefault(name, []).append(value[:MAX_FIELD])
        return single, lists
    finally:
        await form.close()


PostedForm = Annotated[tuple[dict[str, str], dict[str, list[str]]], Depends(posted_form)]


def actor(
    permission: Permission,
) -> Callable[[Request, tuple[dict[str, str], dict[str, list[str]]]], Desk]:
    """A form post: as ``viewer``, and the form must carry this session's token."""

    def dependency(request: Request, posted: PostedForm) -> Desk:
        desk = _open_desk(request, permission)
        single, lists = posted
        sent = single.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
        if not tokens_match(sent, desk.csrf):
            raise BadFormToken()
        desk.form = single
        desk.lists = lists
        return desk

    return dependency


def _path_with_query(request: Request) -> str:
    path = request.url.path
    return f"{path}?{request.url.query}" if request.url.query and request.method == "GET" else path


def install(api: FastAPI) -> None:
    """Turn the refusals into pages: sign in, 403 for the role, 403 for the form."""

    @api.exception_handler(SignInNeeded)
    def _sign_in(request: Request, error: SignInNeeded) -> Response:
        return RedirectResponse(f"/dashboard/sign-in?next={quote(error.next_path)}", 303)

    @api.exception_handler(NotAllowed)
    def _not_allowed(request: Request, error: NotAllowed) -> Response:
        return message_page(
            "Not allowed",
            f"Your role ({error.staff.role.value}) does not allow this "
            f"({error.permission.value.replace('_', ' ')}). Ask an owner of "
            f"{error.staff.site_name} if you need it.",
            403,
        )

    @api.exception_handler(NoSuchId)
    def _no_such_id(request: Request, error: NoSuchId) -> Response:
        return message_page(
            "Not found",
            "Nothing has the number in this address: it is larger than any id can be.",
            404,
        )

    @api.exception_handler(BadFormToken)
    def _bad_form(request: Request, error: BadFormToken) -> Response:
        return message_page(
            "Form expired",
            "This form was not sent from your current session. Go back, reload the page "
            "and try again.",
            403,
        )
