"""The explore console pages and API: pages render charts and tables, CSV exports carry the
table, bad input is a form error / 422, staff see their store only, drop-offs become a segment."""

from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse

from siyu.audiences.models import Segment, SegmentMember
from siyu.tenancy.services import api_key_create
from tests import factories

pytestmark = pytest.mark.django_db

RANGE = {"start": "2026-03-01", "end": "2026-03-31"}


@pytest.fixture
def data(ws):
    """Two store contacts: A views, carts and buys 100; B views only. C (no store) views and
    buys 50 without carting."""
    store = factories.store(ws)
    a = factories.plain_contact(ws, name="A", store=store, source_channel="douyin")
    b = factories.plain_contact(ws, name="B", store=store, source_channel="douyin")
    c = factories.plain_contact(ws, name="C", source_channel="wecom")
    for who in (a, b, c):
        factories.event(ws, who, "page_view", datetime(2026, 3, 5, 4, tzinfo=UTC))
    factories.event(ws, a, "add_to_cart", datetime(2026, 3, 6, 4, tzinfo=UTC))
    factories.order(ws, a, "100.00", datetime(2026, 3, 7, 4, tzinfo=UTC))
    factories.order(ws, c, "50.00", datetime(2026, 3, 8, 4, tzinfo=UTC))
    return {"store": store, "a": a, "b": b, "c": c}


def _login(client, ws, role="owner"):
    user = factories.member(ws, role=role)
    client.force_login(user)
    return user


def _funnel_url(**extra) -> str:
    params = "&".join(f"{k}={v}" for k, v in {**RANGE, **extra}.items())
    return (
        reverse("console:explore:funnel") + "?step=page_view&step=add_to_cart&step=order&" + params
    )


def test_funnel_page_shows_chart_table_and_csv(client, ws, data):
    _login(client, ws)
    html = client.get(_funnel_url()).content.decode()
    assert 'data-testid="reached-1">3<' in html
    assert 'data-testid="reached-2">1<' in html
    assert 'data-testid="reached-3">1<' in html
    assert 'id="figure-funnel"' in html
    csv = client.get(_funnel_url(format="csv"))
    assert csv["Content-Type"] == "text/csv; charset=utf-8"
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[1] == "1,浏览页面,3,,100.0%,0,"
    assert lines[2].startswith("2,加购,1,33.3%,33.3%,2,")


def test_bad_input_is_a_form_error_not_a_500(client, ws, data):
    _login(client, ws)
    response = client.get(_funnel_url(window=0))
    assert response.status_code == 422
    assert "转化窗口须为 1 到 365 天。" in response.content.decode()
    one_step = client.get(
        reverse("console:explore:funnel") + "?step=page_view&" + "start=2026-03-01&end=2026-03-31"
    )
    assert "漏斗需要 2 到 8 个步骤。" in one_step.content.decode()
    bad_date = client.get(reverse("console:explore:retention") + "?start=yesterday")
    assert bad_date.status_code == 422
    assert "日期格式应为 YYYY-MM-DD。" in bad_date.content.decode()


def test_empty_period_shows_a_message(client, ws, data):
    _login(client, ws)
    html = client.get(
        reverse("console:explore:funnel") + "?start=2025-01-01&end=2025-01-31"
    ).content.decode()
    assert "所选时间段内没有客户完成第一步。" in html
    assert "figure-funnel" not in html


def test_staff_see_their_store_only(client, ws, data):
    user = _login(client, ws, role="staff")
    factories.staff(ws, data["store"], user=user)
    html = client.get(_funnel_url()).content.decode()
    assert 'data-testid="reached-1">2<' in html  # A and B, not C
    assert "流失客户保存为人群" not in html  # staff cannot save segments
    csv = client.get(
        reverse("console:explore:attribution")
        + "?dimension=channel&format=csv&start=2026-03-01&end=2026-03-31"
    ).content.decode("utf-8-sig")
    assert "100.00" in csv and "50.00" not in csv


