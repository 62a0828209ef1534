"""Dashboard: the site's users and their roles (owners only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from dunwell.domain.roles import PERMISSIONS, Permission, Role
from dunwell.services.console_users import (
    create_user,
    disable_user,
    list_users,
    set_password,
    set_role,
)
from dunwell.services.errors import NotFound, ServiceError
from dunwell.web.console.desk import Desk, actor, viewer

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Desk, Depends(viewer(Permission.MANAGE_USERS))]
Actor = Annotated[Desk, Depends(actor(Permission.MANAGE_USERS))]


def _page(desk: Desk, errors: list[str] | None = None, status: int = 200) -> Response:
    with desk.app.connect() as conn:
        users = list_users(conn, desk.site_id)
    context = {
        "active": "/dashboard/users",
        "users": users,
        "roles": list(Role),
        "permissions": {role: sorted(p.value for p in PERMISSIONS[role]) for role in Role},
        "errors": errors or [],
        "form": desk.form,
    }
    return desk.page("users.html", context, status)


@router.get("/dashboard/users")
def users_page(desk: Viewer) -> Response:
    return _page(desk)


@router.post("/dashboard/users")
def add_user(desk: Actor) -> Response:
    form = desk.form
    try:
        with desk.app.begin() as conn:
            create_user(
                conn,
                desk.site_id,
                form.get("email", ""),
                form.get("name", ""),
                form.get("role", ""),
                form.get("password", ""),
                desk.real_now,
            )
    except ServiceError as error:
        return _page(desk, [str(error)], 422)
    return desk.redirect("/dashboard/users", f"Added {form.get('email', '').strip().lower()}.")


@router.post("/dashboard/users/{user_id}/{change}")
def change_user(user_id: int, change: str, desk: Actor) -> Response:
    form = desk.form
    try:
        with desk.app.begin() as conn:
            if change == "role":
                set_role(conn, desk.site_id, user_id, form.get("role", ""), desk.real_now)
                notice = "Role changed."
            elif change == "password":
                set_password(conn, desk.site_id, user_id, form.get("password", ""), desk.real_now)
                notice = "Password changed; the user was signed out everywhere."
            elif change == "disable":
                disable_user(conn, desk.site_id, user_id, desk.real_now)
                notice = "User disabled."
            else:
                return _page(desk, [f"unknown change {change!r}"], 404)
    except NotFound as error:
        return _page(desk, [str(error)], 404)
    except ServiceError as error:
        return _page(desk, [str(error)], 422)
    return desk.redirect("/dashboard/users", notice)
