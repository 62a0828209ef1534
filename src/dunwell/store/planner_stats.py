"""Tell SQLite's query planner which columns hold only a few values.

Every tenant table carries ``site_id`` with an index on it, and nearly every
query filters on it. Without statistics SQLite guesses that an equality on
the first column of any index selects about ten rows, so between
``ix_invoices_site_id (site_id)`` and ``ix_invoices_customer_id
(customer_id)`` it has no reason to prefer the customer, and it often took
the site: the query then read every row the site has. A merchant usually has
one site, so that was the whole table, and the cost of a customer page, a
frequency-cap check or a concierge reply grew with the merchant's history.
The outbox's ``channel`` and every queue's ``status`` have the same flaw:
one channel is half the outbox, and "delivered" is most of it.

``ANALYZE`` would measure the truth, but on a new database the tables are
empty and there is nothing to measure, and on a large live database it is a
long write. SQLite documents a third way: write the statistics the planner
should believe into ``sqlite_stat1``. For every index that starts with one
of these few-valued columns we record that one value matches a large share
of the table, keep SQLite's own defaults for the columns after it, and turn
off skip-scan for the index (a column with few values otherwise invites the
planner to step through each value). Other indexes keep SQLite's defaults.
Rows already in ``sqlite_stat1`` (a merchant who ran ``ANALYZE``) are
measured figures and are never replaced.

PostgreSQL keeps its own statistics (autovacuum analyses tables as they
grow), so this is SQLite only.
"""

from __future__ import annotations

from sqlalchemy import Connection

# SQLite's own assumption for a table it knows nothing about (about 2**20
# rows), so the figures only change what one value of a column matches.
ASSUMED_ROWS = 1_000_000
# How many rows one value of a column with few values matches. A site or a
# channel is a quarter of the table: far more than any other key (SQLite
# guesses 10 rows, times the length of an IN list), and still fewer than
# reading the whole table, so a read by the site alone keeps the site's
# index. A status is a sixteenth, below both: the queues' claims and the
# metrics' due counts look up rare states ("pending") and must prefer the
# status to the channel, while a page of one site's messages in a common
# state ("delivered") should still walk the site in id order rather than
# gather and sort every delivered row. The figures were chosen by replaying
# every statement the test suite runs through EXPLAIN QUERY PLAN.
ROWS_PER_VALUE = {
    "site_id": ASSUMED_ROWS // 4,
    "channel": ASSUMED_ROWS // 4,
    "status": ASSUMED_ROWS // 16,
}
FEW_VALUED_COLUMNS = frozenset(ROWS_PER_VALUE)
# SQLite's defaults for an equality on the 1st, 2nd, ... column of an index
# it has no statistics for (sqlite3DefaultRowEst); the last repeats.
_DEFAULT_ROWS_PER_KEY = (10, 9, 8, 7, 6, 5)


def index_statistics(columns: list[str | None], unique: bool) -> str | None:
    """The ``sqlite_stat1`` figures for one index, or None to keep the defaults.

    The figures are the index's row count, then for each prefix of its
    columns how many rows one value of that prefix matches, then keywords.
    """
    first = columns[0] if columns else None
    if first is None or first not in ROWS_PER_VALUE:
        return None
    if unique and len(columns) == 1:
        return None  # one row per site: the column is as selective as it gets
    per_key = [ROWS_PER_VALUE[first]]
    for position in range(1, len(columns)):
        per_key.append(_DEFAULT_ROWS_PER_KEY[min(position - 1, len(_DEFAULT_ROWS_PER_KEY) - 1)])
    if unique:
        per_key[-1] = 1
    return " ".join([str(ASSUMED_ROWS), *(str(n) for n in per_key), "noskipscan"])


def seed_sqlite_statistics(conn: Connection) -> int:
    """Write figures for indexes that have none; returns how many were written.

    Idempotent, and cheap: it reads the schema, never the tables.
    """
    if conn.dialect.name != "sqlite":
        return 0
    # Creates sqlite_stat1 if it is missing, without reading any table.
    conn.exec_driver_sql("ANALYZE sqlite_schema")
    measured = {
        (row[0], row[1])
        for row in conn.exec_driver_sql("SELECT tbl, idx FROM sqlite_stat1 WHERE idx IS NOT NULL")
    }
    tables = [
        row[0]
        for row in conn.exec_driver_sql(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite%'"
        )
    ]
    written = 0
    for table in tables:
        for _seq, index, unique, _origin, _partial in conn.exec_driver_sql(
            f'PRAGMA index_list("{table}")'
        ):
            if (table, index) in measured:
                continue
            columns = [row[2] for row in conn.exec_driver_sql(f'PRAGMA index_info("{index}")')]
            figures = index_statistics(columns, bool(unique))
            if figures is None:
                continue
            conn.exec_driver_sql(
                "INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES (?, ?, ?)",
                (table, index, figures),
            )
            written += 1
    if written:
        # The planner reads the statistics with the schema; this makes this
        # connection read them again now.
        conn.exec_driver_sql("ANALYZE sqlite_schema")
    return written
