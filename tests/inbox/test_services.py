"""Task inbox services: set-based creation for an audience (who gets it, rendering, idempotency,
bounded queries), manual creation, complete/snooze/reassign/cancel, and who sees what."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from siyu.contacts.models import Contact
from siyu.errors import NotFound, PermissionDenied, ValidationFailed
from siyu.inbox import queries, services
from siyu.inbox.models import StaffTask, TaskStatus
from siyu.tenancy.models import Membership
from tests import factories

pytestmark = pytest.mark.django_db

DUE = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _create(ws, contacts=None, **kw):
    args = {
        "workspace": ws,
        "contacts": contacts,
        "kind": "call",
        "title": "回访 {{nickname}}（{{store}}）",
        "due_at": DUE,
        "idempotency_prefix": "journey:7:step:3",
        "source_kind": "journey",
        "source_id": 7,
        "source_key": "step-3",
    }
    return services.tasks_create_for_contacts(**{**args, **kw})


def _membership(ws, user):
    return Membership.objects.select_related("user", "workspace").get(workspace=ws, user=user)


@pytest.fixture
def shop(ws):
    """Two stores; in 徐汇店 a manager and a clerk, in 静安店 one clerk, each owning one contact;
    one contact of 徐汇店 without an owner and one with neither store nor owner."""
    xuhui, jingan = factories.store(ws, name="徐汇店"), factories.store(ws, name="静安店")
    mgr_user, mgr = factories.staff_login(ws, xuhui, is_manager=True, username="mgr")
    clerk_user, clerk = factories.staff_login(ws, xuhui, username="clerk")
    other_user, other = factories.staff_login(ws, jingan, username="other")
    c = {
        "mgr": factories.plain_contact(ws, nickname="阿美", store=xuhui, owner_staff=mgr),
        "clerk": factories.plain_contact(ws, nickname="小王", store=xuhui, owner_staff=clerk),
        "other": factories.plain_contact(ws, nickname="老李", store=jingan, owner_staff=other),
        "no_owner": factories.plain_contact(ws, nickname="无主", store=xuhui),
        "nobody": factories.plain_contact(ws, name="散客"),
    }
    return {
        "stores": (xuhui, jingan),
        "staff": {"mgr": mgr, "clerk": clerk, "other": other},
        "users": {"mgr": mgr_user, "clerk": clerk_user, "other": other_user},
        "contacts": c,
    }


def test_one_task_per_contact_goes_to_the_owner_with_the_title_rendered(ws, shop):
    c, staff = shop["contacts"], shop["staff"]
    created = _create(ws, Contact.objects.filter(workspace=ws))
    assert created == 5
    tasks = {t.contact_id: t for t in StaffTask.objects.filter(workspace=ws)}
    clerk_task = tasks[c["clerk"].id]
    assert clerk_task.assignee == staff["clerk"]
    assert clerk_task.store == shop["stores"][0]
    assert clerk_task.title == "回访 小王（徐汇店）"
    assert clerk_task.status == TaskStatus.OPEN
    assert (clerk_task.kind, clerk_task.due_at) == ("call", DUE)
    assert (clerk_task.source_kind, clerk_task.source_id, clerk_task.source_key) == (
        "journey",
        7,
        "step-3",
    )
    assert clerk_task.idempotency_key == f"journey:7:step:3:contact:{c['clerk'].id}"
    # No owner: the store's unassigned queue; neither store nor owner: HQ's queue.
    assert (tasks[c["no_owner"].id].assignee, tasks[c["no_owner"].id].store) == (
        None,
        shop["stores"][0],
    )
    assert (tasks[c["nobody"].id].assignee, tasks[c["nobody"].id].store) == (None, None)
    assert tasks[c["nobody"].id].title == "回访 散客（）"


def test_running_the_same_step_twice_creates_nothing_more(ws, shop):
    qs = Contact.objects.filter(workspace=ws)
    assert _create(ws, qs) == 5
    assert _create(ws, qs, title="changed") == 0
    assert StaffTask.objects.filter(workspace=ws).count() == 5
    assert _create(ws, qs, idempotency_prefix="journey:7:step:4") == 5


def test_an_inactive_owner_leaves_the_task_in_their_store_queue(ws):
    store = factories.store(ws, name="旧店")
    gone = factories.staff(ws, store, is_active=False)
    contact = factories.plain_contact(ws, owner_staff=gone)
    _create(ws, Contact.objects.filter(id=contact.id))
    task = StaffTask.objects.get(workspace=ws)
    assert (task.assignee, task.store) == (None, store)


def test_contacts_of_another_workspace_are_ignored(ws, other_ws):
    theirs = factories.plain_contact(other_ws, name="x")
    assert _create(ws, Contact.objects.filter(id=theirs.id)) == 0
    assert not StaffTask.objects.exists()


def test_a_thousand_contacts_in_a_bounded_number_of_queries(ws, django_assert_max_num_queries):
    store = factories.store(ws)
    owner = factories.staff(ws, store)
    factories.contacts_many(ws, 1000)
    Contact.objects.filter(workspace=ws).update(owner_staff=owner)
    with django_assert_max_num_queries(3):
        created = _create(ws, Contact.objects.filter(workspace=ws, name__startswith="m"))
    assert created == 1000
    assert StaffTask.objects.filter(workspace=ws, assignee=owner, store=store).count() == 1000


@pytest.mark.parametrize(
    ("change", "code", "path"),
    [
        ({"kind": "visit"}, "bad_kind", "kind"),
        ({"title": "  "}, "required", "title"),
        ({"title": "Hi {{foo}}"}, "unknown_variable", "title"),
        ({"note": "{{ nickname"}, "bad_placeholder", "note"),
        ({"due_at": datetime(2026, 3, 2, 10, 0)}, "naive_time", "due_at"),  # noqa: DTZ001
        ({"idempotency_prefix": ""}, "required", "idempotency_prefix"),
        ({"source_kind": "Journey Step"}, "bad_source_kind", "source_kind"),
        ({"contacts": [1, 2]}, "bad_audience", "contacts"),
    ],
)
def test_bad_input_is_refused_naming_the_field(ws, shop, change, code, path):
    with pytest.raises(ValidationFailed) as exc:
        _create(ws, **{"contacts": Contact.objects.filter(workspace=ws), **change})
    assert (exc.value.code, exc.value.path) == (code, path)
    assert not StaffTask.objects.exists()


def test_variable_errors_name_the_variable_and_the_usable_ones(ws, shop):
    with pytest.raises(
        ValidationFailed,
        match=r"Unknown variable \{\{foo\}\} in the title; use one of .*\{\{nickname\}\}",
    ):
        _create(ws, Contact.objects.filter(workspace=ws), title="{{foo}}")
    # Audience-wide message variables have no value for a task.
    with pytest.raises(
        ValidationFailed,
        match=r"\{\{coupon\}\} has no value in a task's note; use one of \{\{nickname\}\}",
    ):
        _create(ws, Contact.objects.filter(workspace=ws), note="{{coupon}}")


def test_a_nickname_that_looks_like_a_variable_stays_as_it_is(ws):
    weird = factories.plain_contact(ws, nickname="{{store}}")
    _create(ws, Contact.objects.filter(id=weird.id), title="{{nickname}} @ {{store}}")
    assert StaffTask.objects.get(workspace=ws).title == "{{store}} @ "


# --- who sees what ----------------------------------------------------------------------------


@pytest.fixture
def tasks(ws, shop):
    _create(ws, Contact.objects.filter(workspace=ws), due_at=timezone.now() - timedelta(hours=2))
    return {t.contact_id: t for t in StaffTask.objects.filter(workspace=ws)}


def _visible(ws, user):
    viewer = queries.viewer_for(workspace=ws, membership=_membership(ws, user))
    return {
        t.contact.nickname or t.contact.name
        for t in queries.tasks_list(workspace=ws, viewer=viewer, now=timezone.now())
    }


def test_staff_see_their_own_managers_their_store_hq_everything(ws, shop, tasks):
    assert _visible(ws, shop["users"]["clerk"]) == {"小王"}
    assert _visible(ws, shop["users"]["other"]) == {"老李"}
    # The manager sees colleagues' overdue tasks and the store's unassigned queue too.
    assert _visible(ws, shop["users"]["mgr"]) == {"阿美", "小王", "无主"}
    owner = factories.member(ws, role="owner")
    analyst = factories.member(ws, role="analyst")
    assert _visible(ws, owner) == {"阿美", "小王", "老李", "无主", "散客"}
    assert _visible(ws, analyst) == {"阿美", "小王", "老李", "无主", "散客"}
    lost = factories.member(ws, role="staff")  # a staff login without a Staff record
    assert _visible(ws, lost) == set()


def test_hq_filters_by_store_assignee_unassigned_and_overdue(ws, shop, tasks):
    viewer = queries.Viewer(role=None)
    now = timezone.now()
    xuhui, _jingan = shop["stores"]

    def names(**kw):
        return {
            t.contact.nickname or t.contact.name
            for t in queries.tasks_list(workspace=ws, viewer=viewer, now=now, **kw)
        }

    assert names(store_id=xuhui.id) == {"阿美", "小王", "无主"}
    assert names(assignee_id=shop["staff"]["other"].id) == {"老李"}
    assert names(unassigned=True) == {"无主", "散客"}
    assert names(overdue=True) == {"阿美", "小王", "老李", "无主", "散客"}
    assert names(status="done") == set()
    with pytest.raises(ValidationFailed, match="Unknown status 'late'"):
        names(status="late")


def test_workload_counts_open_and_overdue_per_staff(ws, shop, tasks):
    factories.staff_task(ws, shop["contacts"]["clerk"], shop["staff"]["clerk"])  # due tomorrow
    viewer = queries.viewer_for(workspace=ws, membership=_membership(ws, shop["users"]["mgr"]))
    rows = queries.workload_by_staff(workspace=ws, viewer=viewer, now=timezone.now())
    got = {(r["assignee__name"], r["store__name"]): (r["open"], r["overdue"]) for r in rows}
    assert got == {
        (shop["staff"]["clerk"].name, "徐汇店"): (2, 1),
        (shop["staff"]["mgr"].name, "徐汇店"): (1, 1),
        (None, "徐汇店"): (1, 1),
    }


def test_another_workspace_cannot_see_or_touch_a_task(ws, other_ws, shop, tasks):
    task = tasks[shop["contacts"]["clerk"].id]
    with pytest.raises(NotFound):
        queries.task_get(workspace=other_ws, viewer=queries.Viewer(role=None), task_id=task.id)
    with pytest.raises(NotFound):
        services.task_complete(workspace=other_ws, task_id=task.id, outcome="x")
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN


# --- acting on tasks --------------------------------------------------------------------------


def test_staff_complete_their_task_with_an_outcome(ws, shop, tasks):
    clerk = _membership(ws, shop["users"]["clerk"])
    task = tasks[shop["contacts"]["clerk"].id]
    done = services.task_complete(
        workspace=ws, task_id=task.id, membership=clerk, outcome="约了周六到店"
    )
    done.refresh_from_db()
    assert (done.status, done.outcome, done.completed_by) == (
        "done",
        "约了周六到店",
        shop["users"]["clerk"],
    )
    assert done.completed_at is not None
    with pytest.raises(ValidationFailed, match="already 已完成"):
        services.task_complete(workspace=ws, task_id=task.id, membership=clerk)


def test_staff_cannot_touch_a_colleagues_task_but_their_manager_can(ws, shop, tasks):
    clerk = _membership(ws, shop["users"]["clerk"])
    mgr = _membership(ws, shop["users"]["mgr"])
    mgrs_task = tasks[shop["contacts"]["mgr"].id]
    clerks_task = tasks[shop["contacts"]["clerk"].id]
    with pytest.raises(NotFound):  # not visible to the clerk: 404, not 403
        services.task_complete(workspace=ws, task_id=mgrs_task.id, membership=clerk)
    services.task_complete(workspace=ws, task_id=clerks_task.id, membership=mgr, outcome="店长代办")
    other_store = tasks[shop["contacts"]["other"].id]
    with pytest.raises(NotFound):
        services.task_snooze(
            workspace=ws,
            task_id=other_store.id,
            membership=mgr,
            until=timezone.now() + timedelta(days=1),
        )
    analyst = _membership(ws, factories.member(ws, role="analyst"))
    with pytest.raises(PermissionDenied):
        services.task_complete(workspace=ws, task_id=other_store.id, membership=analyst)
    other_store.refresh_from_db()
    assert other_store.status == TaskStatus.OPEN


def test_a_snoozed_task_disappears_and_comes_back_due_when_it_wakes(ws, shop, tasks):
    clerk = _membership(ws, shop["users"]["clerk"])
    viewer = queries.viewer_for(workspace=ws, membership=clerk)
    task = tasks[shop["contacts"]["clerk"].id]
    now = timezone.now()
    until = now + timedelta(days=1)
    services.task_snooze(workspace=ws, task_id=task.id, membership=clerk, until=until, now=now)
    assert list(queries.tasks_list(workspace=ws, viewer=viewer, now=now)) == []
    assert [
        t.id for t in queries.tasks_list(workspace=ws, viewer=viewer, now=now, status="snoozed")
    ] == [task.id]
    back = list(queries.tasks_list(workspace=ws, viewer=viewer, now=until))
    assert [t.id for t in back] == [task.id]
    assert back[0].due_at == until  # not overdue the moment it reappears
    assert list(queries.tasks_list(workspace=ws, viewer=viewer, now=until, overdue=True)) == []
    later = until + timedelta(minutes=1)
    assert services.tasks_wake_snoozed(workspace=ws, now=later) == 1
    task.refresh_from_db()
    assert task.status == TaskStatus.OPEN


@pytest.mark.parametrize(
    ("until", "code"),
    [(timedelta(hours=-1), "snooze_in_past"), (timedelta(days=91), "snooze_too_long")],
)
def test_snooze_refuses_the_past_and_too_far(ws, shop, tasks, until, code):
    task = tasks[shop["contacts"]["clerk"].id]
    with pytest.raises(ValidationFailed) as exc:
        services.task_snooze(workspace=ws, task_id=task.id, until=timezone.now() + until)
    assert (exc.value.code, exc.value.path) == (code, "until")


def test_managers_reassign_within_their_store_hq_anywhere_staff_not_at_all(ws, shop, tasks):
    mgr = _membership(ws, shop["users"]["mgr"])
    clerk = _membership(ws, shop["users"]["clerk"])
    queue_task = tasks[shop["contacts"]["no_owner"].id]
    moved = services.task_reassign(
        workspace=ws, task_id=queue_task.id, assignee_id=shop["staff"]["clerk"].id, membership=mgr
    )
    assert moved.assignee == shop["staff"]["clerk"]
    with pytest.raises(PermissionDenied):
        services.task_reassign(
            workspace=ws,
            task_id=queue_task.id,
            assignee_id=shop["staff"]["other"].id,
            membership=mgr,
        )
    with pytest.raises(PermissionDenied):
        services.task_reassign(
            workspace=ws, task_id=queue_task.id, assignee_id=None, membership=clerk
        )
    hq_task = tasks[shop["contacts"]["nobody"].id]
    moved = services.task_reassign(
        workspace=ws, task_id=hq_task.id, assignee_id=shop["staff"]["other"].id
    )
    assert (moved.assignee, moved.store) == (shop["staff"]["other"], shop["stores"][1])
    with pytest.raises(ValidationFailed) as exc:
        services.task_reassign(workspace=ws, task_id=hq_task.id, assignee_id=999999)
    assert (exc.value.code, exc.value.path) == ("unknown_staff", "assignee_id")


def test_cancel_is_for_managers_and_hq(ws, shop, tasks):
    clerk = _membership(ws, shop["users"]["clerk"])
    task = tasks[shop["contacts"]["clerk"].id]
    with pytest.raises(PermissionDenied):
        services.task_cancel(workspace=ws, task_id=task.id, membership=clerk)
    cancelled = services.task_cancel(workspace=ws, task_id=task.id, reason="客户已退群")
    assert (cancelled.status, cancelled.outcome) == ("cancelled", "客户已退群")


def test_manual_task_goes_to_its_creator_or_the_owner_and_is_idempotent_by_key(ws, shop):
    clerk = _membership(ws, shop["users"]["clerk"])
    contact = shop["contacts"]["no_owner"]
    mine = services.task_create(
        workspace=ws,
        contact_id=contact.id,
        kind="group_invite",
        title="邀请 {{nickname}} 入群",
        due_at=DUE,
        membership=clerk,
    )
    assert (mine.assignee, mine.store, mine.title, mine.source_kind) == (
        shop["staff"]["clerk"],
        shop["stores"][0],
        "邀请 无主 入群",
        "manual",
    )
    hq = services.task_create(
        workspace=ws,
        contact_id=shop["contacts"]["other"].id,
        kind="call",
        title="回访",
        due_at=DUE,
        idempotency_key="crm-42",
        source_kind="api",
    )
    again = services.task_create(
        workspace=ws,
        contact_id=shop["contacts"]["other"].id,
        kind="call",
        title="回访",
        due_at=DUE,
        idempotency_key="crm-42",
        source_kind="api",
    )
    assert again.id == hq.id and hq.assignee == shop["staff"]["other"]
    # A clerk cannot create a task for a contact of another store (not visible) nor for a colleague.
    with pytest.raises(NotFound):
        services.task_create(
            workspace=ws,
            contact_id=shop["contacts"]["other"].id,
            kind="call",
            title="x",
            due_at=DUE,
            membership=clerk,
        )
    with pytest.raises(PermissionDenied):
        services.task_create(
            workspace=ws,
            contact_id=contact.id,
            kind="call",
            title="x",
            due_at=DUE,
            membership=clerk,
            assignee_id=shop["staff"]["mgr"].id,
        )
    assert StaffTask.objects.filter(workspace=ws).count() == 2


def test_a_journey_step_can_be_checked_when_saved(ws):
    services.task_text_check(kind="call", title="回访 {{nickname}}", note="{{store}}")
    with pytest.raises(ValidationFailed) as exc:
        services.task_text_check(kind="call", title="回访 {{nick}}")
    assert (exc.value.code, exc.value.path) == ("unknown_variable", "title")
    with pytest.raises(ValidationFailed):
        services.task_text_check(kind="visit", title="x")


def test_a_merge_moves_tasks_and_messages_to_the_survivor_and_keeps_one_cadence(ws):
    from siyu.contacts.schemas import ContactIn
    from siyu.contacts.services import contacts_upsert
    from siyu.inbox.models import ContactCadence, StaffTask
    from siyu.messaging.models import Message
    from tests.messaging.helpers import queue

    first = factories.contact(ws, phone="13900000011")
    second = factories.contact(ws, identities=[{"kind": "member_no", "value": "M-88"}])
    factories.staff_task(ws, first)
    factories.staff_task(ws, second)
    queue(ws, factories.message_template(ws), factories.channel(ws), [first, second])
    for contact, days in ((first, 14), (second, 7)):
        ContactCadence.objects.create(
            workspace=ws, contact=contact, every_days=days, starts_at=first.first_seen_at, updated_at=first.first_seen_at
        )

    survivor = contacts_upsert(
        workspace=ws,
        items=[ContactIn(identities=[{"kind": "phone", "value": "13900000011"}, {"kind": "member_no", "value": "M-88"}])],
    )[0].contact

    assert set(StaffTask.objects.filter(workspace=ws).values_list("contact_id", flat=True)) == {survivor.id}
    assert StaffTask.objects.filter(workspace=ws).count() == 2
    assert Message.objects.filter(workspace=ws, contact=survivor).count() == 2
    assert list(ContactCadence.objects.filter(workspace=ws).values_list("contact_id", "every_days")) == [(survivor.id, 14)]
