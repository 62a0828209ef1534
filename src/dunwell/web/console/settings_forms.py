"""Reading the settings forms: posted text into the typed changes the services validate.

The services check ranges and meanings and name the field at fault; this
module only turns text into numbers, lists and switches, and refuses what
is not even that, naming the field the same way. A checkbox that is not
posted is off: each form posts every switch of its section.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from dunwell.services.errors import InvalidInput

_WHOLE = re.compile(r"^-?\d{1,9}$")
_NUMBER = re.compile(r"^-?\d{1,9}(\.\d{1,6})?$")
_PRICE_LINE = re.compile(r"^\s*([A-Za-z]{2}|default)\s*[=:]\s*(\S+)\s*$")


def whole(form: Mapping[str, str], name: str) -> int:
    value = form.get(name, "").strip()
    if not _WHOLE.match(value):
        raise InvalidInput(name, f"{value!r} is not a whole number")
    return int(value)


def number(form: Mapping[str, str], name: str) -> float:
    """A whole or decimal number, ``3`` or ``2.5``; the service checks its range."""
    value = form.get(name, "").strip()
    if not _NUMBER.match(value):
        raise InvalidInput(name, f"{value!r} is not a number")
    return float(value)


def text(form: Mapping[str, str], name: str) -> str:
    return form.get(name, "").strip()


def switches(form: Mapping[str, str], names: Iterable[str]) -> dict[str, bool]:
    return {name: name in form for name in names}


def countries(form: Mapping[str, str], name: str) -> list[str]:
    """``"FR, BE ES"`` → ``["FR", "BE", "ES"]``; the service checks each code."""
    return [code for code in re.split(r"[\s,;]+", form.get(name, "").upper()) if code]


def prices(form: Mapping[str, str], name: str = "prices") -> dict[str, Any]:
    """One ``COUNTRY = credits`` per line (``default = 1`` for the rest)."""
    found: dict[str, Any] = {}
    for number, line in enumerate(form.get(name, "").splitlines(), start=1):
        if not line.strip():
            continue
        match = _PRICE_LINE.match(line)
        if match is None:
            raise InvalidInput(name, f"line {number}: write a country code, =, and credits")
        region, credits = match.groups()
        if not _WHOLE.match(credits):
            raise InvalidInput(f"{name}.{region}", f"{credits!r} is not a whole number of credits")
        found[region if region == "default" else region.upper()] = int(credits)
    if "default" not in found:
        raise InvalidInput(name, "add a default line (credits a segment for other countries)")
    return found


def prices_text(prices: Mapping[str, int]) -> str:
    """The price table as the form shows it, the default line last."""
    lines = [
        f"{region} = {credits}" for region, credits in sorted(prices.items()) if region != "default"
    ]
    return "\n".join([*lines, f"default = {prices.get('default', 1)}"])
