"""Follow-up cadence: set per contact and for a segment's members; the periodic run creates one
follow-up task per contact whose last touch (a completed task, a message that went out, or the
cadence's start) is older than the cadence and who has no pending follow-up; once per local day."""

from datetime import UTC, datetime, timedelta

import pytest

from siyu.errors import NotFound, PermissionDenied, ValidationFailed
from siyu.inbox import services
from siyu.inbox.models import ContactCadence, StaffTask, TaskStatus
from siyu.messaging.models import Message
from siyu.scheduler.jobs import JOBS
from siyu.tenancy.models import Membership
from tests import factories

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


def _cadence(ws, contact, days, started_days_ago):
    return services.cadence_set(
        workspace=ws,
        contact_id=contact.id,
        every_days=days,
        now=NOW - timedelta(days=started_days_ago),
    )


def _message(ws, contact, status, sent_days_ago):
    channel = factories.channel(ws)
    at = NOW - timedelta(days=sent_days_ago)
    return Message.objects.create(
        workspace=ws,
        contact=contact,
        channel=channel,
        channel_kind=channel.kind,
        idempotency_key=f"t:{contact.id}:{status}:{sent_days_ago}",
        body="hi",
        status=status,
        suppress_reason="opted_out" if status == "suppressed" else "",
        next_attempt_at=at,
        scheduled_at=at,
        queued_at=at,
        sent_at=at if status == "sent" else None,
    )


@pytest.fixture
def owner(ws):
    store = factories.store(ws, name="徐汇店")
    return factories.staff(ws, store, name="小王")


def _followups(ws, contact=None):
    qs = StaffTask.objects.filter(workspace=ws, kind="follow_up")
    return qs.filter(contact=contact) if contact is not None else qs


def test_a_contact_untouched_for_longer_than_the_cadence_gets_one_follow_up(ws, owner):
    due = factories.plain_contact(ws, nickname="阿美", owner_staff=owner)
    fresh = factories.plain_contact(ws, nickname="新客", owner_staff=owner)
    _cadence(ws, due, 14, started_days_ago=20)
    _cadence(ws, fresh, 14, started_days_ago=10)  # the start counts as a touch
    assert services.cadence_run(workspace=ws, now=NOW) == 1
    task = _followups(ws).get()
    assert (task.contact, task.assignee, task.store) == (due, owner, owner.store)
    assert task.title == "定期跟进 阿美"
    assert task.note == "跟进周期：每 14 天"
    assert task.source_kind == "cadence"
    assert task.idempotency_key == f"cadence:2026-03-10:contact:{due.id}"
    # Due by the end of the workspace's local day, not overdue the moment it is made.
    assert task.due_at == datetime(2026, 3, 10, 15, 59, 59, tzinfo=UTC)
    # It has a pending follow-up now: the hourly run adds nothing, today or tomorrow.
    assert services.cadence_run(workspace=ws, now=NOW + timedelta(hours=1)) == 0
    assert services.cadence_run(workspace=ws, now=NOW + timedelta(days=1)) == 0


def test_a_recent_completed_task_or_sent_message_is_a_touch(ws, owner):
    called = factories.plain_contact(ws, owner_staff=owner)
    messaged = factories.plain_contact(ws, owner_staff=owner)
    long_ago = factories.plain_contact(ws, owner_staff=owner)
    failed_only = factories.plain_contact(ws, owner_staff=owner)
    for c in (called, messaged, long_ago, failed_only):
        _cadence(ws, c, 7, started_days_ago=30)
    done = factories.staff_task(ws, called, owner, kind="call")
    done.status, done.completed_at = TaskStatus.DONE, NOW - timedelta(days=3)
    done.save()
    old = factories.staff_task(ws, long_ago, owner)
    old.status, old.completed_at = TaskStatus.DONE, NOW - timedelta(days=8)
    old.save()
    _message(ws, messaged, "sent", sent_days_ago=2)
    _message(ws, failed_only, "failed", sent_days_ago=1)  # never reached them: no touch
    _message(ws, failed_only, "suppressed", sent_days_ago=1)
    assert services.cadence_run(workspace=ws, now=NOW) == 2
    assert set(_followups(ws).filter(status="open").values_list("contact_id", flat=True)) == {
        long_ago.id,
        failed_only.id,
    }


def test_completing_the_follow_up_restarts_the_clock(ws, owner):
    contact = factories.plain_contact(ws, owner_staff=owner)
    _cadence(ws, contact, 7, started_days_ago=10)
    services.cadence_run(workspace=ws, now=NOW)
    task = _followups(ws, contact).get()
    services.task_complete(workspace=ws, task_id=task.id, outcome="已联系", now=NOW)
    assert services.cadence_run(workspace=ws, now=NOW + timedelta(days=6)) == 0
    assert services.cadence_run(workspace=ws, now=NOW + timedelta(days=7, hours=1)) == 1


def test_at_most_one_cadence_task_per_contact_and_day(ws, owner):
    contact = factories.plain_contact(ws, owner_staff=owner)
    _cadence(ws, contact, 7, started_days_ago=10)
    assert services.cadence_run(workspace=ws, now=NOW) == 1
    # Cancelled is not a touch, but today's task exists already: nothing until tomorrow.
    services.task_cancel(workspace=ws, task_id=_followups(ws).get().id, reason="重复")
    assert services.cadence_run(workspace=ws, now=NOW + timedelta(hours=3)) == 0
    assert services.cadence_run(workspace=ws, now=NOW + timedelta(days=1)) == 1


