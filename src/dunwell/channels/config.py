"""A site's saved provider for one channel, as the registry needs it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ChannelConfig:
    channel: str
    provider: str
    config: Mapping[str, Any]
    secret: str | None  # decrypted; only ever held in memory

    def public(self) -> dict[str, Any]:
        """What the API may show: everything but the secret."""
        return {
            "channel": self.channel,
            "provider": self.provider,
            **self.config,
            "secret_set": bool(self.secret),
        }


def sandbox_config(channel: str) -> ChannelConfig:
    return ChannelConfig(channel, "sandbox", {}, None)
