"""Making a real database refuse one kind of write, to see what a failure leaves.

A trigger refuses it in the database itself, on SQLite and PostgreSQL alike,
so the code under test runs unchanged and meets a real driver error, as it
would when the database fails in the middle of a batch.
"""

from __future__ import annotations

from sqlalchemy import text

from dunwell.bootstrap import App

REFUSAL = "refused by the test"


def refuse_finishing_attempts(app: App, table: str) -> None:
    """From now on, writing an attempt's ``finished_at`` in ``table`` fails."""
    name = f"refuse_finishing_{table}"
    with app.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(
                text(
                    f"CREATE TRIGGER {name} BEFORE UPDATE OF finished_at ON {table}"
                    f" BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
                )
            )
            return
        conn.execute(
            text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql"
                f" AS $$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$"
            )
        )
        conn.execute(
            text(
                f"CREATE TRIGGER {name} BEFORE UPDATE OF finished_at ON {table}"
                f" FOR EACH ROW EXECUTE FUNCTION {name}()"
            )
        )


def allow_finishing_attempts(app: App, table: str) -> None:
    """Undo :func:`refuse_finishing_attempts`: the database is back."""
    name = f"refuse_finishing_{table}"
    with app.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(text(f"DROP TRIGGER {name}"))
        else:
            conn.execute(text(f"DROP TRIGGER {name} ON {table}"))
            conn.execute(text(f"DROP FUNCTION {name}()"))
