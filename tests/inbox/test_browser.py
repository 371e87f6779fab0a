"""A staff member works their inbox in a real browser (headless Chromium against the live
server): the overdue task is marked, completing it with an outcome and snoozing another happen
in place, without a page load. A screenshot lands in /tmp for a human look."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from siyu.inbox.models import StaffTask
from tests import factories
from tests.browser import SHOTS


@pytest.fixture
def shop(transactional_db):
    ws = factories.workspace(name="鲜果时光")
    store = factories.store(ws, name="徐汇店")
    _user, clerk = factories.staff_login(ws, store, username="xiaowang")
    contact = factories.plain_contact(ws, nickname="阿美", store=store, owner_staff=clerk)
    now = timezone.now()
    factories.staff_task(
        ws, contact, clerk, due_at=now - timedelta(hours=5), title="回访阿美", kind="call"
    )
    factories.staff_task(
        ws,
        contact,
        clerk,
        due_at=now + timedelta(hours=5),
        title="邀请阿美入群",
        kind="group_invite",
    )
    return ws


def test_staff_completes_an_overdue_task_inline(page: Page, live_server, shop):
    page.goto(f"{live_server.url}/")
    page.get_by_label("用户名").fill("xiaowang")
    page.get_by_label("密码").fill("secret-pass-1")
    page.get_by_role("button", name="登录", exact=True).click()
    page.get_by_role("link", name="任务", exact=True).click()

    rows = page.get_by_test_id("task-row")
    expect(rows).to_have_count(2)
    late = rows.filter(has_text="回访阿美")
    expect(late.get_by_test_id("overdue")).to_have_text("逾期")
    expect(rows.filter(has_text="邀请阿美入群").get_by_test_id("overdue")).to_have_count(0)
    page.evaluate("window.__noReload = true")

    late.get_by_label("跟进结果").fill("约了周六到店")
    late.get_by_role("button", name="完成").click()
    expect(late.get_by_test_id("task-status")).to_have_text("已完成")
    expect(late.get_by_test_id("task-outcome")).to_contain_text("约了周六到店")
    expect(late.get_by_test_id("overdue")).to_have_count(0)

    invite = rows.filter(has_text="邀请阿美入群")
    invite.get_by_label("延后到").select_option(label="明天 9:00")
    invite.get_by_role("button", name="延后").click()
    expect(invite.get_by_test_id("task-status")).to_have_text("已延后")
    assert page.evaluate("window.__noReload") is True  # both happened without a page load
    page.screenshot(path=SHOTS / "siyu-inbox-completed.png", full_page=True)

    task = StaffTask.objects.get(title="回访阿美")
    assert (task.status, task.outcome, task.completed_by.username) == (
        "done",
        "约了周六到店",
        "xiaowang",
    )
    assert StaffTask.objects.get(title="邀请阿美入群").status == "snoozed"
