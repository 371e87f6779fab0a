"""The task inbox console: my tasks with overdue ones marked, inline complete/snooze answering
the row, the manager's and HQ's views, the team page, the contact page's panel (tasks, cadence,
new task), roles, and cross-workspace 404s."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from siyu.inbox.models import ContactCadence, StaffTask
from tests import factories

pytestmark = pytest.mark.django_db
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def shop(ws):
    store = factories.store(ws, name="徐汇店")
    mgr_user, mgr = factories.staff_login(ws, store, is_manager=True)
    clerk_user, clerk = factories.staff_login(ws, store)
    a = factories.plain_contact(ws, nickname="阿美", store=store, owner_staff=clerk)
    b = factories.plain_contact(ws, nickname="老李", store=store, owner_staff=mgr)
    now = timezone.now()
    late = factories.staff_task(ws, a, clerk, due_at=now - timedelta(days=1), title="回访阿美")
    soon = factories.staff_task(ws, a, clerk, due_at=now + timedelta(days=1), title="邀请阿美入群")
    mgrs = factories.staff_task(ws, b, mgr, due_at=now - timedelta(hours=1), title="老李生日")
    return {
        "store": store,
        "mgr_user": mgr_user,
        "mgr": mgr,
        "clerk_user": clerk_user,
        "clerk": clerk,
        "a": a,
        "b": b,
        "late": late,
        "soon": soon,
        "mgrs": mgrs,
    }


def _rows(html: str) -> int:
    return html.count('data-testid="task-row"')


def test_nav_links_to_my_inbox_sorted_by_due_with_overdue_marked(client, shop):
    client.force_login(shop["clerk_user"])
    home = client.get("/")
    assert 'href="/tasks/"' in home.content.decode()
    html = client.get("/tasks/").content.decode()
    assert _rows(html) == 2  # the clerk's own two, not the manager's
    assert html.index("回访阿美") < html.index("邀请阿美入群")
    assert html.count('data-testid="overdue"') == 1
    assert "老李生日" not in html
    assert client.get("/tasks/team/").status_code == 403


def test_complete_inline_answers_the_row_with_the_outcome(client, shop):
    client.force_login(shop["clerk_user"])
    res = client.post(
        f"/tasks/{shop['late'].id}/complete/", {"outcome": "约了周六到店"}, HTTP_HX_REQUEST="true"
    )
    assert res.status_code == 200
    html = res.content.decode()
    assert html.lstrip().startswith("<tr") and "约了周六到店" in html and "已完成" in html
    shop["late"].refresh_from_db()
    assert (shop["late"].status, shop["late"].completed_by) == ("done", shop["clerk_user"])
    # Completing again shows the refusal in the row.
    again = client.post(f"/tasks/{shop['late'].id}/complete/", {"outcome": "x"})
    assert 'data-testid="task-error"' in again.content.decode()


def test_snooze_inline_hides_it_until_then(client, shop):
    client.force_login(shop["clerk_user"])
    res = client.post(f"/tasks/{shop['late'].id}/snooze/", {"until": "tomorrow"})
    assert "再提醒" in res.content.decode()
    shop["late"].refresh_from_db()
    local = timezone.localtime(shop["late"].snoozed_until, timezone=SHANGHAI)
    assert (shop["late"].status, local.hour, local.minute) == ("snoozed", 9, 0)
    assert "回访阿美" not in client.get("/tasks/").content.decode()
    assert "回访阿美" in client.get("/tasks/?status=snoozed").content.decode()
    bad = client.post(f"/tasks/{shop['soon'].id}/snooze/", {"until": "someday"})
    assert "请选择延后到什么时候" in bad.content.decode()


def test_a_clerk_cannot_touch_the_managers_task_but_the_manager_sees_the_store(client, shop):
    client.force_login(shop["clerk_user"])
    assert client.post(f"/tasks/{shop['mgrs'].id}/complete/", {}).status_code == 404
    assert client.post(f"/tasks/{shop['late'].id}/cancel/", {}).status_code == 403
    client.force_login(shop["mgr_user"])
    html = client.get("/tasks/?overdue=1").content.decode()
    assert _rows(html) == 2 and "回访阿美" in html and "老李生日" in html
    team = client.get("/tasks/team/").content.decode()
    assert shop["clerk"].name in team and 'data-testid="total-overdue">2<' in team
    res = client.post(f"/tasks/{shop['late'].id}/reassign/", {"assignee": shop["mgr"].id})
    assert res.status_code == 200
    shop["late"].refresh_from_db()
    assert shop["late"].assignee == shop["mgr"]
    shop["mgrs"].refresh_from_db()
    assert shop["mgrs"].status == "open"


def test_hq_filters_by_store_and_staff_and_analysts_only_read(client, ws, shop):
    other_store = factories.store(ws, name="静安店")
    far = factories.staff(ws, other_store, name="远方")
    factories.staff_task(
        ws, factories.plain_contact(ws, nickname="远客", store=other_store), far, title="远客回访"
    )
    client.force_login(factories.member(ws, role="owner"))
    assert _rows(client.get("/tasks/").content.decode()) == 4
    html = client.get(f"/tasks/?store={other_store.id}").content.decode()
    assert _rows(html) == 1 and "远客回访" in html
    assert _rows(client.get(f"/tasks/?assignee={shop['mgr'].id}").content.decode()) == 1
    client.force_login(factories.member(ws, role="analyst"))
    html = client.get("/tasks/").content.decode()
    assert _rows(html) == 4 and "完成</button>" not in html
    assert client.post(f"/tasks/{shop['late'].id}/complete/", {}).status_code == 403


def test_another_workspace_gets_404(client, other_ws, shop):
    client.force_login(factories.member(other_ws, role="owner"))
    assert client.post(f"/tasks/{shop['late'].id}/complete/", {}).status_code == 404
    assert client.get(f"/tasks/contact/{shop['a'].id}/").status_code == 404
    assert (
        client.post(f"/tasks/contact/{shop['a'].id}/cadence/", {"every_days": "7"}).status_code
        == 404
    )
    assert _rows(client.get("/tasks/").content.decode()) == 0
    shop["late"].refresh_from_db()
    assert shop["late"].status == "open"


def test_contact_page_panel_shows_tasks_and_sets_the_cadence(client, ws, shop):
    client.force_login(factories.member(ws, role="operator"))
    page = client.get(f"/contacts/{shop['a'].id}/").content.decode()
    assert f'hx-get="/tasks/contact/{shop["a"].id}/"' in page
    panel = client.get(f"/tasks/contact/{shop['a'].id}/").content.decode()
    assert _rows(panel) == 2 and "未设置跟进周期" in panel
    saved = client.post(
        f"/tasks/contact/{shop['a'].id}/cadence/", {"every_days": "14"}
    ).content.decode()
    assert "每 14 天跟进一次" in saved
    assert ContactCadence.objects.get(contact=shop["a"]).every_days == 14
    bad = client.post(
        f"/tasks/contact/{shop['a'].id}/cadence/", {"every_days": "400"}
    ).content.decode()
    assert "every_days must be a whole number of days from 1 to 365" in bad
    cleared = client.post(
        f"/tasks/contact/{shop['a'].id}/cadence/", {"every_days": "14", "clear": "1"}
    ).content.decode()
    assert "未设置跟进周期" in cleared
    made = client.post(
        f"/tasks/contact/{shop['a'].id}/new/",
        {
            "kind": "group_invite",
            "title": "邀请 {{nickname}} 入群",
            "due_at": "2026-12-01T10:00",
        },
    ).content.decode()
    assert "邀请 阿美 入群" in made
    task = StaffTask.objects.get(title="邀请 阿美 入群")
    assert (task.assignee, task.source_kind) == (shop["clerk"], "manual")
    assert timezone.localtime(task.due_at, timezone=SHANGHAI).hour == 10
    refused = client.post(
        f"/tasks/contact/{shop['a'].id}/new/",
        {"kind": "call", "title": "", "due_at": "2026-12-01T10:00"},
    )
    assert "The title must not be empty." in refused.content.decode()


def test_hq_sets_a_segments_cadence_from_the_team_page(client, ws, shop):
    segment = factories.segment_with(ws, [shop["a"], shop["b"]], name="高价值")
    client.force_login(factories.member(ws, role="owner"))
    res = client.post(
        "/tasks/cadence/segment/", {"segment": segment.id, "every_days": "14"}, follow=True
    )
    assert "已为 2 位客户设置跟进周期" in res.content.decode()
    assert ContactCadence.objects.filter(workspace=ws, every_days=14).count() == 2
    bad = client.post("/tasks/cadence/segment/", {"segment": segment.id, "every_days": "0"})
    assert bad.status_code == 400 and "every_days must be" in bad.content.decode()
    client.force_login(shop["mgr_user"])
    assert (
        client.post(
            "/tasks/cadence/segment/", {"segment": segment.id, "every_days": "7"}
        ).status_code
        == 403
    )
