"""Bulk-load and bulk-delete helpers for the demo at its benchmark size (1M contacts, 10M orders,
30M events) on PostgreSQL.

Django declares every foreign key ``DEFERRABLE INITIALLY DEFERRED``: each COPYed row queues one
referential check that runs, one index probe at a time, when the transaction commits — that one
commit was most of a large build. Maintaining a dozen B-tree indexes row by row costs as much
again. So while the pool is written the loaded tables lose their foreign keys, unique constraints
and secondary indexes, and get them back afterwards: an index built in one sort, a foreign key
validated by one join. It all happens inside the build's transaction, so a failed build leaves
the schema and the data as they were. The price is an exclusive lock on those tables for the
length of the build, which suits a demo or benchmark database, not a busy production one.

SQLite keeps its indexes during a build (its build is small and checks deferred foreign keys
with a counter, not a query per row).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connection, models


@dataclass(frozen=True)
class _Dropped:
    table: str
    name: str
    definition: str
    kind: str  # "index", "unique" or "foreign"


def _dropped(tables: Sequence[str]) -> list[_Dropped]:
    """What to drop on ``tables``: foreign keys, unique constraints no foreign key depends on,
    and indexes that back no constraint. Primary keys stay (the reserved ids ascend, so they
    only append)."""
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid),
                   CASE c.contype WHEN 'f' THEN 'foreign' ELSE 'unique' END
            FROM pg_constraint c
            WHERE c.conrelid = ANY(%s::regclass[]) AND (
                c.contype = 'f' OR (c.contype = 'u' AND NOT EXISTS (
                    SELECT 1 FROM pg_constraint r WHERE r.contype = 'f' AND r.conindid = c.conindid
                )))
            ORDER BY c.contype DESC, c.conname
            """,
            [list(tables)],
        )
        constraints = [_Dropped(*row) for row in cur.fetchall()]
        cur.execute(
            """
            SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text,
                   pg_get_indexdef(i.indexrelid), 'index'
            FROM pg_index i
            WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary AND NOT EXISTS (
                SELECT 1 FROM pg_constraint c
                WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid
            )
            ORDER BY 2
            """,
            [list(tables)],
        )
        indexes = [_Dropped(*row) for row in cur.fetchall()]
    return constraints + indexes


def _checks_run_now(cur: Any) -> None:
    """A table with queued foreign-key checks cannot be altered: run them now, then go back to
    deferring them as Django's constraints ask."""
    cur.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cur.execute("SET CONSTRAINTS ALL DEFERRED")


@contextmanager
def keys_and_indexes_deferred(targets: Sequence[type[models.Model]]) -> Iterator[None]:
    """Drops the foreign keys, unique constraints and secondary indexes of ``targets``' tables
    for the block and recreates them after it. Call it inside a transaction."""
    if connection.vendor != "postgresql":
        yield
        return
    qn = connection.ops.quote_name
    dropped = _dropped([m._meta.db_table for m in targets])
    with connection.cursor() as cur:
        _checks_run_now(cur)
        for d in dropped:
            if d.kind == "index":
                cur.execute(f"DROP INDEX {d.name}")
            else:
                cur.execute(f"ALTER TABLE {d.table} DROP CONSTRAINT {qn(d.name)}")
    yield
    with connection.cursor() as cur:
        # Local to the build's transaction: sorts for the index builds and hash joins for the
        # foreign-key checks in memory, not in temporary files.
        cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
        cur.execute("SET LOCAL work_mem = '256MB'")
        # Indexes first, so that the unique constraints and foreign keys find them.
        for d in sorted(dropped, key=lambda d: ("index", "unique", "foreign").index(d.kind)):
            if d.kind == "index":
                cur.execute(d.definition)
            else:
                cur.execute(f"ALTER TABLE {d.table} ADD CONSTRAINT {qn(d.name)} {d.definition}")


def _workspace_models() -> list[type[models.Model]]:
    """Models with a ``workspace`` foreign key whose table exists (an app whose migration has
    not run yet has none to delete from)."""
    existing = set(connection.introspection.table_names())
    return [
        m
        for m in apps.get_models()
        if m._meta.db_table in existing
        and not m._meta.proxy
        and any(
            f.name == "workspace"
            and f.is_relation
            and f.related_model._meta.label == "tenancy.Workspace"
            for f in m._meta.concrete_fields
        )
    ]


def workspace_rows_delete(*, workspace_id: int) -> None:
    """Deletes the workspace's rows table by table, ``DELETE … WHERE workspace_id = %s``, rather
    than through Django's cascade, which loads ids and deletes them in batches of a few hundred.
    On PostgreSQL the foreign keys of those tables are set aside meanwhile: re-adding one checks
    the whole table in one join, where a delete pays a deferred check per deleted row (tens of
    millions at the benchmark size); and a table holding only this workspace's rows is
    truncated. The workspace row itself is left to the caller. Call it inside a transaction."""
    targets = _workspace_models()
    qn = connection.ops.quote_name
    with connection.cursor() as cur:
        if connection.vendor != "postgresql":
            # SQLite checks a deferred foreign key with a counter, not a query per row.
            for m in targets:
                column = qn(m._meta.get_field("workspace").column)
                cur.execute(
                    f"DELETE FROM {qn(m._meta.db_table)} WHERE {column} = %s",  # noqa: S608
                    [workspace_id],
                )
            return
        cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
        cur.execute("SET LOCAL work_mem = '256MB'")
        foreign = [d for d in _dropped([m._meta.db_table for m in targets]) if d.kind == "foreign"]
        _checks_run_now(cur)
        for d in foreign:
            cur.execute(f"ALTER TABLE {d.table} DROP CONSTRAINT {qn(d.name)}")
        alone = []
        for m in targets:
            table, column = qn(m._meta.db_table), qn(m._meta.get_field("workspace").column)
            cur.execute(
                # < or >, not <>: two index range scans instead of reading every row.
                f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {column} < %s OR {column} > %s)",  # noqa: S608
                [workspace_id, workspace_id],
            )
            if cur.fetchone()[0]:
                cur.execute(f"DELETE FROM {table} WHERE {column} = %s", [workspace_id])  # noqa: S608
            else:
                alone.append(table)
        if alone:
            cur.execute(f"TRUNCATE {', '.join(alone)}")
        for d in foreign:
            cur.execute(f"ALTER TABLE {d.table} ADD CONSTRAINT {qn(d.name)} {d.definition}")
