"""The layers page in headless Chromium: the RFM matrix, the stage-flow Sankey really renders, a
cell opens its contacts, and the recompute button refreshes the layers. Screenshots land in /tmp."""

from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from siyu.audiences.layers_services import layers_refresh
from tests import factories
from tests.browser import SHOTS

END = datetime(2026, 6, 30, 12, tzinfo=UTC)


def test_layers_page_renders_the_matrix_and_the_stage_flow_sankey(
    page: Page, live_server, transactional_db, settings
):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    ws = factories.workspace(name="鲜果时光")
    factories.member(ws, role="owner", username="owner", password="secret-pass-1")
    factories.simulated_orders(ws, 400, channels=("store_qr", "douyin"))
    layers_refresh(workspace=ws, now=END - timedelta(days=31))
    layers_refresh(workspace=ws, now=END)
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("用户名").fill("owner")
    page.get_by_label("密码").fill("secret-pass-1")
    page.get_by_role("button", name="登录", exact=True).click()

    page.get_by_role("link", name="分层", exact=True).click()

    expect(page.get_by_role("heading", name="分层", exact=True)).to_be_visible()
    expect(page.locator('[data-class="important_value"] .rfm-name')).to_have_text("重要价值")
    expect(page.locator("#chart-flow.js-plotly-plot svg.main-svg").first).to_be_visible()
    expect(page.locator("#chart-flow g.sankey")).to_have_count(1)
    expect(page.locator("#chart-flow g.sankey-node").first).to_be_visible()
    expect(
        page.locator("#chart-flow g.sankey-node text.node-label", has_text="2026-06 流失")
    ).to_have_count(1)
    expect(page.get_by_test_id("flow-table")).to_be_visible()
    page.screenshot(path=SHOTS / "siyu-console-layers.png", full_page=True)

    page.locator('[data-class="important_value"] a').click()
    expect(page.get_by_role("heading", name="重要价值")).to_be_visible()
    expect(page.get_by_test_id("layer-contacts").locator("tbody tr").first).to_contain_text(
        "重要价值"
    )
    page.go_back()

    page.get_by_role("button", name="重新计算").click()
    expect(page.get_by_text("已重新计算 400 位客户的分层")).to_be_visible()
