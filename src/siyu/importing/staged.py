"""PostgreSQL's set-at-a-time path for CSV orders and events.

A chunk of rows is COPYed as text into a temporary staging table and checked in SQL; every row
the checks accept is written by one ``INSERT … SELECT`` per table. The checks are deliberately
narrower than the API schema: they accept only rows whose meaning is unambiguous (a timestamp in
``YYYY-MM-DDTHH:MM:SS±HH:MM`` form, money as ``123.45``, a contact that resolves, no refunds …).
Every other row — bad, unusual or merely spelt differently — takes the ordinary path
(``_import_batch``: pydantic and the services, exactly as on SQLite), so rejection reasons, and
what an accepted row stores, are the same whichever path a row took. Clean rows never meet pydantic.

Things Python still does per row, because they are cheap there and exact: the csv module's parse
(with the physical line of each record), Python's ``str.strip`` of every cell, the 64-bit hash of
the row's id for the duplicate check (``SeenIds``), and an order's item list (``_items``: a JSON
parse and a few type checks, where SQL would spend tens of microseconds an item). Rows whose id
repeats — within the chunk or from an earlier chunk — go to the ordinary path together, which
reports the repeats naming the first line. Contact references are resolved once per distinct value
per chunk: the keyed hash needs the secret, which never goes to the database.

An event's properties are cast with ``::jsonb`` directly; when a chunk holds a cell that does not
parse (or a date PostgreSQL refuses), the statement is rolled back to its savepoint and run again
with casts that turn such cells into NULL — and so those rows into ordinary-path rows — costing
that one chunk a few microseconds per row more.

What is left is mostly the tables' own cost: each order row updates six indexes and its items
four, an event four, and the contact (and an order's store and staff) foreign keys are checked
row by row at commit. ``benchmarks/ingest.py`` measures that floor next to the import.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from pydantic_core import from_json

from siyu.commerce.models import OrderChannel, OrderStatus
from siyu.contacts.identities import NormalIdentity, normalise_identity
from siyu.contacts.models import Contact
from siyu.contacts.queries import contact_ids_by_identities
from siyu.errors import ValidationFailed
from siyu.events.models import EventType
from siyu.events.services import MAX_CLOCK_SKEW_SECONDS
from siyu.importing.formats import APP_ID_COLUMN, IDENTITY_KINDS
from siyu.tenancy.models import Workspace

__all__ = ["STAGED_KEYS", "StagedWriter", "staged_supported"]

#: The entities with a staged path, and the column that identifies a row (its duplicate key).
STAGED_KEYS = {"orders": "order_no", "events": "event_id"}

_STAGE = "pg_temp.siyu_import_stage"
_REFS = "pg_temp.siyu_import_refs"
_ITEMS = "pg_temp.siyu_import_items"
#: Only the forms every reader agrees on, as their digits-to-9 "shape" (cheaper than a regex):
#: seconds given, up to six decimals, an explicit offset. Hours above 23 and seconds above 59 are
#: checked apart (PostgreSQL would roll 24:00 and :60 over); impossible days and months pass the
#: shape and are refused by the cast, which sends the chunk to the careful statement.
_STAMP_SHAPES = [
    f"9999-99-99T99:99:99{fraction}{offset}"
    for fraction in ["", *(("." + "9" * n) for n in range(1, 7))]
    for offset in ("Z", "+99:99", "-99:99")
]
_MONEY = r"^(0|[1-9][0-9]{0,11})([.][0-9]{1,2})?$"
_COUNT = r"^(0|[1-9][0-9]{0,4})$"
#: A number with an exponent means something else to Python's float and PostgreSQL's numeric.
_EXPONENT = r"[0-9][eE][-+]?[0-9]"
_CONTACT_ID = re.compile(r"[1-9][0-9]{0,17}")
_MAX_MONEY = "999999999999.99"


_ITEM_KEYS = frozenset({"sku", "name", "quantity", "unit_price", "amount"})
_PLAIN_MONEY = re.compile(r"(0|[1-9][0-9]{0,11})(\.[0-9]{1,2})?")
_PLAIN_EXPONENT = re.compile(_EXPONENT)
#: Whitespace Python's strip removes and pydantic's does not.
_SEPARATORS = re.compile("[\x1c-\x1f]")
_MAX_AMOUNT = Decimal(_MAX_MONEY)


def _money_value(value: Any) -> Decimal | None:
    if type(value) is str:
        return Decimal(value) if _PLAIN_MONEY.fullmatch(value) else None
    if type(value) in (int, float):
        text = str(value)
        return Decimal(text) if _PLAIN_MONEY.fullmatch(text) else None
    return None


def _text(value: Any, longest: int) -> str | None:
    if type(value) is not str or _SEPARATORS.search(value):
        return None
    value = value.strip()
    return value if len(value) <= longest else None


def _items(cell: str | None) -> list[tuple[str, str, int, Decimal, Decimal]] | None:
    """An order's items as (sku, name, quantity, unit price, amount) when ``OrderItemIn`` takes
    each exactly as written; None when any item needs the schema's judgement (the row then takes
    the ordinary path). Checking them here is a few microseconds an order; in SQL, several
    dozen."""
    if cell is None:
        return []
    if _PLAIN_EXPONENT.search(cell):
        return None
    try:
        data = from_json(cell)
    except ValueError:
        return None
    if type(data) is not list or len(data) > 500:
        return None
    out = []
    for item in data:
        if type(item) is not dict or not item.keys() <= _ITEM_KEYS:
            return None
        sku, name = _text(item.get("sku"), 64), _text(item.get("name", ""), 200)
        quantity, price = item.get("quantity"), _money_value(item.get("unit_price"))
        if not sku or name is None or price is None:
            return None
        if type(quantity) is not int or not 0 < quantity <= 100_000:
            return None
        given = item.get("amount")
        amount = price * quantity if given is None else _money_value(given)
        if amount is None or amount > _MAX_AMOUNT:
            return None
        out.append((sku, name, quantity, price, amount))
    return out


def staged_supported(entity: str, fmt: str) -> bool:
    return connection.vendor == "postgresql" and fmt == "csv" and entity in STAGED_KEYS


class StagedWriter:
    """Staging tables for one import (temporary: this session only, dropped by ``close``)."""

    def __init__(self, entity: str, header: list[str], workspace: Workspace):
        self.entity, self.header, self.workspace = entity, header, workspace
        self.width = len(header)
        self._index = {name: i for i, name in enumerate(header)}
        cells = ", ".join(f"c{i} text" for i in range(self.width))
        with connection.cursor() as cursor:
            for table in (_STAGE, _REFS, _ITEMS):
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
            # Orders carry their items' count and total, worked out in Python (see _items).
            cursor.execute(
                f"CREATE TEMP TABLE siyu_import_stage (line bigint, {cells}, "
                "items_n integer, items_total numeric)"
            )
            cursor.execute(
                "CREATE TEMP TABLE siyu_import_items (line bigint, ord integer, sku text, "
                "name text, quantity integer, unit_price numeric, amount numeric)"
            )
            cursor.execute(
                "CREATE TEMP TABLE siyu_import_refs "
                "(kind text, value text, app text, contact_id bigint)"
            )
            for name, target in (("jsonb", "jsonb"), ("timestamptz", "timestamptz")):
                cursor.execute(
                    f"CREATE OR REPLACE FUNCTION pg_temp.siyu_try_{name}(value text) "
                    f"RETURNS {target} LANGUAGE plpgsql IMMUTABLE AS "
                    f"$$ BEGIN RETURN value::{target}; EXCEPTION WHEN others THEN RETURN NULL; END $$"
                )

    def close(self) -> None:
        try:
            with connection.cursor() as cursor:
                for table in (_STAGE, _REFS, _ITEMS):
                    cursor.execute(f"DROP TABLE IF EXISTS {table}")
        except DatabaseError:
            pass  # the session ends with its temporary tables anyway

    def write(
        self, rows: Sequence[tuple[int, list[str | None]]]
    ) -> tuple[int, int, list[int]] | None:
        """Writes what it accepts of ``rows`` ((line, stripped cells, None when empty)) in one
        transaction. Returns (created, accepted, lines of the rows it left for the ordinary path),
        or None when the chunk could not be staged at all (every row takes the ordinary path)."""
        try:
            # Commit is where deferred foreign keys are checked (a contact deleted meanwhile):
            # a chunk refused there is rolled back whole and retried row by row.
            with transaction.atomic(), connection.cursor() as cursor:
                return self._write(cursor, rows)
        except DatabaseError:
            return None

    def _write(
        self, cursor: Any, rows: Sequence[tuple[int, list[str | None]]]
    ) -> tuple[int, int, list[int]] | None:
        now = timezone.now()
        cursor.execute(f"TRUNCATE {_STAGE}, {_REFS}, {_ITEMS}")
        items_at = self._index.get("items") if self.entity == "orders" else None
        left: list[int] = []
        items: list[tuple[Any, ...]] = []
        with connection.wrap_database_errors, cursor.copy(f"COPY {_STAGE} FROM STDIN") as copy:
            pad = [None] * self.width
            for line, cells in rows:
                if len(cells) < self.width:
                    cells = cells + pad[len(cells) :]
                if self.entity != "orders":
                    copy.write_row((line, *cells, None, None))
                    continue
                parsed = _items(cells[items_at] if items_at is not None else None)
                if parsed is None:
                    left.append(line)
                    continue
                total = sum(i[-1] for i in parsed) if parsed else None
                copy.write_row((line, *cells, len(parsed), total))
                items += [(line, n, *i) for n, i in enumerate(parsed)]
        if items:
            with connection.wrap_database_errors, cursor.copy(f"COPY {_ITEMS} FROM STDIN") as copy:
                for row in items:
                    copy.write_row(row)
        self._resolve_contacts(cursor)
        params = {
            "ws": self.workspace.id,
            "now": now,
            "stamp_shapes": _STAMP_SHAPES,
            "money": _MONEY,
            "count": _COUNT,
            "exponent": _EXPONENT,
            "latest": now + timedelta(seconds=MAX_CLOCK_SKEW_SECONDS),
            "types": list(EventType.values),
            "channels": list(OrderChannel.values),
            "paid": OrderStatus.PAID.value,
        }
        # The planner cannot see into the staging table and guesses millions of rows;
        # JIT-compiling for that would cost seconds per chunk.
        cursor.execute("SET LOCAL jit = off")
        for careful in (False, True):
            try:
                with transaction.atomic():
                    cursor.execute(self._statement(careful), params)
                    created, accepted, refused = cursor.fetchone()
                return created, accepted, sorted(left + list(refused or []))
            except DatabaseError:
                if careful:
                    raise
        return None

    # -- SQL ---------------------------------------------------------------------------------------

    def _cell(self, name: str) -> str:
        i = self._index.get(name)
        return f"s.c{i}" if i is not None else "NULL::text"

    def _contact_ref(self) -> tuple[str, str, str]:
        """SQL for the (kind, value, app id) a row names its contact by: ``contact_id`` or the
        first non-empty ``contact_<kind>`` column, as ``formats._contact_ref`` picks it."""
        columns = [("id", "contact_id")] + [(k, f"contact_{k}") for k in IDENTITY_KINDS]
        present = [(kind, self._cell(col)) for kind, col in columns if col in self._index]
        if not present:
            return "NULL::text", "NULL::text", "''"
        kind = "CASE " + " ".join(f"WHEN {c} IS NOT NULL THEN '{k}'" for k, c in present) + " END"
        value = f"COALESCE({', '.join(c for _, c in present)})"
        scoped = [
            f"WHEN {kind} = '{k}' THEN COALESCE({self._cell('contact_' + col)}, '')"
            for k, col in APP_ID_COLUMN.items()
        ]
        app = f"CASE {' '.join(scoped)} ELSE '' END" if scoped else "''"
        return kind, value, app

    def _resolve_contacts(self, cursor: Any) -> None:
        """Fills the refs table with the contact of every distinct reference in the chunk that
        resolves; the rest (unknown, malformed) are left to the ordinary path to explain."""
        kind, value, app = self._contact_ref()
        cursor.execute(
            f"SELECT DISTINCT {kind}, {value}, {app} FROM {_STAGE} s WHERE {value} IS NOT NULL"  # noqa: S608
        )
        refs = cursor.fetchall()
        found: list[tuple[str, str, str, int]] = []
        ids = {int(v): v for k, v, _ in refs if k == "id" and _CONTACT_ID.fullmatch(v)}
        if ids:
            known = Contact.objects.filter(workspace=self.workspace, id__in=list(ids)).values_list(
                "id", flat=True
            )
            found += [("id", ids[cid], "", cid) for cid in known]
        normal: dict[tuple[str, str, str], NormalIdentity] = {}
        for k, v, a in refs:
            if k == "id" or len(v) > 200 or len(a) > 64:
                continue
            try:
                normal[(k, v, a)] = normalise_identity(k, v, a)
            except ValidationFailed:
                continue
        owners = contact_ids_by_identities(workspace=self.workspace, identities=normal.values())
        found += [(*ref, owners[n.key]) for ref, n in normal.items() if n.key in owners]
        if found:
            with connection.wrap_database_errors, cursor.copy(f"COPY {_REFS} FROM STDIN") as copy:
                for row in found:
                    copy.write_row(row)

    def _statement(self, careful: bool) -> str:
        jsonb = "pg_temp.siyu_try_jsonb({})" if careful else "{}::jsonb"
        stamp = "pg_temp.siyu_try_timestamptz({})" if careful else "{}::timestamptz"
        kind, value, app = self._contact_ref()
        build = _orders_sql if self.entity == "orders" else _events_sql
        return build(self._cell, kind, value, app, jsonb, stamp)


def _timestamp(column: str, stamp: str) -> str:
    # pydantic judges "before 2000" on the date as written, not in UTC.
    return (
        f"CASE WHEN translate({column}, '0123456789', '9999999999') = ANY(%(stamp_shapes)s)"
        f" AND substr({column}, 12, 2) < '24' AND substr({column}, 18, 2) < '60'"
        f" AND left({column}, 4) >= '2000' THEN {stamp.format(column)} END"
    )


def _money(column: str) -> str:
    return f"CASE WHEN {column} ~ %(money)s THEN {column}::numeric END"


_REFS_JOIN = (
    f"LEFT JOIN {_REFS} r ON r.kind = n.ref_kind AND r.value = n.ref_value AND r.app = n.ref_app"
)


def _events_sql(cell, kind, value, app, jsonb, stamp) -> str:  # noqa: ANN001
    return f"""
