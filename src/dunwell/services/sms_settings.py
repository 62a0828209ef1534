"""A site's SMS settings: consent, send window, caps, encoding, replies, prices.

Stored as one JSON document per site; a site that never saved any gets the
defaults below, which are the safe ones (see ``docs/compliance.md``).
Saving validates every field and names the one at fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime, time
from typing import Any

from phonenumbers import SUPPORTED_REGIONS
from sqlalchemy import Connection, bindparam, select, update

from dunwell.domain.compliance import SendWindow
from dunwell.messaging.keywords import has_opt_out_instructions
from dunwell.services.errors import InvalidInput
from dunwell.store.sql import insert_one
from dunwell.store.tables import sms_settings


@dataclass(frozen=True)
class SmsSettings:
    # Transactional texts (dunning, order notices) are allowed for this site.
    enabled: bool = True
    default_region: str = "US"
    # ISO country codes numbers may belong to; empty means any.
    allowed_countries: tuple[str, ...] = ()
    window_start: str = "08:00"
    window_end: str = "20:30"
    # Texts per customer per rolling 24 hours.
    frequency_cap: int = 3
    # Segments a second the site's sender takes (Twilio's MPS): 1 for a US
    # long code, about 3 for a toll-free number, 100 for a short code, the
    # sum of its numbers for a Messaging Service. Texts that could not leave
    # Twilio's queue before the customer's window closes wait for the next.
    sender_segments_per_second: float = 1.0
    smart_encoding: bool = True
    opt_out_line: str = "Reply STOP to opt out"
    help_contact: str = ""
    stop_reply: str = (
        "You are unsubscribed from {company} texts and will receive no more. "
        "Reply START to resubscribe."
    )
    start_reply: str = (
        "You are resubscribed to {company} texts. Reply HELP for help, STOP to opt out."
    )
    help_reply: str = (
        "{company} billing alerts. Help: {help_contact}. Msg & data rates may apply. "
        "Reply STOP to opt out."
    )
    # Credits per segment by destination country; "default" for the rest.
    prices: Mapping[str, int] = field(default_factory=lambda: {"default": 1})
    auto_refill_threshold: int = 0
    auto_refill_amount: int = 0
    low_balance_threshold: int = 100

    @property
    def window(self) -> SendWindow:
        return SendWindow(start=_time(self.window_start), end=_time(self.window_end))

    def price(self, region: str | None) -> int:
        return int(self.prices.get(region or "", self.prices.get("default", 1)))

    def reply(self, template: str, company: str, help_contact: str) -> str:
        return template.replace("{company}", company).replace("{help_contact}", help_contact)


#: The fastest sender there is: a short code with its throughput raised
#: takes a few hundred segments a second. A higher figure is a typing error.
MOST_SEGMENTS_PER_SECOND = 10_000
RATE_RANGE = f"must be above 0 and at most {MOST_SEGMENTS_PER_SECOND} segments a second"

#: Built once: every inbound batch and every tick reads settings, and building
#: a statement costs several times what running this one does.
_SETTINGS_OF_SITES = select(sms_settings.c.site_id, sms_settings.c.settings).where(
    sms_settings.c.site_id.in_(bindparam("sites", expanding=True))
)


def load_sms_settings(conn: Connection, site_ids: Iterable[int]) -> dict[int, SmsSettings]:
    ids = set(site_ids)
    found = {
        row.site_id: _from_dict(row.settings)
        for row in conn.execute(_SETTINGS_OF_SITES, {"sites": list(ids)})
    }
    return {site_id: found.get(site_id, SmsSettings()) for site_id in ids}


def update_sms_settings(
    conn: Connection, site_id: int, changes: Mapping[str, Any], now: datetime
) -> SmsSettings:
    """Apply ``changes`` to the site's settings after validating each field."""
    current = load_sms_settings(conn, [site_id])[site_id]
    known = {f.name for f in fields(SmsSettings)}
    for name in changes:
        if name not in known:
            raise InvalidInput(name, "is not an SMS setting")
    merged = replace(current, **{k: _coerce(k, v) for k, v in changes.items()})
    validate_sms_settings(merged)
    document = settings_to_dict(merged)
    exists = conn.execute(
        update(sms_settings)
        .where(sms_settings.c.site_id == site_id)
        .values(settings=document, updated_at=now)
    ).rowcount
    if not exists:
        insert_one(conn, sms_settings, site_id=site_id, settings=document, updated_at=now)
    return merged


