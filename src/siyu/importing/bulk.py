"""Fast writes for the high-volume imports (events, orders with items and refunds).

The rows come from the services' ``prepare_*``, so validation and resolution are exactly those
of the API; only the INSERT is ours, because ``bulk_create`` spends most of an import compiling
SQL. PostgreSQL: COPY into a temporary staging table, then ``INSERT … SELECT … ON CONFLICT DO
NOTHING`` — a row another writer stored meanwhile is skipped, so imports stay idempotent under
concurrency. SQLite: ``executemany`` in the batch's transaction, which holds the write lock
(``BEGIN IMMEDIATE``), so ids checked inside it cannot be taken by anyone else.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from siyu.commerce.models import Order, OrderItem, Refund
from siyu.commerce.services import PreparedOrders, write_orders
from siyu.events.models import Event
from siyu.events.services import PreparedEvents
from siyu.ingest import BatchResult
from siyu.tenancy.models import Workspace

_CHUNK = 500


def _fields(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


def _getter(f: models.Field, now: Any, postgres: bool) -> Callable[[models.Model], Any]:
    if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
        value = now if postgres else f.get_db_prep_save(now, connection)
        return lambda _obj: value
    name = f.attname
    if isinstance(f, models.JSONField):
        return lambda obj: json.dumps(getattr(obj, name), cls=DjangoJSONEncoder, ensure_ascii=False)
    if not postgres and isinstance(
        f, models.DateTimeField | models.DateField | models.DecimalField
    ):
        return lambda obj: f.get_db_prep_save(getattr(obj, name), connection)
    return lambda obj: getattr(obj, name)


def _rows(
    objs: Iterable[models.Model], fields: Sequence[models.Field]
) -> Iterable[tuple[Any, ...]]:
    getters = [_getter(f, timezone.now(), connection.vendor == "postgresql") for f in fields]
    for obj in objs:
        yield tuple(get(obj) for get in getters)


def _insert(
    cursor: Any,
    model: type[models.Model],
    objs: Sequence[models.Model],
    conflict: str = "",
    returning: str = "",
) -> Any:
    """Inserts ``objs``; with ``conflict``, rows clashing on those columns are skipped. Returns
    how many rows were written, or (PostgreSQL) the ``returning`` columns of the written rows."""
    if not objs:
        return [] if returning else 0
    fields = _fields(model)
    table, cols = model._meta.db_table, ", ".join(f.column for f in fields)
    on_conflict = f" ON CONFLICT ({conflict}) DO NOTHING" if conflict else ""
    if connection.vendor != "postgresql":
        marks = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {table} ({cols}) VALUES ({marks}){on_conflict}"  # noqa: S608
        cursor.executemany(sql, list(_rows(objs, fields)))
        return cursor.rowcount
    if not conflict:
        _copy(cursor, table, cols, _rows(objs, fields))
        return len(objs)
    stage = f"siyu_stage_{table}"
    # Explicitly dropped: inside an outer transaction ON COMMIT DROP would fire only at its end.
    create = f"CREATE TEMP TABLE {stage} ON COMMIT DROP AS SELECT {cols} FROM {table} WITH NO DATA"  # noqa: S608
    cursor.execute(create)
    _copy(cursor, stage, cols, _rows(objs, fields))
    tail = f" RETURNING {returning}" if returning else ""
    cursor.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage}{on_conflict}{tail}")  # noqa: S608
    written = cursor.fetchall() if returning else cursor.rowcount
    cursor.execute(f"DROP TABLE {stage}")
    return written


def _copy(cursor: Any, table: str, cols: str, rows: Iterable[tuple[Any, ...]]) -> None:
    with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


@transaction.atomic
def write_events(*, workspace: Workspace, prepared: PreparedEvents) -> BatchResult:
    with connection.cursor() as cursor:
        created = _insert(cursor, Event, prepared.events, "workspace_id, event_id")
    # Rows another writer stored between prepare and insert are already there: unchanged.
    return BatchResult(
        created=created, unchanged=prepared.unchanged + len(prepared.events) - created
    )


@transaction.atomic
def write_orders_bulk(*, workspace: Workspace, prepared: PreparedOrders) -> BatchResult:
    """New orders here; refunds added to orders stored earlier go through the service, which
    re-totals them under row locks (rare)."""
    result = write_orders(
        workspace=workspace,
        prepared=PreparedOrders([], [], [], prepared.existing_refunds, prepared.unchanged),
    )
    if not prepared.orders:
        return result
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            returned = _insert(
                cursor, Order, prepared.orders, "workspace_id, order_no", "order_no, id"
            )
            ids = dict(returned)
        else:
            taken = _order_ids(workspace, [o.order_no for o in prepared.orders])
            fresh = [o for o in prepared.orders if o.order_no not in taken]
            _insert(cursor, Order, fresh)
            ids = _order_ids(workspace, [o.order_no for o in fresh])
        items, refunds, created = [], [], 0
        for order, its, rfs in zip(prepared.orders, prepared.items, prepared.refunds, strict=True):
            if order.order_no not in ids:
                continue
            created += 1
            for obj in (*its, *rfs):
                obj.order_id = ids[order.order_no]
            items += its
            refunds += rfs
        # Items belong to orders inserted just now, so nothing can clash: straight into the table.
        _insert(cursor, OrderItem, items)
        _insert(cursor, Refund, refunds, "workspace_id, refund_no")
    result.created = created
    result.unchanged += len(prepared.orders) - created
    return result


def _order_ids(workspace: Workspace, numbers: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for start in range(0, len(numbers), _CHUNK):
        out.update(
            Order.objects.filter(
                workspace=workspace, order_no__in=numbers[start : start + _CHUNK]
            ).values_list("order_no", "id")
        )
    return out
