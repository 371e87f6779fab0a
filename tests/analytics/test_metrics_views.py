"""The 指标 page, its CSV and the metrics API on the hand-made brand (handmade.py)."""

import csv
import io
from datetime import date

import pytest
from ninja.testing import TestClient

from siyu.analytics import services
from siyu.analytics.metrics_api import router
from siyu.commerce.models import Staff
from siyu.commerce.services import channel_spend_set
from siyu.errors import ValidationFailed
from tests import factories
from tests.analytics import handmade

URL = "/analytics/metrics/?start=2026-03-01&end=2026-03-02"


@pytest.fixture
def brand(ws):
    b = handmade.build(ws)
    channel_spend_set(workspace=ws, channel="wecom", month=date(2026, 3, 1), amount="310.00")
    services.rollups_rebuild(workspace=ws, start=date(2026, 2, 20), end=date(2026, 3, 2))
    return b


def login(client, ws, role="owner"):
    user = factories.member(ws, role)
    client.force_login(user)
    return user


def rows(response, key="all") -> dict[str, dict]:
    section = next(s for s in response.context["sections"] if s["key"] == key)
    return {r["code"]: r for r in section["rows"]}


def test_page_shows_values_definitions_and_dashes(client, brand):
    login(client, brand.ws)
    response = client.get(URL)
    assert response.status_code == 200
    got = rows(response)
    assert (got["revenue"]["now"], got["profit"]["now"], got["conversion"]["now"]) == (
        "¥250.00",
        "¥170.00",
        "133.3%",
    )
    assert got["roi_seed"]["now"] == "1,350.0%" and got["roi"]["now"] == "12.50×"
    # The previous period (02-27..02-28) had no visitors: a dash with its reason.
    assert got["conversion"]["before"] == "—"
    assert "UV 为 0" in got["conversion"]["before_why"]
    html = response.content.decode()
    assert "利润 = 收入 − 成本 − 支出" in html
    assert "投入产出比（种子口径）" in html and "投入产出比（常用口径）" in html
    assert 'data-subscore="opt_out"' in html
    assert "上期 GMV" in html or "decomposition-why" in html


def test_a_browser_gets_the_frame_at_once_and_htmx_the_figures(client, brand):
    login(client, brand.ws)
    frame = client.get(URL, headers={"Accept": "text/html,application/xhtml+xml"})
    html = frame.content.decode()
    # The frame: title, menu and a "computing" line that fetches this very page with htmx.
    assert frame.status_code == 200 and "<title>指标" in html and "正在计算" in html
    assert 'hx-get="/analytics/metrics/?start=2026-03-01&amp;end=2026-03-02"' in html
    assert "¥250.00" not in html and "sections" not in frame.context
    page = client.get(URL, headers={"Accept": "text/html", "HX-Request": "true"})
    assert "¥250.00" in page.content.decode() and "正在计算" not in page.content.decode()
    # Nothing of the page for whom may not see it, frame or not.
    client.logout()
    assert client.get(URL, headers={"Accept": "text/html"}).status_code == 302


def test_empty_period_renders_dashes_not_errors(client, brand):
    login(client, brand.ws)
    response = client.get("/analytics/metrics/?start=2025-01-01&end=2025-01-31")
    assert response.status_code == 200
    got = rows(response)
    assert (got["aov"]["now"], got["cac"]["now"], got["orders"]["now"]) == ("—", "—", "0")
    assert 'data-testid="decomposition-why"' in response.content.decode()


def test_staff_sees_only_their_store(client, brand):
    user = login(client, brand.ws, "staff")
    Staff.objects.create(workspace=brand.ws, code="E1", name="导购", store=brand.b, user=user)
    got = rows(client.get(URL + "&cut=store"), key=brand.b.id)
    assert got["revenue"]["now"] == "¥50.00"
    assert got["profit"]["now"] == "—"  # spend is per channel, not per store
    assert [s["key"] for s in client.get(URL + "&cut=store").context["sections"]] == [brand.b.id]
    assert rows(client.get(URL))["revenue"]["now"] == "¥50.00"


def test_other_workspace_does_not_leak(client, brand, other_ws):
    handmade.build(other_ws)
    services.rollups_rebuild(workspace=other_ws, start=date(2026, 3, 1), end=date(2026, 3, 2))
    login(client, other_ws)
    got = rows(client.get(URL))
    assert got["revenue"]["now"] == "¥250.00"  # its own brand only, not 500
    assert got["spend"]["now"] == "—"  # the WeCom spend belongs to the first workspace


def test_csv_export(client, brand):
    login(client, brand.ws)
    response = client.get(
        "/analytics/metrics/export.csv?start=2026-03-01&end=2026-03-02&cut=channel"
    )
    assert response.status_code == 200
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    by = {(r[0], r[1]): r for r in table[1:]}
    assert by[("企业微信", "revenue")][3] == "200.00"
    assert by[("抖音", "orders")][3] == "1"
    assert by[("抖音", "profit")][3] == ""  # no spend entered for Douyin


def test_api_metrics_decomposition_and_health(brand):
    client = TestClient(router)
    params = "start=2026-03-01&end=2026-03-02"
    body = client.get(f"/metrics?{params}", workspace=brand.ws).json()
    revenue = next(m for m in body["sections"][0]["metrics"] if m["code"] == "revenue")
    assert revenue["now"] == {"value": "250.00", "reason": None, "why": ""}
    parts = client.get(f"/metrics/decomposition?{params}", workspace=brand.ws).json()
    assert parts[0]["reason"] == "zero_factor"  # no visitors in the previous period
    h = client.get(f"/health?{params}", workspace=brand.ws).json()
    assert h["score"] == 78.0
    # Bad periods are domain errors (422 once the router sits in siyu.api.app).
    with pytest.raises(ValidationFailed):
        client.get("/metrics?start=2026-03-02&end=2026-03-01", workspace=brand.ws)
