"""Previewing a template as it is being typed, before it is saved.

:func:`message_preview.preview` renders what is stored; the editor needs
the same rendering for text that exists only in the form. The context is
the same (the documented sample data, or a real customer of the site with
their latest invoice), and an SMS goes through the same last touch as a
real one (:func:`sms_text.finish_sms`: opt-out line, smart encoding, count),
so the segments and encoding shown are the ones that will be billed.

Beyond the numbers, an SMS preview explains them: which characters force
UCS-2 and whether smart encoding removes them, and whether the opt-out
line will be appended (and what that costs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from dunwell.messaging.fields import sample_context
from dunwell.messaging.keywords import has_opt_out_instructions
from dunwell.messaging.phones import phone_region
from dunwell.messaging.segments import count_segments, is_gsm7, non_gsm_characters
from dunwell.messaging.smart_encoding import smart_encode
from dunwell.messaging.templates import (
    EmailSource,
    SmsSource,
    TemplateError,
    compile_email,
    compile_sms,
    validate_email,
    validate_sms,
)
from dunwell.security.links import LinkSigner
from dunwell.services.errors import InvalidInput, NotFound
from dunwell.services.ledger_queries import find_customer, person_name
from dunwell.services.message_preview import customer_context
from dunwell.services.sms_settings import SmsSettings, load_sms_settings
from dunwell.services.sms_text import finish_sms

#: Twilio refuses a body longer than this many characters.
TWILIO_MAX_CHARACTERS = 1600


@dataclass(frozen=True)
class DataSource:
    """Whose data fills the template: the sample, or one customer of the site."""

    customer_id: int | None = None
    label: str = "sample data"


@dataclass(frozen=True)
class EmailPreview:
    locale: str
    source: DataSource
    subject: str
    body_text: str
    body_html: str | None


@dataclass(frozen=True)
class SmsPreview:
    locale: str
    source: DataSource
    #: The text exactly as it would be sent: opt-out line and smart encoding applied.
    body: str
    encoding: str
    characters: int
    segments: int
    region: str
    credits_per_segment: int
    warnings: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def credits(self) -> int:
        return self.segments * self.credits_per_segment


def find_data_source(conn: Connection, site_id: int, wanted: str) -> DataSource:
    """``""`` for the sample data, else a customer of this site by id or email address."""
    row = find_customer(conn, site_id, wanted)
    if row is None:
        return DataSource()
    return DataSource(row.id, f"customer {row.id} ({person_name(row) or row.email or 'no name'})")


def preview_email_draft(
    conn: Connection,
    links: LinkSigner,
    site_id: int,
    locale: str,
    source: DataSource,
    *,
    subject: str,
    body_text: str,
    body_html: str | None,
    now: datetime,
) -> EmailPreview:
    """Render an unsaved email; a template error raises InvalidInput naming the part."""
    context, _phone = _context(conn, links, site_id, source, now)
    try:
        source_text = EmailSource(subject=subject, text=body_text, html=body_html)
        # The checks saving makes, so the preview reports what saving would refuse.
        validate_email(source_text)
        out = compile_email(source_text).render(context, locale)
    except TemplateError as error:
        raise _invalid(error) from None
    return EmailPreview(locale, source, out.subject, out.text, out.html)


def preview_sms_draft(
    conn: Connection,
    links: LinkSigner,
    site_id: int,
    locale: str,
    source: DataSource,
    *,
    body_text: str,
    now: datetime,
) -> SmsPreview:
    """Render an unsaved SMS and finish it with the site's settings, as sending would."""
    context, phone = _context(conn, links, site_id, source, now)
    try:
        source_text = SmsSource(body=body_text)
        validate_sms(source_text)
        rendered = compile_sms(source_text).render(context, locale).body
    except TemplateError as error:
        raise _invalid(error) from None
    settings = load_sms_settings(conn, [site_id])[site_id]
    finished = finish_sms(rendered, settings)
    count = count_segments(finished.body)
    region = (phone_region(phone) if phone else None) or settings.default_region
    warnings, notes = _explain(rendered, finished.body, count.segments, settings)
    return SmsPreview(
        locale=locale,
        source=source,
        body=finished.body,
        encoding=count.encoding,
        characters=count.characters,
        segments=count.segments,
        region=region,
        credits_per_segment=settings.price(region),
        warnings=tuple(warnings),
        notes=tuple(notes),
    )


