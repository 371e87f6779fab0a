"""The metrics, funnel, retention and leaderboards pages in headless Chromium, on the hand-made
brand (handmade.py) plus one visit and one order in the previous period (so the GMV waterfall
has two periods to compare): a Plotly chart really renders, changing the cut / breakdown /
period re-renders the page, and the CSV link downloads the table shown. Screenshots land in
/tmp."""

import csv
import io
import re
from datetime import date
from urllib.parse import urljoin

import pytest
from playwright.sync_api import Page, expect

from siyu.analytics import services
from tests import factories
from tests.analytics import handmade
from tests.browser import SHOTS

PERIOD = "start=2026-03-01&end=2026-03-02"


@pytest.fixture
def brand(transactional_db):
    ws = factories.workspace(name="鲜果时光")
    factories.member(ws, role="owner", username="owner", password="secret-pass-1")
    b = handmade.build(ws)
    factories.event(ws, b.c3, occurred_at=handmade.local(2, 28, 9))
    handmade.order(ws, b.c3, "o5", handmade.local(2, 28, 10), "60")
    services.rollups_rebuild(workspace=ws, start=date(2026, 2, 20), end=date(2026, 3, 2))
    return b


def login(page: Page, live_server) -> None:
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("用户名").fill("owner")
    page.get_by_label("密码").fill("secret-pass-1")
    page.get_by_role("button", name="登录", exact=True).click()


def chart(page: Page, chart_id: str) -> None:
    expect(page.locator(f"#{chart_id}.js-plotly-plot svg.main-svg").first).to_be_visible()


def download(page: Page) -> list[list[str]]:
    """Follows the page's CSV link with the browser's session; the rows of the file."""
    href = page.get_by_test_id("csv-link").get_attribute("href")
    response = page.request.get(urljoin(page.url, href))
    assert response.status == 200
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.body().decode("utf-8-sig"))))


def test_metrics_page_chart_cut_and_csv(page: Page, live_server, brand):
    login(page, live_server)
    opened = page.goto(f"{live_server.url}/analytics/metrics/?{PERIOD}")
    # The browser is first given the frame; the figures arrive through htmx.
    assert 'data-testid="deferred"' in opened.text()
    expect(page.get_by_role("heading", name="指标", exact=True)).to_be_visible()
    expect(page.get_by_test_id("deferred")).to_have_count(0)
    chart(page, "chart-waterfall")
    expect(page.locator("#chart-waterfall g.point")).to_have_count(5)  # before, 3 factors, now
    expect(
        page.locator('[data-section="全部"] tr[data-metric="revenue"] [data-testid="now"]')
    ).to_have_text("¥250.00")

    page.get_by_label("切分").select_option("channel")
    page.get_by_role("button", name="查看").click()
    expect(
        page.locator('[data-section="企业微信"] tr[data-metric="revenue"] [data-testid="now"]')
    ).to_have_text("¥200.00")
    expect(
        page.locator('[data-section="抖音"] tr[data-metric="revenue"] [data-testid="now"]')
    ).to_have_text("¥50.00")
    rows = download(page)
    by = {(r[0], r[1]): r for r in rows[1:]}
    assert by[("企业微信", "revenue")][3] == "200.00"

    page.get_by_label("切分").select_option("category")
    page.get_by_role("button", name="查看").click()
    uv = page.locator('[data-section="未分类商品"] tr[data-metric="uv"] [data-testid="now"]')
    expect(uv).to_contain_text("—")
    expect(uv).to_contain_text("不分商品品类")
    page.screenshot(path=SHOTS / "siyu-console-metrics.png", full_page=True)


def test_funnel_page_chart_breakdown_and_csv(page: Page, live_server, brand):
    login(page, live_server)
    page.goto(f"{live_server.url}/analytics/explore/?step=page_view&step=order&window=7&{PERIOD}")
    chart(page, "chart-funnel")
    expect(page.get_by_test_id("reached-1")).to_have_text("2")  # c1 and c2 viewed a page
    expect(page.get_by_test_id("reached-2")).to_have_text("2")  # and both ordered after it

    page.get_by_label("拆分").select_option("source_channel")
    page.get_by_role("button", name="计算").click()
    expect(page.get_by_test_id("breakdown")).to_contain_text("企业微信")
    chart(page, "chart-funnel")
    rows = download(page)
    assert rows[0][0] == "#" and [r[2] for r in rows[1:3]] == ["2", "2"]
    assert ["拆分", "企业微信", "2", "2"] in rows
    page.screenshot(path=SHOTS / "siyu-console-funnel.png", full_page=True)


def test_retention_page_chart_period_change_and_csv(page: Page, live_server, brand):
    login(page, live_server)
    page.goto(f"{live_server.url}/analytics/explore/retention/?start=2026-02-23&end=2026-03-08")
    chart(page, "chart-retention")
    expect(page.get_by_test_id("retention-result")).to_contain_text("周 0")

    page.get_by_label("周期").select_option("month")
    page.get_by_role("button", name="计算").click()
    expect(page.get_by_test_id("retention-result")).to_contain_text("月 0")
    chart(page, "chart-retention")
    rows = download(page)
    assert rows[0][:3] == ["同期群", "人数", "月 0"]
    # First-order cohorts by month: c3 in February (o0), c1 and c2 in March.
    assert [(r[0], r[1]) for r in rows[1:] if r[1] != "0"] == [
        ("2026-02-01", "1"),
        ("2026-03-01", "2"),
    ]
    page.screenshot(path=SHOTS / "siyu-console-retention.png", full_page=True)


def test_leaderboards_page_chart_ranking_change_and_csv(page: Page, live_server, brand):
    login(page, live_server)
    page.goto(f"{live_server.url}/analytics/metrics/leaderboards/?{PERIOD}")
    chart(page, "chart-board")
    expect(page.locator("#chart-board g.point")).to_have_count(2)  # stores A and B
    expect(page.get_by_test_id("board").locator("tbody tr").first).to_contain_text(brand.a.name)

    page.get_by_label("排序").select_option("new_contacts")
    page.get_by_role("button", name="查看").click()
    expect(page).to_have_url(re.compile(r"by=new_contacts"))
    expect(page.locator("#chart-board .xtitle")).to_contain_text("新增客户")
    rows = download(page)
    assert rows[0][:2] == ["名次", "名称"]
    assert [r[1] for r in rows[1:3]] == [brand.a.name, brand.b.name]

    page.get_by_label("从").fill("2025-01-01")
    page.get_by_label("到").fill("2025-01-31")
    page.get_by_role("button", name="查看").click()
    expect(page.get_by_test_id("board")).to_contain_text("这段时间没有数据。")
    expect(page.get_by_test_id("board-chart")).to_have_count(0)
    page.screenshot(path=SHOTS / "siyu-console-leaderboards.png", full_page=True)
