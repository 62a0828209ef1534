"""Dunning email and SMS templates: compile once, render many.

Templates are Liquid, run by python-liquid in a strict sandbox:

* an unknown variable or filter is an error, never an empty string, so a
  typo cannot send "Hi ," to ten thousand customers;
* there is no loader, and ``include`` and ``render`` are not tags at all,
  so a template cannot reach the file system or other templates;
* loops, local variables and output are capped, so one merchant's
  template cannot stall the worker that sends everyone's messages.

Plain-text parts (email subject and text, SMS body) are rendered without
escaping; the HTML part escapes every value it prints.

:func:`compile_email` and :func:`compile_sms` parse once; ``render`` is the
hot path. Each part keeps a :class:`~dunwell.messaging.render_plan.RenderPlan`:
renders that differ only in values printed as is (a name, a link) are
walked once and filled in after, with the same text as a full render. The
locale given to ``render`` reaches the filters through the render context
(see :mod:`dunwell.messaging.filters`). :func:`validate_email` and
:func:`validate_sms` are for save time: they also check every variable and
filter against :mod:`dunwell.messaging.fields`, and render with sample data.

Every failure, at compile, validate or render time, is a
:class:`TemplateError` naming the part and, when known, the line and column.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from liquid import BoundTemplate, Environment, Mode, StrictUndefined
from liquid.ast import Node
from liquid.exceptions import LiquidError
from liquid.output import LimitedStringIO
from liquid.stream import TokenStream
from liquid.tag import Tag
from liquid.token import Token

from dunwell.messaging import fields, filters
from dunwell.messaging.render_plan import RenderPlan

__all__ = [
    "BASE_TEMPLATE_NAMES",
    "BUNDLED_LOCALES",
    "CompiledEmail",
    "CompiledSms",
    "EmailSource",
    "RenderedEmail",
    "RenderedSms",
    "SmsSource",
    "TemplateError",
    "base_email",
    "base_sms",
    "compile_email",
    "compile_sms",
    "pick_locale",
    "validate_email",
    "validate_sms",
]

BASE_TEMPLATE_NAMES: tuple[str, ...] = (
    "payment_declined",
    "invoice_past_due",
    "final_notice",
    "card_expiring",
    "upcoming_charge",
    "payment_received",
)
BUNDLED_LOCALES: tuple[str, ...] = ("en", "fr", "de", "es")

#: Validation renders in English and in a locale with other number and date
#: formats, then once more with every optional field empty.
VALIDATION_LOCALES: tuple[str, ...] = ("en", "de")

# Output caps per part, in UTF-8 bytes. Gmail clips HTML after about 100 KB
# and Twilio refuses an SMS over 1,600 characters; these leave headroom.
_OUTPUT_LIMITS = {"subject": 1_000, "text": 100_000, "html": 250_000, "body": 8_000}

# Babel separates thousands and currency symbols with no-break spaces, which
# are not GSM-7: one would make a whole SMS UCS-2 and cost twice as much.
_SMS_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2007": " ", "\u2009": " "})


class TemplateError(Exception):
    """A template that fails to parse, validate or render.

    ``field`` is the part at fault ("subject", "text", "html" or "body");
    ``line`` and ``column`` count from 1 and are ``None`` when the error has
    no single place (an empty subject, say).
    """

    def __init__(
        self, field: str, message: str, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(field, message, line, column)
        self.field = field
        self.message = message
        self.line = line
        self.column = column

    def __str__(self) -> str:
        if self.line is None:
            return f"{self.field}: {self.message}"
        return f"{self.field}, line {self.line}, column {self.column}: {self.message}"


@dataclass(frozen=True)
class EmailSource:
    subject: str
    text: str
    html: str | None = None


@dataclass(frozen=True)
class SmsSource:
    body: str


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str | None


@dataclass(frozen=True)
class RenderedSms:
    body: str


class _LocatedTag(Tag):
    """Gives a parse error the position of the tag or output being parsed.

    Some python-liquid errors (a block never closed, an expression that ends
    too soon) carry the end-of-input token, which has no position; the tag
    that opened the trouble is the useful place to point at.
    """

    def __init__(self, inner: Tag) -> None:
        super().__init__(inner.env)
        self.inner = inner
        self.name = inner.name
        self.block = inner.block

    def get_node(self, stream: TokenStream) -> Node:
        start = stream.current
        try:
            return self.inner.get_node(stream)
        except LiquidError as err:
            if err.token is None or err.token.start_index < 0:
                err.token = start
            raise

    def parse(self, stream: TokenStream) -> Node:
        return self.inner.parse(stream)


class _SandboxedEnvironment(Environment):
    loop_iteration_limit = 1_000
    local_namespace_limit = 64_000
    output_stream_limit = max(_OUTPUT_LIMITS.values())

    def __init__(self, *, autoescape: bool) -> None:
        super().__init__(
            tolerance=Mode.STRICT,
            undefined=StrictUndefined,
            strict_filters=True,
            autoescape=autoescape,
        )
        for name in ("include", "render"):
            del self.tags[name]
        self.tags = {name: _LocatedTag(tag) for name, tag in self.tags.items()}
        filters.register(self)


# Some of python-liquid's own filters let a Python error through on odd
# input ({{ "a" | sum }} raises decimal.InvalidOperation); it is still the
# template's fault, so it must not look like a crash to the caller.
_LEAKED_ERRORS = (ArithmeticError, LookupError, TypeError, ValueError)

_TEXT_ENV = _SandboxedEnvironment(autoescape=False)
_HTML_ENV = _SandboxedEnvironment(autoescape=True)


@dataclass(frozen=True)
class _Part:
    """One compiled template: an email subject, text or HTML, or an SMS body."""

    field: str
    source: str
    template: BoundTemplate
    #: Remembers renders with the customers' own words as holes; None for a
    #: template it cannot read (see :mod:`dunwell.messaging.render_plan`).
    plan: RenderPlan | None = None

    def render(self, context: Mapping[str, Any], locale: str) -> str:
        """Render in ``locale`` (a tag); the same text with or without a plan."""
        limit = _OUTPUT_LIMITS[self.field]
        if self.plan is None:
            return self._render_in_full(context, locale)
        return self.plan.render(
            context, locale, limit, lambda values: self._render_in_full(values, locale)
        )

    def _render_in_full(self, context: Mapping[str, Any], locale: str) -> str:
        render_context = filters.LocaleRenderContext(
            self.template,
            locale=filters.babel_locale(locale),
            globals=self.template.make_globals(context),
        )
        buffer = LimitedStringIO(limit=_OUTPUT_LIMITS[self.field])
        try:
            self.template.render_with_context(render_context, buffer)
        except LiquidError as err:
            raise _from_liquid(self.field, err) from err
        except _LEAKED_ERRORS as err:
            raise TemplateError(self.field, f"rendering failed: {type(err).__name__}") from err
        return buffer.getvalue()


def _compile(env: Environment, field: str, source: str) -> _Part:
    try:
        template = env.from_string(source, name=field)
    except LiquidError as err:
        raise _from_liquid(field, err) from err
    return _Part(field, source, template, RenderPlan.of(template))


def _from_liquid(field: str, err: LiquidError) -> TemplateError:
    line, column = _position(err.token)
    message = err.message if err.message is not None else type(err).__name__
    return TemplateError(field, str(message), line, column)


def _position(token: Token | None) -> tuple[int | None, int | None]:
    if token is None or not 0 <= token.start_index <= len(token.source):
        return None, None
    return _line_column(token.source, token.start_index)


def _line_column(source: str, index: int) -> tuple[int, int]:
    line_start = source.rfind("\n", 0, index) + 1
    return source.count("\n", 0, index) + 1, index - line_start + 1


class CompiledEmail:
    """A parsed email template; :meth:`render` is cheap and thread-safe."""

    __slots__ = ("_html", "_subject", "_text")

    def __init__(self, subject: _Part, text: _Part, html: _Part | None) -> None:
        self._subject, self._text, self._html = subject, text, html

    def render(self, context: Mapping[str, Any], locale: str) -> RenderedEmail:
        """Render every part; raise :class:`TemplateError` if one fails.

        The subject comes back on one line: a line break from a template or a
        customer's name must never reach the mail header.
        """
        html = self._html.render(context, locale) if self._html else None
        return RenderedEmail(
            subject=_one_line(self._subject.render(context, locale)),
            text=self._text.render(context, locale),
            html=html,
        )

    def _parts(self) -> tuple[_Part, ...]:
        return (self._subject, self._text) + ((self._html,) if self._html else ())


class CompiledSms:
    """A parsed SMS template; :meth:`render` is cheap and thread-safe."""

    __slots__ = ("_body",)

    def __init__(self, body: _Part) -> None:
        self._body = body

    def render(self, context: Mapping[str, Any], locale: str) -> RenderedSms:
        """Render the body, trimmed, with no-break spaces made plain."""
        body = self._body.render(context, locale)
        return RenderedSms(body=body.translate(_SMS_SPACES).strip())


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def compile_email(src: EmailSource) -> CompiledEmail:
    """Parse an email template; raise :class:`TemplateError` on a syntax error."""
    html = _compile(_HTML_ENV, "html", src.html) if src.html is not None else None
    return CompiledEmail(
        _compile(_TEXT_ENV, "subject", src.subject), _compile(_TEXT_ENV, "text", src.text), html
    )


def compile_sms(src: SmsSource) -> CompiledSms:
    """Parse an SMS template; raise :class:`TemplateError` on a syntax error."""
    return CompiledSms(_compile(_TEXT_ENV, "body", src.body))


def validate_email(src: EmailSource) -> None:
    """Check an email template before it is saved; raise :class:`TemplateError`.

    Beyond parsing, every variable must be a documented field and every
    filter must exist, in every branch; then the template must render with
    the sample data in each of :data:`VALIDATION_LOCALES`, and with the
    optional fields empty, to a non-empty subject.
    """
    compiled = compile_email(src)
    _check_names(*compiled._parts())
    for context, locale, hint in _sample_runs():
        with _hinted(hint):
            rendered = compiled.render(context, locale)
        if not rendered.subject:
            raise TemplateError("subject", "the subject is empty")


def validate_sms(src: SmsSource) -> None:
    """Check an SMS template before it is saved, as :func:`validate_email` does."""
    compiled = compile_sms(src)
    _check_names(compiled._body)
    for context, locale, hint in _sample_runs():
        with _hinted(hint):
            rendered = compiled.render(context, locale)
        if not rendered.body:
            raise TemplateError("body", "the message is empty")


def _sample_runs() -> list[tuple[dict[str, Any], str, str]]:
    """(context, locale, hint for the error message) for each validation render."""
    runs = [(fields.sample_context(), locale, "") for locale in VALIDATION_LOCALES]
    sparse_hint = " (when optional fields are empty, e.g. no card on file)"
    return [*runs, (fields.sample_context(sparse=True), VALIDATION_LOCALES[0], sparse_hint)]


@contextmanager
def _hinted(hint: str) -> Iterator[None]:
    try:
        yield
    except TemplateError as err:
        if not hint:
            raise
        raise TemplateError(err.field, err.message + hint, err.line, err.column) from err


def _check_names(*parts: _Part) -> None:
    """Raise for the first unknown field or filter, even in a branch not taken."""
    for part in parts:
        problems = fields.unknown_names(part.template)
        if problems:
            index, message = min(problems)
            raise TemplateError(part.field, message, *_line_column(part.source, index))


def pick_locale(wanted: str | None, available: Iterable[str], fallback: str) -> str:
    """The best of ``available`` for ``wanted``, else ``fallback``.

    ``"fr_CA"`` picks ``fr_CA`` if available, else ``fr``. Case, ``-`` and
    ``_`` do not matter, and the match is returned as ``available`` spells it.
    """
    return filters.match_locale(wanted, available) or fallback


def base_email(name: str, locale: str) -> EmailSource | None:
    """The bundled email for ``name``, or ``None`` for an unknown name or locale.

    ``locale`` is matched as :func:`pick_locale` does, without a fallback:
    ``"fr_CA"`` gives the French template, ``"it"`` gives ``None``.
    """
    bundle = _bundle(name, locale)
    return bundle[0] if bundle else None


def base_sms(name: str, locale: str) -> SmsSource | None:
    """The bundled SMS for ``name``, matched as :func:`base_email` is."""
    bundle = _bundle(name, locale)
    return bundle[1] if bundle else None


_BASE_DIR = resources.files("dunwell.messaging") / "base_templates"


def _bundle(name: str, locale: str) -> tuple[EmailSource, SmsSource] | None:
    bundled = filters.match_locale(locale, BUNDLED_LOCALES)
    if bundled is None or name not in BASE_TEMPLATE_NAMES:
        return None
    return _load_bundle(name, bundled)


# Only bundled names and locales get here, so the cache holds one entry per file.
@cache
def _load_bundle(name: str, locale: str) -> tuple[EmailSource, SmsSource]:
    with (_BASE_DIR / locale / f"{name}.toml").open("rb") as file:
        parts = tomllib.load(file)
    html = _layout().replace("[[lang]]", locale).replace("[[content]]", parts["html"].strip())
    email = EmailSource(subject=parts["subject"].strip(), text=_block(parts["text"]), html=html)
    return email, SmsSource(body=parts["sms"].strip())


@cache
def _layout() -> str:
    return (_BASE_DIR / "layout.html").read_text(encoding="utf-8")


def _block(text: str) -> str:
    """Multi-line text ends with exactly one newline, as text files do."""
    return text.strip("\n") + "\n"
