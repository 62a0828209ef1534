"""Fixtures shared by the integration tests: a shop and an API client on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from dunwell.api.app import create_app
from dunwell.bootstrap import App
from tests.integration.factories import Shop


@pytest.fixture
def shop(app: App) -> Shop:
    return Shop.create(app)


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(create_app(app)) as test_client:
        yield test_client
