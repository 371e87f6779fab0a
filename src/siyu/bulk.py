"""Set-at-a-time writes: COPY on PostgreSQL, executemany in one transaction on SQLite — never a
model instance per row.

``insert_rows`` serves tables filled by background jobs (scores, rollups, memberships). ``insert``
serves ingestion (events, orders): rows are plain tuples of database-ready values (int, str,
Decimal, aware datetime, JSON already dumped to a string) in the order of ``columns``, and rows
that clash with a unique constraint can be skipped, which keeps re-sent batches idempotent even
when another writer stores the same ids concurrently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, models, transaction

_UNIQUE_VIOLATION = "23505"


def insert_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``table`` and ``columns`` come from model ``_meta``, never from user input."""
    cols = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(
                f"COPY {connection.ops.quote_name(table)} ({cols}) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(
                f"INSERT INTO {connection.ops.quote_name(table)} ({cols}) VALUES ({marks})",  # noqa: S608
                list(rows),
            )


def in_list(values: Sequence[Any]) -> tuple[str, list[Any]]:
    """SQL (after a column) and parameters matching any of ``values`` in one parameter, however
    many there are: ``= ANY(%s)`` with an array on PostgreSQL, ``json_each`` on SQLite. Django's
    ``__in`` spends milliseconds per thousand values compiling one placeholder each."""
    if connection.vendor == "postgresql":
        return "= ANY(%s)", [list(values)]
    return "IN (SELECT value FROM json_each(%s))", [json.dumps(list(values))]


def reserve_ids(model: type[models.Model], count: int) -> list[int]:
    """``count`` fresh primary keys, so that child rows can name their parent before it is
    written. PostgreSQL takes them from the table's sequence. SQLite continues after the highest
    id ever handed out; call it inside the transaction that inserts the rows, whose write lock
    (``BEGIN IMMEDIATE``) keeps any other writer from taking the same ids."""
    if count <= 0:
        return []
    table, pk = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [table, pk, count],
            )
            return [row[0] for row in cursor.fetchall()]
        # AUTOINCREMENT never reuses an id, even a deleted row's: sqlite_sequence remembers the highest.
        cursor.execute(
            f"SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = %s), 0), "  # noqa: S608
            f"COALESCE((SELECT max({pk}) FROM {table}), 0))",
            [table],
        )
        start = cursor.fetchone()[0] + 1
    return list(range(start, start + count))


def insert(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    unique: Sequence[str] = (),
    key: str = "",
) -> int | set[Any]:
    """Inserts ``rows``. With ``unique`` (the columns of a unique constraint), a row clashing with
    a stored one is skipped. Returns how many rows were written or, with ``key`` (a column whose
    values the rows carry, such as reserved ids), the set of its values that were written.

    PostgreSQL COPYs straight into the table, inside a savepoint; the caller has already left out
    the rows it found stored, so a clash means another writer got there meanwhile, and only then
    the batch goes through a staging table and ``INSERT … SELECT … ON CONFLICT DO NOTHING``."""
    if not rows:
        return set() if key else 0
    table = model._meta.db_table
    if connection.vendor == "postgresql":
        return _insert_postgresql(table, columns, rows, unique, key)
    cols = ", ".join(columns)
    marks = ", ".join(["%s"] * len(columns))
    on_conflict = f" ON CONFLICT ({', '.join(unique)}) DO NOTHING" if unique else ""
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({cols}) VALUES ({marks}){on_conflict}",  # noqa: S608
            _sqlite_rows(model, columns, rows),
        )
        written = cursor.rowcount
        if not key:
            return written
        values = _column(columns, rows, key)
        if written == len(rows):
            return set(values)
        # Some were skipped: the rows' own keys tell which ones are there now.
        match, params = in_list(values)
        cursor.execute(f"SELECT {key} FROM {table} WHERE {key} {match}", params)  # noqa: S608
        return {row[0] for row in cursor.fetchall()}


def _insert_postgresql(
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    unique: Sequence[str],
    key: str,
) -> int | set[Any]:
    cols = ", ".join(columns)
    with connection.cursor() as cursor:
        if not unique:
            _copy(cursor, table, cols, rows)
            return set(_column(columns, rows, key)) if key else len(rows)
        try:
            with transaction.atomic():
                _copy(cursor, table, cols, rows)
            return set(_column(columns, rows, key)) if key else len(rows)
        except IntegrityError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != _UNIQUE_VIOLATION:
                raise
        stage = f"siyu_stage_{table}"
        cursor.execute(
            f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {cols} FROM {table} WITH NO DATA"  # noqa: S608
        )
        _copy(cursor, stage, cols, rows)
        tail = f" RETURNING {key}" if key else ""
        cursor.execute(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} "  # noqa: S608
            f"ON CONFLICT ({', '.join(unique)}) DO NOTHING{tail}"
        )
        written = {row[0] for row in cursor.fetchall()} if key else cursor.rowcount
        # Dropped now: inside an outer transaction ON COMMIT DROP would fire only at its end.
        cursor.execute(f"DROP TABLE {stage}")
        return written


def _column(columns: Sequence[str], rows: Sequence[tuple[Any, ...]], key: str) -> list[Any]:
    at = list(columns).index(key)
    return [row[at] for row in rows]


def _copy(cursor: Any, table: str, cols: str, rows: Iterable[tuple[Any, ...]]) -> None:
    # psycopg's own errors, turned into Django's (IntegrityError, …) as for any other query.
    with connection.wrap_database_errors, cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _sqlite_rows(
    model: type[models.Model], columns: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> Iterable[tuple[Any, ...]]:
    """SQLite stores datetimes as naive text in the connection's zone (UTC), as Django does."""
    by_column = {f.column: f for f in model._meta.concrete_fields}
    at = [i for i, c in enumerate(columns) if isinstance(by_column[c], models.DateTimeField)]
    if not at:
        return rows
    zone = connection.timezone
    utc = zone.utcoffset(None) == timedelta(0)

    def adapt(value: datetime | None) -> str | None:
        if value is None:
            return None
        value = value.astimezone(zone)
        # "…+00:00" less its offset is exactly str() of the naive value, and half the cost.
        return value.isoformat(" ")[:-6] if utc else str(value.replace(tzinfo=None))

    out = []
    for row in rows:
        row = list(row)
        for i in at:
            row[i] = adapt(row[i])
        out.append(row)
    return out
