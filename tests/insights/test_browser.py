"""The customer-value page in headless Chromium: the Plotly charts really render, and a fit
started from the button finishes and replaces the results. Screenshots land in /tmp."""

from playwright.sync_api import Page, expect

from siyu.insights import services
from siyu.insights.models import ModelFit
from tests import factories
from tests.browser import SHOTS


def test_insights_page_renders_the_holdout_chart_and_refits_from_the_button(
    page: Page, live_server, transactional_db, settings
):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    ws = factories.workspace(name="鲜果时光")
    factories.member(ws, role="owner", username="owner", password="secret-pass-1")
    factories.simulated_orders(
        ws, 500, channels=("store_qr", "douyin", "wecom", "official_account")
    )
    first = services.fit_workspace(workspace=ws, today=factories.SIMULATED_END)
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("用户名").fill("owner")
    page.get_by_label("密码").fill("secret-pass-1")
    page.get_by_role("button", name="登录", exact=True).click()

    page.get_by_role("link", name="客户价值", exact=True).click()

    expect(page.get_by_role("heading", name="客户价值 (CLV)")).to_be_visible()
    expect(page.locator("#chart-holdout.js-plotly-plot svg.main-svg").first).to_be_visible()
    expect(page.locator("#chart-holdout .legendtext", has_text="预测")).to_have_count(1)
    expect(page.locator("#chart-holdout .legendtext", has_text="实际")).to_have_count(1)
    expect(page.locator("#chart-holdout g.point")).to_have_count(16)  # 8 buckets × 2 series
    expect(page.locator("#chart-clv.js-plotly-plot svg.main-svg").first).to_be_visible()

    page.get_by_label("获客渠道").select_option("douyin")
    page.get_by_label("月份").fill("2025-10")
    page.get_by_label("花费（元）").fill("-10")
    page.get_by_role("button", name="保存花费").click()
    expect(page.get_by_text("花费不能为负数。")).to_be_visible()
    page.get_by_label("花费（元）").fill("8000")
    page.get_by_role("button", name="保存花费").click()
    expect(page.get_by_test_id("spend-list")).to_contain_text("2025-10抖音—¥8,000.00")
    expect(page.locator('tr[data-channel="douyin"] td.ratio')).not_to_have_text("—")
    page.screenshot(path=SHOTS / "siyu-console-insights.png", full_page=True)

    page.get_by_role("button", name="重新拟合").click()

    expect(page.get_by_test_id("fit-summary")).to_be_visible()
    latest = ModelFit.objects.exclude(id=first.id).get(workspace=ws)
    assert latest.status == "done"
