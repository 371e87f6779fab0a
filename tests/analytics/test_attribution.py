"""First- and last-touch attribution, top paths to a first order and the distribution histograms,
on hand-made orders and events with the answers worked out by hand."""

import math
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from siyu.analytics import attribution, distribution
from siyu.analytics.explore import OTHER, Scope, period
from siyu.analytics.tables import duckdb_fetch, fetch, parquet_export
from siyu.commerce.models import Order
from siyu.contacts.models import Contact
from siyu.errors import ValidationFailed
from siyu.events.models import Event
from tests import factories

pytestmark = pytest.mark.django_db


def at(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 4, tzinfo=UTC)


@pytest.fixture
def shop(ws, other_ws) -> dict:
    """March: A pays 100 at store S2 (first touch douyin/spring/S1; last touch a wecom
    message_click of campaign c1). B pays 50, 10 refunded (first touch wecom; last touch a
    mini_program page view of c2; a later app event does not count). C pays 30 at S1 (first
    touch ads; its only event is 40 days old, so the order's own channel). D's order is fully
    refunded; E paid in February."""
    s1, s2 = factories.store(ws, name="一号店"), factories.store(ws, name="二号店")
    c = {
        "A": factories.plain_contact(
            ws,
            name="A",
            source_channel="douyin",
            first_touch_campaign="spring",
            first_touch_store=s1,
            store=s1,
        ),
        "B": factories.plain_contact(ws, name="B", source_channel="wecom"),
        "C": factories.plain_contact(ws, name="C", source_channel="ads"),
        "D": factories.plain_contact(ws, name="D", source_channel="ads"),
        "E": factories.plain_contact(ws, name="E", source_channel="ads"),
    }
    ev, od = factories.event, factories.order
    ev(ws, c["A"], "page_view", at(2, 25))
    ev(ws, c["A"], "message_click", at(3, 1), channel="wecom", properties={"utm_campaign": "c1"})
    od(ws, c["A"], "100.00", at(3, 5), store=s2)
    ev(ws, c["B"], "page_view", at(3, 4), channel="mini_program", properties={"utm_campaign": "c2"})
    od(
        ws,
        c["B"],
        "50.00",
        at(3, 5),
        channel="mini_program",
        refunded_amount=Decimal("10.00"),
        status="partially_refunded",
    )
    ev(ws, c["B"], "page_view", at(3, 6), channel="app", properties={"utm_campaign": "late"})
    ev(ws, c["C"], "share", at(2, 8), channel="douyin")
    od(ws, c["C"], "30.00", at(3, 20), store=s1)
    od(ws, c["D"], "80.00", at(3, 7), status="refunded", refunded_amount=Decimal("80.00"))
    od(ws, c["E"], "70.00", at(2, 20))
    x = factories.plain_contact(other_ws, source_channel="douyin")
    od(other_ws, x, "999.00", at(3, 5))
    return {"contacts": c, "s1": s1, "s2": s2}


def march(ws):
    return period(ws, date(2026, 3, 1), date(2026, 3, 31))


def credits(rows) -> dict:
    return {(r.label, r.orders): r.revenue for r in rows}


def test_channel_first_and_last_touch_add_up_to_the_period_revenue(ws, shop):
    result = attribution.attribution(Scope(ws), march(ws), "channel", 10)
    assert (result.orders, result.revenue) == (3, Decimal("170.00"))
    assert credits(result.first) == {
        ("抖音", 1): Decimal("100.00"),
        ("企业微信", 1): Decimal("40.00"),
        ("广告", 1): Decimal("30.00"),
    }
    assert credits(result.last) == {
        ("企业微信", 1): Decimal("100.00"),
        ("小程序", 1): Decimal("40.00"),
        ("订单渠道：门店", 1): Decimal("30.00"),
    }
    for model in (result.first, result.last):
        assert sum(r.revenue for r in model) == result.revenue
        assert sum(r.orders for r in model) == result.orders


