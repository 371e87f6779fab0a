"""The journey builder in a real browser: an operator builds a welcome journey from forms (no
JSON typed), dry-runs it, saves it, publishes and launches it, and sees it measured."""

import pytest
from playwright.sync_api import Page, expect

from siyu.journeys import services
from siyu.journeys.models import Enrollment
from siyu.messaging.models import Message
from tests import factories
from tests.browser import SHOTS


@pytest.fixture
def brand(transactional_db):
    ws = factories.workspace(name="鲜果时光")
    factories.member(ws, role="operator", username="operator", password="secret-pass-1")
    members = [factories.plain_contact(ws, name=f"客户{i}", nickname=f"小{i}") for i in range(6)]
    factories.segment_with(ws, members, name="新客")
    factories.channel(ws, name="控制台")
    factories.message_template(ws, name="欢迎语", body="{{nickname}}，欢迎来到鲜果时光！")
    return ws


def _sign_in(page: Page, live_server) -> None:
    page.goto(f"{live_server.url}/")
    page.get_by_label("用户名").fill("operator")
    page.get_by_label("密码").fill("secret-pass-1")
    page.get_by_role("button", name="登录", exact=True).click()


def test_build_dry_run_save_publish_and_launch_a_journey(page: Page, live_server, brand):
    _sign_in(page, live_server)
    page.get_by_role("link", name="旅程", exact=True).click()
    page.get_by_role("link", name="新建旅程").click()
    page.get_by_test_id("journey-name").fill("新客欢迎")
    page.get_by_test_id("trigger-type").select_option("manual")
    page.get_by_test_id("trigger-segment").select_option(label="新客")
    page.get_by_test_id("holdout").fill("0")  # new journeys keep 10% aside by default
    page.get_by_test_id("add-send").click()
    page.get_by_test_id("step-channel").select_option(label="控制台（console）")
    page.get_by_test_id("step-template").select_option(label="欢迎语")

    page.get_by_test_id("dry-run-button").click()
    expect(page.get_by_test_id("dry-audience")).to_have_text("6")
    expect(page.get_by_test_id("dry-run")).to_contain_text("小0，欢迎来到鲜果时光！")
    page.screenshot(path=str(SHOTS / "journey-builder.png"), full_page=True)

    page.get_by_test_id("save-journey").click()
    expect(page.get_by_test_id("journey-status")).to_have_text("草稿")
    page.get_by_test_id("publish").click()
    expect(page.get_by_test_id("journey-status")).to_have_text("运行中")
    page.get_by_test_id("launch").click()
    expect(page.get_by_test_id("notice")).to_contain_text("6 位客户进入旅程")
    assert Enrollment.objects.filter(workspace=brand).count() == 6

    services.journeys_tick()
    page.reload()
    expect(page.get_by_test_id("step-stats")).to_contain_text("6")
    expect(page.get_by_test_id("roi")).to_contain_text("没有对照组")
    expect(page.locator("#chart-steps .main-svg").first).to_be_visible()
    page.screenshot(path=str(SHOTS / "journey-detail.png"), full_page=True)
    assert Message.objects.filter(workspace=brand).count() == 6


def test_a_save_error_marks_the_step_it_names(page: Page, live_server, brand):
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/journeys/new/")
    page.get_by_test_id("journey-name").fill("有问题的旅程")
    page.get_by_test_id("trigger-type").select_option("manual")
    page.get_by_test_id("add-wait").click()
    page.get_by_test_id("wait-days").fill("0")
    page.get_by_test_id("save-journey").click()
    expect(page.get_by_test_id("builder-error")).to_contain_text("A wait of zero does nothing")
    expect(page.locator(".step-card.step-error")).to_have_count(1)
