"""Ibis table definitions built from the Django models, and the two places an expression runs.

Analytics are written once as Ibis expressions over these tables. ``fetch`` compiles an
expression to the dialect of the database Django uses (SQLite or PostgreSQL) and runs it on
Django's own connection, so it sees the current transaction; ``duckdb_fetch`` runs the very
same expression on DuckDB over Parquet files written by ``parquet_export``.

The schemas are derived from each model's ``_meta`` (table name, column, type, nullability),
so a migration can never leave them behind.

Literals are inlined by Ibis (sqlglot quotes them); nothing here formats a user's value into
SQL. Times must be compared against aware UTC datetimes computed in Python (see
``utc_cutoff``): Django stores UTC, on SQLite as text ``YYYY-MM-DD HH:MM:SS[.ffffff]``, which
Ibis's SQLite literals match character for character, so text order is time order.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import ibis
import ibis.backends.sql.compilers as sql_compilers
import ibis.expr.datatypes as dt
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlglot.expressions as sge
from django.db import connection, models

_INTEGER_TYPES = {
    "AutoField": dt.int64,
    "BigAutoField": dt.int64,
    "SmallAutoField": dt.int64,
    "IntegerField": dt.int64,
    "BigIntegerField": dt.int64,
    "SmallIntegerField": dt.int64,
    "PositiveIntegerField": dt.int64,
    "PositiveBigIntegerField": dt.int64,
    "PositiveSmallIntegerField": dt.int64,
}
_TEXT_TYPES = {"CharField", "TextField", "SlugField", "EmailField", "URLField", "UUIDField"}


def _dtype(field: models.Field) -> dt.DataType:
    kind = field.get_internal_type()
    nullable = bool(field.null)
    if isinstance(field, models.ForeignKey):
        return dt.Int64(nullable=nullable)
    if kind in _INTEGER_TYPES:
        return _INTEGER_TYPES[kind].copy(nullable=nullable)
    if kind in _TEXT_TYPES:
        return dt.String(nullable=nullable)
    if kind == "DateTimeField":
        return dt.Timestamp(timezone="UTC", nullable=nullable)
    if kind == "DateField":
        return dt.Date(nullable=nullable)
    if kind == "DecimalField":
        return dt.Decimal(precision=field.max_digits, scale=field.decimal_places, nullable=nullable)
    if kind == "BooleanField":
        return dt.Boolean(nullable=nullable)
    if kind == "FloatField":
        return dt.Float64(nullable=nullable)
    if kind == "JSONField":
        # PostgreSQL stores JSONField as jsonb; Ibis must emit the jsonb functions for it.
        return dt.JSON(binary=True, nullable=nullable)
    raise TypeError(f"no Ibis type for {field.model.__name__}.{field.name} ({kind})")


def _columns(model: type[models.Model]) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if f.column]


@cache
def table(model: type[models.Model]) -> ibis.Table:
    """The unbound Ibis table for ``model``, named like its database table."""
    schema = ibis.schema({f.column: _dtype(f) for f in _columns(model)})
    return ibis.table(schema, name=model._meta.db_table)


def dialect() -> str:
    """The sqlglot dialect of Django's default database."""
    return {"postgresql": "postgres", "sqlite": "sqlite"}[connection.vendor]


def utc_cutoff(moment: datetime) -> datetime:
    """An aware datetime in UTC, the form every timestamp comparison in an expression needs."""
    if moment.tzinfo is None:
        raise ValueError("cut-off needs a time zone")
    return moment.astimezone(UTC)


