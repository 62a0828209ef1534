"""Importing customers' phone numbers from a CSV file, row by row, all or reported.

Columns: ``phone`` and one of ``customer_id`` or ``email`` (both may be
present; the id wins). Every valid row is applied in one transaction and
every other row is reported with its line number and why:

* ``invalid_number``   the number is not a valid mobile number (the reason says which);
* ``unknown_customer`` no customer of this site has that id or email;
* ``duplicate``        the same customer and number appeared earlier in the file;
* ``conflicting``      the file gives one customer two different numbers, so
                       none of them is applied (nobody can tell which is right);
* ``missing_value``    the row lacks the phone or the customer;
* ``extra_fields``     the row has values beyond the header's columns (a
                       trailing comma, an empty extra field, is not counted).

Line numbers are those of the file as an editor shows them: blank lines
count, and a row whose quoted value spans lines is reported at its first.

Running the same file again changes nothing: rows already holding the
number count as ``unchanged``.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from dunwell.messaging.phones import PhoneError, normalize_phone
from dunwell.services.errors import InvalidInput
from dunwell.services.ids import parse_id
from dunwell.services.sms_settings import load_sms_settings
from dunwell.store.tables import customers

Progress = Callable[[int], None]


@dataclass
class ImportReport:
    rows: int = 0
    applied: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "applied": self.applied,
            "unchanged": self.unchanged,
            "rejected": len(self.errors),
            "errors": self.errors,
        }


@dataclass(frozen=True)
class _Row:
    line: int
    customer_id: int
    phone: str


def import_phones(
    conn: Connection, site_id: int, text: str, progress: Progress | None = None
) -> ImportReport:
    try:
        rows = list(_numbered_rows(text))
    except csv.Error as error:
        raise InvalidInput("body", f"not a readable CSV file: {error}") from None
    header = [name.strip().lower() for name in rows[0][1]] if rows else []
    return _import(conn, site_id, header, rows[1:], progress)


def _numbered_rows(text: str) -> Iterable[tuple[int, list[str]]]:
    """Each non-blank row with the line it starts on (1 for the first)."""
    reader = csv.reader(io.StringIO(text))
    while True:
        start = reader.line_num + 1
        row = next(reader, None)
        if row is None:
            return
        if row:  # csv gives [] for a blank line
            yield start, row


def _fields(header: list[str], values: list[str]) -> dict[str, str] | None:
    """The row by column name; None when it has values beyond the header."""
    extra = values[len(header) :]
    if any(value.strip() for value in extra):
        return None
    named = {name: value.strip() for name, value in zip(header, values, strict=False)}
    return {name: named.get(name, "") for name in header}


def _import(
    conn: Connection,
    site_id: int,
    header: list[str],
    rows: list[tuple[int, list[str]]],
    progress: Progress | None,
) -> ImportReport:
    headers = set(header)
    if "phone" not in headers:
        raise InvalidInput("phone", "the CSV needs a 'phone' column")
    if not headers & {"customer_id", "email"}:
        raise InvalidInput("customer_id", "the CSV needs a 'customer_id' or an 'email' column")
    settings = load_sms_settings(conn, [site_id])[site_id]
    by_id, by_email = _customers(conn, site_id)
    report = ImportReport()
    candidates: list[_Row] = []
    for line, values in rows:
        report.rows += 1
        if progress and report.rows % 1000 == 0:
            progress(1000)
        row = _fields(header, values)
        if row is None:
            report.errors.append(
                _error(
                    line,
                    "extra_fields",
                    f"the row has {len(values)} fields but the header names {len(header)}",
                )
            )
            continue
        found = _match(row, by_id, by_email)
        phone = row.get("phone", "")
        if not phone or not (row.get("customer_id") or row.get("email")):
            report.errors.append(
                _error(line, "missing_value", "the row needs a phone and a customer")
            )
            continue
        if found is None:
            who = row.get("customer_id") or row.get("email")
            report.errors.append(_error(line, "unknown_customer", f"no customer {who!r}"))
            continue
        try:
            e164 = normalize_phone(
                phone, settings.default_region, settings.allowed_countries or None
            )
        except PhoneError as error:
            report.errors.append(_error(line, "invalid_number", str(error)))
            continue
        candidates.append(_Row(line, found, e164))
    if progress:
        progress(report.rows % 1000)
    _apply(conn, site_id, _settle(candidates, report), by_id, report)
    report.errors.sort(key=lambda e: e["line"])
    return report


def _customers(
    conn: Connection, site_id: int
) -> tuple[dict[int, str | None], dict[str, list[int]]]:
    by_id: dict[int, str | None] = {}
    by_email: dict[str, list[int]] = defaultdict(list)
    rows = conn.execute(
        select(customers.c.id, customers.c.email, customers.c.phone).where(
            customers.c.site_id == site_id
        )
    )
    for row in rows:
        by_id[row.id] = row.phone
        if row.email:
            by_email[row.email.lower()].append(row.id)
    return by_id, by_email


def _match(
    row: dict[str, str], by_id: dict[int, str | None], by_email: dict[str, list[int]]
) -> int | None:
    raw_id = row.get("customer_id", "")
    if raw_id:
        customer_id = parse_id(raw_id)
        return customer_id if customer_id in by_id else None
    ids = by_email.get(row.get("email", "").lower(), [])
    # Two customers sharing an email: the file cannot say which one is meant.
    return ids[0] if len(ids) == 1 else None


def _settle(candidates: Iterable[_Row], report: ImportReport) -> list[_Row]:
    """Drop repeats and customers given two different numbers, reporting each."""
    by_customer: dict[int, list[_Row]] = defaultdict(list)
    for row in candidates:
        by_customer[row.customer_id].append(row)
    keep = []
    for rows in by_customer.values():
        phones = {r.phone for r in rows}
        if len(phones) > 1:
            listed = ", ".join(sorted(phones))
            for r in rows:
                report.errors.append(
                    _error(r.line, "conflicting", f"the file gives this customer {listed}")
                )
            continue
        keep.append(rows[0])
        for r in rows[1:]:
            report.errors.append(
                _error(r.line, "duplicate", f"same customer and number as line {rows[0].line}")
            )
    return keep


def _apply(
    conn: Connection,
    site_id: int,
    rows: list[_Row],
    current: dict[int, str | None],
    report: ImportReport,
) -> None:
    changes = [r for r in rows if current.get(r.customer_id) != r.phone]
    report.unchanged = len(rows) - len(changes)
    report.applied = len(changes)
    if changes:
        conn.execute(
            update(customers)
            .where(customers.c.site_id == site_id, customers.c.id == bindparam("b_id"))
            .values(phone=bindparam("b_phone")),
            [{"b_id": r.customer_id, "b_phone": r.phone} for r in changes],
        )


def _error(line: int, reason: str, detail: str) -> dict[str, Any]:
    return {"line": line, "reason": reason, "detail": detail}
