"""Dashboard accounts: changes end sessions on the spot, within the user's site only."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from dunwell.bootstrap import App
from dunwell.services.console_sessions import find_session, open_session
from dunwell.services.console_users import (
    MAX_FAILED_SIGN_INS,
    check_sign_in,
    create_user,
    set_password,
    set_role,
)
from dunwell.store import tables
from tests.integration.factories import Shop

PASSWORD = "correct horse battery"


def _user(app: App, site_id: int, email: str, role: str = "owner") -> int:
    with app.begin() as conn:
        return create_user(conn, site_id, email, "", role, PASSWORD, app.clock.now())


def test_a_password_reset_lifts_the_lockout_and_ends_the_sessions(app: App, shop: Shop) -> None:
    now = app.clock.now()
    user = _user(app, shop.site_id, "ana@shop.test")
    with app.begin() as conn:
        token = open_session(conn, shop.site_id, user, now)
        for _ in range(MAX_FAILED_SIGN_INS):
            assert check_sign_in(conn, "ana@shop.test", "wrong wrong", now).refused
        assert check_sign_in(conn, "ana@shop.test", PASSWORD, now).refused == "locked"
        set_password(conn, shop.site_id, user, "a brand new password", now)
    with app.begin() as conn:
        assert find_session(conn, token, now + timedelta(seconds=1)) is None
        opened = check_sign_in(conn, "ana@shop.test", "a brand new password", now)
    assert opened.refused is None and [u.id for u in opened.accounts] == [user]


def test_a_role_change_ends_only_that_users_sessions(app: App, shop: Shop) -> None:
    now = app.clock.now()
    _user(app, shop.site_id, "boss@shop.test")
    clerk = _user(app, shop.site_id, "clerk@shop.test", "support")
    boss_of_other = _user(app, Shop.create(app, slug="other").site_id, "x@other.test")
    with app.begin() as conn:
        clerk_token = open_session(conn, shop.site_id, clerk, now)
        other_site = conn.execute(
            select(tables.console_users.c.site_id).where(tables.console_users.c.id == boss_of_other)
        ).scalar_one()
        other_token = open_session(conn, other_site, boss_of_other, now)
        set_role(conn, shop.site_id, clerk, "analytics", now)
    with app.connect() as conn:
        assert find_session(conn, clerk_token, now) is None
        assert find_session(conn, other_token, now) is not None
        ended = conn.execute(
            select(tables.console_sessions.c.user_id).where(
                tables.console_sessions.c.ended_at.is_not(None)
            )
        ).scalars()
        assert list(ended) == [clerk]