def _context(
    conn: Connection, links: LinkSigner, site_id: int, source: DataSource, now: datetime
) -> tuple[dict[str, Any], str | None]:
    if source.customer_id is None:
        return sample_context(), None
    try:
        context, recipient = customer_context(conn, links, site_id, source.customer_id)
    except NotFound as error:
        raise InvalidInput("customer", str(error)) from None
    return context, recipient.phone


def _invalid(error: TemplateError) -> InvalidInput:
    # The form's field names, as save_template reports them.
    field = {"text": "body_text", "html": "body_html", "body": "body_text"}.get(
        error.field, error.field
    )
    return InvalidInput(field, str(error))


def _explain(
    rendered: str, final: str, segments: int, settings: SmsSettings
) -> tuple[list[str], list[str]]:
    """Warnings (costly or risky) and notes (what the finishing step changes)."""
    warnings: list[str] = []
    notes: list[str] = []
    body = rendered.strip()
    if not has_opt_out_instructions(body):
        # Sending always appends the line to a message the business starts;
        # say so, and say when it costs a segment.
        without = count_segments(smart_encode(body) if settings.smart_encoding else body)
        line = f"“{settings.opt_out_line}” ({len(settings.opt_out_line) + 1} characters)"
        if without.segments < segments:
            warnings.append(
                f"No opt-out instruction in the body: the site's line {line} will be "
                f"appended, which takes the message from {without.segments} to "
                f"{segments} segments. Write your own shorter opt-out wording to avoid it."
            )
        else:
            notes.append(f"No opt-out instruction in the body: the site's line {line} is appended.")
    if len(final) > TWILIO_MAX_CHARACTERS:
        warnings.append(
            f"The message is {len(final)} characters; Twilio refuses more than "
            f"{TWILIO_MAX_CHARACTERS}."
        )
    warnings.extend(_ucs2_warnings(final, rendered, segments, settings))
    return warnings, notes


def _ucs2_warnings(final: str, rendered: str, segments: int, settings: SmsSettings) -> list[str]:
    found: list[str] = []
    for char in non_gsm_characters(rendered):
        replacement = smart_encode(char)
        if replacement == char or not is_gsm7(replacement):
            continue
        if settings.smart_encoding:
            # Replaced characters cost nothing, but the merchant should know
            # the text that goes out differs from what they typed.
            found.append(
                f"{_named(char)} forces UCS-2; smart encoding will replace it with “{replacement}”."
            )
        else:
            found.append(
                f"{_named(char)} forces UCS-2; type “{replacement}” instead, "
                "or turn smart encoding on in the SMS settings."
            )
    staying = [c for c in non_gsm_characters(final) if not is_gsm7(smart_encode(c))]
    if staying:
        plain = final
        for char in staying:
            plain = plain.replace(char, "")
        instead = count_segments(plain)
        names = ", ".join(_named(c) for c in staying)
        verb = "forces" if len(staying) == 1 else "force"
        cost = (
            f"{segments} segments instead of {instead.segments}"
            if instead.segments != segments
            else f"{segments} segment{'s' if segments != 1 else ''} either way, but "
            f"{70 if segments == 1 else 67} characters a segment instead of "
            f"{160 if segments == 1 else 153}"
        )
        found.append(f"{names} {verb} UCS-2 (no GSM-7 look-alike): {cost}.")
    return found


def _named(char: str) -> str:
    """A character and its code point, e.g. ``U+2019``; a cluster lists each of its code points."""
    points = " ".join(f"U+{ord(c):04X}" for c in char)
    return f"{char} ({points})"