def test_dropoffs_are_saved_as_a_segment(client, ws, data):
    _login(client, ws, role="operator")
    response = client.post(
        reverse("console:explore:funnel_save"),
        {
            "step": ["page_view", "add_to_cart", "order"],
            "window": "7",
            **RANGE,
            "dropoff_step": "2",
            "name": "没加购的人",
        },
    )
    segment = Segment.objects.get(workspace=ws, name="没加购的人")
    assert response.status_code == 302
    assert response["Location"] == reverse("console:audiences:segment", args=[segment.id])
    assert set(
        SegmentMember.objects.filter(segment=segment).values_list("contact_id", flat=True)
    ) == {
        data["b"].id,
        data["c"].id,
    }
    assert segment.rule["source"]["dropoff_step"] == 2


def test_retention_distribution_and_attribution_pages_render_and_export(client, ws, data):
    _login(client, ws, role="analyst")
    retention = client.get(
        reverse("console:explore:retention") + "?unit=month&start=2026-03-01&end=2026-03-31"
    )
    assert retention.status_code == 200
    assert 'id="figure-retention"' in retention.content.decode()
    rows = (
        client.get(
            reverse("console:explore:retention")
            + "?unit=month&start=2026-03-01&end=2026-03-31&format=csv"
        )
        .content.decode("utf-8-sig")
        .splitlines()
    )
    assert rows[1].startswith("2026-03-01,2,0.0000,")  # A and C first bought in March
    dist = client.get(reverse("console:explore:distribution") + "?start=2026-03-01&end=2026-03-31")
    assert 'id="figure-orders"' in dist.content.decode()
    dist_csv = (
        client.get(
            reverse("console:explore:distribution") + "?start=2026-03-01&end=2026-03-31&format=csv"
        )
        .content.decode("utf-8-sig")
        .splitlines()
    )
    assert dist_csv[1:3] == ["订单数,0,1,", "订单数,1,2,"]
    attr = client.get(reverse("console:explore:attribution") + "?start=2026-03-01&end=2026-03-31")
    html = attr.content.decode()
    assert 'id="figure-attribution"' in html and "抖音" in html and "浏览页面" in html
    attr_csv = (
        client.get(
            reverse("console:explore:attribution") + "?start=2026-03-01&end=2026-03-31&format=csv"
        )
        .content.decode("utf-8-sig")
        .splitlines()
    )
    assert "首次触点,抖音,1,100.00,66.7%" in attr_csv


def test_api_answers_and_refuses(ws, other_ws, data):
    _, raw = api_key_create(workspace=ws, name="explore")
    api = Client(headers={"Authorization": f"Bearer {raw}"})
    body = {"steps": [{"event": "page_view"}, {"order": {}}], "window_days": 7, **RANGE}
    response = api.post("/api/v1/analytics/funnel", body, content_type="application/json")
    assert response.status_code == 200
    assert [s["reached"] for s in response.json()["steps"]] == [3, 2]
    bad = api.post(
        "/api/v1/analytics/funnel",
        {**body, "steps": [{"event": "page_view"}]},
        content_type="application/json",
    )
    assert bad.status_code == 422
    assert bad.json()["path"] == "steps"
    attr = api.get("/api/v1/analytics/attribution", {**RANGE, "dimension": "channel"}).json()
    assert attr["revenue"] == "150.00"
    assert (
        api.get("/api/v1/analytics/retention", {**RANGE, "unit": "month"}).json()["rows"][0]["size"]
        == 2
    )
    dist = api.get("/api/v1/analytics/distribution", RANGE).json()
    assert [b["contacts"] for b in dist["orders"][:2]] == [1, 2]
    _, other_raw = api_key_create(workspace=other_ws, name="other")
    other = Client(headers={"Authorization": f"Bearer {other_raw}"})
    assert other.get("/api/v1/analytics/attribution", RANGE).json()["orders"] == 0
