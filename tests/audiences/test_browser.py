"""The segment builder in a real browser (headless Chromium against the live server): the form
is serialised by our script, htmx posts it for the live count, and the saved segment's page draws
its Plotly chart. Screenshots land in /tmp for a human look."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from siyu.audiences import services
from tests import factories
from tests.browser import SHOTS


@pytest.fixture
def brand(transactional_db):
    """Five Shanghai customers, three of whom bought (one twice), and three in Beijing."""
    ws = factories.workspace(name="鲜果时光")
    factories.member(ws, role="owner", username="owner", password="secret-pass-1")
    store = factories.store(ws, name="徐汇店")
    now = timezone.now()
    for i in range(8):
        contact = factories.contact(
            ws,
            phone=f"1380000{i:04d}",
            name=f"客户{i}",
            city="上海" if i < 5 else "北京",
            store_code=store.code,
            first_seen_at=now - timedelta(days=30 - i),
        )
        for k in range(2 if i == 0 else 1 if i in (1, 2, 6) else 0):
            factories.order(ws, contact, "59.90", paid_at=now - timedelta(days=3 + k))
    group = services.tag_group_create(workspace=ws, name="价值")
    services.tag_create(workspace=ws, group=group, name="VIP", color="#e11d48")
    return ws


def _sign_in(page: Page, live_server) -> None:
    page.goto(f"{live_server.url}/")
    page.get_by_label("用户名").fill("owner")
    page.get_by_label("密码").fill("secret-pass-1")
    page.get_by_role("button", name="登录", exact=True).click()


def test_build_a_two_condition_segment_with_a_live_count_and_save_it(
    page: Page, live_server, brand
):
    _sign_in(page, live_server)
    page.get_by_role("link", name="人群", exact=True).click()
    page.get_by_role("link", name="新建人群").click()
    expect(page.get_by_test_id("preview-hint")).to_be_visible()
    page.get_by_label("名称").fill("上海已购客户")

    page.get_by_role("button", name="+ 添加条件", exact=True).click()
    first = page.get_by_test_id("condition").nth(0)
    first.get_by_label("字段").select_option(label="城市")
    first.get_by_label("城市").fill("上海")
    expect(page.get_by_test_id("preview-count")).to_have_text("5")

    page.get_by_role("button", name="+ 添加条件", exact=True).click()
    second = page.get_by_test_id("condition").nth(1)
    second.get_by_label("条件类型").select_option(label="订单")
    second.get_by_label("指标").select_option(label="订单数")
    second.get_by_label("值").fill("1")
    expect(page.get_by_test_id("preview-count")).to_have_text("3")
    expect(page.get_by_test_id("preview-sample").locator("tbody tr")).to_have_count(3)
    expect(page.get_by_test_id("preview-sample")).to_contain_text("138****0000")

    # A count below zero is refused by the server, naming the row's path; the row turns red.
    second.get_by_label("值").fill("-1")
    expect(page.get_by_test_id("preview-error")).to_have_text(
        "all.1.orders.count.gte: expected a whole number of at least 0"
    )
    expect(second).to_have_class("cond cond-error")
    page.screenshot(path=SHOTS / "siyu-segment-builder-error.png", full_page=True)
    second.get_by_label("值").fill("2")
    expect(page.get_by_test_id("preview-count")).to_have_text("1")
    expect(second).to_have_class("cond")
    second.get_by_label("值").fill("1")
    expect(page.get_by_test_id("preview-count")).to_have_text("3")
    page.screenshot(path=SHOTS / "siyu-segment-builder.png", full_page=True)

    page.get_by_role("tab", name="JSON").click()
    expect(page.get_by_label("规则 JSON")).to_have_value(
        '{\n  "all": [\n    {\n      "field": "contact.city",\n      "op": "eq",\n'
        '      "value": "上海"\n    },\n    {\n      "orders": {\n        "count": {\n'
        '          "gte": 1\n        }\n      }\n    }\n  ]\n}'
    )
    page.get_by_role("tab", name="表单").click()
    page.get_by_role("button", name="保存人群").click()

    expect(page.get_by_role("heading", name="上海已购客户")).to_be_visible()
    expect(page.get_by_text("人群「上海已购客户」已保存。")).to_be_visible()
    expect(page.get_by_test_id("segment-size")).to_have_text("3")
    expect(page.locator("#chart-segment-size.js-plotly-plot svg.main-svg").first).to_be_visible()
    expect(page.get_by_test_id("members").locator("tbody tr")).to_have_count(3)
    page.screenshot(path=SHOTS / "siyu-segment-page.png", full_page=True)

    page.get_by_role("link", name="编辑").click()
    expect(page.get_by_test_id("condition")).to_have_count(2)
    expect(page.get_by_test_id("condition").nth(1).get_by_label("值")).to_have_value("1")
    expect(page.get_by_test_id("preview-count")).to_have_text("3")
    page.screenshot(path=SHOTS / "siyu-segment-edit.png", full_page=True)


def test_tag_a_contact_on_their_page_and_see_the_tags_page_in_english(
    page: Page, live_server, brand
):
    _sign_in(page, live_server)
    page.get_by_role("link", name="客户", exact=True).click()
    page.get_by_role("link", name="客户0").click()
    tags = page.get_by_test_id("contact-tags")
    expect(tags).to_contain_text("还没有标签。")

    tags.get_by_role("button", name="添加标签").click()

    expect(tags.locator(".tag-chip")).to_have_text(["VIP×"])
    page.screenshot(path=SHOTS / "siyu-contact-tags.png", full_page=True)
    tags.get_by_role("button", name="移除标签 VIP").click()
    expect(tags).to_contain_text("还没有标签。")

    page.get_by_role("button", name="English").click()
    page.get_by_role("link", name="Tags", exact=True).click()
    expect(page.get_by_test_id("tag-count")).to_have_text(["0"])
    expect(page.get_by_role("heading", name="Tag from a list")).to_be_visible()
    page.screenshot(path=SHOTS / "siyu-tags-en.png", full_page=True)
    page.get_by_role("link", name="Segments", exact=True).click()
    page.get_by_role("link", name="New segment").click()
    page.get_by_role("button", name="+ Add group").click()
    group = page.get_by_test_id("condition-group")
    group.get_by_test_id("condition").get_by_label("Condition type").select_option(label="Tags")
    group.get_by_role("button", name="+ Add condition").click()
    expect(page.get_by_test_id("preview-count")).to_have_text("0")
    page.screenshot(path=SHOTS / "siyu-segment-builder-en.png", full_page=True)