def _sqlite_json_unwrap(node: sge.Expression) -> sge.Expression:
    """Ibis 12 unwraps a JSON scalar on SQLite as ``IIF(JSON_TYPE(JSON_EXTRACT(x, '$.k')) = 'text',
    x ->> '$.k' ->> '$', NULL)``. SQLite's JSON_EXTRACT already yields the SQL value, so both
    the JSON_TYPE and the second ``->>`` fail on text ("malformed JSON"); this rewrites them to
    ``JSON_TYPE(x, '$.k')`` and ``x ->> '$.k'``."""
    if isinstance(node, sge.JSONType) and isinstance(
        node.this, sge.JSONExtractScalar | sge.JSONExtract
    ):
        return sge.Anonymous(this="JSON_TYPE", expressions=[node.this.this, node.this.expression])
    if isinstance(node, sge.JSONExtractScalar) and isinstance(node.this, sge.JSONExtractScalar):
        path = node.expression
        if isinstance(path, sge.JSONPath) and [type(p) for p in path.expressions] == [
            sge.JSONPathRoot
        ]:
            return node.this
    return node


def _merge_filtered_star(node: sge.Expression) -> sge.Expression:
    """``SELECT x.a … FROM (SELECT * FROM t AS t0 WHERE p) AS x`` becomes ``SELECT t0.a … FROM
    t AS t0 WHERE p``. Ibis writes a filter holding a correlated subquery that way (the ids of
    the contacts who did not view a product), and DuckDB's decorrelation then carries every
    column of the contacts through the join: twice the time at a million contacts. Only this
    exact shape is merged (the inner query a bare filter of one table, the outer one a plain
    projection of it), so the result is the same rows; Ibis's aliases are unique in a query."""
    if not isinstance(node, sge.Select) or any(
        node.args.get(k) for k in ("joins", "where", "group", "having", "qualify", "distinct")
    ):
        return node
    source = node.args.get("from_")
    inner = source.this if source else None
    if not isinstance(inner, sge.Subquery) or not isinstance(inner.this, sge.Select):
        return node
    query = inner.this
    table_ = query.args.get("from_")
    if (
        len(query.expressions) != 1
        or not isinstance(query.expressions[0], sge.Star)
        or not (table_ and isinstance(table_.this, sge.Table) and table_.this.alias)
        or any(
            query.args.get(k)
            for k in ("joins", "group", "having", "qualify", "distinct", "order", "limit", "offset")
        )
    ):
        return node
    outer_alias, inner_alias = inner.alias, table_.this.alias
    if any(
        c.table == outer_alias and not isinstance(c.this, sge.Identifier)
        for c in node.find_all(sge.Column)
    ):
        return node  # "x.*" is left as it is

    def rename(column: sge.Expression) -> sge.Expression:
        if isinstance(column, sge.Column) and column.table == outer_alias:
            return sge.column(column.name, inner_alias, quoted=column.this.quoted)
        return column

    merged = node.copy()
    merged.set("expressions", [e.transform(rename) for e in merged.expressions])
    merged.set("from_", table_.copy())
    if query.args.get("where"):
        merged.set("where", query.args["where"].copy())
    for k in ("order", "limit", "offset"):
        if merged.args.get(k):
            merged.set(k, merged.args[k].transform(rename))
    return merged


def _duckdb_epoch(node: sge.Expression) -> sge.Expression:
    """``EPOCH(CAST(t AS TIMESTAMP))`` becomes ``EPOCH(t)``. Ibis casts a time-zoned timestamp
    to a naive one before taking its epoch, which DuckDB does per row through its time-zone
    library: the last-touch window (order time minus event time, over millions of pairs) took
    longer than the join that made the pairs. The epoch of an instant needs no zone, and the
    sessions here run in UTC, where the cast changes no value."""
    if (
        isinstance(node, sge.TimeToUnix)
        and isinstance(node.this, sge.Cast)
        and node.this.to.this == sge.DataType.Type.TIMESTAMP
    ):
        return sge.TimeToUnix(this=node.this.this.copy())
    return node


