"""Golden tests: every base template rendered with the sample data, part by part.

The expected output lives in ``golden/<locale>/<name>.txt``. After a
deliberate change to a template, a filter or the sample data, regenerate
the files and review the diff:

    DUNWELL_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/messaging/test_golden.py
"""

from __future__ import annotations

import os
from itertools import product
from pathlib import Path

import pytest

from dunwell.messaging.fields import sample_context
from dunwell.messaging.templates import (
    BASE_TEMPLATE_NAMES,
    BUNDLED_LOCALES,
    base_email,
    base_sms,
    compile_email,
    compile_sms,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("DUNWELL_UPDATE_GOLDEN") == "1"


def rendered_document(name: str, locale: str) -> str:
    """Every rendered part, full sample first, then with optional fields empty."""
    email_source, sms_source = base_email(name, locale), base_sms(name, locale)
    assert email_source is not None and sms_source is not None
    email, sms = compile_email(email_source), compile_sms(sms_source)
    full, sparse = sample_context(), sample_context(sparse=True)
    mail, bare_mail = email.render(full, locale), email.render(sparse, locale)
    sections = {
        "subject": mail.subject,
        "text": mail.text,
        "html": mail.html or "",
        "sms": sms.render(full, locale).body,
        "subject, optional fields empty": bare_mail.subject,
        "text, optional fields empty": bare_mail.text,
        "sms, optional fields empty": sms.render(sparse, locale).body,
    }
    return "".join(f"===== {title}\n{body.rstrip()}\n" for title, body in sections.items())


@pytest.mark.parametrize(("name", "locale"), list(product(BASE_TEMPLATE_NAMES, BUNDLED_LOCALES)))
def test_base_template_renders_as_its_golden_file(name: str, locale: str) -> None:
    path = GOLDEN / locale / f"{name}.txt"
    actual = rendered_document(name, locale)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
    assert path.exists(), f"{path} is missing; set DUNWELL_UPDATE_GOLDEN=1 to write it"
    assert actual == path.read_text(encoding="utf-8")
