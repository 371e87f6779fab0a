"""The task inbox over the API: list with filters (one query per page), create, complete, snooze,
reassign, cancel, cadences for a contact and a segment; bad input answers 422 naming the field;
another workspace's ids answer 404 and change nothing."""

from datetime import timedelta

import pytest
from django.utils import timezone

from siyu.inbox.models import ContactCadence, StaffTask
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(ws):
    store = factories.store(ws, name="徐汇店")
    wang = factories.staff(ws, store, name="小王")
    li = factories.staff(ws, store, name="小李")
    a = factories.plain_contact(ws, nickname="阿美", store=store, owner_staff=wang)
    b = factories.plain_contact(ws, nickname="老李", store=store, owner_staff=li)
    now = timezone.now()
    late = factories.staff_task(ws, a, wang, due_at=now - timedelta(hours=3), title="回访阿美")
    soon = factories.staff_task(
        ws, b, li, due_at=now + timedelta(hours=3), title="邀请老李入群", kind="group_invite"
    )
    return {"store": store, "wang": wang, "li": li, "a": a, "b": b, "late": late, "soon": soon}


def _json(client, method, url, body):
    return getattr(client, method)(url, body, content_type="application/json")


def test_list_filters_and_shows_overdue(api, shop, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):  # key lookup, key touch, the page
        res = api.get("/api/v1/tasks")
    assert res.status_code == 200
    rows = res.json()
    assert [(r["title"], r["overdue"], r["assignee_name"], r["store_name"]) for r in rows] == [
        ("回访阿美", True, "小王", "徐汇店"),
        ("邀请老李入群", False, "小李", "徐汇店"),
    ]
    assert rows[0]["due_at"].endswith("+08:00")
    assert [r["title"] for r in api.get("/api/v1/tasks?overdue=true").json()] == ["回访阿美"]
    assert [r["title"] for r in api.get(f"/api/v1/tasks?assignee_id={shop['li'].id}").json()] == [
        "邀请老李入群"
    ]
    assert [r["title"] for r in api.get("/api/v1/tasks?kind=group_invite").json()] == [
        "邀请老李入群"
    ]
    assert len(api.get(f"/api/v1/tasks?store_id={shop['store'].id}&limit=1").json()) == 1
    res = api.get("/api/v1/tasks?status=late")
    assert res.status_code == 422
    assert res.json()["path"] == "status"
    assert api.get("/api/v1/tasks?limit=5000").status_code == 422


def test_create_complete_and_snooze(api, shop):
    res = _json(
        api,
        "post",
        "/api/v1/tasks",
        {
            "contact_id": shop["a"].id,
            "kind": "birthday",
            "title": "{{nickname}} 生日快乐",
            "due_at": "2026-12-01T10:00:00+08:00",
            "idempotency_key": "crm-1",
        },
    )
    assert res.status_code == 201, res.content
    body = res.json()
    assert (body["title"], body["assignee_name"], body["source_kind"], body["status"]) == (
        "阿美 生日快乐",
        "小王",
        "api",
        "open",
    )
    again = _json(
        api,
        "post",
        "/api/v1/tasks",
        {
            "contact_id": shop["a"].id,
            "kind": "birthday",
            "title": "x",
            "due_at": "2026-12-01T10:00:00+08:00",
            "idempotency_key": "crm-1",
        },
    )
    assert again.json()["id"] == body["id"]

    res = _json(api, "post", f"/api/v1/tasks/{shop['late'].id}/complete", {"outcome": "已约到店"})
    assert res.status_code == 200
    assert (res.json()["status"], res.json()["outcome"], res.json()["overdue"]) == (
        "done",
        "已约到店",
        False,
    )
    res = _json(api, "post", f"/api/v1/tasks/{shop['late'].id}/complete", {})
    assert (res.status_code, res.json()["code"]) == (422, "task_closed")

    until = (timezone.now() + timedelta(days=2)).isoformat()
    res = _json(api, "post", f"/api/v1/tasks/{shop['soon'].id}/snooze", {"until": until})
    assert (res.status_code, res.json()["status"]) == (200, "snoozed")
    assert [r["id"] for r in api.get("/api/v1/tasks?status=snoozed").json()] == [shop["soon"].id]
    assert shop["soon"].id not in [r["id"] for r in api.get("/api/v1/tasks").json()]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"kind": "visit"}, "kind"),
        ({"title": ""}, "title"),
        ({"title": "{{coupon}}"}, "title"),
        ({"due_at": "2026-12-01T10:00:00"}, "due_at"),
        ({"due_at": "soon"}, "due_at"),
        ({"assignee_id": 999999}, "assignee_id"),
        ({"priority": "high"}, "priority"),
    ],
)
def test_bad_task_input_is_422_with_the_field_path(api, shop, body, path):
    payload = {
        "contact_id": shop["a"].id,
        "kind": "call",
        "title": "回访",
        "due_at": "2026-12-01T10:00:00+08:00",
    }
    res = _json(api, "post", "/api/v1/tasks", {**payload, **body})
    assert res.status_code == 422, res.content
    data = res.json()
    assert data.get("path") == path or [e["path"] for e in data.get("errors", [])] == [path]
    assert StaffTask.objects.count() == 2


