"""One site's API key can never see or change another site's objects, on any route.

The routes are read from the application itself, so a route added later is
covered without editing this file: a route whose path names an object
(``{..._id}``) is called with site B's key and each of site A's ids, and
must answer 404 and change nothing in the database. A ``/v1`` route without
an id must be listed in :data:`NO_ID_ROUTES`, so adding one is a conscious
choice; the listed ``GET`` routes are checked not to show site A's data.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Table, insert, select

from dunwell.api.app import create_app
from dunwell.bootstrap import App
from dunwell.services import api_keys
from dunwell.services.conversations import add_turn, current_conversation
from dunwell.store import tables
from tests.integration.factories import INSUFFICIENT, Shop

#: ``/v1`` routes that name no object of a site by id.
NO_ID_ROUTES = {
    ("GET", "/v1/clock"),
    ("GET", "/v1/concierge/figures"),
    ("GET", "/v1/conversations"),
    ("POST", "/v1/clock/advance"),
    ("GET", "/v1/customers"),
    ("POST", "/v1/customers"),
    ("GET", "/v1/dunning_policies/{kind}/versions"),
    ("POST", "/v1/dunning_policies/{kind}"),
    ("GET", "/v1/events"),
    ("GET", "/v1/invoices"),
    ("GET", "/v1/messages"),
    ("POST", "/v1/phones/import"),
    ("GET", "/v1/products"),
    ("POST", "/v1/products"),
    ("GET", "/v1/sandbox/mailbox"),
    ("GET", "/v1/sandbox/phone"),
    ("POST", "/v1/sandbox/phone/reply"),
    ("GET", "/v1/settings/channels/{channel}"),
    ("GET", "/v1/settings/concierge"),
    ("PATCH", "/v1/settings/concierge"),
    ("PUT", "/v1/settings/channels/{channel}"),
    ("GET", "/v1/settings/sms"),
    ("PATCH", "/v1/settings/sms"),
    ("GET", "/v1/settings/stripe"),
    ("PUT", "/v1/settings/stripe"),
    ("GET", "/v1/site"),
    ("PATCH", "/v1/site"),
    ("GET", "/v1/sms/credits"),
    ("POST", "/v1/sms/credits/top-up"),
    ("GET", "/v1/subscriptions"),
    ("POST", "/v1/subscriptions"),
    ("GET", "/v1/templates"),
    ("PUT", "/v1/templates/{name}/{channel}/{locale}"),
    ("DELETE", "/v1/templates/{name}"),
    ("POST", "/v1/templates/{name}/preview"),
    ("POST", "/v1/templates/{name}/test"),
    ("GET", "/v1/webhook_endpoints"),
    ("POST", "/v1/webhook_endpoints"),
}

#: The table holding the objects each id parameter names.
ID_TABLES: dict[str, Table] = {
    "conversation_id": tables.conversations,
    "customer_id": tables.customers,
    "invoice_id": tables.invoices,
    "message_id": tables.outbox,
    "payment_method_id": tables.payment_methods,
    "product_id": tables.products,
    "subscription_id": tables.subscriptions,
    "endpoint_id": tables.webhook_endpoints,
    "delivery_id": tables.webhook_deliveries,
}

#: Values for path parameters that are neither ids nor enumerated in the schema.
SAMPLE_VALUES = {"name": "payment_declined", "locale": "en"}

A_MARKERS = ("alice@site-a.test", "Site A Inc.")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    route: APIRoute

    @property
    def id_params(self) -> list[str]:
        return [p.name for p in self.route.dependant.path_params if _is_id(p.name)]


def _is_id(name: str) -> bool:
    return name == "id" or name.endswith("_id")


def v1_endpoints(api: FastAPI) -> list[Endpoint]:
    found = []
    for context in iter_route_contexts(api.routes):
        route, path = context.original_route, context.path
        if isinstance(route, APIRoute) and path and path.startswith("/v1/"):
            for method in sorted((context.methods or set()) - {"HEAD"}):
                found.append(Endpoint(method, path, route))
    return found


@dataclass
class TwoSites:
    app: App
    a: Shop
    b: Shop
    b_headers: dict[str, str]

    def a_ids(self, table: Table) -> list[int]:
        with self.app.connect() as conn:
            rows = conn.execute(select(table.c.id).where(table.c.site_id == self.a.site_id))
            return [row.id for row in rows]


@pytest.fixture
def two_sites(app: App) -> TwoSites:
    """Site A with one object of each kind; site B with an admin key and nothing else."""
    a = Shop.create(app, slug="site-a")
    with app.begin() as conn:
        conn.execute(
            tables.sites.update().where(tables.sites.c.id == a.site_id).values(name="Site A Inc.")
        )
    customer_id = a.customer(INSUFFICIENT, email="alice@site-a.test", first_name="Alice")
    a.subscribe(customer_id)
    a.run()
    _seed_webhooks(app, a)
    _seed_conversation(app, a, customer_id)
    b = Shop.create(app, slug="site-b")
    with app.begin() as conn:
        key = api_keys.create_key(conn, b.site_id, "b admin", "admin", b.now)
    return TwoSites(app, a, b, {"Authorization": f"Bearer {key}"})


def _seed_webhooks(app: App, a: Shop) -> None:
    # Rows written directly: the test needs objects owned by site A, not the
    # endpoint service's URL checks.
    with app.begin() as conn:
        endpoint_id = conn.execute(
            insert(tables.webhook_endpoints)
            .values(
                site_id=a.site_id,
                url="https://hooks.site-a.test/dunwell",
                secret="sealed",
                events=[],
                enabled=True,
                created_at=a.now,
                updated_at=a.now,
            )
            .returning(tables.webhook_endpoints.c.id)
        ).scalar_one()
        event = conn.execute(
            select(tables.events.c.id, tables.events.c.type).where(
                tables.events.c.site_id == a.site_id
            )
        ).first()
        assert event is not None
        conn.execute(
            insert(tables.webhook_deliveries).values(
                site_id=a.site_id,
                endpoint_id=endpoint_id,
                event_id=event.id,
                event_type=event.type,
                payload={},
                status="failed",
                attempts=1,
                next_attempt_at=a.now,
                created_at=a.now,
                updated_at=a.now,
            )
        )


def _seed_conversation(app: App, a: Shop, customer_id: int) -> None:
    with app.begin() as conn:
        conversation = current_conversation(conn, a.site_id, "+14155552671", customer_id, a.now)
        add_turn(conn, conversation, "inbound", "customer", "skip my order", a.now)


@pytest.fixture
def api(app: App) -> FastAPI:
    return create_app(app)


def snapshot(app: App) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to show that a request changed nothing."""
    with app.connect() as conn:
        return {
            table.name: [
                tuple(row) for row in conn.execute(select(table).order_by(*table.primary_key))
            ]
            for table in tables.metadata.sorted_tables
        }