def test_campaign_and_store_models(ws, shop):
    campaign = attribution.attribution(Scope(ws), march(ws), "campaign", 10)
    assert credits(campaign.first) == {
        ("spring", 1): Decimal("100.00"),
        ("（未知）", 2): Decimal("70.00"),
    }
    assert credits(campaign.last) == {
        ("c1", 1): Decimal("100.00"),
        ("c2", 1): Decimal("40.00"),
        ("（未知）", 1): Decimal("30.00"),
    }
    store = attribution.attribution(Scope(ws), march(ws), "store", 10)
    assert credits(store.first) == {
        ("一号店", 1): Decimal("100.00"),
        ("（未知）", 2): Decimal("70.00"),
    }
    assert credits(store.last) == {
        ("二号店", 1): Decimal("100.00"),
        ("（未知）", 1): Decimal("40.00"),
        ("一号店", 1): Decimal("30.00"),
    }


def test_top_n_folds_the_rest_into_other(ws, shop):
    result = attribution.attribution(Scope(ws), march(ws), "channel", 1)
    assert [(r.value, r.orders, r.revenue) for r in result.first] == [
        ("douyin", 1, Decimal("100.00")),
        (OTHER, 2, Decimal("70.00")),
    ]
    assert result.first[1].label == "其他"


def test_staff_see_their_store_and_an_empty_period_says_so(ws, shop):
    mine = attribution.attribution(Scope(ws, shop["s1"].id), march(ws), "channel", 10)
    assert (mine.orders, mine.revenue) == (1, Decimal("100.00"))
    empty = attribution.attribution(
        Scope(ws), period(ws, date(2025, 1, 1), date(2025, 1, 2)), "staff", 10
    )
    assert (empty.first, empty.last, empty.message) == ([], [], "所选时间段内没有订单。")
    with pytest.raises(ValidationFailed) as exc:
        attribution.attribution(Scope(ws), march(ws), "weather", 10)
    assert exc.value.path == "dimension"


def test_top_paths_to_the_first_order(ws, shop):
    paths = attribution.first_order_paths(Scope(ws), march(ws), 10)
    assert [(p.steps, p.contacts) for p in paths.rows] == [
        (["浏览页面"], 1),  # B
        (["浏览页面", "点击消息"], 1),  # A
        (["分享"], 1),  # C
    ]
    assert (paths.buyers, paths.without_events) == (3, 0)


def test_orders_and_revenue_per_contact(ws, shop):
    result = distribution.distribution(Scope(ws), march(ws))
    # Five contacts; A, B, C bought once in March (D's order was refunded, E's in February).
    assert [b.contacts for b in result.orders] == [2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert result.orders[-1].label == "10+"
    # Net revenue: C 30 (0–50), B 40 (0–50), A 100 (100–200).
    assert [b.contacts for b in result.revenue] == [2, 0, 1, 0, 0, 0, 0, 0]
    assert result.revenue[0].revenue == Decimal("70.00")
    assert result.message == ""


def test_the_same_expressions_run_on_duckdb(ws, shop, tmp_path):
    parquet_export(models_=[Contact, Event, Order], directory=tmp_path, workspace_id=ws.id)
    credited = attribution.credited_expression(Scope(ws), march(ws), "campaign")
    for expr in (
        attribution.totals_expression(credited, "last", 10),
        attribution.paths_expression(Scope(ws), march(ws)),
        distribution.orders_histogram_expression(Scope(ws), march(ws)),
    ):
        assert _normal(duckdb_fetch(expr, tmp_path)) == _normal(fetch(expr))


def _normal(rows: list[tuple]) -> list[tuple]:
    """Numbers as Decimals (DuckDB returns 30.00 where SQLite returns 30.0; its DataFrame
    gives NaN for a NULL text), rows sorted."""

    def one(v):
        if isinstance(v, float) and math.isnan(v):
            return None
        return Decimal(str(v)) if isinstance(v, int | float | Decimal) else v

    return sorted((tuple(one(v) for v in r) for r in rows), key=str)
