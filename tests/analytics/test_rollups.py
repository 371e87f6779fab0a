"""Daily rollups on the hand-made brand: exact rows, the same figures as the dashboard's ORM
queries, incremental upkeep, backfill, and the same expression on DuckDB."""

from datetime import date
from decimal import Decimal
from pathlib import Path

from siyu.analytics import queries as dashboard
from siyu.analytics import rollups, services
from siyu.analytics.models import DailyRollup
from siyu.analytics.tables import duckdb_fetch, fetch, parquet_export
from siyu.commerce.models import Order, OrderItem, Product, Refund
from siyu.contacts.models import Consent, Contact
from siyu.events.models import Event
from siyu.scheduler.jobs import JOBS
from tests.analytics import handmade
from tests.analytics.handmade import local

START, END = date(2026, 3, 1), date(2026, 3, 2)
FIELDS = ("day", "store_id", "source_channel", *rollups.MEASURES)


def stored(ws) -> list[tuple]:
    return list(
        DailyRollup.objects.filter(workspace=ws).order_by("day", "store_id").values_list(*FIELDS)
    )


def d(x: str) -> Decimal:
    return Decimal(x)


def test_rebuild_writes_the_hand_worked_rows(ws):
    b = handmade.build(ws)
    assert services.rollups_rebuild(workspace=ws, start=START, end=END) == 4
    # new, referred, uv, purchasers, orders, first, gmv, refunds, discount, referred rev., cost,
    # uncosted, opt-outs
    assert stored(ws) == [
        (
            date(2026, 3, 1),
            b.a.id,
            "wecom",
            1,
            0,
            1,
            1,
            1,
            1,
            d("100"),
            d("0"),
            d("10"),
            d("0"),
            d("60"),
            0,
            0,
        ),
        (
            date(2026, 3, 1),
            b.b.id,
            "douyin",
            0,
            0,
            1,
            1,
            1,
            0,
            d("50"),
            d("0"),
            d("0"),
            d("0"),
            d("0"),
            1,
            0,
        ),
        # c2 first seen 00:30 local on 03-02 (still 03-01 in UTC) counts on 03-02.
        (
            date(2026, 3, 2),
            b.a.id,
            "wecom",
            1,
            1,
            1,
            2,
            2,
            1,
            d("120"),
            d("20"),
            d("0"),
            d("40"),
            d("0"),
            0,
            0,
        ),
        (
            date(2026, 3, 2),
            b.b.id,
            "douyin",
            0,
            0,
            0,
            0,
            0,
            0,
            d("0"),
            d("0"),
            d("0"),
            d("0"),
            d("0"),
            0,
            1,
        ),
    ]
    # Rebuilding again replaces, never adds.
    services.rollups_rebuild(workspace=ws, start=START, end=END)
    assert DailyRollup.objects.filter(workspace=ws).count() == 4


def test_rollups_agree_with_the_dashboard_orm_queries(ws):
    handmade.build(ws)
    services.rollups_rebuild(workspace=ws, start=date(2026, 2, 1), end=END)
    for first, last in [(START, END), (date(2026, 2, 1), END), (END, END)]:
        kpis = dashboard.period_kpis(workspace=ws, window=dashboard.days_window(ws, first, last))
        rows = DailyRollup.objects.filter(workspace=ws, day__gte=first, day__lte=last)
        orders = sum(r.orders for r in rows)
        revenue = sum((r.gmv - r.refunds for r in rows), Decimal(0))
        assert (orders, revenue, sum(r.new_contacts for r in rows)) == (
            kpis.orders,
            kpis.revenue,
            kpis.new_contacts,
        )


def test_update_recent_picks_up_new_orders_and_late_refunds(ws):
    b = handmade.build(ws)
    services.rollups_rebuild(workspace=ws, start=date(2026, 2, 20), end=END)
    # Two days later: c3 buys again on 03-04, and o1 (03-01, outside the 3 recent days) is
    # partly refunded on 03-04.
    handmade.order(ws, b.c3, "o5", local(3, 4, 15), "30")
    o1 = Order.objects.get(workspace=ws, order_no="o1")
    Order.objects.filter(pk=o1.pk).update(refunded_amount=Decimal("25.00"))
    Refund.objects.create(
        workspace=ws, refund_no="r1", order=o1, amount=Decimal("25.00"), refunded_at=local(3, 4, 16)
    )
    days = services.rollups_update_recent(workspace=ws, now=local(3, 4, 18))
    assert days == [date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 1)]
    row = DailyRollup.objects.get(workspace=ws, day=date(2026, 3, 4))
    assert (row.store_id, row.orders, row.first_orders, row.gmv) == (b.b.id, 1, 0, d("30"))
    assert DailyRollup.objects.get(
        workspace=ws, day=date(2026, 3, 1), store_id=b.a.id
    ).refunds == d("25")
    assert any(
        j.task_path == "siyu.analytics.tasks.rollups_update_recent" and j.every_seconds == 900
        for j in JOBS
    )


def test_backfill_covers_every_day_from_the_first_activity(ws, other_ws):
    handmade.build(ws)
    written = services.rollups_backfill(workspace=ws, now=local(3, 2, 23))
    # Activity on 02-20 (c3 seen), 02-25 (o0), 03-01, 03-02 (03-02 has two cells).
    assert written == 6
    assert DailyRollup.objects.filter(workspace=ws).count() == 6
    assert services.rollups_backfill(workspace=other_ws) == 0


def test_same_expression_on_duckdb(ws, tmp_path: Path):
    handmade.build(ws)
    expr = rollups.daily_expression(workspace=ws, first=date(2026, 2, 20), last=END)
    parquet_export(
        models_=[Contact, Event, Order, OrderItem, Product, Consent],
        directory=tmp_path,
        workspace_id=ws.id,
    )

    def normal(rows: list[tuple]) -> list[tuple]:
        out = []
        for r in rows:
            day = date.fromisoformat(str(r[1])[:10])  # text, date or pandas Timestamp
            values = [
                Decimal(str(v)).quantize(Decimal("0.01")) if k.is_decimal() else int(v)
                for v, k in zip(r[4:], rollups.MEASURES.values(), strict=True)
            ]
            out.append((r[0], day, r[2], r[3], *values))
        return sorted(out, key=lambda r: (r[1], r[2] or 0))

    on_db = normal(fetch(expr))
    assert len(on_db) == 6
    assert normal(duckdb_fetch(expr, tmp_path)) == on_db


def test_other_workspace_rows_untouched(ws, other_ws):
    handmade.build(ws)
    handmade.build(other_ws)
    services.rollups_rebuild(workspace=other_ws, start=START, end=END)
    before = stored(other_ws)
    services.rollups_rebuild(workspace=ws, start=START, end=END)
    assert stored(other_ws) == before
    assert sum(r.orders for r in DailyRollup.objects.filter(workspace=ws)) == 4
