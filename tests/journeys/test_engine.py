"""The engine end to end on the database in use: entering, steps, goals, versions, schedules."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

from siyu.audiences.models import ContactTag
from siyu.inbox.models import StaffTask
from siyu.journeys import services
from siyu.journeys.models import Enrollment, JourneyRun, StepCount
from siyu.messaging.models import Message
from siyu.messaging.services import channel_create
from tests import factories
from tests.journeys.conftest import NOON, send_step


def _live(ws, definition, name="Welcome", now=NOON):
    journey = services.journey_create(workspace=ws, name=name, definition=definition, now=now)
    return services.journey_publish(workspace=ws, journey=journey, now=now)


def _count_by_status(journey):
    out = {}
    for status in Enrollment.objects.filter(journey=journey).values_list("status", flat=True):
        out[status] = out.get(status, 0) + 1
    return out


def test_a_manual_launch_sends_each_member_one_message_and_a_second_launch_sends_none(ws, console):
    members = factories.contacts_many(ws, 30)
    segment = factories.segment_with(ws, members)
    journey = _live(ws, {"trigger": {"type": "manual", "segment_id": segment.id}, "steps": [send_step(console)]})

    run = services.journey_launch(workspace=ws, journey=journey, now=NOON)

    # A first send step runs as they enter: queued by the launch, each walk written once.
    assert run.enrolled == 30
    messages = Message.objects.filter(workspace=ws, journey_id=journey.id, journey_step="hello")
    assert messages.count() == 30
    assert StepCount.objects.get(journey=journey, step_key="hello").reached == 30
    assert services.journeys_tick(now=NOON).moved == 0
    assert {m.body for m in messages[:3]} == {f"Hi {m.name}, cherries are in!" for m in members}.intersection(
        {m.body for m in messages[:3]}
    )
    assert _count_by_status(journey) == {"completed": 30}

    again = services.journey_launch(workspace=ws, journey=journey, now=NOON + timedelta(hours=1))
    services.journeys_tick(now=NOON + timedelta(hours=1))
    assert again.enrolled == 0  # re-entry "once" is the manual default
    assert Message.objects.filter(workspace=ws, journey_id=journey.id).count() == 30


def test_a_wait_holds_the_walk_until_its_time(ws, console):
    members = factories.contacts_many(ws, 5)
    journey = _live(
        ws,
        {
            "trigger": {"type": "manual", "segment_id": factories.segment_with(ws, members).id},
            "steps": [{"key": "pause", "type": "wait", "duration": {"days": 1}}, send_step(console)],
        },
    )
    services.journey_launch(workspace=ws, journey=journey, now=NOON)

    services.journeys_tick(now=NOON + timedelta(hours=23))
    assert Message.objects.filter(journey_id=journey.id).count() == 0
    assert set(Enrollment.objects.filter(journey=journey).values_list("step_key", flat=True)) == {"pause"}

    services.journeys_tick(now=NOON + timedelta(days=1))
    assert Message.objects.filter(journey_id=journey.id).count() == 5


def test_a_send_at_entry_moves_the_walk_on_to_the_wait_after_it(ws, console):
    members = factories.contacts_many(ws, 4)
    journey = _live(
        ws,
        {
            "trigger": {"type": "manual", "segment_id": factories.segment_with(ws, members).id},
            "steps": [
                send_step(console, key="hello"),
                {"key": "pause", "type": "wait", "duration": {"days": 2}},
                send_step(console, key="again"),
            ],
        },
    )
    services.journey_launch(workspace=ws, journey=journey, now=NOON)

    walks = Enrollment.objects.filter(journey=journey)
    assert set(walks.values_list("status", "step_key")) == {("active", "pause")}
    assert {w.next_run_at for w in walks} == {NOON + timedelta(days=2)}
    assert Message.objects.filter(journey_id=journey.id, journey_step="hello").count() == 4
    # Launching again the same moment enrolls nobody and queues nothing twice.
    assert services.journey_launch(workspace=ws, journey=journey, now=NOON).enrolled == 0
    assert Message.objects.filter(journey_id=journey.id).count() == 4

    services.journeys_tick(now=NOON + timedelta(days=2))
    assert Message.objects.filter(journey_id=journey.id, journey_step="again").count() == 4
    assert _count_by_status(journey) == {"completed": 4}


def test_a_wait_until_tuesday_ten_is_in_the_workspace_time_zone(ws, console):
    ws.time_zone = "America/New_York"
    ws.save()
    member = factories.contacts_many(ws, 1)
    journey = _live(
        ws,
        {
            "trigger": {"type": "manual", "segment_id": factories.segment_with(ws, member).id},
            "steps": [{"key": "tue", "type": "wait", "until": {"time": "10:00", "weekdays": [2]}}, send_step(console)],
        },
    )
    services.journey_launch(workspace=ws, journey=journey, now=NOON)  # Sunday 23:00 in New York
    enrollment = Enrollment.objects.get(journey=journey)
    assert enrollment.next_run_at.astimezone(ZoneInfo("America/New_York")).strftime("%a %H:%M") == "Tue 10:00"


def test_a_branch_tags_buyers_and_gives_the_others_a_staff_task(ws, console):
    store = factories.store(ws)
    seller = factories.staff(ws, store)
    buyers = [factories.plain_contact(ws, owner_staff=seller, store=store, name='buyer') for _ in range(3)]
    for c in buyers:
        factories.order(ws, c, paid_at=NOON - timedelta(days=10))
    others = [factories.plain_contact(ws, owner_staff=seller, store=store, name='other') for _ in range(2)]
    tag = factories.tag(ws, name="已购")
    journey = _live(
        ws,
        {
            "trigger": {"type": "manual", "segment_id": factories.segment_with(ws, buyers + others).id},
            "steps": [
                {"key": "bought", "type": "branch", "rule": {"orders": {"count": {"gte": 1}}}, "yes": "tag", "no": "call"},
                {"key": "tag", "type": "tag", "action": "add", "tag_id": tag.id, "next": "exit"},
                {"key": "call", "type": "task", "kind": "call", "title": "给 {{nickname}} 打个电话", "due_in_hours": 24},
            ],
        },
    )
    services.journey_launch(workspace=ws, journey=journey, now=NOON)
    services.journeys_tick(now=NOON)

    assert set(ContactTag.objects.filter(tag=tag).values_list("contact_id", flat=True)) == {c.id for c in buyers}
    assert set(ContactTag.objects.filter(tag=tag).values_list("source", flat=True)) == {"journey"}
    tasks = StaffTask.objects.filter(workspace=ws)
    assert {t.contact_id for t in tasks} == {c.id for c in others}
    assert {t.assignee_id for t in tasks} == {seller.id}
    assert {row.step_key: row.reached for row in StepCount.objects.filter(journey=journey)} == {
        "bought": 5,
        "tag": 3,
        "call": 2,
    }


def test_an_order_paid_trigger_enrolls_each_new_order_once_and_not_old_ones(ws, console):
    c = factories.contact(ws)
    factories.order(ws, c, order_no="before")
    journey = _live(
        ws, {"trigger": {"type": "event", "event": "order_paid"}, "steps": [send_step(console)]}, now=timezone.now()
    )
    services.journeys_tick()
    assert Enrollment.objects.filter(journey=journey).count() == 0  # the order predates the journey

    factories.order(ws, c, order_no="first")
    services.journeys_tick()
    services.journeys_tick()  # the rescan overlap sees the order again: still one entry
    assert Enrollment.objects.filter(journey=journey).count() == 1

    factories.order(ws, c, order_no="second")  # after the first walk ended: a new entry
    services.journeys_tick()
    services.journeys_tick()
    assert list(Enrollment.objects.filter(journey=journey).order_by("seq").values_list("seq", "status")) == [
        (1, "completed"),
        (2, "completed"),
    ]
    assert Message.objects.filter(journey_id=journey.id).count() == 2


def test_the_goal_takes_a_buyer_out_before_the_reminder(ws, console):
    buyer, other = factories.contacts_many(ws, 2)
    journey = _live(
        ws,
        {
            "trigger": {"type": "manual", "segment_id": factories.segment_with(ws, [buyer, other]).id},
            "goal": {"type": "order_paid", "within_days": 7},
            "steps": [{"key": "wait", "type": "wait", "duration": {"days": 2}}, send_step(console, key="remind")],
        },
    )
    services.journey_launch(workspace=ws, journey=journey, now=NOON)
    factories.order(ws, buyer, paid_at=NOON + timedelta(days=1))

    services.journeys_tick(now=NOON + timedelta(days=2))

    assert Enrollment.objects.get(journey=journey, contact=buyer).status == "converted"
    assert list(Message.objects.filter(journey_id=journey.id).values_list("contact_id", flat=True)) == [other.id]


def test_editing_a_live_journey_makes_a_version_and_running_walks_keep_theirs(ws, console):
    channel, _ = console
    old_template = factories.message_template(ws, body="old words")
    new_template = factories.message_template(ws, body="new words")
    first, second = factories.contacts_many(ws, 2)
    segment = factories.segment_with(ws, [first])
    steps = [{"key": "wait", "type": "wait", "duration": {"hours": 1}}]
    journey = _live(
        ws,
        {
            "trigger": {"type": "manual", "segment_id": segment.id},
            "reentry": "always",
            "steps": [*steps, {"key": "say", "type": "send", "channel_id": channel.id, "template_id": old_template.id}],
        },
    )
    services.journey_launch(workspace=ws, journey=journey, now=NOON)
    journey = services.journey_update(
        workspace=ws,
        journey=journey,
        definition={
            "trigger": {"type": "manual", "segment_id": segment.id},
            "reentry": "always",
            "steps": [*steps, {"key": "say", "type": "send", "channel_id": channel.id, "template_id": new_template.id}],
        },
        now=NOON,
    )
    assert journey.current_version.number == 2
    services.journey_launch(
        workspace=ws, journey=journey, segment=factories.segment_with(ws, [second]), now=NOON
    )
    services.journeys_tick(now=NOON + timedelta(hours=1))

    bodies = dict(Message.objects.filter(journey_id=journey.id).values_list("contact_id", "body"))
    assert bodies == {first.id: "old words", second.id: "new words"}


def test_a_schedule_missed_for_three_days_runs_once_on_return(ws, console):
    members = factories.contacts_many(ws, 4)
    journey = _live(
        ws,
        {
            "trigger": {"type": "schedule", "cron": "0 8 * * *", "segment_id": factories.segment_with(ws, members).id},
            "steps": [send_step(console)],
        },
        now=NOON,
    )
    assert journey.next_fire_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%m-%d %H:%M") == "03-03 08:00"

    back = NOON + timedelta(days=3, hours=1)  # Thursday 13:00: Tue, Wed and Thu 08:00 were missed
    services.journeys_tick(now=back)
    services.journeys_tick(now=back + timedelta(minutes=1))

    run = JourneyRun.objects.get(journey=journey)
    assert (run.skipped_slots, run.enrolled) == (2, 4)
    assert Message.objects.filter(journey_id=journey.id).count() == 4
    journey.refresh_from_db()
    assert journey.next_fire_at.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%m-%d %H:%M") == "03-06 08:00"


def test_a_daily_schedule_enrolls_the_same_people_each_day(ws, console):
    members = factories.contacts_many(ws, 3)
    journey = _live(
        ws,
        {
            "trigger": {"type": "schedule", "cron": "0 8 * * *", "segment_id": factories.segment_with(ws, members).id},
            "steps": [send_step(console)],
            "caps": {"daily": 5, "weekly": 20},
        },
    )
    for day in (1, 2):
        services.journeys_tick(now=NOON + timedelta(days=day))
    assert Enrollment.objects.filter(journey=journey).count() == 6
    assert Message.objects.filter(journey_id=journey.id, status="queued").count() == 6


def test_a_holdout_receives_nothing_and_is_about_the_share_asked(ws, console):
    members = factories.contacts_many(ws, 1000)
    journey = _live(
        ws,
        {
            "trigger": {"type": "manual", "segment_id": factories.segment_with(ws, members).id},
            "holdout_percent": 20,
            "steps": [send_step(console)],
        },
    )
    services.journey_launch(workspace=ws, journey=journey, now=NOON)
    services.journeys_tick(now=NOON)
    counts = _count_by_status(journey)
    assert 160 <= counts["holdout"] <= 240
    assert counts["completed"] == 1000 - counts["holdout"]
    held = Enrollment.objects.filter(journey=journey, status="holdout").values("contact_id")
    assert not Message.objects.filter(journey_id=journey.id, contact_id__in=held).exists()


def test_a_split_sends_each_arm_its_own_message(ws, console):
    channel, _ = console
    a = factories.message_template(ws, body="A")
    b = factories.message_template(ws, body="B")
    members = factories.contacts_many(ws, 400)
    journey = _live(
        ws,
        {
            "trigger": {"type": "manual", "segment_id": factories.segment_with(ws, members).id},
            "steps": [
                {"key": "ab", "type": "split", "arms": [
                    {"key": "a", "weight": 45, "next": "send_a"},
                    {"key": "b", "weight": 45, "next": "send_b"},
                    {"key": "holdout", "weight": 10},
                ]},
                {"key": "send_a", "type": "send", "channel_id": channel.id, "template_id": a.id, "next": "exit"},
                {"key": "send_b", "type": "send", "channel_id": channel.id, "template_id": b.id},
            ],
        },
    )
    services.journey_launch(workspace=ws, journey=journey, now=NOON)
    services.journeys_tick(now=NOON)

    variant = dict(Enrollment.objects.filter(journey=journey).values_list("contact_id", "variant"))
    body = dict(Message.objects.filter(journey_id=journey.id).values_list("contact_id", "body"))
    assert all(body[cid] == variant[cid].upper() for cid in body)
    assert {variant[cid] for cid in set(variant) - set(body)} == {"holdout"}
    assert 140 <= sum(v == "a" for v in variant.values()) <= 220


def test_a_disabled_channel_fails_the_walk_with_the_reason_instead_of_leaving_it_stuck(ws, console):
    channel, _ = console
    members = factories.contacts_many(ws, 3)
    journey = _live(
        ws,
        {"trigger": {"type": "manual", "segment_id": factories.segment_with(ws, members).id}, "steps": [send_step(console)]},
    )
    channel.enabled = False
    channel.save()
    # Refused at entry, so they enter at the step; the walk then fails them with the reason.
    services.journey_launch(workspace=ws, journey=journey, now=NOON)
    assert set(Enrollment.objects.filter(journey=journey).values_list("status", flat=True)) == {"active"}

    services.journeys_tick(now=NOON)

    rows = Enrollment.objects.filter(journey=journey)
    assert set(rows.values_list("status", flat=True)) == {"failed"}
    assert "disabled" in rows.first().exit_reason
    journey.refresh_from_db()
    assert "hello" in journey.last_error


def test_a_webhook_step_goes_out_through_the_outbox(ws):
    hook = channel_create(
        workspace=ws, kind="webhook", name="crm", settings={"url": "http://127.0.0.1:9/", "secret": "s"}
    )
    template = factories.message_template(ws, kind="webhook", body='{"who": "{{nickname}}"}')
    members = factories.contacts_many(ws, 2)
    journey = _live(
        ws,
        {
            "trigger": {"type": "manual", "segment_id": factories.segment_with(ws, members).id},
            "steps": [{"key": "notify", "type": "webhook", "channel_id": hook.id, "template_id": template.id}],
        },
    )
    services.journey_launch(workspace=ws, journey=journey, now=NOON)
    services.journeys_tick(now=NOON)
    assert Message.objects.filter(journey_id=journey.id, channel=hook).count() == 2


def test_stopping_ends_every_running_walk(ws, console):
    members = factories.contacts_many(ws, 3)
    journey = _live(
        ws,
        {
            "trigger": {"type": "manual", "segment_id": factories.segment_with(ws, members).id},
            "steps": [{"key": "w", "type": "wait", "duration": {"days": 3}}, send_step(console)],
        },
    )
    services.journey_launch(workspace=ws, journey=journey, now=NOON)
    services.journey_stop(workspace=ws, journey=journey, now=NOON)
    services.journeys_tick(now=NOON + timedelta(days=4))
    assert _count_by_status(journey) == {"stopped": 3}
    assert not Message.objects.filter(journey_id=journey.id).exists()


def test_joining_a_group_enrolls_and_an_event_before_publishing_does_not(ws, console):
    early, late = factories.contacts_many(ws, 2)
    factories.event(ws, early, type="join_group")
    journey = _live(
        ws, {"trigger": {"type": "event", "event": "group_joined"}, "steps": [send_step(console)]}, now=timezone.now()
    )
    factories.event(ws, late, type="join_group")
    factories.event(ws, late, type="leave_group")

    services.journeys_tick()

    assert list(Enrollment.objects.filter(journey=journey).values_list("contact_id", flat=True)) == [late.id]


def test_a_new_contact_enrolls_in_the_welcome_journey(ws, console):
    journey = _live(ws, {"trigger": {"type": "event", "event": "contact_added"}, "steps": [send_step(console)]})
    newcomer = factories.contact(ws)
    services.journeys_tick()
    services.journeys_tick()
    assert list(Enrollment.objects.filter(journey=journey).values_list("contact_id", flat=True)) == [newcomer.id]


def test_entering_a_segment_is_a_trigger(ws, console):
    from siyu.audiences.services import segment_create, segment_refresh

    buyer = factories.contact(ws)
    segment = segment_create(workspace=ws, name="买过的", rule={"orders": {"count": {"gte": 1}}})
    journey = _live(
        ws,
        {"trigger": {"type": "event", "event": "segment_entered", "segment_id": segment.id}, "steps": [send_step(console)]},
    )
    factories.order(ws, buyer)
    segment_refresh(workspace=ws, segment=segment)

    services.journeys_tick()

    assert list(Enrollment.objects.filter(journey=journey).values_list("contact_id", flat=True)) == [buyer.id]


def test_birthdays_enroll_at_nine_local_time_once_a_year(ws, console):
    from datetime import date

    today = factories.plain_contact(ws, name="寿星", birthday=date(1990, 3, 3))
    factories.plain_contact(ws, name="明天", birthday=date(1990, 3, 4))
    journey = _live(ws, {"trigger": {"type": "event", "event": "birthday"}, "steps": [send_step(console)]})
    nine = journey.next_fire_at
    assert nine.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%m-%d %H:%M") == "03-03 09:00"

    services.journeys_tick(now=nine)
    services.journeys_tick(now=nine + timedelta(minutes=5))

    assert list(Enrollment.objects.filter(journey=journey).values_list("contact_id", "entry_key")) == [
        (today.id, "birthday:2026")
    ]


def test_a_new_york_schedule_fires_at_eight_local_on_both_sides_of_the_dst_change(ws, console):
    ws.time_zone = "America/New_York"
    ws.save()
    members = factories.contacts_many(ws, 1)
    saturday = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)  # 07:00 EST
    journey = _live(
        ws,
        {
            "trigger": {"type": "schedule", "cron": "0 8 * * *", "segment_id": factories.segment_with(ws, members).id},
            "steps": [send_step(console)],
            "caps": {"daily": 5, "weekly": 20},
        },
        now=saturday,
    )
    fired = []
    for hour in range(0, 72):
        at = saturday + timedelta(hours=hour)
        before = JourneyRun.objects.filter(journey=journey).count()
        services.journeys_tick(now=at)
        if JourneyRun.objects.filter(journey=journey).count() > before:
            fired.append(JourneyRun.objects.filter(journey=journey).latest("at").slot)
    assert [f.astimezone(UTC).strftime("%d %H:%M") for f in fired] == ["07 13:00", "08 12:00", "09 12:00"]
    assert {f.astimezone(ZoneInfo("America/New_York")).hour for f in fired} == {8}


def test_merging_two_contacts_who_both_walked_a_journey_keeps_both_walks(ws, console):
    from siyu.contacts.models import Contact
    from siyu.contacts.schemas import ContactIn
    from siyu.contacts.services import contacts_upsert

    first = factories.contact(ws, phone="13900000001")
    second = factories.contact(ws, identities=[{"kind": "member_no", "value": "M-77"}])
    journey = _live(
        ws,
        {"trigger": {"type": "manual", "segment_id": factories.segment_with(ws, [first, second]).id}, "steps": [send_step(console)]},
    )
    services.journey_launch(workspace=ws, journey=journey, now=NOON)

    merged = contacts_upsert(
        workspace=ws,
        items=[ContactIn(identities=[{"kind": "phone", "value": "13900000001"}, {"kind": "member_no", "value": "M-77"}])],
    )[0].contact

    assert Contact.objects.filter(workspace=ws).count() == 1
    walks = list(Enrollment.objects.filter(journey=journey).order_by("seq").values_list("contact_id", "seq"))
    assert walks == [(merged.id, 1), (merged.id, 2)]
