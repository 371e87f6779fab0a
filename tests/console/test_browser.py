"""The console in a real browser: headless Chromium against the live server, so htmx and
Plotly are exercised as a user's browser runs them. Screenshots land in /tmp for a human look."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from tests import factories
from tests.browser import SHOTS


@pytest.fixture
def brand(transactional_db):
    ws = factories.workspace(name="鲜果时光")
    factories.member(ws, role="owner", username="owner", password="secret-pass-1")
    store = factories.store(ws, name="徐汇店")
    staff = factories.staff(ws, store, name="小李")
    now = timezone.now()
    channels = ["store_qr", "wecom", "official_account", "mini_program", "douyin"]
    for i in range(40):
        c = factories.contact(
            ws,
            phone=f"1380000{i:04d}",
            name=f"客户{i:02d}",
            source_channel=channels[i % len(channels)],
            first_seen_at=now - timedelta(days=(i * 7) % 85, hours=i),
            store_code=store.code,
            owner_staff_code=staff.code,
        )
        for k in range(i % 3):
            factories.order(
                ws, c, f"{39 + i * 3 + k}.90", paid_at=now - timedelta(days=(i * 5 + k * 11) % 80)
            )
    target = factories.contact(
        ws,
        identities=[
            {"kind": "phone", "value": "13812345678"},
            {"kind": "member_no", "value": "M-8888"},
        ],
        name="王芳",
        source_channel="store_qr",
        store_code=store.code,
        owner_staff_code=staff.code,
        first_seen_at=now - timedelta(days=5),
        consent={"wecom": "granted", "sms": "opted_out"},
        first_touch={"campaign": "周二会员日", "state": "qr-xuhui-01", "store_code": store.code},
    )
    factories.order(
        ws,
        target,
        "59.80",
        paid_at=now - timedelta(days=2),
        items=[("SKU-1", "阳光玫瑰", 2, "29.90")],
    )
    factories.event(ws, target, "join_group", occurred_at=now - timedelta(days=1))
    factories.event(ws, target, "coupon_claim", occurred_at=now - timedelta(hours=3))
    return ws


def _sign_in(page: Page, live_server) -> None:
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="登录私域运营台")).to_be_visible()
    page.get_by_label("用户名").fill("owner")
    page.get_by_label("密码").fill("secret-pass-1")
    page.get_by_role("button", name="登录", exact=True).click()


def test_dashboard_renders_plotly_charts(page: Page, live_server, brand):
    _sign_in(page, live_server)

    expect(page.get_by_role("heading", name="首页")).to_be_visible()
    expect(page.get_by_test_id("pool-size")).to_have_text("41")
    expect(page.locator("#chart-new-contacts.js-plotly-plot svg.main-svg").first).to_be_visible()
    expect(page.locator("#chart-orders.js-plotly-plot svg.main-svg").first).to_be_visible()
    expect(page.locator("#chart-new-contacts .legendtext", has_text="企业微信")).to_have_count(1)
    page.screenshot(path=SHOTS / "siyu-console-dashboard.png", full_page=True)


def test_live_search_then_open_the_contact(page: Page, live_server, brand):
    _sign_in(page, live_server)
    page.get_by_role("link", name="客户", exact=True).click()
    expect(page.locator("#contact-results")).to_contain_text("共 41 位客户")

    page.get_by_role("searchbox").type("138****5678")

    expect(page.locator("#contact-results")).to_contain_text("共 1 位客户")
    expect(page.locator("#contact-results tbody tr")).to_have_count(1)
    expect(page).to_have_url(f"{live_server.url}/contacts/?q=138****5678")
    page.screenshot(path=SHOTS / "siyu-console-search.png", full_page=True)

    page.get_by_role("link", name="王芳").click()

    expect(page.get_by_role("heading", name="王芳")).to_be_visible()
    expect(page.get_by_test_id("phone")).to_have_text("+8613812345678")
    expect(page.locator(".timeline li").first).to_contain_text("领券")
    expect(page.get_by_text("阳光玫瑰")).to_be_visible()
    page.screenshot(path=SHOTS / "siyu-console-contact.png", full_page=True)


def test_contact_list_paginates_with_htmx(page: Page, live_server, brand):
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/contacts/")
    page.get_by_role("link", name="下一页").click()
    expect(page.locator("#contact-results")).to_contain_text("第 2 / 2 页")
    expect(page.locator("#contact-results tbody tr")).to_have_count(16)


def test_switching_to_english_in_the_browser(page: Page, live_server, brand):
    _sign_in(page, live_server)
    page.get_by_role("button", name="English").click()

    expect(page.get_by_text("Customer pool")).to_be_visible()
    expect(page.locator("#chart-new-contacts .legendtext", has_text="WeCom")).to_have_count(1)
    page.screenshot(path=SHOTS / "siyu-console-dashboard-en.png", full_page=True)
    page.get_by_role("link", name="Contacts", exact=True).click()
    page.get_by_role("searchbox").type("M-8888")
    expect(page.locator("#contact-results")).to_contain_text("1 contact")
    page.get_by_role("link", name="王芳").click()
    expect(page.get_by_role("heading", name="Activity timeline")).to_be_visible()
    expect(page.locator(".timeline li").first).to_contain_text("Coupon claimed")
    page.screenshot(path=SHOTS / "siyu-console-contact-en.png", full_page=True)
