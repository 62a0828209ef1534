"""Signing in and out of the dashboard.

The sign-in form carries a signed form token (no session exists yet), so a
page elsewhere cannot sign a browser into an account of its choosing. A
new random session token is issued at every sign-in. An address with
accounts on several sites picks the site after the password is checked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from dunwell.security.links import tokens_match
from dunwell.services.console_sessions import end_session, open_session
from dunwell.services.console_users import check_sign_in
from dunwell.web.console.desk import COOKIE, CSRF_FIELD, PostedForm, csrf_token
from dunwell.web.console.views import console_page
from dunwell.web.csrf import FormSigner

router = APIRouter(include_in_schema=False)
_PURPOSE = "console:sign-in"
_WRONG = "That email and password do not match an account."
_LOCKED = "Too many wrong passwords. This account is locked for 15 minutes."


def _safe_next(value: str) -> str:
    """Only a path on this dashboard: never another site (open redirect)."""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/dashboard") or "\\" in value:
        return "/dashboard"
    return value


def _form(
    request: Request,
    next_path: str,
    error: str = "",
    email: str = "",
    sites: list[tuple[str, str]] | None = None,
    status: int = 200,
) -> HTMLResponse:
    app = request.app.state.dunwell
    token = FormSigner(app.secret_key).issue("", _PURPOSE, app.clock.now())
    context = {
        "csrf_value": token,
        "next": _safe_next(next_path),
        "error": error,
        "email": email,
        "sites": sites or [],
    }
    return console_page("sign_in.html", context, status)


@router.get("/dashboard/sign-in")
def sign_in_page(request: Request, next: str = "/dashboard") -> Response:
    return _form(request, next)


@router.post("/dashboard/sign-in")
def sign_in(request: Request, posted: PostedForm) -> Response:
    form, _ = posted
    app = request.app.state.dunwell
    now = app.clock.now()
    next_path = _safe_next(form.get("next", "/dashboard"))
    email = form.get("email", "")[:320]
    if not FormSigner(app.secret_key).check(form.get(CSRF_FIELD, ""), "", _PURPOSE, now):
        return _form(
            request, next_path, "The form expired. Please sign in again.", email, status=403
        )
    with app.begin() as conn:
        result = check_sign_in(
            conn, email, form.get("password", "")[:200], now, form.get("site") or None
        )
    if result.refused:
        message = _LOCKED if result.refused == "locked" else _WRONG
        return _form(request, next_path, message, email, status=401)
    accounts = result.accounts
    if len(accounts) > 1:
        choices = [(a.site_slug, a.site_name) for a in accounts]
        return _form(request, next_path, "Choose the site to open.", email, choices, status=200)
    account = accounts[0]
    with app.begin() as conn:
        token = open_session(conn, account.site_id, account.id, now)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=app.settings.public_url.startswith("https:"),
        path="/",
    )
    return response


@router.post("/dashboard/sign-out")
def sign_out(request: Request, posted: PostedForm) -> Response:
    """Ends the session; the form token is checked so other pages cannot sign you out."""
    form, _ = posted
    app = request.app.state.dunwell
    token = request.cookies.get(COOKIE, "")
    if token and not tokens_match(form.get(CSRF_FIELD, ""), csrf_token(app.secret_key, token)):
        # Another page posted here: the session and its cookie stay.
        return RedirectResponse("/dashboard", status_code=303)
    if token:
        with app.begin() as conn:
            end_session(conn, token, app.clock.now())
    response = RedirectResponse("/dashboard/sign-in", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
