"""Column arrays straight into a table: COPY on PostgreSQL, one executemany on SQLite.

Model instances cost far more than the rows they hold at the demo's benchmark size (tens of
millions of rows), so the demo writes numpy columns and lets the database convert them. Money is
given in integer fen and times in Unix seconds; each backend turns them into its column format.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from django.db import connection, models

_KINDS = ("int", "text", "money", "ts", "date", "bool")


@dataclass(frozen=True)
class Col:
    """One column: ``kind`` says how ``values`` are meant (money in fen, ts in Unix seconds,
    date in days since 1970-01-01); ``null`` marks NULLs."""

    kind: str
    values: Any
    null: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown column kind {self.kind!r}")


def _table(model: type[models.Model]) -> str:
    return model._meta.db_table


def _column(model: type[models.Model], name: str) -> str:
    return model._meta.get_field(name).column


@contextmanager
def large_cache(mebibytes: int = 512) -> Iterator[None]:
    """SQLite's default 2 MB page cache thrashes once the indexes of a multi-million-row insert
    outgrow it; a bigger cache for the build's duration keeps inserts fast."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cur:
        cur.execute("PRAGMA cache_size")
        before = cur.fetchone()[0]
        cur.execute(f"PRAGMA cache_size = -{mebibytes * 1024}")
    try:
        yield
    finally:
        with connection.cursor() as cur:
            cur.execute(f"PRAGMA cache_size = {int(before)}")


def write(model: type[models.Model], columns: dict[str, Col]) -> int:
    """Inserts the rows and returns how many there were."""
    if not columns:
        return 0
    n = len(next(iter(columns.values())).values)
    if n == 0:
        return 0
    if connection.vendor == "postgresql":
        _copy(model, columns, n)
    else:
        _executemany(model, columns)
    return n


def _arrow(col: Col, n: int) -> pa.Array:
    mask = None if col.null is None else np.asarray(col.null, dtype=bool)
    if col.kind == "money":
        fen = np.asarray(col.values, dtype=np.int64)
        # decimal128 is the unscaled integer in 16 little-endian bytes: fen at scale 2.
        raw = np.empty((n, 2), dtype=np.int64)
        raw[:, 0], raw[:, 1] = fen, np.where(fen < 0, -1, 0)
        return pa.Array.from_buffers(pa.decimal128(14, 2), n, [None, pa.py_buffer(raw.tobytes())])
    if col.kind == "ts":
        return pa.array(np.asarray(col.values, dtype=np.int64), mask=mask).cast(
            pa.timestamp("s", tz="UTC")
        )
    if col.kind == "date":
        return pa.array(np.asarray(col.values, dtype=np.int32), mask=mask).cast(pa.date32())
    if col.kind == "int":
        return pa.array(np.asarray(col.values, dtype=np.int64), mask=mask)
    if col.kind == "bool":
        return pa.array(np.asarray(col.values, dtype=bool), mask=mask)
    values = col.values.tolist() if isinstance(col.values, np.ndarray) else list(col.values)
    return pa.array(values, type=pa.string(), mask=mask)


def _copy(model: type[models.Model], columns: dict[str, Col], n: int) -> None:
    names = [_column(model, name) for name in columns]
    table = pa.table(
        {name: _arrow(col, n) for name, col in zip(names, columns.values(), strict=True)}
    )
    buf = io.BytesIO()
    pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False))
    cols = ", ".join(f'"{c}"' for c in names)
    with (
        connection.cursor() as cur,
        cur.cursor.copy(f'COPY "{_table(model)}" ({cols}) FROM STDIN (FORMAT csv)') as copy,
    ):
        copy.write(buf.getvalue())


_SQLITE_PLACEHOLDER = {
    "int": "?",
    "text": "?",
    "bool": "?",
    # What Django stores for these fields: REAL/INTEGER money, 'YYYY-MM-DD HH:MM:SS' UTC text.
    "money": "? / 100.0",
    "ts": "datetime(?, 'unixepoch')",
    "date": "date(? * 86400, 'unixepoch')",
}


def _py(col: Col) -> list:
    values = col.values.tolist() if isinstance(col.values, np.ndarray) else list(col.values)
    if col.kind == "bool":
        values = [int(v) for v in values]
    if col.null is not None:
        values = [
            None if nil else v for v, nil in zip(values, np.asarray(col.null).tolist(), strict=True)
        ]
    return values


def _executemany(model: type[models.Model], columns: dict[str, Col]) -> None:
    names = ", ".join(f'"{_column(model, name)}"' for name in columns)
    marks = ", ".join(_SQLITE_PLACEHOLDER[col.kind] for col in columns.values())
    rows = zip(*(_py(col) for col in columns.values()), strict=True)
    sql = f'INSERT INTO "{_table(model)}" ({names}) VALUES ({marks})'  # noqa: S608
    with connection.cursor() as cur:
        # The backend's own cursor: Django's wrapper would materialise every row to log it.
        cur.cursor.executemany(sql, rows)