def to_sql(expr: ibis.Expr, engine: str | None = None) -> str:
    """The expression as SQL for Django's database, or for ``engine`` ("duckdb").

    For DuckDB two shapes Ibis writes are tidied (``_merge_filtered_star``,
    ``_duckdb_epoch``): both cost DuckDB time that PostgreSQL and SQLite do not spend."""
    name = engine or dialect()
    compiler = getattr(sql_compilers, name).compiler
    tree = compiler.to_sqlglot(expr.unbind())
    if name == "sqlite":
        tree = tree.transform(_sqlite_json_unwrap)
    elif name == "duckdb":
        tree = tree.transform(_merge_filtered_star).transform(_duckdb_epoch)
    return tree.sql(dialect=compiler.dialect)


def to_sql_fragment(expr: ibis.Expr) -> str:
    """The expression's SQL ready to embed in a statement that also takes ``%s`` parameters:
    a ``%`` (only ever inside a quoted literal) is doubled so the driver leaves it alone."""
    return to_sql(expr).replace("%", "%%")


def fetch(expr: ibis.Expr) -> list[tuple]:
    """Runs the expression on Django's connection (inside the caller's transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(to_sql(expr))
        return cursor.fetchall()


def duckdb_connect(parquet_dir: Path) -> ibis.BaseBackend:
    """An in-memory DuckDB whose tables are the Parquet files in ``parquet_dir`` (one
    ``<db_table>.parquet`` per table, as ``parquet_export`` writes)."""
    con = ibis.duckdb.connect()
    for path in sorted(Path(parquet_dir).glob("*.parquet")):
        con.read_parquet(path, table_name=path.stem)
    return con


def duckdb_fetch(expr: ibis.Expr, parquet_dir: Path) -> list[tuple]:
    """Runs the same expression on DuckDB over the Parquet files in ``parquet_dir``."""
    return duckdb_connect(parquet_dir).raw_sql(to_sql(expr, engine="duckdb")).fetchall()


def _arrow_type(field: models.Field) -> pa.DataType:
    dtype = _dtype(field)
    if dtype.is_json():
        return pa.string()
    if dtype.is_timestamp():
        return pa.timestamp("us", tz="UTC")
    return dtype.to_pyarrow()


def _arrow_value(field: models.Field, value: Any) -> Any:
    if value is not None and field.get_internal_type() == "JSONField":
        return json.dumps(value, ensure_ascii=False)
    return value


def parquet_export(
    *,
    models_: Iterable[type[models.Model]],
    directory: Path,
    workspace_id: int | None = None,
    batch: int = 50_000,
) -> dict[str, int]:
    """Writes each model's rows (optionally one workspace's) to ``<db_table>.parquet`` in row
    groups of about ``batch`` rows, with the column types of ``table``; returns rows written per
    table.

    On PostgreSQL the rows stream out of ``COPY … TO STDOUT`` into Arrow's CSV reader, so no
    row becomes a Python object (30M events take a minute, not half an hour); elsewhere they
    come through the ORM."""
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    for model in models_:
        fields = _columns(model)
        schema = pa.schema([pa.field(f.column, _arrow_type(f), nullable=f.null) for f in fields])
        batches = (
            _copied_batches(model, fields, schema, workspace_id)
            if connection.vendor == "postgresql"
            else _orm_batches(model, fields, schema, workspace_id, batch)
        )
        path = directory / f"{model._meta.db_table}.parquet"
        count = 0
        with pq.ParquetWriter(path, schema) as writer:
            pending: list[pa.RecordBatch] = []
            for record_batch in batches:
                pending.append(record_batch)
                if sum(b.num_rows for b in pending) >= batch:
                    count += _write_row_groups(writer, pending, schema, batch)
                    pending = []
            count += _write_row_groups(writer, pending, schema, batch)
        written[model._meta.db_table] = count
    return written


def _write_row_groups(
    writer: pq.ParquetWriter, batches: list[pa.RecordBatch], schema: pa.Schema, size: int
) -> int:
    table = pa.Table.from_batches(batches, schema=schema)
    writer.write_table(table, row_group_size=size)
    return table.num_rows


def _orm_batches(
    model: type[models.Model],
    fields: list[models.Field],
    schema: pa.Schema,
    workspace_id: int | None,
    batch: int,
) -> Iterator[pa.RecordBatch]:
    qs = model._base_manager.order_by("pk")
    if workspace_id is not None:
        qs = qs.filter(workspace_id=workspace_id)
    chunk: list[tuple] = []
    for row in qs.values_list(*[f.attname for f in fields]).iterator(chunk_size=batch):
        chunk.append(row)
        if len(chunk) >= batch:
            yield _arrow_batch(chunk, fields, schema)
            chunk = []
    yield _arrow_batch(chunk, fields, schema)


def _arrow_batch(
    rows: list[tuple], fields: list[models.Field], schema: pa.Schema
) -> pa.RecordBatch:
    columns = [[_arrow_value(f, row[i]) for row in rows] for i, f in enumerate(fields)]
    return pa.RecordBatch.from_arrays(
        [pa.array(col, type=schema.field(i).type) for i, col in enumerate(columns)], schema=schema
    )


class _CopyStream(io.RawIOBase):
    """The bytes of a psycopg ``COPY … TO STDOUT`` as a file, for Arrow's CSV reader."""

    def __init__(self, copy: Any) -> None:
        self._copy = copy
        self._rest = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view):
            if not self._rest:
                self._rest = memoryview(bytes(self._copy.read()))
                if not self._rest:
                    break
            n = min(len(view) - filled, len(self._rest))
            view[filled : filled + n] = self._rest[:n]
            self._rest = self._rest[n:]
            filled += n
        return filled


