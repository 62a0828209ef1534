"""Where the dunning tick's time goes: the database driver, or Python; prints JSON.

    python bench/tick_breakdown.py --invoices 20000 --db sqlite|postgres --json

``dunning_tick.py`` gives the tick's rate and two limits. This script
answers the question those leave open: how fast could the tick go if its
Python cost nothing, and would fewer indexes help? It loads N invoices due
now as ``dunning_tick.py`` does and runs one worker in this process (no
start-up counted) until idle, timing every statement and commit at the
driver. It stops with an error unless every invoice was handled and has
exactly one payment attempt.

It prints:

- ``driver_seconds``: time inside the driver's ``execute``/``executemany``
  and ``commit`` calls, so the database's own work on the tick's rows
  (SQLite runs in this process; PostgreSQL's time includes the round
  trips). Fetching result rows is counted as Python.
- ``driver_bound_invoices_per_s``: invoices over ``driver_seconds``, the
  tick's rate if everything else took no time at all.
- ``floor_invoices_per_s`` and ``floor_without_secondary_indexes_per_s``:
  the floor of ``dunning_tick.py`` (the tick's rows written again with its
  statements and no logic), once into a database loaded as usual and once
  into one whose tables the tick inserts into have lost every index that
  is not unique (``secondary_indexes_dropped`` of them). The unique ones
  stay: the writes' ``ON CONFLICT`` needs them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from dunning_tick import (
    SECRET,
    database,
    drop_database,
    floor_invoices_per_s,
    load,
    written_rows,
)
from sqlalchemy import Engine, event, inspect

from dunwell.bootstrap import bootstrap
from dunwell.settings import Settings
from dunwell.store import tables
from dunwell.store.db import make_engine
from dunwell.worker import Worker

#: The tables the tick inserts rows into (it only updates the others).
INSERTED_INTO = (tables.payment_attempts, tables.sandbox_charges, tables.events, tables.outbox)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=20000)
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", action="store_true", help="print JSON only (the default)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = database(args.db, folder, "tick")
        try:
            site = load(url, args.invoices)
            seconds, driver_seconds = _tick_in_process(url, args.batch)
            counts = written_rows(url, site)
            if counts["handled"] != args.invoices or counts["payment_attempts"] != args.invoices:
                raise SystemExit(f"the tick did not handle each invoice once: {counts}")
            floor, _ = _floor(args.db, folder, url, site, args, bare=False)
            bare, dropped = _floor(args.db, folder, url, site, args, bare=True)
        finally:
            drop_database(url)
    print(
        json.dumps(
            {
                "invoices": args.invoices,
                "db": args.db,
                "rows_per_invoice": round(counts["rows"] / args.invoices, 2),
                "seconds": round(seconds, 3),
                "invoices_per_s": round(args.invoices / seconds),
                "driver_seconds": round(driver_seconds, 3),
                "driver_share": round(driver_seconds / seconds, 3),
                "driver_bound_invoices_per_s": round(args.invoices / driver_seconds),
                "floor_invoices_per_s": round(floor),
                "floor_without_secondary_indexes_per_s": round(bare),
                "secondary_indexes_dropped": dropped,
            }
        )
    )


def _tick_in_process(url: str, batch: int) -> tuple[float, float]:
    """Seconds one in-process worker takes until idle, and those inside the driver."""
    engine = make_engine(url)
    settings = Settings(
        database_url=url, secret_key=SECRET, delivery_batch_size=0, batch_size=batch
    )
    app = bootstrap(settings, engine=engine)
    worker = Worker(app, "breakdown")
    with _driver_time(engine) as spent:
        started = time.perf_counter()
        worker.run_until_idle()
        seconds = time.perf_counter() - started
    app.close()
    return seconds, spent[0]


@contextmanager
def _driver_time(engine: Engine) -> Iterator[list[float]]:
    """Add up the time ``engine`` spends in the driver's execute and commit calls."""
    spent = [0.0]
    started: dict[int, float] = {}

    def before(conn: Any, *_: Any) -> None:
        started[id(conn)] = time.perf_counter()

    def after(conn: Any, *_: Any) -> None:
        spent[0] += time.perf_counter() - started.pop(id(conn))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    # SQLAlchemy has an event before a commit and none after it, so the
    # dialect's commit call is timed directly, for this engine only.
    dialect = engine.dialect
    commit: Callable[[Any], None] = dialect.do_commit

    def timed_commit(dbapi_connection: Any) -> None:
        began = time.perf_counter()
        commit(dbapi_connection)
        spent[0] += time.perf_counter() - began

    dialect.do_commit = timed_commit  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        dialect.do_commit = commit  # type: ignore[method-assign, assignment]
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def _floor(
    db: str, folder: str, done_url: str, site: int, args: argparse.Namespace, *, bare: bool
) -> tuple[float, int]:
    """The floor in invoices/s, and how many indexes were dropped first (``bare``)."""
    replay = database(db, folder, "bare" if bare else "floor")
    try:
        load(replay, args.invoices)
        dropped = _drop_secondary_indexes(replay) if bare else 0
        return floor_invoices_per_s(done_url, replay, site, args.batch), dropped
    finally:
        drop_database(replay)


def _drop_secondary_indexes(url: str) -> int:
    """Drop every non-unique index of the tables the tick inserts into; return how many."""
    engine = make_engine(url)
    inspector = inspect(engine)
    names = [
        index["name"]
        for table in INSERTED_INTO
        for index in inspector.get_indexes(table.name)
        if not index["unique"] and index["name"]
    ]
    with engine.begin() as conn:
        for name in names:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
    engine.dispose()
    return len(names)


if __name__ == "__main__":
    main()
