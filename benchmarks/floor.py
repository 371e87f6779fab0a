"""The *table floor* of a write benchmark (PostgreSQL only): rows a run just stored, inserted
again, already typed, into empty copies of their tables with the same indexes, checks and
foreign keys, in one committed transaction. It is what writing those rows costs in siyu's schema
whatever the code that wrote them did, so ``floor ÷ measured`` (1 is the best possible) shows
what is left to gain in the code, and ``baseline ÷ floor`` what the schema itself costs next to a
bare table."""

from __future__ import annotations

import time

from django.db import connection, transaction


def table_floor_seconds(selections: list[tuple[str, str, list]]) -> float:
    """``selections``: (table, WHERE clause, its parameters) per table, parents first."""
    copies = []
    with transaction.atomic(), connection.cursor() as cursor:
        for table, where, params in selections:
            copy = f"bench_floor_{table}"
            copies.append((table, copy, where, params))
            cursor.execute(f"DROP TABLE IF EXISTS {copy}")
            cursor.execute(f"CREATE TABLE {copy} (LIKE {table} INCLUDING ALL)")
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = %s::regclass AND contype = 'f'",
                [table],
            )
            for name, definition in cursor.fetchall():
                cursor.execute(f"ALTER TABLE {copy} ADD CONSTRAINT bench_{name} {definition}")
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        for table, copy, where, params in copies:
            cursor.execute(f"INSERT INTO {copy} SELECT * FROM {table} WHERE {where}", params)  # noqa: S608
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        for _, copy, _, _ in reversed(copies):
            cursor.execute(f"DROP TABLE {copy}")
    return elapsed
