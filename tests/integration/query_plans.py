"""Reading SQLite's plans of the statements real code runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine, event


def plan_of(conn: Connection, sql: str, args: Any = ()) -> str:
    """SQLite's query plan for one statement, its lines joined by `` | ``."""
    rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", args)
    return " | ".join(str(row[-1]) for row in rows)


def captured(engine: Engine, run: Callable[[], Any], kind: str = "SELECT") -> list[tuple[str, Any]]:
    """The statements of ``kind`` (and their parameters) that ``run`` sends through ``engine``."""
    statements: list[tuple[str, Any]] = []

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().startswith(kind):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", keep)
    try:
        run()
    finally:
        event.remove(engine, "before_cursor_execute", keep)
    return statements
