"""Finding a person by what an operator types: part of a name, an email or a phone."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement, func, or_


def person_matches(
    query: str, first_name: Any, last_name: Any, email: Any, phone: Any
) -> ColumnElement[bool]:
    """A case-insensitive substring match on the full name, the email or the phone.

    ``%`` and ``_`` typed by the operator are matched literally. Phones are
    stored in E.164, so a number typed with spaces or dashes also matches
    on its digits (four or more, so "12" does not match every number).
    """
    like = f"%{_escape_like(query.lower())}%"
    name = func.lower(func.coalesce(first_name, "") + " " + func.coalesce(last_name, ""))
    clauses = [
        name.like(like, escape="\\"),
        func.lower(email).like(like, escape="\\"),
        phone.like(like, escape="\\"),
    ]
    digits = re.sub(r"\D", "", query)
    if len(digits) >= 4:
        clauses.append(phone.like(f"%{digits}%"))
    return or_(*clauses)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
