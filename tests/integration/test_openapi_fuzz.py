"""Every operation in the OpenAPI document, fuzzed: no input may cause a server error.

Schemathesis generates requests from the schema (valid and invalid ones) and
sends them in process with an admin key, against a SQLite shop that has a
customer in dunning, so generated ids often name real objects. The number
of examples per operation is bounded to keep the run short; the check is
only that nothing answers 5xx (or raises).

The schema is loaded when the module is imported, from an application whose
database is never opened; the module's fixture then points that same
application at a migrated SQLite database. (Schemathesis' fixture-based
loader does not work with this pytest version.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from dunwell.api.app import create_app
from dunwell.bootstrap import App, bootstrap
from dunwell.clock import FixedClock
from dunwell.services import api_keys
from dunwell.settings import Settings
from dunwell.store.db import make_engine
from dunwell.store.migrate import upgrade
from tests.conftest import START
from tests.integration.factories import INSUFFICIENT, Shop

#: Raise with DUNWELL_FUZZ_EXAMPLES for a deeper run.
EXAMPLES_PER_OPERATION = int(os.environ.get("DUNWELL_FUZZ_EXAMPLES", "12"))


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'dunwell.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    built = bootstrap(
        Settings(database_url=url, lease_seconds=30, secret_key="fuzz-secret-key"),
        clock=FixedClock(START),
    )
    yield built
    built.close()


@pytest.fixture(scope="module")
def admin_headers(fuzzed_app: App) -> dict[str, str]:
    shop = Shop.create(fuzzed_app)
    shop.subscribe(shop.customer(INSUFFICIENT, phone="+14155550123"))
    shop.subscribe(shop.customer())
    shop.run()
    with fuzzed_app.begin() as conn:
        key = api_keys.create_key(conn, shop.site_id, "fuzz", "admin", shop.now)
    API.state.dunwell = fuzzed_app
    return {"Authorization": f"Bearer {key}"}


def _document_app() -> FastAPI:
    # Only the routes matter here: the engine of this App never connects.
    return create_app(bootstrap(Settings(database_url="sqlite://"), clock=FixedClock(START)))


API = _document_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", API)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    # The same examples on every run, so CI is repeatable; a deeper, random
    # search is DUNWELL_FUZZ_EXAMPLES=500 with DUNWELL_FUZZ_RANDOM=1.
    derandomize=not os.environ.get("DUNWELL_FUZZ_RANDOM"),
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_causes_a_server_error(
    case: Any, admin_headers: dict[str, str]
) -> None:
    case.call_and_validate(headers=admin_headers, checks=[not_a_server_error])
