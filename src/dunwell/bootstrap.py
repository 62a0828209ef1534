"""Build a running Dunwell from settings: the one place adapters are chosen.

Tests call :func:`bootstrap` with a fixed clock or their own gateways; the
CLI and the server call it with the settings from the environment.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from dunwell.clock import Clock, SystemClock
from dunwell.gateways.base import GatewayRegistry
from dunwell.gateways.sandbox import SandboxGateway
from dunwell.settings import Settings
from dunwell.store.db import make_engine, writer


@dataclass
class App:
    settings: Settings
    engine: Engine
    clock: Clock
    gateways: GatewayRegistry

    def begin(self) -> AbstractContextManager[Connection]:
        """A transaction that writes (committed on success, rolled back on error)."""
        return writer(self.engine).begin()

    def connect(self) -> AbstractContextManager[Connection]:
        """A connection for reading."""
        return self.engine.connect()

    def close(self) -> None:
        self.engine.dispose()


def bootstrap(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    gateways: GatewayRegistry | None = None,
    engine: Engine | None = None,
) -> App:
    settings = settings or Settings.from_env()
    clock = clock or SystemClock()
    engine = engine or make_engine(settings.database_url)
    if gateways is None:
        gateways = GatewayRegistry([SandboxGateway(engine, clock.now)])
        if settings.stripe_api_key:
            from dunwell.gateways.stripe import StripeGateway

            gateways.add(StripeGateway(settings.stripe_api_key, settings.stripe_api_base or None))
    return App(settings=settings, engine=engine, clock=clock, gateways=gateways)