def test_every_v1_route_names_an_object_by_id_or_is_listed_as_having_none(api: FastAPI) -> None:
    unlisted = [
        f"{e.method} {e.path}"
        for e in v1_endpoints(api)
        if not e.id_params and (e.method, e.path) not in NO_ID_ROUTES
    ]
    assert unlisted == [], "add these to NO_ID_ROUTES, or give them an id parameter"


def test_every_id_parameter_names_a_kind_of_object_this_test_knows(api: FastAPI) -> None:
    unknown = {p for e in v1_endpoints(api) for p in e.id_params if p not in ID_TABLES}
    assert unknown == set(), "add these parameters to ID_TABLES and give site A such an object"


def test_another_sites_key_gets_404_for_every_route_with_an_id_and_changes_nothing(
    api: FastAPI, two_sites: TwoSites
) -> None:
    document = api.openapi()
    failures = []
    checked = 0
    with TestClient(api) as client:
        for endpoint in v1_endpoints(api):
            if not endpoint.id_params:
                continue
            for url, body in requests_for(endpoint, document, two_sites):
                before = snapshot(two_sites.app)
                response = client.request(
                    endpoint.method, url, json=body, headers=two_sites.b_headers
                )
                checked += 1
                if response.status_code != 404:
                    failures.append(f"{endpoint.method} {url}: {response.status_code}")
                elif snapshot(two_sites.app) != before:
                    failures.append(f"{endpoint.method} {url}: 404 but the database changed")
    assert failures == []
    assert checked >= 20