WITH n AS (
  SELECT s.line, {cell("event_id")} AS event_id, {cell("type")} AS type, {cell("name")} AS name,
         {cell("channel")} AS channel, {cell("occurred_at")} AS occurred_at,
         {cell("duration_seconds")} AS duration, {cell("properties")} AS properties,
         {kind} AS ref_kind, {value} AS ref_value, {app} AS ref_app
  FROM {_STAGE} s
), c AS (
  SELECT n.line, n.event_id, n.type, COALESCE(n.name, '') AS name,
         COALESCE(n.channel, '') AS channel, r.contact_id,
         {_timestamp("n.occurred_at", stamp)} AS occurred_at,
         n.duration IS NULL AS no_duration,
         CASE WHEN n.duration ~ %(count)s THEN n.duration::integer END AS duration,
         CASE WHEN n.properties IS NULL THEN '{{}}'::jsonb
              WHEN n.properties !~ %(exponent)s THEN {jsonb.format("n.properties")} END AS properties
  FROM n {_REFS_JOIN}
), v AS MATERIALIZED (
  SELECT c.*, COALESCE(
    char_length(c.event_id) <= 64 AND c.type = ANY(%(types)s) AND char_length(c.name) <= 64
    AND (c.type <> 'custom' OR c.name <> '') AND char_length(c.channel) <= 32
    AND c.contact_id IS NOT NULL AND c.occurred_at <= %(latest)s
    AND (c.no_duration OR c.duration <= 86400) AND jsonb_typeof(c.properties) = 'object',
    false) AS ok
  FROM c
), ins AS (
  INSERT INTO events_event (workspace_id, event_id, contact_id, type, name, channel, occurred_at,
                            duration_seconds, properties, received_at)
  SELECT %(ws)s, event_id, contact_id, type, name, channel, occurred_at, duration, properties, %(now)s
  FROM v WHERE ok ORDER BY line
  ON CONFLICT (workspace_id, event_id) DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM v WHERE ok),
       (SELECT array_agg(line ORDER BY line) FROM v WHERE NOT ok)