def _copied_batches(
    model: type[models.Model],
    fields: list[models.Field],
    schema: pa.Schema,
    workspace_id: int | None,
) -> Iterator[pa.RecordBatch]:
    """The rows as CSV from PostgreSQL, parsed by Arrow. Times leave as whole microseconds
    since the epoch (exact, and free of the session's zone and of text formats), JSON as its
    text; CSV tells NULL (unquoted empty) from an empty string (quoted)."""
    quote = connection.ops.quote_name
    selected, read_types = [], {}
    for f, arrow_field in zip(fields, schema, strict=True):
        column = quote(f.column)
        if arrow_field.type == pa.timestamp("us", tz="UTC"):
            selected.append(f"(EXTRACT(EPOCH FROM {column}) * 1000000)::bigint")
            read_types[f.column] = pa.int64()
        elif f.get_internal_type() == "JSONField":
            selected.append(f"{column}::text")
            read_types[f.column] = pa.string()
        else:
            selected.append(column)
            read_types[f.column] = arrow_field.type
    where = f" WHERE {quote('workspace_id')} = %s" if workspace_id is not None else ""
    sql = (
        f"COPY (SELECT {', '.join(selected)} FROM {quote(model._meta.db_table)}{where}) "  # noqa: S608
        "TO STDOUT WITH (FORMAT csv)"
    )
    options = {
        "read_options": pacsv.ReadOptions(
            column_names=[f.column for f in fields], block_size=8 << 20
        ),
        "parse_options": pacsv.ParseOptions(newlines_in_values=True),
        "convert_options": pacsv.ConvertOptions(
            column_types=read_types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    }
    with connection.cursor() as cursor:
        raw = cursor.cursor
        params = [workspace_id] if workspace_id is not None else []
        with raw.copy(sql, params or None) as copy:
            stream = io.BufferedReader(_CopyStream(copy), 8 << 20)
            if not stream.peek(1):  # no rows: Arrow refuses an empty CSV
                return
            reader = pacsv.open_csv(stream, **options)
            for record_batch in reader:
                yield pa.RecordBatch.from_arrays(
                    [
                        column.cast(field.type) if column.type != field.type else column
                        for column, field in zip(record_batch.columns, schema, strict=True)
                    ],
                    schema=schema,
                )
