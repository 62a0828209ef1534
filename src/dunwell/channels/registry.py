"""The explicit registry: which transport a site's messages go through.

A site without a saved provider uses the sandbox mailbox and phone. Tests
and benchmarks may register their own factory for a provider name (for
example to count calls), but normally the real modules are used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from dunwell.channels.base import (
    EmailTransport,
    SendResult,
    SmsInbox,
    SmsTransport,
    TransportError,
)
from dunwell.channels.config import ChannelConfig
from dunwell.channels.sandbox import SandboxMailbox, SandboxPhone

EmailFactory = Callable[[int, ChannelConfig], EmailTransport]
SmsFactory = Callable[[int, ChannelConfig], SmsTransport]


@dataclass(frozen=True)
class TransportOptions:
    twilio_api_base: str | None = None
    smtp_timeout: float = 30.0
    #: Seconds to wait for Twilio's answer; a send with none is in doubt.
    twilio_timeout: float = 30.0


class ChannelRegistry:
    def __init__(
        self, engine: Engine, now: Callable[[], datetime], options: TransportOptions
    ) -> None:
        self.options = options
        self._email: dict[str, EmailFactory] = {
            "sandbox": lambda site, _c: SandboxMailbox(engine, site, now),
            "smtp": lambda _site, c: _smtp(c, options),
            "unconfigured": lambda _site, _c: Unconfigured(),
        }
        self._sms: dict[str, SmsFactory] = {
            "sandbox": lambda site, _c: SandboxPhone(engine, site, now),
            "twilio": lambda _site, c: _twilio(c, options),
            "unconfigured": lambda _site, _c: Unconfigured(),
        }

    def register_email(self, provider: str, factory: EmailFactory) -> None:
        self._email[provider] = factory

    def register_sms(self, provider: str, factory: SmsFactory) -> None:
        self._sms[provider] = factory

    def email(self, site_id: int, config: ChannelConfig) -> EmailTransport:
        return self._email[config.provider](site_id, config)

    def sms(self, site_id: int, config: ChannelConfig) -> SmsTransport:
        return self._sms[config.provider](site_id, config)

    def inbox(self, site_id: int, config: ChannelConfig) -> SmsInbox | None:
        """The site's SMS provider as an inbox to read back, or None if it has none.

        Only providers whose API lists received texts have one (Twilio).
        The caller closes it.
        """
        transport = self.sms(site_id, config)
        return transport if isinstance(transport, SmsInbox) else None


class Unconfigured:
    """A live site's channel with no provider saved: every send waits.

    The error is transient, so messages keep their place and go out once
    the merchant saves a provider (within the retry schedule).
    """

    NOT_CONFIGURED = TransportError(
        "no provider is configured for this channel; save one under settings",
        permanent=False,
        code="not_configured",
    )

    @contextmanager
    def session(self) -> Iterator[Unconfigured]:
        yield self

    def send(self, message: object) -> SendResult:
        raise self.NOT_CONFIGURED

    def find_sent(self, message: object, since: datetime) -> SendResult | None:
        return None


def _smtp(config: ChannelConfig, options: TransportOptions) -> EmailTransport:
    from dunwell.channels.smtp import SmtpConfig, SmtpTransport

    c = config.config
    return SmtpTransport(
        SmtpConfig(
            host=c["host"],
            port=int(c["port"]),
            security=c["security"],
            username=c.get("username"),
            password=config.secret,
            from_addr=c["from_addr"],
            reply_to=c.get("reply_to"),
            # The merchant's copy is per message (the final notice's flag),
            # set by the delivery worker, not on every email.
            bcc_merchant=None,
            timeout=options.smtp_timeout,
        )
    )


def _twilio(config: ChannelConfig, options: TransportOptions) -> SmsTransport:
    from dunwell.channels.twilio_sms import TwilioConfig, TwilioSmsTransport

    c = config.config
    return TwilioSmsTransport(
        TwilioConfig(
            account_sid=c["account_sid"],
            auth_token=config.secret or "",
            from_number=c.get("from_number"),
            messaging_service_sid=c.get("messaging_service_sid"),
            api_base=options.twilio_api_base,
            timeout=options.twilio_timeout,
        )
    )
