"""Batched INSERTs and UPDATEs written straight through the database driver.

The worker writes a dozen rows per invoice it handles, in batches of
hundreds. Through SQLAlchemy's ``execute(statement, rows)`` each row goes
through parameter construction, key lookups and type processing in Python,
which costs several times what the database itself spends on the row. Here
the SQL text is built once per table, columns and dialect, each row becomes
a plain tuple, and the driver's ``executemany`` runs it (``sqlite3`` in C,
``psycopg`` pipelined).

Values are converted by the same bind processors SQLAlchemy itself would
use for each column's type (``UTCDateTime``, ``JSON``, ``Boolean``...), so
the stored values are identical whichever path wrote them. The statements
run on the caller's ``Connection``, inside its transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Connection, Dialect, Table
from sqlalchemy.exc import DBAPIError

#: In an UPDATE's ``SET`` expression, where the row's value goes.
VALUE = "{value}"

Converter = Callable[[Any], Any]


@dataclass(frozen=True)
class _Prepared:
    sql: str
    names: tuple[str, ...]
    converters: tuple[tuple[int, Converter], ...]


def bulk_insert(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    ignore_conflicts_on: Sequence[str] = (),
) -> None:
    """INSERT ``rows`` (all with the same keys, the columns to write).

    With ``ignore_conflicts_on``, a row that collides with an existing one
    on that unique key is skipped (``ON CONFLICT (...) DO NOTHING``, which
    both SQLite and PostgreSQL speak).
    """
    if not rows:
        return
    prepared = _insert(conn.dialect, table, tuple(rows[0]), tuple(ignore_conflicts_on))
    conn.exec_driver_sql(prepared.sql, _params(prepared, rows))


def bulk_insert_returning(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    returning: Sequence[str],
    *,
    ignore_conflicts_on: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """:func:`bulk_insert`, reading back ``returning`` of each row inserted, in row order.

    A row skipped by ``ignore_conflicts_on`` returns nothing. Values come
    back as the driver reads them (no result processing), so ask for
    plain columns: ids, keys, text.

    SQLAlchemy's own ``insert().returning()`` with many rows writes one
    statement with every row's values inline; psycopg parses that long
    text again on every call (it caches only short statements), which cost
    more than the rows themselves. Here the statement stays one row long:
    psycopg pipelines it once per row and reads each row's result set,
    and sqlite3 runs it row by row in C.
    """
    if not rows:
        return []
    _check_columns(table, returning)
    prepared = _insert(conn.dialect, table, tuple(rows[0]), tuple(ignore_conflicts_on))
    sql = f"{prepared.sql} RETURNING {', '.join(returning)}"
    params = _params(prepared, rows)
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name == "postgresql":
            return _returned_by_pipeline(cursor, sql, params)
        found: list[tuple[Any, ...]] = []
        for values in params:
            cursor.execute(sql, values)
            found.extend(tuple(row) for row in cursor.fetchall())
        return found
    except conn.dialect.loaded_dbapi.Error as error:
        raise _as_sqlalchemy_error(conn, cursor, sql, error) from error
    finally:
        cursor.close()


def _as_sqlalchemy_error(conn: Connection, cursor: Any, sql: str, error: Exception) -> Exception:
    """The driver's error as SQLAlchemy raises it from ``execute``, the connection dropped if lost.

    The cursor here is the driver's own, so SQLAlchemy never saw the error:
    callers catch ``OperationalError`` (the worker waits for a database that
    restarts) and ``IntegrityError``, and a lost connection must not go back
    to the pool.
    """
    lost = conn.dialect.is_disconnect(cast(Any, error), conn.connection.dbapi_connection, cursor)
    if lost:
        conn.invalidate(error)
    return DBAPIError.instance(
        sql,
        None,  # the values are customers' data: never in an error
        error,
        conn.dialect.loaded_dbapi.Error,
        hide_parameters=True,
        connection_invalidated=lost,
        dialect=conn.dialect,
    )


def _returned_by_pipeline(
    cursor: Any, sql: str, params: list[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    # psycopg 3: executemany(returning=True) keeps one result set per row.
    cursor.executemany(sql, params, returning=True)
    found: list[tuple[Any, ...]] = []
    while True:
        found.extend(tuple(row) for row in cursor.fetchall())
        if not cursor.nextset():
            return found


def bulk_update(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    where: tuple[str, str],
    set_sql: Mapping[str, str] | None = None,
) -> None:
    """UPDATE one row per item of ``rows``, found by ``where = (column, row key)``.

    Every other key of a row is a column set to that value. ``set_sql``
    gives a column an SQL expression instead: one that mentions ``{value}``
    takes the row's value of that column there (``COALESCE({value}, outcome)``),
    one that does not is set as written for every row (``NULL``).
    """
    if not rows:
        return
    expressions = tuple(sorted((set_sql or {}).items()))
    prepared = _update(conn.dialect, table, tuple(rows[0]), where, expressions)
    conn.exec_driver_sql(prepared.sql, _params(prepared, rows))


def _params(prepared: _Prepared, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Each row as the tuple of driver values its statement takes."""
    names = prepared.names
    converters = [(index, _Memo(convert)) for index, convert in prepared.converters]
    params: list[tuple[Any, ...]] = []
    append = params.append
    for row in rows:
        values = [row[name] for name in names]
        for index, convert in converters:
            values[index] = convert(values[index])
        append(tuple(values))
    return params


