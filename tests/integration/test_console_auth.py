"""Dashboard sign-in, sessions, roles and CSRF, through the real application."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dunwell.bootstrap import App
from dunwell.clock import FixedClock
from dunwell.services.console_users import MAX_FAILED_SIGN_INS
from dunwell.store import tables
from tests.integration.console_helpers import (
    PASSWORD,
    add_staff,
    assert_refused_for_the_role,
    session_csrf,
    sign_in,
    signed_in_as,
)
from tests.integration.factories import Shop


def test_sign_in_opens_a_session_and_only_a_hash_is_stored(
    app: App, shop: Shop, client: TestClient
) -> None:
    email = add_staff(app, shop.site_id, "owner")
    answer = sign_in(client, email)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard"
    cookie = client.cookies.get("dunwell_console")
    assert cookie
    assert "httponly" in answer.headers["set-cookie"].lower()
    assert "samesite=lax" in answer.headers["set-cookie"].lower()
    with app.connect() as conn:
        stored = conn.execute(select(tables.console_sessions.c.token_hash)).scalars().all()
        password_hash = conn.execute(select(tables.console_users.c.password_hash)).scalar_one()
    assert cookie not in stored and len(stored) == 1
    assert PASSWORD not in password_hash and password_hash.startswith("scrypt$")
    users = client.get("/dashboard/users")
    assert users.status_code == 200
    assert email in users.text


def test_pages_send_a_stranger_to_sign_in_and_back(shop: Shop, client: TestClient) -> None:
    answer = client.get("/dashboard/users?x=1", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/sign-in?next=/dashboard/users%3Fx%3D1"


def test_wrong_password_and_unknown_address_read_the_same(
    app: App, shop: Shop, client: TestClient
) -> None:
    email = add_staff(app, shop.site_id, "owner")
    wrong = sign_in(client, email, "not the password")
    unknown = sign_in(client, "nobody@nowhere.test", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match" in wrong.text and "do not match" in unknown.text
    assert client.cookies.get("dunwell_console") is None


def test_repeated_wrong_passwords_lock_the_account_for_a_while(
    app: App, shop: Shop, client: TestClient, clock: FixedClock
) -> None:
    email = add_staff(app, shop.site_id, "owner")
    for _ in range(MAX_FAILED_SIGN_INS):
        assert sign_in(client, email, "guess guess guess").status_code == 401
    locked = sign_in(client, email)
    assert locked.status_code == 401
    assert "locked" in locked.text
    clock.set(clock.now() + timedelta(minutes=16))
    assert sign_in(client, email).status_code == 303


def test_sign_in_form_needs_its_own_token(app: App, shop: Shop, client: TestClient) -> None:
    email = add_staff(app, shop.site_id, "owner")
    forged = client.post(
        "/dashboard/sign-in",
        data={"csrf": "x.1.y", "email": email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert client.cookies.get("dunwell_console") is None


def test_next_never_leaves_the_dashboard(app: App, shop: Shop, client: TestClient) -> None:
    email = add_staff(app, shop.site_id, "owner")
    for target in ("https://evil.test/", "//evil.test/x", "/dashboard\\@evil.test"):
        answer = sign_in(client, email, next=target)
        assert answer.headers["location"] == "/dashboard", target


def test_a_form_without_the_session_token_changes_nothing(
    app: App, shop: Shop, client: TestClient
) -> None:
    token = signed_in_as(client, app, shop.site_id, "owner")
    form = {"email": "new@x.test", "name": "New", "role": "support", "password": PASSWORD}
    refused = client.post("/dashboard/users", data={**form, "csrf": "forged"})
    assert refused.status_code == 403
    assert "not sent from your current session" in refused.text
    assert token == session_csrf(client)
    accepted = client.post("/dashboard/users", data={**form, "csrf": token})
    assert accepted.status_code == 200
    with app.connect() as conn:
        emails = set(conn.execute(select(tables.console_users.c.email)).scalars())
    assert "new@x.test" in emails


@pytest.mark.parametrize("role", ["configuration", "analytics", "support"])
def test_roles_without_user_management_are_refused_by_the_server(
    app: App, shop: Shop, client: TestClient, role: str
) -> None:
    owner_client = TestClient(client.app)
    owner_token = signed_in_as(owner_client, app, shop.site_id, "owner")
    own_token = signed_in_as(client, app, shop.site_id, role)
    page = client.get("/dashboard/users")
    assert page.status_code == 403
    assert f"Your role ({role})" in page.text
    assert "does not allow this" in page.text
    form = {"email": "x@x.test", "role": "owner", "password": PASSWORD}
    # With the session's own token, only the role check can refuse.
    posted = client.post("/dashboard/users", data={**form, "csrf": own_token})
    assert_refused_for_the_role(posted)
    # The role check comes first: another session's token gets the role's 403,
    # not the expired-form one.
    posted = client.post("/dashboard/users", data={**form, "csrf": owner_token})
    assert posted.status_code == 403
    assert "does not allow this" in posted.text
    with app.connect() as conn:
        count = len(conn.execute(select(tables.console_users.c.id)).all())
    assert count == 2


def test_sign_out_ends_the_session_on_the_server(app: App, shop: Shop, client: TestClient) -> None:
    token = signed_in_as(client, app, shop.site_id, "owner")
    cookie = client.cookies.get("dunwell_console")
    assert cookie
    replay = TestClient(client.app, cookies={"dunwell_console": cookie})
    assert replay.get("/dashboard/users", follow_redirects=False).status_code == 200
    signed_out = client.post("/dashboard/sign-out", data={"csrf": token}, follow_redirects=False)
    assert signed_out.status_code == 303
    assert replay.get("/dashboard/users", follow_redirects=False).status_code == 303


def test_a_sign_out_posted_by_another_page_changes_nothing(
    app: App, shop: Shop, client: TestClient
) -> None:
    # Without the form token, another site could sign a user out by posting
    # here: neither the session nor the browser's cookie may go.
    signed_in_as(client, app, shop.site_id, "owner")
    for form in ({}, {"csrf": "forged"}):
        answer = client.post("/dashboard/sign-out", data=form, follow_redirects=False)
        assert answer.status_code == 303
        assert "set-cookie" not in answer.headers
        assert client.get("/dashboard/users", follow_redirects=False).status_code == 200


def test_changing_a_role_signs_that_user_out(app: App, shop: Shop, client: TestClient) -> None:
    token = signed_in_as(client, app, shop.site_id, "owner")
    other = TestClient(client.app)
    signed_in_as(other, app, shop.site_id, "configuration")
    with app.connect() as conn:
        other_id = conn.execute(
            select(tables.console_users.c.id).where(tables.console_users.c.role == "configuration")
        ).scalar_one()
    changed = client.post(
        f"/dashboard/users/{other_id}/role",
        data={"csrf": token, "role": "support"},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    assert other.get("/dashboard", follow_redirects=False).status_code == 303
    assert other.get("/dashboard/users", follow_redirects=False).status_code == 303


def test_the_last_owner_cannot_be_demoted(app: App, shop: Shop, client: TestClient) -> None:
    token = signed_in_as(client, app, shop.site_id, "owner")
    with app.connect() as conn:
        owner_id = conn.execute(select(tables.console_users.c.id)).scalar_one()
    answer = client.post(
        f"/dashboard/users/{owner_id}/role", data={"csrf": token, "role": "support"}
    )
    assert answer.status_code == 422
    assert "at least one owner" in answer.text


def test_a_session_never_reaches_another_site(app: App, shop: Shop, client: TestClient) -> None:
    other_shop = Shop.create(app, slug="other")
    add_staff(app, other_shop.site_id, "owner", "boss@other.test")
    signed_in_as(client, app, shop.site_id, "owner")
    page = client.get("/dashboard/users")
    assert page.status_code == 200 and "owner@site" in page.text
    assert "boss@other.test" not in page.text