def test_snooze_in_the_past_and_reassign_and_cancel(api, shop):
    res = _json(
        api,
        "post",
        f"/api/v1/tasks/{shop['soon'].id}/snooze",
        {"until": "2020-01-01T00:00:00+08:00"},
    )
    assert (res.status_code, res.json()["path"]) == (422, "until")
    res = _json(
        api, "post", f"/api/v1/tasks/{shop['soon'].id}/reassign", {"assignee_id": shop["wang"].id}
    )
    assert (res.status_code, res.json()["assignee_name"]) == (200, "小王")
    res = _json(api, "post", f"/api/v1/tasks/{shop['soon'].id}/reassign", {"assignee_id": None})
    assert (res.json()["assignee_id"], res.json()["store_name"]) == (None, "徐汇店")
    assert [r["id"] for r in api.get("/api/v1/tasks?unassigned=true").json()] == [shop["soon"].id]
    res = _json(api, "post", f"/api/v1/tasks/{shop['soon'].id}/cancel", {"reason": "客户已退群"})
    assert (res.json()["status"], res.json()["outcome"]) == ("cancelled", "客户已退群")


def test_another_workspace_gets_404_and_changes_nothing(other_api, shop):
    task = shop["late"]
    assert other_api.get(f"/api/v1/tasks/{task.id}").status_code == 404
    assert other_api.get("/api/v1/tasks").json() == []
    assert _json(other_api, "post", f"/api/v1/tasks/{task.id}/complete", {}).status_code == 404
    assert (
        _json(
            other_api,
            "post",
            f"/api/v1/tasks/{task.id}/snooze",
            {"until": "2030-01-01T00:00:00+08:00"},
        ).status_code
        == 404
    )
    assert (
        _json(
            other_api,
            "post",
            "/api/v1/tasks",
            {
                "contact_id": shop["a"].id,
                "kind": "call",
                "title": "x",
                "due_at": "2026-12-01T10:00:00+08:00",
            },
        ).status_code
        == 404
    )
    assert (
        _json(
            other_api, "put", f"/api/v1/contacts/{shop['a'].id}/cadence", {"every_days": 7}
        ).status_code
        == 404
    )
    task.refresh_from_db()
    assert task.status == "open"
    assert StaffTask.objects.count() == 2
    assert not ContactCadence.objects.exists()


def test_cadence_for_a_contact_and_a_segment(api, ws, shop):
    res = _json(api, "put", f"/api/v1/contacts/{shop['a'].id}/cadence", {"every_days": 14})
    assert (res.status_code, res.json()["every_days"]) == (200, 14)
    res = _json(api, "put", f"/api/v1/contacts/{shop['a'].id}/cadence", {"every_days": 0})
    assert (res.status_code, res.json()["path"]) == (422, "every_days")
    res = _json(api, "put", f"/api/v1/contacts/{shop['a'].id}/cadence", {"every_days": None})
    assert (res.status_code, res.json()["every_days"]) == (200, None)
    segment = factories.segment_with(ws, [shop["a"], shop["b"]], name="高价值")
    res = _json(api, "put", f"/api/v1/segments/{segment.id}/cadence", {"every_days": 14})
    assert res.json() == {"segment_id": segment.id, "every_days": 14, "contacts": 2}
    assert (
        _json(api, "put", "/api/v1/segments/999999/cadence", {"every_days": 14}).status_code == 404
    )
