"""A dashboard user of one site can never see or change another site's objects.

The routes are read from the application, so a dashboard route added later
is covered without editing this file: every ``/dashboard`` route whose path
names an object by id is called by site B's owner with each of site A's ids
(and, for ``{action}`` routes, every action), and must answer 404 without
showing site A's data or changing a row. A route with a path parameter
that is not an id must be listed in :data:`NOT_ID_PARAMS` with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Table

from dunwell.api.app import create_app
from dunwell.bootstrap import App
from dunwell.store import tables
from tests.integration.console_helpers import add_staff, signed_in_as
from tests.integration.test_tenant_isolation import TwoSites, snapshot, two_sites  # noqa: F401

#: Parameters that name an object of the site by id, and where its ids are.
ID_PARAMS: dict[str, Table] = {
    "conversation_id": tables.conversations,
    "customer_id": tables.customers,
    "invoice_id": tables.invoices,
    "user_id": tables.console_users,
    "mail_id": tables.sandbox_messages,
    "message_id": tables.outbox,
}
#: Every value a verb-like parameter takes, so each action is tried.
VERBS: dict[str, tuple[str, ...]] = {
    "action": ("collect-now", "stop-collecting", "mark-paid", "reopen"),
    "change": ("role", "password", "disable"),
}
#: Parameters that are not ids: each page looks the value up within the
#: signed-in site only (a policy kind, a template name, a static file).
NOT_ID_PARAMS = {"kind", "name"}


@dataclass(frozen=True)
class Call:
    method: str
    path: str


def dashboard_calls(api: object, ids: dict[str, list[int]]) -> list[Call]:
    calls: list[Call] = []
    for context in iter_route_contexts(api.routes):  # type: ignore[attr-defined]
        route, path = context.original_route, context.path
        if not (isinstance(route, APIRoute) and path and path.startswith("/dashboard")):
            continue
        params = re.findall(r"{(\w+)}", path)
        if not params or set(params) <= NOT_ID_PARAMS:
            continue
        unknown = set(params) - set(ID_PARAMS) - set(VERBS) - NOT_ID_PARAMS
        assert not unknown, f"{path}: is {unknown} an id? list it in ID_PARAMS or NOT_ID_PARAMS"
        for method in sorted((context.methods or set()) - {"HEAD"}):
            for filled in _fill(path, params, ids):
                calls.append(Call(method, filled))
    return calls


def _fill(path: str, params: list[str], ids: dict[str, list[int]]) -> list[str]:
    paths = [path]
    for param in params:
        values = [str(v) for v in ids.get(param, [])] or list(VERBS.get(param, ()))
        assert values, f"site A has no {param} to try on {path}"
        paths = [p.replace(f"{{{param}}}", value) for p in paths for value in values]
    return paths


@pytest.fixture
def site_a_ids(two_sites: TwoSites, app: App) -> dict[str, list[int]]:  # noqa: F811
    add_staff(app, two_sites.a.site_id, "owner", "owner@site-a.test")
    return {name: two_sites.a_ids(table) for name, table in ID_PARAMS.items()}


def test_site_b_gets_404_for_every_object_of_site_a(
    two_sites: TwoSites,  # noqa: F811
    app: App,
    site_a_ids: dict[str, list[int]],
) -> None:
    for name, found in site_a_ids.items():
        assert found, f"the seed gave site A no {name}"
    client = TestClient(create_app(app))
    token = signed_in_as(client, app, two_sites.b.site_id, "owner", "owner@site-b.test")
    calls = dashboard_calls(client.app, site_a_ids)
    assert len(calls) >= 8
    before = snapshot(app)
    for call in calls:
        if call.method == "GET":
            answer = client.get(call.path, follow_redirects=False)
        else:
            form = {"csrf": token, "body": "hello", "role": "owner", "password": "x" * 12}
            answer = client.post(call.path, data=form, follow_redirects=False)
        assert answer.status_code == 404, f"{call.method} {call.path}: {answer.status_code}"
        for secret in ("alice@site-a.test", "Site A Inc.", "owner@site-a.test"):
            assert secret not in answer.text, f"{call.method} {call.path} shows {secret}"
    assert _without_sessions(snapshot(app)) == _without_sessions(before)


def _without_sessions(rows: dict[str, list[tuple[object, ...]]]) -> dict[str, object]:
    """The session row's last-seen time may move on a page view; nothing else may."""
    return {name: value for name, value in rows.items() if name != "console_sessions"}
