"""Importing phone numbers from CSV: exact row reports, idempotent re-runs."""

from __future__ import annotations

import csv
import io
from collections import Counter

import pytest
from sqlalchemy import insert, select

from dunwell.bootstrap import App
from dunwell.services.errors import InvalidInput
from dunwell.services.phone_import import import_phones
from dunwell.store import tables
from tests.integration.factories import Shop


def _csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["customer_id", "email", "phone"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _mobile(i: int) -> str:
    return f"(415) {200 + i // 10000:03d}-{i % 10000:04d}"


def test_a_small_file_applies_valid_rows_and_reports_each_bad_one(app: App) -> None:
    shop = Shop.create(app)
    ada = shop.customer(None)
    bob = shop.customer(None, email="bob@x.test")
    cy = shop.customer(None, email="cy@x.test")
    text = _csv(
        [
            {"customer_id": str(ada), "email": "", "phone": "415 200 0001"},
            {"customer_id": "", "email": "BOB@x.test", "phone": "+1 415 200 0002"},
            {"customer_id": "", "email": "nobody@x.test", "phone": "415 200 0003"},
            {"customer_id": str(cy), "email": "", "phone": "020 7946 0018"},
            {"customer_id": str(ada), "email": "", "phone": "4152000001"},
            {"customer_id": str(cy), "email": "", "phone": ""},
        ]
    )
    with app.begin() as conn:
        report = import_phones(conn, shop.site_id, text).as_dict()
    assert (report["rows"], report["applied"], report["rejected"]) == (6, 2, 4)
    assert [(e["line"], e["reason"]) for e in report["errors"]] == [
        (4, "unknown_customer"),
        (5, "invalid_number"),
        (6, "duplicate"),
        (7, "missing_value"),
    ]
    assert shop.one(tables.customers, id=ada).phone == "+14152000001"
    assert shop.one(tables.customers, id=bob).phone == "+14152000002"
    assert shop.one(tables.customers, id=cy).phone is None


def test_a_file_without_the_needed_columns_is_refused_by_name(app: App) -> None:
    shop = Shop.create(app)
    with app.begin() as conn, pytest.raises(InvalidInput) as error:
        import_phones(conn, shop.site_id, "customer,number\n1,415\n")
    assert error.value.field == "phone"


def test_a_stray_comma_or_extra_value_is_one_row_s_problem_not_the_file_s(app: App) -> None:
    # A row longer than the header used to fail the whole import with a 500.
    # A trailing comma (an empty extra field) is harmless; a real extra value
    # means the columns are off, so that row is reported, not guessed at.
    shop = Shop.create(app)
    ada, bob, cy = (shop.customer(None) for _ in range(3))
    text = f"customer_id,phone\n{ada},+14152000001\n{bob},+14152000002,\n{cy},+14152000003,oops\n"
    with app.begin() as conn:
        report = import_phones(conn, shop.site_id, text).as_dict()
    assert (report["rows"], report["applied"]) == (3, 2)
    assert [(e["line"], e["reason"]) for e in report["errors"]] == [(4, "extra_fields")]
    assert "3 fields but the header names 2" in report["errors"][0]["detail"]
    assert shop.one(tables.customers, id=bob).phone == "+14152000002"
    assert shop.one(tables.customers, id=cy).phone is None


def test_errors_name_the_line_an_editor_shows_blank_lines_and_multi_line_values_included(
    app: App,
) -> None:
    shop = Shop.create(app)
    ada = shop.customer(None, email="ada@x.test")
    text = (
        "customer_id,email,phone\n"
        "\n"  # line 2: blank
        f"{ada},ada@x.test,+1415\n"  # line 3: too short a number
        '999,"two\nlines@x.test",+14152000004\n'  # lines 4-5: unknown customer
        "998,,+14152000005\n"  # line 6
    )
    with app.begin() as conn:
        report = import_phones(conn, shop.site_id, text).as_dict()
    assert [(e["line"], e["reason"]) for e in report["errors"]] == [
        (3, "invalid_number"),
        (4, "unknown_customer"),
        (6, "unknown_customer"),
    ]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_100k_rows_with_a_tenth_bad_import_with_an_exact_report_and_rerun_changes_nothing(
    app: App,
) -> None:
    shop = Shop.create(app)
    now = shop.now
    customers = 91_000
    with app.begin() as conn:
        conn.execute(
            insert(tables.customers),
            [
                {
                    "site_id": shop.site_id,
                    "first_name": f"C{i}",
                    "last_name": "",
                    "email": f"c{i}@x.test",
                    "created_at": now,
                }
                for i in range(customers)
            ],
        )
        ids = list(
            conn.execute(
                select(tables.customers.c.id)
                .where(tables.customers.c.site_id == shop.site_id)
                .where(tables.customers.c.email.like("c%@x.test"))
                .order_by(tables.customers.c.id)
            ).scalars()
        )
    rows: list[dict[str, str]] = []
    for i in range(90_000):  # valid: half by id, half by email
        key = (
            {"customer_id": str(ids[i]), "email": ""}
            if i % 2
            else {"customer_id": "", "email": f"c{i}@x.test"}
        )
        rows.append({**key, "phone": _mobile(i)})
    expected = Counter[str]()
    for i in range(4_000):
        rows.append({"customer_id": str(ids[90_000]), "email": "", "phone": f"020 7946 {i:04d}"})
        expected["invalid_number"] += 1
    for i in range(3_000):
        rows.append({"customer_id": "", "email": f"ghost{i}@x.test", "phone": _mobile(i)})
        expected["unknown_customer"] += 1
    for i in range(2_000):
        rows.append({"customer_id": str(ids[i]), "email": "", "phone": _mobile(i)})
        expected["duplicate"] += 1
    for i in range(500):  # two numbers for the same customer: both rows rejected
        extra = ids[90_000 + 1 + i]
        rows.append({"customer_id": str(extra), "email": "", "phone": _mobile(50_000 + i)})
        rows.append({"customer_id": str(extra), "email": "", "phone": _mobile(60_000 + i)})
        expected["conflicting"] += 2
    assert len(rows) == 100_000
    text = _csv(rows)
    with app.begin() as conn:
        report = import_phones(conn, shop.site_id, text).as_dict()
    assert report["rows"] == 100_000
    assert report["applied"] == 90_000
    assert Counter(e["reason"] for e in report["errors"]) == expected
    assert report["rejected"] == 10_000
    with app.begin() as conn:
        again = import_phones(conn, shop.site_id, text).as_dict()
    assert (again["applied"], again["unchanged"]) == (0, 90_000)
    assert again["errors"] == report["errors"]
