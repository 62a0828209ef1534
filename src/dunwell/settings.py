"""Settings: each field is read from a ``DUNWELL_*`` environment variable and
can be overridden by the matching ``--flag`` of the CLI (see ``cli.py``).

The defaults run everything on one machine with no provider accounts: an
embedded SQLite database, the sandbox gateway, sandbox phone and mailbox.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "DUNWELL_"
#: Values of ``inbound_writer`` (see services/inbound_store.py).
INBOUND_WRITERS = ("process", "thread")


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///dunwell.db"
    host: str = "127.0.0.1"
    port: int = 8000
    # Worker tuning: invoices claimed per transaction, how long a claim is
    # held before another worker may take it over, and the idle poll period.
    batch_size: int = 500
    lease_seconds: int = 60
    poll_seconds: float = 1.0
    # Stripe gateway: the secret key and, for tests, a base URL to reach a
    # local server that speaks Stripe's API instead of api.stripe.com.
    stripe_api_key: str = ""
    stripe_api_base: str = ""
    # Charges a worker sends to Stripe side by side, and starts a second at
    # most (see gateways/stripe.py).
    stripe_concurrency: int = 8
    stripe_max_per_second: float = 20.0
    log_level: str = "INFO"
    # "text" for people, "json" (one object per line) for log collectors.
    log_format: str = "text"
    # Encrypts provider secrets at rest and signs hosted links. Required on
    # PostgreSQL; with SQLite a key file beside the database is made once.
    secret_key: str = ""
    # Where customers and providers reach this server (billing links, Twilio
    # status callbacks); set it to the public https address behind a proxy.
    public_url: str = "http://127.0.0.1:8000"
    # Outbound delivery: messages per batch and the sender used when a site
    # has not configured its own address.
    delivery_batch_size: int = 200
    # Messages a worker sends side by side to SMTP relays and Twilio, whose
    # answers take tens to hundreds of milliseconds (see services/delivery.py).
    delivery_concurrency: int = 8
    # Webhook requests a worker has in flight at once, to any endpoints
    # (see services/webhook_delivery.py).
    webhook_concurrency: int = 8
    # For tests: a local server that speaks Twilio's REST API.
    twilio_api_base: str = ""
    mail_from: str = "billing@dunwell.localhost"
    # Optional: an OpenAI-compatible chat-completions endpoint the concierge
    # asks only when its own rules cannot read a text. Off unless base URL
    # and model are set (see docs/concierge-understanding.md).
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = ""
    # When set, GET /metrics asks for "Authorization: Bearer <token>".
    metrics_token: str = ""
    # Where the server commits inbound texts: "process", a child process of
    # its own (so the database work does not share the interpreter with the
    # event loop), or "thread", the server's own writer thread.
    inbound_writer: str = "process"
    # Seconds between checks of each Twilio site's received texts and of its
    # texts with no delivery report, for what the webhooks missed (0: never).
    twilio_catch_up_seconds: int = 300
    # Bytes a request body may have: every route, and the CSV import (see
    # api/body_limit.py). A larger body gets 413 before a route reads it.
    max_request_bytes: int = 1_048_576
    max_upload_bytes: int = 10_485_760

    def __post_init__(self) -> None:
        for name in ("delivery_concurrency", "stripe_concurrency", "webhook_concurrency"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"{ENV_PREFIX}{name.upper()} must be at least 1, not {value}")
        if (pace := self.stripe_max_per_second) <= 0:
            raise ValueError(f"{ENV_PREFIX}STRIPE_MAX_PER_SECOND must be above 0, not {pace}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None:
                values[f.name] = _coerce(f.name, raw, type(getattr(cls(), f.name)))
        return cls(**values).checked()

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None}).checked()

    def checked(self) -> Settings:
        """These settings, if an operator's values make sense; else ValueError naming the first.

        Applied to what the environment and the CLI give, not in
        ``__post_init__``: tests shrink leases to 0 on purpose.
        """
        for name in ("batch_size", "lease_seconds"):
            if (value := getattr(self, name)) < 1:
                raise ValueError(f"{_env(name)} must be at least 1, not {value}")
        # 0 is a worker that only collects: it sends nothing (see docs/running.md).
        if self.delivery_batch_size < 0:
            raise ValueError(
                f"{_env('delivery_batch_size')} must be 0 or more, not {self.delivery_batch_size}"
            )
        if self.poll_seconds <= 0:
            raise ValueError(f"{_env('poll_seconds')} must be above 0, not {self.poll_seconds}")
        if not 0 < self.port < 65536:
            raise ValueError(f"{_env('port')} must be between 1 and 65535, not {self.port}")
        if self.inbound_writer not in INBOUND_WRITERS:
            raise ValueError(
                f"{_env('inbound_writer')} must be one of {', '.join(INBOUND_WRITERS)},"
                f" not {self.inbound_writer!r}"
            )
        for name in ("max_request_bytes", "max_upload_bytes"):
            # Below a few kilobytes, Twilio's and Stripe's webhooks would be refused.
            if (value := getattr(self, name)) < 65_536:
                raise ValueError(f"{_env(name)} must be at least 65536, not {value}")
        _check_public_url(self.public_url)
        return self


def setting_names() -> list[tuple[str, type]]:
    """(name, type) of every setting, for generating CLI flags."""
    defaults = Settings()
    return [(f.name, type(getattr(defaults, f.name))) for f in fields(Settings)]


def _coerce(name: str, raw: str, kind: type) -> Any:
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(
            f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind.__name__}"
        ) from None


def _env(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _check_public_url(url: str) -> None:
    # Billing links and Twilio's callbacks are built on it: a value without
    # a scheme or host would make links customers cannot open.
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host = None
    else:
        if parts.scheme not in ("http", "https"):
            host = None
    if not host:
        raise ValueError(
            f"{_env('public_url')}={url!r} must be an http:// or https:// address with a host,"
            " e.g. https://billing.example.com"
        )