"""  # noqa: S608


def _orders_sql(cell, kind, value, app, jsonb, stamp) -> str:  # noqa: ANN001, ARG001
    return f"""
WITH n AS (
  SELECT s.line, {cell("order_no")} AS order_no, {cell("channel")} AS channel,
         {cell("platform")} AS platform, {cell("store_code")} AS store_code,
         {cell("staff_code")} AS staff_code, {cell("paid_at")} AS paid_at,
         {cell("gross_amount")} AS gross, {cell("discount_amount")} AS discount,
         {cell("amount")} AS amount, {cell("refunds")} AS refunds, s.items_n, s.items_total,
         {kind} AS ref_kind, {value} AS ref_value, {app} AS ref_app
  FROM {_STAGE} s
), c AS (
  SELECT n.line, n.order_no, n.channel, COALESCE(n.platform, '') AS platform, r.contact_id,
         n.store_code, st.id AS store_id, n.staff_code, sf.id AS staff_id,
         {_timestamp("n.paid_at", stamp)} AS paid_at,
         n.gross IS NULL AS no_gross, {_money("n.gross")} AS gross,
         n.discount IS NULL AS no_discount, {_money("n.discount")} AS discount,
         n.amount IS NULL AS no_amount, {_money("n.amount")} AS amount,
         n.refunds IS NULL AS no_refunds, n.items_n, n.items_total
  FROM n {_REFS_JOIN}
  LEFT JOIN commerce_store st ON st.workspace_id = %(ws)s AND st.code = n.store_code
  LEFT JOIN commerce_staff sf ON sf.workspace_id = %(ws)s AND sf.code = n.staff_code
), t AS (
  SELECT c.*, COALESCE(c.discount, 0) AS discount_v,
         COALESCE(c.gross, c.items_total, c.amount + COALESCE(c.discount, 0)) AS gross_v
  FROM c
), v AS MATERIALIZED (
  SELECT t.*, COALESCE(
    char_length(t.order_no) <= 64 AND t.channel = ANY(%(channels)s)
    AND char_length(t.platform) <= 32 AND t.contact_id IS NOT NULL
    AND (t.store_code IS NULL OR t.store_id IS NOT NULL)
    AND (t.staff_code IS NULL OR t.staff_id IS NOT NULL)
    AND t.paid_at IS NOT NULL AND t.no_refunds
    AND (t.no_gross OR t.gross IS NOT NULL) AND (t.no_discount OR t.discount IS NOT NULL)
    AND (t.no_amount OR t.amount IS NOT NULL)
    AND t.gross_v <= {_MAX_MONEY} AND (t.items_n = 0 OR t.items_total = t.gross_v)
    AND t.discount_v <= t.gross_v
    AND (t.amount IS NULL OR t.amount = t.gross_v - t.discount_v),
    false) AS ok
  FROM t
), ins AS (
  INSERT INTO commerce_order (workspace_id, order_no, contact_id, channel, platform, store_id,
                              staff_id, paid_at, gross_amount, discount_amount, amount,
                              refunded_amount, status, created_at)
  SELECT %(ws)s, order_no, contact_id, channel, platform, store_id, staff_id, paid_at, gross_v,
         discount_v, gross_v - discount_v, 0, %(paid)s, %(now)s
  FROM v WHERE ok ORDER BY line
  ON CONFLICT (workspace_id, order_no) DO NOTHING
  RETURNING id, order_no
), lines AS (
  INSERT INTO commerce_orderitem (workspace_id, order_id, product_id, sku, name, quantity,
                                  unit_price, amount)
  SELECT %(ws)s, ins.id, p.id, it.sku, it.name, it.quantity, it.unit_price, it.amount
  FROM ins JOIN v ON v.order_no = ins.order_no
  JOIN {_ITEMS} it ON it.line = v.line
  LEFT JOIN commerce_product p ON p.workspace_id = %(ws)s AND p.sku = it.sku
  ORDER BY ins.id, it.ord
)
SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM v WHERE ok),
       (SELECT array_agg(line ORDER BY line) FROM v WHERE NOT ok)
"""  # noqa: S608