def test_cadence_is_per_workspace(ws, other_ws, owner):
    mine = factories.plain_contact(ws, owner_staff=owner)
    theirs = factories.plain_contact(other_ws)
    _cadence(ws, mine, 7, started_days_ago=10)
    services.cadence_set(
        workspace=other_ws, contact_id=theirs.id, every_days=7, now=NOW - timedelta(days=10)
    )
    assert services.cadence_run(workspace=ws, now=NOW) == 1
    assert StaffTask.objects.filter(workspace=other_ws).count() == 0
    with pytest.raises(NotFound):
        services.cadence_set(workspace=other_ws, contact_id=mine.id, every_days=3)
    assert ContactCadence.objects.get(workspace=ws, contact=mine).every_days == 7


def test_changing_the_cadence_keeps_its_start_and_none_removes_it(ws, owner):
    contact = factories.plain_contact(ws, owner_staff=owner)
    first = _cadence(ws, contact, 30, started_days_ago=10)
    again = services.cadence_set(workspace=ws, contact_id=contact.id, every_days=7, now=NOW)
    assert (again.id, again.every_days, again.starts_at) == (first.id, 7, first.starts_at)
    assert services.cadence_run(workspace=ws, now=NOW) == 1
    assert services.cadence_set(workspace=ws, contact_id=contact.id, every_days=None) is None
    assert not ContactCadence.objects.filter(workspace=ws).exists()


@pytest.mark.parametrize("days", [0, 366, -3, "14", True])
def test_a_cadence_out_of_range_is_refused(ws, owner, days):
    contact = factories.plain_contact(ws, owner_staff=owner)
    with pytest.raises(ValidationFailed) as exc:
        services.cadence_set(workspace=ws, contact_id=contact.id, every_days=days)
    assert (exc.value.code, exc.value.path) == ("bad_cadence", "every_days")
    assert not ContactCadence.objects.exists()


def test_a_segment_gets_its_cadence_in_one_go(ws, owner, django_assert_max_num_queries):
    members = factories.contacts_many(ws, 300)
    outsider = factories.plain_contact(ws)
    segment = factories.segment_with(ws, members, name="高价值")
    services.cadence_set(
        workspace=ws, contact_id=members[0].id, every_days=30, now=NOW - timedelta(days=40)
    )
    with django_assert_max_num_queries(6):
        touched = services.cadence_set_for_segment(
            workspace=ws, segment_id=segment.id, every_days=14, now=NOW
        )
    assert touched == 300
    assert ContactCadence.objects.filter(workspace=ws, every_days=14).count() == 300
    assert not ContactCadence.objects.filter(contact=outsider).exists()
    # The member who had a cadence keeps its start: overdue at once under the new cadence.
    assert services.cadence_run(workspace=ws, now=NOW) == 1
    assert (
        services.cadence_set_for_segment(workspace=ws, segment_id=segment.id, every_days=None)
        == 300
    )
    assert not ContactCadence.objects.filter(workspace=ws).exists()


def test_staff_set_cadences_only_for_their_stores_contacts_and_analysts_not_at_all(ws, owner):
    user, _staff = factories.staff_login(ws, owner.store)
    mine = factories.plain_contact(ws, store=owner.store)
    elsewhere = factories.plain_contact(ws, store=factories.store(ws))
    staff = Membership.objects.get(workspace=ws, user=user)
    assert (
        services.cadence_set(
            workspace=ws, contact_id=mine.id, every_days=14, membership=staff
        ).every_days
        == 14
    )
    with pytest.raises(NotFound):
        services.cadence_set(workspace=ws, contact_id=elsewhere.id, every_days=14, membership=staff)
    analyst = Membership.objects.get(workspace=ws, user=factories.member(ws, role="analyst"))
    with pytest.raises(PermissionDenied):
        services.cadence_set(workspace=ws, contact_id=mine.id, every_days=7, membership=analyst)
    with pytest.raises(NotFound):
        services.cadence_set_for_segment(workspace=ws, segment_id=999999, every_days=7)


def test_the_hourly_job_runs_every_workspace_and_wakes_snoozed_tasks(ws, other_ws, owner):
    assert [(j.every_seconds, j.task_path) for j in JOBS if j.name == "inbox.run_cadences"] == [
        (3600, "siyu.inbox.tasks.run_cadences")
    ]
    a = factories.plain_contact(ws, owner_staff=owner)
    b = factories.plain_contact(other_ws)
    services.cadence_set(workspace=ws, contact_id=a.id, every_days=3, now=NOW - timedelta(days=5))
    services.cadence_set(
        workspace=other_ws, contact_id=b.id, every_days=3, now=NOW - timedelta(days=5)
    )
    sleeper = factories.staff_task(ws, a, owner, kind="call")
    services.task_snooze(
        workspace=ws,
        task_id=sleeper.id,
        until=NOW - timedelta(hours=1),
        now=NOW - timedelta(days=1),
    )
    assert services.cadence_run_all(now=NOW) == 2
    sleeper.refresh_from_db()
    assert sleeper.status == TaskStatus.OPEN
    job = next(j for j in JOBS if j.name == "inbox.run_cadences")
    assert job.task().call() == 0  # now: today's tasks exist already
