"""Build a running Dunwell from settings: the one place adapters are chosen.

Tests call :func:`bootstrap` with a fixed clock or their own gateways; the
CLI and the server call it with the settings from the environment.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine

from dunwell.channels.registry import ChannelRegistry, TransportOptions
from dunwell.clock import Clock, SystemClock
from dunwell.gateways.base import GatewayRegistry
from dunwell.gateways.sandbox import SandboxGateway
from dunwell.security.keys import MissingSecretKey, resolve_secret_key
from dunwell.security.links import LinkSigner
from dunwell.security.secrets import SecretBox
from dunwell.settings import Settings
from dunwell.store.db import make_engine, writer

if TYPE_CHECKING:
    from dunwell.concierge.llm import LlmUnderstander


@dataclass
class App:
    settings: Settings
    engine: Engine
    clock: Clock
    gateways: GatewayRegistry
    channels: ChannelRegistry
    #: The optional LLM the concierge asks when its own rules are unsure.
    llm: LlmUnderstander | None = None
    _secret: str | None = field(default=None, repr=False)
    #: ``engine`` and its writing twin, made once: making it costs about a
    #: third of an empty transaction. Kept with the engine it was made from,
    #: because tests may swap ``engine``.
    _writes: tuple[Engine, Engine] | None = field(default=None, repr=False)

    @property
    def secret_key(self) -> str:
        """The server key, resolved on first use (see :mod:`dunwell.security.keys`)."""
        if self._secret is None:
            self._secret = resolve_secret_key(self.settings)
        return self._secret

    def secret_box(self) -> SecretBox:
        return SecretBox(self.secret_key)

    def secret_box_or_none(self) -> SecretBox | None:
        """For reading: a site with no stored secrets works without a key."""
        try:
            return self.secret_box()
        except MissingSecretKey:
            return None

    def links(self) -> LinkSigner:
        return LinkSigner(self.secret_key, self.settings.public_url, self.clock.now)

    def begin(self) -> AbstractContextManager[Connection]:
        """A transaction that writes (committed on success, rolled back on error)."""
        if self._writes is None or self._writes[0] is not self.engine:
            self._writes = (self.engine, writer(self.engine))
        return self._writes[1].begin()

    def connect(self) -> AbstractContextManager[Connection]:
        """A connection for reading."""
        return self.engine.connect()

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()
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
            from dunwell.gateways.pace import SharedPace
            from dunwell.gateways.stripe import StripeGateway

            # One Stripe account behind every worker: they share its pace.
            pace = SharedPace(
                engine,
                StripeGateway.name,
                settings.stripe_max_per_second,
                horizon_seconds=settings.lease_seconds,
            )
            gateways.add(
                StripeGateway(
                    settings.stripe_api_key,
                    settings.stripe_api_base or None,
                    concurrency=settings.stripe_concurrency,
                    pace=pace,
                )
            )
    channels = ChannelRegistry(
        engine, clock.now, TransportOptions(twilio_api_base=settings.twilio_api_base or None)
    )
    return App(
        settings=settings,
        engine=engine,
        clock=clock,
        gateways=gateways,
        channels=channels,
        llm=_llm(settings),
    )


def _llm(settings: Settings) -> LlmUnderstander | None:
    """The concierge's optional LLM; its code is loaded only when one is configured."""
    if not getattr(settings, "llm_base_url", ""):
        return None
    from dunwell.concierge.llm import llm_from_settings

    return llm_from_settings(settings)
