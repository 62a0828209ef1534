"""Fixtures shared by the integration tests: a shop, an API client on it, a shop on Twilio."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from dunwell.api.app import create_app
from dunwell.bootstrap import App
from dunwell.channels.registry import ChannelRegistry, TransportOptions
from tests.integration.factories import Shop
from tests.integration.fake_twilio import FakeTwilioServer, save_fake_twilio
from tests.integration.live_server import free_port, live_server


@pytest.fixture
def shop(app: App) -> Shop:
    return Shop.create(app)


@pytest.fixture
def client(app: App) -> Iterator[TestClient]:
    with TestClient(create_app(app)) as test_client:
        yield test_client


@pytest.fixture
def twilio(app: App) -> Iterator[tuple[Shop, FakeTwilioServer]]:
    port = free_port()
    app.settings = replace(app.settings, public_url=f"http://127.0.0.1:{port}")
    with FakeTwilioServer(now=app.clock.now) as server, live_server(app, port):
        app.channels = ChannelRegistry(
            app.engine, app.clock.now, TransportOptions(twilio_api_base=server.url)
        )
        shop = Shop.create(app)
        with app.begin() as conn:
            save_fake_twilio(conn, shop.site_id, app.secret_box(), shop.now)
        yield shop, server
