"""A site's webhook endpoints: where its events are posted, and what may be a target.

An endpoint has a URL, a Standard Webhooks signing secret (``whsec_`` and
32 random bytes in base64), shown once when it is made or rotated and
stored encrypted, and an optional filter of event types (empty means all).

**Targets.** A webhook is a request Dunwell makes on a merchant's behalf,
so a URL could be aimed at the machines around Dunwell (a metadata service,
a database's HTTP port). A live site's URL must resolve only to public
addresses; a sandbox site may also use loopback, for tests and local
development. The check runs when the URL is saved and again before every
attempt, since DNS answers change; the attempt then connects to the address
that was checked (see :mod:`dunwell.services.webhook_delivery`).
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Connection, or_, select, update

from dunwell.bootstrap import App
from dunwell.security.secrets import SecretBox
from dunwell.services.errors import InvalidInput, NotFound
from dunwell.services.events import WEBHOOK_EVENTS
from dunwell.services.sites import site_now
from dunwell.store.sql import insert_one
from dunwell.store.tables import sites, webhook_deliveries, webhook_endpoints

#: ``disabled_reason`` of a deleted endpoint. The row stays because its
#: deliveries (and their log) refer to it; every query here hides it.
DELETED = "deleted"
PUBLIC_COLUMNS = (
    "id",
    "url",
    "events",
    "description",
    "enabled",
    "disabled_reason",
    "created_at",
    "updated_at",
)
MAX_URL = 2048
MAX_DESCRIPTION = 500
NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: IPv6 forms that only carry an IPv4 address in their last 32 bits: the
#: deprecated IPv4-compatible form (``::10.0.0.1``) and SIIT's
#: IPv4-translated one (``::ffff:0:10.0.0.1``). Python counts both global.
CARRIERS = (ipaddress.ip_network("::/96"), ipaddress.ip_network("::ffff:0:0:0/96"))
#: Never public, though Python counts them global: NAT64 prefixes for a
#: local network's own translator (RFC 8215), which reach whatever IPv4
#: address that network has, and deprecated site-local addresses.
NOT_PUBLIC = (ipaddress.ip_network("64:ff9b:1::/48"), ipaddress.ip_network("fec0::/10"))

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: (host, port) -> the addresses it resolves to; injectable for tests.
Resolver = Callable[[str, int], list[str]]


class TargetRefused(Exception):
    """The URL's host resolves to an address this site may not send to."""


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order of preference."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as error:
        raise TargetRefused(f"its host cannot be resolved ({error})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def target_addresses(url: str, site_mode: str, resolve: Resolver = resolve_host) -> list[str]:
    """The addresses ``url`` may be sent to, or :class:`TargetRefused` saying why not.

    Every address must pass, not just the first: otherwise a host with one
    public and one private record could be steered to the private one. The
    URL is read by httpx, as it will be when it is sent.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise TargetRefused(f"is not a valid URL ({error})") from None
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise TargetRefused("use an http or https URL with a host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    if not 0 < port < 65536:
        raise TargetRefused("its port is not a valid port number")
    addresses = resolve(parsed.raw_host.decode("ascii"), port)
    if not addresses:
        raise TargetRefused("its host resolves to no address")
    for address in addresses:
        reason = address_refusal(address, site_mode)
        if reason:
            raise TargetRefused(f"its host resolves to {address}, {reason}")
    return addresses


def address_refusal(address: str, site_mode: str) -> str | None:
    """Why a site in ``site_mode`` may not send to ``address``; None when it may."""
    ip = _unwrapped(ipaddress.ip_address(address.split("%", 1)[0]))
    if ip.is_loopback:
        return (
            None if site_mode == "sandbox" else "a loopback address (allowed on sandbox sites only)"
        )
    if not ip.is_global or ip.is_multicast or any(ip in net for net in NOT_PUBLIC):
        return "which is not a public address"
    return None


def _unwrapped(ip: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv6 one that only carries it (mapped, 6to4, NAT64...)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip.sixtofour is not None:
            return ip.sixtofour
        # ``::`` and ``::1`` are in ``::/96`` too, and mean themselves.
        if ip in NAT64 or (any(ip in net for net in CARRIERS) and int(ip) > 1):
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_events(types: Sequence[str]) -> list[str]:
    """The filter as stored (duplicates dropped); names the first unknown entry."""
    for index, name in enumerate(types):
        if name not in WEBHOOK_EVENTS:
            raise InvalidInput(
                f"events[{index}]",
                f"{name!r} is not a webhook event type; use {', '.join(WEBHOOK_EVENTS)}",
            )
    return list(dict.fromkeys(types))


def check_url(url: str, site_mode: str, resolve: Resolver = resolve_host) -> str:
    url = url.strip()
    if len(url) > MAX_URL:
        raise InvalidInput("url", f"must be at most {MAX_URL} characters")
    try:
        target_addresses(url, site_mode, resolve)
    except TargetRefused as error:
        raise InvalidInput("url", str(error)) from None
    return url


def _check_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidInput("description", f"must be at most {MAX_DESCRIPTION} characters")
    return description or None


# -- changes ---------------------------------------------------------------------------
#
# Creating an endpoint or changing its URL resolves a host name. That happens
# before the write transaction opens, so a slow DNS answer never holds the
# database's write lock (SQLite has one writer).


def create_endpoint(
    app: App,
    site_id: int,
    *,
    url: str,
    events: Sequence[str] = (),
    description: str | None = None,
    enabled: bool = True,
    resolve: Resolver = resolve_host,
) -> dict[str, Any]:
    """Save an endpoint; the answer carries its signing secret, this once only."""
    types = check_events(events)
    description = _check_description(description)
    url = check_url(url, _site_mode(app, site_id), resolve)
    secret = new_secret()
    with app.begin() as conn:
        now = site_now(conn, site_id, app.clock)
        endpoint_id = insert_one(
            conn,
            webhook_endpoints,
            site_id=site_id,
            url=url,
            secret=app.secret_box().seal(secret),
            events=types,
            description=description,
            enabled=enabled,
            disabled_reason=None if enabled else "disabled when created",
            created_at=now,
            updated_at=now,
        )
        return get_endpoint(conn, site_id, endpoint_id) | {"secret": secret}


def update_endpoint(
    app: App,
    site_id: int,
    endpoint_id: int,
    changes: Mapping[str, Any],
    *,
    resolve: Resolver = resolve_host,
) -> dict[str, Any]:
    """Change any of ``url``, ``events``, ``enabled`` and ``description``.

    Disabling an endpoint cancels its pending deliveries; enabling it clears
    the reason it was disabled (they can then be redelivered one by one).
    """
    unknown = set(changes) - {"url", "events", "enabled", "description"}
    if unknown:
        raise InvalidInput(sorted(unknown)[0], "cannot be changed")
    # Null leaves a field as it is, except the description, which it clears.
    changes = {k: v for k, v in changes.items() if v is not None or k == "description"}
    values: dict[str, Any] = {}
    if "events" in changes:
        values["events"] = check_events(changes["events"])
    if "description" in changes:
        values["description"] = _check_description(changes["description"])
    if "url" in changes:
        values["url"] = check_url(str(changes["url"]), _site_mode(app, site_id), resolve)
    with app.begin() as conn:
        _find(conn, site_id, endpoint_id)
        now = site_now(conn, site_id, app.clock)
        if "enabled" in changes:
            enabled = bool(changes["enabled"])
            values["enabled"] = enabled
            values["disabled_reason"] = None if enabled else "disabled by request"
            if not enabled:
                cancel_pending(conn, endpoint_id, "the endpoint was disabled", now)
        if values:
            conn.execute(
                update(webhook_endpoints)
                .where(webhook_endpoints.c.id == endpoint_id)
                .values(**values, updated_at=now)
            )
        return get_endpoint(conn, site_id, endpoint_id)


def rotate_secret(
    conn: Connection, site_id: int, endpoint_id: int, box: SecretBox, now: datetime
) -> dict[str, Any]:
    """Replace the signing secret; attempts from now on are signed with the new one."""
    _find(conn, site_id, endpoint_id)
    secret = new_secret()
    conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(secret=box.seal(secret), updated_at=now)
    )
    return get_endpoint(conn, site_id, endpoint_id) | {"secret": secret}


def delete_endpoint(conn: Connection, site_id: int, endpoint_id: int, now: datetime) -> int:
    """Delete an endpoint and cancel its pending deliveries; returns how many."""
    _find(conn, site_id, endpoint_id)
    canceled = cancel_pending(conn, endpoint_id, "the endpoint was deleted", now)
    # The secret is wiped: nothing will ever be signed for this endpoint again.
    conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(enabled=False, disabled_reason=DELETED, secret="", updated_at=now)
    )
    return canceled


def disable_gone(conn: Connection, endpoint_id: int, now: datetime) -> None:
    """The receiver answered 410 Gone: it asks not to be sent anything more."""
    conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.enabled.is_(True))
        .values(
            enabled=False,
            disabled_reason=f"the endpoint answered 410 Gone at {now.isoformat()}",
            updated_at=now,
        )
    )
    cancel_pending(conn, endpoint_id, "the endpoint answered 410 Gone", now)


def cancel_pending(conn: Connection, endpoint_id: int, reason: str, now: datetime) -> int:
    """Cancel the endpoint's deliveries still waiting for an attempt.

    A delivery in the middle of an attempt (``sending``) is left to finish;
    its worker sees the endpoint disabled on the next one.
    """
    d = webhook_deliveries
    done = conn.execute(
        update(d)
        .where(d.c.endpoint_id == endpoint_id, d.c.status == "pending")
        .values(status="canceled", last_error=reason, updated_at=now)
    )
    return int(done.rowcount)


# -- reading ---------------------------------------------------------------------------


def list_endpoints(
    conn: Connection, site_id: int, *, after_id: int = 0, limit: int = 100
) -> list[dict[str, Any]]:
    e = webhook_endpoints
    rows = conn.execute(
        select(*(e.c[name] for name in PUBLIC_COLUMNS))
        .where(e.c.site_id == site_id, e.c.id > after_id, _not_deleted())
        .order_by(e.c.id)
        .limit(limit)
    )
    return [dict(row._mapping) for row in rows]


def get_endpoint(conn: Connection, site_id: int, endpoint_id: int) -> dict[str, Any]:
    """The endpoint as the API shows it: never its secret."""
    e = webhook_endpoints
    row = conn.execute(
        select(*(e.c[name] for name in PUBLIC_COLUMNS)).where(
            e.c.site_id == site_id, e.c.id == endpoint_id, _not_deleted()
        )
    ).first()
    if row is None:
        raise NotFound(f"no webhook endpoint {endpoint_id} in this site")
    return dict(row._mapping)


def _find(conn: Connection, site_id: int, endpoint_id: int) -> None:
    get_endpoint(conn, site_id, endpoint_id)


def _not_deleted() -> Any:
    reason = webhook_endpoints.c.disabled_reason
    return or_(reason.is_(None), reason != DELETED)


def _site_mode(app: App, site_id: int) -> str:
    with app.connect() as conn:
        mode = conn.execute(select(sites.c.mode).where(sites.c.id == site_id)).scalar()
    if mode is None:
        raise NotFound(f"no site with id {site_id}")
    return str(mode)
