"""The product-category cut of the metrics tree, worked by hand.

Shanghai days. Products: apple (水果, cost 2.00), juice (饮品, cost unknown).

    order  buyer  local paid     items                              paid  disc  refunded
    q0     k1     02-20 12:00    apple × 1 @10                      10    0     0
    q1     k1     03-01 12:00    apple × 3 @10 = 30, juice × 1 @20  40    10    10
    q2     k2     03-02 10:00    juice × 2 @15 = 30                 30    0     0
    q3     k2     03-02 11:00    "Z" (no product) × 1 @5            5     0     0
    q4     k2     03-02 12:00    (no items)                         100   0     0

q1's items are 60% apple and 40% juice, so 水果 gets 24 of its 40 paid, 6 of the refund and 6 of
the discount; 饮品 16, 4 and 4. In 03-01..03-02:
水果: 1 order (q1), no first order (k1 first bought apples in q0) → 复购率 100%, GMV 24, revenue
18, cost 3 × 2 = 6. 饮品: 2 orders, both first juice orders, GMV 46, revenue 42, 2 items with no
cost. 未分类: q3, GMV 5. q4 has no items and is in no category.
"""

from datetime import date
from decimal import Decimal

import pytest
from ninja.testing import TestClient

from siyu.analytics import metrics
from siyu.analytics.metrics import Scope
from siyu.analytics.metrics_api import router
from siyu.analytics.tables import duckdb_fetch, fetch, parquet_export
from siyu.commerce.models import Order, OrderItem, Product, Staff
from siyu.contacts.models import Contact
from tests import factories
from tests.analytics.handmade import contact, local, order

pytestmark = pytest.mark.django_db

START, END = date(2026, 3, 1), date(2026, 3, 2)


def item(ws, o, product, sku, quantity, price):
    OrderItem.objects.create(
        workspace=ws,
        order=o,
        product=product,
        sku=sku,
        quantity=quantity,
        unit_price=Decimal(price),
        amount=Decimal(price) * quantity,
    )


def build(ws):
    a, b = factories.store(ws, code="A"), factories.store(ws, code="B")
    apple = factories.product(ws, sku="APPLE", category="水果", cost=Decimal("2.00"))
    juice = factories.product(ws, sku="JUICE", category="饮品")
    k1 = contact(ws, "k1", a, "wecom", local(2, 1, 10))
    k2 = contact(ws, "k2", b, "douyin", local(2, 1, 10))
    item(ws, order(ws, k1, "q0", local(2, 20, 12), "10"), apple, "APPLE", 1, "10")
    q1 = order(ws, k1, "q1", local(3, 1, 12), "50", disc="10", refunded="10")
    item(ws, q1, apple, "APPLE", 3, "10")
    item(ws, q1, juice, "JUICE", 1, "20")
    item(ws, order(ws, k2, "q2", local(3, 2, 10), "30"), juice, "JUICE", 2, "15")
    item(ws, order(ws, k2, "q3", local(3, 2, 11), "5"), None, "Z", 1, "5")
    order(ws, k2, "q4", local(3, 2, 12), "100")
    return a, b


@pytest.fixture
def shop(ws):
    return build(ws)


def report(ws, store_id=None):
    return metrics.metrics_report(
        workspace=ws, start=START, end=END, scope=Scope(cut="category", store_id=store_id)
    )


def now(rep, key) -> dict:
    return {r.metric.code: r.now for r in rep.sections[key]}


def test_order_metrics_are_restricted_to_the_items_of_each_category(ws, shop):
    rep = report(ws)
    assert list(rep.sections) == ["", "水果", "饮品"]
    fruit, drinks, unknown = now(rep, "水果"), now(rep, "饮品"), now(rep, "")
    assert {k: fruit[k].value for k in ("orders", "gmv", "revenue", "discount", "cost")} == {
        "orders": 1,
        "gmv": Decimal("24.00"),
        "revenue": Decimal("18.00"),
        "discount": Decimal("6.00"),
        "cost": Decimal("6.00"),
    }
    assert (fruit["aov"].value, fruit["aov_gmv"].value) == (Decimal("18.00"), Decimal("24.00"))
    assert fruit["repurchase"].value == 1.0  # k1 first bought apples before the period
    assert fruit["frequency"].reason == "no_first_orders"
    assert {k: drinks[k].value for k in ("orders", "gmv", "revenue", "repurchase")} == {
        "orders": 2,
        "gmv": Decimal("46.00"),
        "revenue": Decimal("42.00"),
        "repurchase": 0.0,
    }
    assert rep.totals["饮品"][0].uncosted_items == 2
    assert (unknown["orders"].value, unknown["gmv"].value) == (1, Decimal("5.00"))
    # The categories share each order's paid amount: 24 + 46 + 5 = the 75 of q1..q3 (not q4).
    assert sum(now(rep, k)["gmv"].value for k in rep.sections) == Decimal("75.00")


