"""Signing into the dashboard from a TestClient, as a browser would."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient

from dunwell.bootstrap import App
from dunwell.services.console_users import create_user

PASSWORD = "correct horse battery"
_SIGN_IN_TOKEN = re.compile(r'name="csrf" value="([^"]+)"')
_SESSION_TOKEN = re.compile(r'data-csrf="([^"]+)"')


def add_staff(app: App, site_id: int, role: str, email: str | None = None) -> str:
    """A user of ``role`` on the site; returns the address (password: PASSWORD)."""
    address = email or f"{role}@site{site_id}.test"
    with app.begin() as conn:
        create_user(conn, site_id, address, role.title(), role, PASSWORD, app.clock.now())
    return address


def sign_in(client: TestClient, email: str, password: str = PASSWORD, **extra: str) -> Any:
    """Post the sign-in form with the token its page issued; returns the response."""
    page = client.get("/dashboard/sign-in")
    token = _SIGN_IN_TOKEN.search(page.text)
    assert token, page.text
    form = {"csrf": token.group(1), "email": email, "password": password, **extra}
    return client.post("/dashboard/sign-in", data=form, follow_redirects=False)


def signed_in_as(
    client: TestClient, app: App, site_id: int, role: str, email: str | None = None
) -> str:
    """Sign ``client`` in as a new user of ``role``; returns the session's real CSRF token.

    The sign-in must succeed (a 303 to the dashboard), so a test that then
    checks what a page does *not* show is looking at the signed-in page,
    not at the sign-in form. The token is read from ``/dashboard``, which
    every role may open.
    """
    address = add_staff(app, site_id, role, email)
    answer = sign_in(client, address)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/dashboard"
    overview = client.get("/dashboard", follow_redirects=False)
    assert overview.status_code == 200, f"/dashboard answered {overview.status_code}"
    found = _SESSION_TOKEN.search(overview.text)
    assert found, overview.text
    return found.group(1)


def assert_refused_for_the_role(answer: Any) -> None:
    """A 403 from the role check (the NotAllowed page), not from a bad form token."""
    assert answer.status_code == 403, answer.text
    assert "does not allow this" in answer.text, answer.text


def session_csrf(client: TestClient, path: str = "/dashboard/users") -> str:
    """The CSRF token a signed-in page carries (on ``<body data-csrf>``)."""
    page = client.get(path)
    found = _SESSION_TOKEN.search(page.text)
    assert found, f"{path} answered {page.status_code} without a session token"
    return found.group(1)
