"""Every documented field, however a template uses it, renders the same from the plan.

A value the plan fills in after the render must not be visible anywhere
else in the template: not through the object that holds it (printed whole,
filtered, compared, or read with ``.first``, ``.last`` or ``.size``), nor
through itself. These cases combine each field of :data:`FIELDS` with each
such use, and the fields inside it printed as is.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from dunwell.messaging import render_plan
from dunwell.messaging.fields import FIELDS, sample_context
from dunwell.messaging.templates import (
    CompiledEmail,
    EmailSource,
    TemplateError,
    compile_email,
)

PATHS = [field.path for field in FIELDS]
TEXT_PATHS = [field.path for field in FIELDS if field.kind == "text"]

#: Ways to use a path other than printing it as is; ``P`` is the path.
USES = [
    "{{ P }}",
    '{{ P | join: "," }}',
    "{{ P | upcase }}",
    '{{ P | default: "d" }}',
    "{{ P.first }}",
    "{{ P.last }}",
    "{{ P.size }}",
    '{% if P == "Ada" %}eq{% endif %}',
    "{% if P %}yes{% else %}no{% endif %}",
    "{% unless P %}none{% endunless %}",
]

# Values that look like the plan's placeholders (without its secret tag),
# that HTML escaping changes, and that are empty or nil.
ODD_VALUES: list[Any] = [
    "\x00deadbeefdeadbeef0\x00",
    f"\x00{render_plan._TAG}",
    "<b>&'\"</b>",
    "",
    None,
    "Zoë\nLovelace",
]


def _contexts() -> Iterator[dict[str, Any]]:
    yield sample_context()
    yield sample_context(sparse=True)
    for value in ODD_VALUES:
        context = sample_context()
        for path in TEXT_PATHS:
            _set(context, path, value)
        yield context
    context = sample_context()
    context["card"] = None
    context["customer"] = {"first_name": "Ada"}
    yield context


def _set(context: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target = context
    for name in parents:
        target = target.get(name) if isinstance(target, dict) else None
    if isinstance(target, dict):
        target[last] = value


def _sources(path: str) -> list[str]:
    """``path`` used in every way, next to each field inside it printed as is."""
    inside = [p for p in PATHS if p == path or p.startswith(path + ".")]
    sources = []
    for use in USES:
        used = use.replace("P", path)
        sources.append(used)
        sources.extend(f"{{{{ {p} }}}}|{used}|{{{{ {p} }}}}" for p in inside)
    return sources


def _compiled(source: str, planned: bool) -> CompiledEmail:
    email = compile_email(EmailSource(subject=source, text=source, html=source))
    for part in email._parts():
        if planned:
            assert part.plan is not None, source
        else:
            object.__setattr__(part, "plan", None)
    return email


def _render(email: CompiledEmail, context: dict[str, Any], locale: str) -> Any:
    try:
        return email.render(copy.deepcopy(context), locale)
    except TemplateError as error:
        return ("error", str(error))


@pytest.mark.parametrize("path", PATHS)
def test_every_use_of_a_field_renders_as_in_full(path: str) -> None:
    contexts = list(_contexts())
    for source in _sources(path):
        planned, plain = _compiled(source, True), _compiled(source, False)
        # Twice over: the second round is served from the cache.
        for context in contexts * 2:
            for locale in ("en", "de"):
                full = _render(plain, context, locale)
                assert _render(planned, context, locale) == full, (source, context)
