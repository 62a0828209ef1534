"""A database error names the statement, never the values it carried."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import DBAPIError, StatementError

from dunwell.bootstrap import App
from dunwell.store import tables

CARD = "4242424242424242"


def test_a_failed_statement_keeps_its_values_out_of_the_error(app: App) -> None:
    # A product of a site that does not exist breaks the foreign key on both
    # databases; the error is what a server logs, so the name must not be in
    # it. (PostgreSQL's own DETAIL names the key, not the row, for this one;
    # where it names the row, the log handler cuts card numbers out.)
    with pytest.raises((DBAPIError, StatementError)) as failed, app.begin() as conn:
        conn.execute(
            insert(tables.products).values(
                site_id=987654,
                code="plan",
                name=f"card {CARD}",
                price_minor=1,
                currency="USD",
                created_at=app.clock.now(),
            )
        )

    assert "INSERT INTO products" in str(failed.value)
    assert CARD not in str(failed.value)
    assert "hidden due to hide_parameters" in str(failed.value)