class _Memo:
    """A converter that reuses its last answer when handed the same object again.

    A batch's rows share objects: one ``now`` for every timestamp of a site's
    rows, one payload for a step's email and text. The rows keep those
    objects alive for the whole call, so the same id is the same object.
    """

    __slots__ = ("convert", "last_in", "last_out")

    def __init__(self, convert: Converter) -> None:
        self.convert = convert
        self.last_in: Any = _Memo
        self.last_out: Any = None

    def __call__(self, value: Any) -> Any:
        if value is not self.last_in:
            self.last_out = self.convert(value)
            self.last_in = value
        return self.last_out


@lru_cache(maxsize=256)
def _insert(
    dialect: Dialect, table: Table, names: tuple[str, ...], conflict: tuple[str, ...]
) -> _Prepared:
    _check_columns(table, names)
    missing_defaults = [
        c.name for c in table.columns if c.default is not None and c.name not in names
    ]
    if missing_defaults:
        # Python-side defaults are SQLAlchemy's to apply; this path has none.
        raise ValueError(f"{table.name}: no value for {', '.join(missing_defaults)}")
    mark = _placeholder(dialect)
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join(mark for _ in names)})"
    if conflict:
        sql += f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    return _Prepared(sql, names, _converters(dialect, table, names))


@lru_cache(maxsize=256)
def _update(
    dialect: Dialect,
    table: Table,
    keys: tuple[str, ...],
    where: tuple[str, str],
    expressions: tuple[tuple[str, str], ...],
) -> _Prepared:
    where_column, where_key = where
    if where_key not in keys:
        raise ValueError(f"{table.name}: rows have no {where_key!r} to find them by")
    mark = _placeholder(dialect)
    special = dict(expressions)
    assignments: list[str] = []
    names: list[str] = []
    columns: list[str] = []
    for key in keys:
        if key == where_key:
            continue
        expression = special.pop(key, VALUE)
        assignments.append(f"{key} = {expression.replace(VALUE, mark)}")
        names.append(key)
        columns.append(key)
    for column, expression in special.items():
        if VALUE in expression:
            raise ValueError(f"{table.name}: {column!r} uses a value the rows do not carry")
        assignments.append(f"{column} = {expression}")
    names.append(where_key)
    columns.append(where_column)
    _check_columns(table, columns)
    sql = f"UPDATE {table.name} SET {', '.join(assignments)} WHERE {where_column} = {mark}"
    return _Prepared(sql, tuple(names), _converters(dialect, table, columns))


def _converters(
    dialect: Dialect, table: Table, columns: Sequence[str]
) -> tuple[tuple[int, Converter], ...]:
    found = []
    for index, name in enumerate(columns):
        processor = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if processor is not None:
            found.append((index, processor))
    return tuple(found)


def _check_columns(table: Table, names: Sequence[str]) -> None:
    unknown = [name for name in names if name not in table.c]
    if unknown:
        raise ValueError(f"{table.name} has no column {', '.join(map(repr, unknown))}")


def _placeholder(dialect: Dialect) -> str:
    if dialect.paramstyle == "qmark":
        return "?"  # sqlite3
    if dialect.paramstyle in ("format", "pyformat"):
        return "%s"  # psycopg, which takes %s with a sequence of values
    raise ValueError(f"no bulk writes for the {dialect.paramstyle!r} parameter style")
