"""Opening a hosted-page link: signature, expiry, revocation, and whose it is.

The billing page (``/billing/{token}``) and the customer page
(``/portal/{token}``) take the same signed token (see
:mod:`dunwell.security.links`): it names a site and a customer, and either
page serves that customer. A link is refused when its signature does not
match, when it has expired, when the customer revoked links after it was
issued, or when the customer it names no longer exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, select, update

from dunwell.clock import Clock
from dunwell.security.links import DEFAULT_LIFETIME, BadLink, LinkClaims, LinkSigner
from dunwell.services.errors import NotFound
from dunwell.services.events import EventBatch
from dunwell.services.sites import site_now
from dunwell.store.tables import customers, sites

Refusal = Literal["invalid", "expired", "revoked"]

# Any well-signed token expires after this; verifying "as of" it tells a
# forged token from an expired one without parsing the error text.
_EPOCH = datetime(1970, 1, 2, tzinfo=UTC)


class LinkRefused(Exception):
    """The link cannot open a page; ``reason`` says why (never who it was for)."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason)
        self.reason: Refusal = reason


@dataclass(frozen=True)
class HostedCustomer:
    """Whom a verified link is for, with what the pages need to address them."""

    site_id: int
    site_name: str
    site_mode: str
    support_email: str | None
    customer_id: int
    first_name: str
    locale: str
    time_zone: str
    invoice_id: int | None

    @property
    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")


def open_link(conn: Connection, signer: LinkSigner, token: str, now: datetime) -> HostedCustomer:
    """Verify ``token`` at ``now`` (real time) and load its customer, or raise LinkRefused."""
    claims = _verify(signer, token, now)
    row = conn.execute(
        select(
            customers.c.id,
            customers.c.first_name,
            customers.c.locale,
            customers.c.time_zone,
            customers.c.links_revoked_at,
            sites.c.name.label("site_name"),
            sites.c.mode,
            sites.c.support_email,
            sites.c.locale.label("site_locale"),
            sites.c.time_zone.label("site_time_zone"),
        )
        .join(sites, sites.c.id == customers.c.site_id)
        .where(customers.c.id == claims.customer_id, customers.c.site_id == claims.site_id)
    ).first()
    if row is None:
        raise LinkRefused("invalid")
    # Tokens carry whole seconds, so a link made in the second of a
    # revocation counts as older: refusing one link too many is the safe side.
    if row.links_revoked_at is not None and claims.issued_at < row.links_revoked_at:
        raise LinkRefused("revoked")
    return HostedCustomer(
        site_id=claims.site_id,
        site_name=row.site_name,
        site_mode=row.mode,
        support_email=row.support_email,
        customer_id=row.id,
        first_name=row.first_name,
        locale=row.locale or row.site_locale,
        time_zone=row.time_zone or row.site_time_zone,
        invoice_id=claims.invoice_id,
    )


def _verify(signer: LinkSigner, token: str, now: datetime) -> LinkClaims:
    try:
        return signer.verify(token, now)
    except BadLink:
        pass
    try:
        signer.verify(token, _EPOCH)
    except BadLink:
        raise LinkRefused("invalid") from None
    raise LinkRefused("expired")


def revoke_links(conn: Connection, site_id: int, customer_id: int, clock: Clock) -> None:
    """Stop every link issued to the customer before now, by the real ``clock``.

    Links are stamped with the real clock (see ``LinkSigner``), so the
    revocation must be too: a sandbox site's test clock runs ahead, and
    revoking by it would also refuse the links made after it. It takes the
    clock, not a moment, so a caller cannot pass ``site_now`` by mistake.
    The event is dated by the site's clock, as the site's other events are.
    """
    changed = conn.execute(
        update(customers)
        .where(customers.c.site_id == site_id, customers.c.id == customer_id)
        .values(links_revoked_at=clock.now())
    ).rowcount
    if not changed:
        raise NotFound(f"no customer {customer_id} in this site")
    batch = EventBatch()
    at = site_now(conn, site_id, clock)
    batch.add(site_id, "customer.links_revoked", at, customer_id=customer_id)
    batch.write(conn)


def portal_url(
    signer: LinkSigner,
    public_url: str,
    site_id: int,
    customer_id: int,
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> str:
    """A signed link to the customer page (the billing link's token, under /portal/)."""
    claims = signer.claims(site_id, customer_id, None, lifetime)
    return f"{public_url.rstrip('/')}/portal/{signer.token(claims)}"