def test_another_sites_key_sees_none_of_its_objects_in_lists(
    api: FastAPI, two_sites: TwoSites
) -> None:
    """Lists show only the caller's objects, even when filtered by another site's id."""
    leaks = []
    with TestClient(api) as client:
        for endpoint in v1_endpoints(api):
            if endpoint.method != "GET" or endpoint.id_params or "{" in endpoint.path:
                continue
            query = {
                p.name: two_sites.a_ids(ID_TABLES[p.name])[0]
                for p in endpoint.route.dependant.query_params
                if p.name in ID_TABLES
            }
            response = client.get(endpoint.path, params=query, headers=two_sites.b_headers)
            assert response.status_code == 200, (endpoint.path, response.text)
            leaks += [f"{endpoint.path}: {m}" for m in A_MARKERS if m in response.text]
    assert leaks == []


def test_another_sites_key_cannot_use_its_customer_or_products_in_a_new_subscription(
    api: FastAPI, two_sites: TwoSites
) -> None:
    a, b = two_sites.a, two_sites.b
    before = snapshot(two_sites.app)["subscriptions"]
    with TestClient(api) as client:
        foreign_customer = client.post(
            "/v1/subscriptions",
            json={
                "customer_id": two_sites.a_ids(tables.customers)[0],
                "items": [{"product_id": b.product_id}],
            },
            headers=two_sites.b_headers,
        )
        foreign_product = client.post(
            "/v1/subscriptions",
            json={"customer_id": b.customer(), "items": [{"product_id": a.product_id}]},
            headers=two_sites.b_headers,
        )
    assert foreign_customer.status_code == 404
    assert foreign_product.status_code == 422
    assert foreign_product.json()["field"] == "items[0].product_id"
    assert snapshot(two_sites.app)["subscriptions"] == before


def requests_for(
    endpoint: Endpoint, document: dict[str, Any], sites: TwoSites
) -> Iterator[tuple[str, Any]]:
    """Each URL to try (every id of site A, every enumerated value) with a valid body."""
    operation = document["paths"].get(endpoint.path, {}).get(endpoint.method.lower(), {})
    choices: dict[str, list[Any]] = {}
    for param in endpoint.route.dependant.path_params:
        if _is_id(param.name):
            ids = sites.a_ids(ID_TABLES[param.name])
            assert ids, f"site A has no {ID_TABLES[param.name].name} row to test with"
            choices[param.name] = ids[:1]
        else:
            choices[param.name] = _enumerated(operation, param.name) or [SAMPLE_VALUES[param.name]]
    body = _body(operation, document)
    names = list(choices)
    for values in itertools.product(*(choices[n] for n in names)):
        yield endpoint.path.format(**dict(zip(names, values, strict=True))), body


def _enumerated(operation: dict[str, Any], name: str) -> list[Any]:
    for param in operation.get("parameters", []):
        if param["name"] == name:
            schema = param.get("schema", {})
            return list(schema.get("enum", []))
    return []


def _body(operation: dict[str, Any], document: dict[str, Any]) -> Any:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    return example(content["application/json"]["schema"], document)


def example(schema: dict[str, Any], document: dict[str, Any]) -> Any:
    """A small value valid for ``schema``: the required fields only."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return example(document["components"]["schemas"][name], document)
    for key in ("examples", "enum"):
        if schema.get(key):
            return schema[key][0]
    if "default" in schema:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return example(options[0], document)
    kind = schema.get("type")
    if kind == "object":
        required = set(schema.get("required", []))
        properties = schema.get("properties", {})
        return {k: example(v, document) for k, v in properties.items() if k in required}
    if kind == "array":
        return [example(schema.get("items", {}), document)] * max(schema.get("minItems", 0), 1)
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2026-03-20T09:00:00Z"
        return "x" * max(schema.get("minLength", 1), 1)
    if kind in ("integer", "number"):
        return max(schema.get("minimum", 1), 1)
    if kind == "boolean":
        return False
    return None
