"""The content library in a real browser (headless Chromium against the live server): typing in
the form updates the preview through htmx, saving lists the draft, publishing marks it ready,
and the outbox page shows its counts. Screenshots land in /tmp for a human look."""

import pytest
from playwright.sync_api import Page, expect

from siyu.messaging import services
from tests import factories
from tests.browser import SHOTS
from tests.messaging.helpers import NOON, queue


@pytest.fixture
def brand(transactional_db):
    ws = factories.workspace(name="鲜果时光")
    factories.member(ws, role="operator", username="ops", password="secret-pass-1")
    store = factories.store(ws, name="徐汇店")
    alice = factories.plain_contact(ws, nickname="小李", store=store)
    factories.product(ws, name="阳光玫瑰葡萄", sku="GRAPE-1", price="59.90")
    channel = factories.channel(ws, "console", name="开发")
    queue(ws, factories.message_template(ws, "console", body="{{nickname}} 早"), channel, [alice])
    services.messages_dispatch(worker_id="w1", now=NOON)
    return ws


def test_write_a_template_with_a_live_preview_publish_it_and_see_the_outbox(
    page: Page, live_server, brand
):
    page.goto(f"{live_server.url}/")
    page.get_by_label("用户名").fill("ops")
    page.get_by_label("密码").fill("secret-pass-1")
    page.get_by_role("button", name="登录", exact=True).click()

    page.get_by_role("link", name="内容库", exact=True).click()
    page.get_by_role("link", name="新建内容").click()
    page.locator("#f-name").fill("复购提醒·葡萄")
    page.locator("#f-scene").fill("repurchase")
    page.locator("#f-product").select_option(label="阳光玫瑰葡萄（GRAPE-1）")
    page.locator("#f-body").fill("{{nickname}}，{{product}} 到店了，用券 {{coupon}}")
    page.get_by_label("coupon").fill("GRAPE10")
    expect(page.get_by_test_id("preview-body")).to_have_text(
        "小李，阳光玫瑰葡萄 到店了，用券 GRAPE10"
    )
    page.screenshot(path=str(SHOTS / "siyu-messaging-template-form.png"), full_page=True)

    page.get_by_role("button", name="保存").click()
    row = page.locator("tr", has_text="复购提醒·葡萄")
    expect(row.get_by_text("草稿")).to_be_visible()
    row.get_by_role("button", name="发布").click()
    expect(page.locator("tr", has_text="复购提醒·葡萄").get_by_text("已发布")).to_be_visible()
    page.screenshot(path=str(SHOTS / "siyu-messaging-library.png"), full_page=True)

    page.get_by_role("link", name="发送记录", exact=True).click()
    expect(page.locator('[data-status="sent"] strong')).to_have_text("1")
    page.screenshot(path=str(SHOTS / "siyu-messaging-outbox.png"), full_page=True)