def test_metrics_of_contacts_and_spend_are_dashes_with_a_reason(ws, shop):
    fruit = now(report(ws), "水果")
    assert {k: fruit[k].reason for k in metrics.NOT_BY_CATEGORY} == metrics.NOT_BY_CATEGORY
    assert all(fruit[k].value is None for k in metrics.NOT_BY_CATEGORY)
    assert "不分商品品类" in fruit["conversion"].why
    for code in ("spend", "profit", "roi", "roi_seed", "cac"):
        assert fruit[code].reason == "spend_not_by_cut"


def test_a_staff_login_sees_its_store_only(ws, shop):
    a, _b = shop
    rep = report(ws, store_id=a.id)
    assert list(rep.sections) == ["水果", "饮品"]
    assert now(rep, "饮品")["gmv"].value == Decimal("16.00")


def test_other_workspace_is_not_counted(ws, shop, other_ws):
    build(other_ws)
    assert now(report(ws), "饮品")["orders"].value == 2


def test_the_same_expression_runs_on_duckdb(ws, shop, tmp_path):
    parquet_export(
        models_=[Contact, Order, OrderItem, Product], directory=tmp_path, workspace_id=ws.id
    )
    expr = metrics.category_totals_expression(workspace=ws, start=START, end=END)

    def rounded(rows):
        return sorted(
            tuple(
                round(float(v), 2) if v is not None and not isinstance(v, str) else v for v in row
            )
            for row in rows
        )

    assert rounded(duckdb_fetch(expr, tmp_path)) == rounded(fetch(expr))


def test_console_page_and_csv_show_the_category_cut(client, ws, shop):
    client.force_login(factories.member(ws, "owner"))
    url = "/analytics/metrics/?start=2026-03-01&end=2026-03-02&cut=category"
    response = client.get(url)
    assert response.status_code == 200
    sections = {s["label"]: {r["code"]: r for r in s["rows"]} for s in response.context["sections"]}
    assert set(sections) == {"水果", "饮品", "未分类商品"}
    assert sections["水果"]["revenue"]["now"] == "¥18.00"
    assert sections["水果"]["uv"]["now"] == "—"
    assert "不分商品品类" in sections["水果"]["uv"]["now_why"]
    assert "按商品品类" in response.content.decode()
    csv = client.get(url.replace("/metrics/?", "/metrics/export.csv?")).content.decode("utf-8-sig")
    assert "水果,revenue,收入,18.00" in csv


def test_console_staff_login_is_pinned_to_its_store(client, ws, shop):
    a, _b = shop
    user = factories.member(ws, "staff")
    Staff.objects.create(workspace=ws, code="E1", name="导购", store=a, user=user)
    client.force_login(user)
    response = client.get("/analytics/metrics/?start=2026-03-01&end=2026-03-02&cut=category")
    assert [s["key"] for s in response.context["sections"]] == ["水果", "饮品"]


def test_api_gives_a_section_per_category(ws, shop):
    body = (
        TestClient(router)
        .get("/metrics?start=2026-03-01&end=2026-03-02&cut=category", workspace=ws)
        .json()
    )
    sections = {s["key"]: {m["code"]: m for m in s["metrics"]} for s in body["sections"]}
    assert set(sections) == {"", "水果", "饮品"}
    assert sections["饮品"]["gmv"]["now"]["value"] == "46.00"
    assert sections["饮品"]["uv"]["now"] == {
        "value": None,
        "reason": "category_no_traffic",
        "why": str(metrics.REASONS["category_no_traffic"]),
    }


def test_api_over_http_gives_the_category_cut_and_refuses_an_unknown_cut(api, ws, shop):
    body = api.get("/api/v1/metrics?start=2026-03-01&end=2026-03-02&cut=category").json()
    assert [s["key"] for s in body["sections"]] == ["", "水果", "饮品"]
    response = api.get("/api/v1/metrics?start=2026-03-01&end=2026-03-02&cut=colour")
    assert response.status_code == 422