def validate_sms_settings(s: SmsSettings) -> None:
    if s.default_region not in SUPPORTED_REGIONS:
        raise InvalidInput("default_region", "use a two-letter ISO country code, e.g. US")
    for code in s.allowed_countries:
        if code not in SUPPORTED_REGIONS:
            raise InvalidInput("allowed_countries", f"{code!r} is not a country code")
    for name in ("window_start", "window_end"):
        _time(getattr(s, name), name)
    try:
        s.window  # noqa: B018 - constructing it checks the legal bounds
    except ValueError as error:
        field = "window_start" if _time(s.window_start) < time(8, 0) else "window_end"
        raise InvalidInput(field, str(error)) from None
    if not 1 <= s.frequency_cap <= 20:
        raise InvalidInput("frequency_cap", "must be between 1 and 20 texts a day")
    if not 0 < s.sender_segments_per_second <= MOST_SEGMENTS_PER_SECOND:
        raise InvalidInput("sender_segments_per_second", RATE_RANGE)
    if not has_opt_out_instructions(s.opt_out_line):
        raise InvalidInput("opt_out_line", "must tell the customer how to opt out, e.g. Reply STOP")
    for name in ("prices",):
        for region, credits in s.prices.items():
            if region != "default" and region not in SUPPORTED_REGIONS:
                raise InvalidInput(f"{name}.{region}", "use a country code like GB or default")
            if not isinstance(credits, int) or isinstance(credits, bool) or credits < 0:
                raise InvalidInput(f"{name}.{region}", "must be a whole number of credits")
    for name in ("auto_refill_threshold", "auto_refill_amount", "low_balance_threshold"):
        if getattr(s, name) < 0:
            raise InvalidInput(name, "cannot be negative")


def _time(value: str, name: str = "window") -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError):
        raise InvalidInput(name, f"{value!r} is not a time like 08:00") from None


def _coerce(name: str, value: Any) -> Any:
    if name == "default_region":
        return str(value).upper()
    if name == "allowed_countries":
        if not isinstance(value, list | tuple):
            raise InvalidInput(name, "must be a list of country codes")
        return tuple(str(v).upper() for v in value)
    if name == "prices":
        if not isinstance(value, Mapping):
            raise InvalidInput(name, "must map country codes to credits per segment")
        # Country codes are upper case, as the phone library reports them.
        return {k if k == "default" else str(k).upper(): v for k, v in value.items()}
    expected = type(getattr(SmsSettings(), name))
    if expected is bool and not isinstance(value, bool):
        raise InvalidInput(name, "must be true or false")
    if expected is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise InvalidInput(name, "must be a whole number")
    if expected is str and not isinstance(value, str):
        raise InvalidInput(name, "must be text")
    if expected is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(name, "must be a number")
        if isinstance(value, int) and not 0 < value <= MOST_SEGMENTS_PER_SECOND:
            raise InvalidInput(name, RATE_RANGE)  # before float(), which a huge int overflows
        return float(value)  # NaN and infinity fail the range check
    return value


def settings_to_dict(s: SmsSettings) -> dict[str, Any]:
    data = asdict(s)
    data["allowed_countries"] = list(s.allowed_countries)
    data["prices"] = dict(s.prices)
    return data


def _from_dict(data: Mapping[str, Any]) -> SmsSettings:
    known = {f.name for f in fields(SmsSettings)}
    values = {k: v for k, v in data.items() if k in known}
    if "allowed_countries" in values:
        values["allowed_countries"] = tuple(values["allowed_countries"])
    return SmsSettings(**values)
