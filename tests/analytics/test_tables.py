"""The Parquet export: what DuckDB reads must be what the database holds, value for value."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pyarrow.parquet as pq
import pytest

from siyu.analytics.explore import epoch
from siyu.analytics.tables import duckdb_fetch, fetch, parquet_export, table, to_sql
from siyu.commerce.models import Product
from siyu.events.models import Event
from tests import factories

pytestmark = pytest.mark.django_db


def test_every_kind_of_value_survives_the_export(tmp_path):
    ws, other = factories.workspace(), factories.workspace()
    factories.product(ws, sku="A-1", name='Cherry, "big"\nbox', price="1234567.89", cost="0.01",
                      is_new=True, launch_date=date(2026, 2, 28), category="",
                      attributes={"产地": "智利", "sizes": [1, 2]})
    factories.product(ws, sku="B-2", name="plain", cost=None, launch_date=None)
    factories.product(other, sku="C-3", name="another brand's")
    buyer = factories.contact(ws)
    factories.event(ws, buyer, occurred_at=datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC),
                    duration_seconds=None, properties={})

    written = parquet_export(models_=[Product, Event], directory=tmp_path, workspace_id=ws.id)

    assert written == {"commerce_product": 2, "events_event": 1}
    rows = sorted(pq.read_table(tmp_path / "commerce_product.parquet").to_pylist(), key=lambda r: r["sku"])
    first, second = rows
    assert first["name"] == 'Cherry, "big"\nbox'
    assert first["price"] == Decimal("1234567.89") and first["cost"] == Decimal("0.01")
    assert first["is_new"] is True and second["is_new"] is False
    assert first["launch_date"] == date(2026, 2, 28) and second["launch_date"] is None
    # An empty text stays empty and a missing value stays missing: NULL and "" differ.
    assert first["category"] == "" and second["cost"] is None
    assert json.loads(first["attributes"]) == {"产地": "智利", "sizes": [1, 2]}
    assert {r["workspace_id"] for r in rows} == {ws.id}
    [event] = pq.read_table(tmp_path / "events_event.parquet").to_pylist()
    assert event["occurred_at"] == datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    assert event["duration_seconds"] is None and json.loads(event["properties"]) == {}


def test_an_empty_workspace_writes_empty_files_with_the_columns(tmp_path):
    ws = factories.workspace()
    assert parquet_export(models_=[Product], directory=tmp_path, workspace_id=ws.id) == {"commerce_product": 0}
    table = pq.read_table(tmp_path / "commerce_product.parquet")
    assert table.num_rows == 0 and "launch_date" in table.column_names


def test_on_duckdb_an_instants_epoch_is_taken_without_a_cast_through_a_time_zone(tmp_path):
    # DuckDB casts a zoned timestamp to a naive one row by row through its zone library;
    # the epoch of an instant does not need it, and the seconds come out the same.
    ws = factories.workspace()
    buyer = factories.contact(ws)
    factories.event(ws, buyer, occurred_at=datetime(2026, 3, 1, 8, 30, 15, tzinfo=UTC))
    e = table(Event)
    expr = e.filter(e.workspace_id == ws.id).select(seconds=epoch(e.occurred_at))
    sql = to_sql(expr, engine="duckdb")
    assert "EPOCH(" in sql and "AS TIMESTAMP)" not in sql
    parquet_export(models_=[Event], directory=tmp_path, workspace_id=ws.id)
    expected = datetime(2026, 3, 1, 8, 30, 15, tzinfo=UTC).timestamp()
    assert duckdb_fetch(expr, tmp_path) == [(expected,)]
    assert [tuple(map(float, row)) for row in fetch(expr)] == [(expected,)]
