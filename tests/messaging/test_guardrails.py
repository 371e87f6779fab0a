"""Guardrails at queue time and again at send time: opt-out and consent, frequency caps in the
workspace's days, quiet hours that delay (never drop), the global daily cap; re-queueing is a
no-op and a dead worker's claim comes back."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from siyu.contacts.models import Contact
from siyu.contacts.services import consent_set
from siyu.messaging import queries, services
from siyu.messaging.models import Message
from tests import factories
from tests.messaging.helpers import NOON, queue

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")


def console(ws):
    return factories.channel(ws, "console"), factories.message_template(
        ws, "console", body="Hi {{nickname}}"
    )


def statuses(ws) -> dict[int, tuple[str, str]]:
    return {
        m.contact_id: (m.status, m.suppress_reason) for m in Message.objects.filter(workspace=ws)
    }


def test_opted_out_and_unconsented_contacts_are_suppressed_with_the_reason(ws):
    ok, out, unknown = factories.contact(ws), factories.contact(ws), factories.contact(ws)
    consent_set(workspace=ws, contact=ok, channel="sms", status="granted")
    consent_set(workspace=ws, contact=out, channel="sms", status="opted_out")
    sms = factories.channel(ws, "sms", {"url": "http://127.0.0.1:9/"}, require_consent=True)

    result = queue(ws, factories.message_template(ws, "sms", body="x"), sms, [ok, out, unknown])

    assert (result.queued, result.suppressed) == (1, {"no_consent": 1, "opted_out": 1})
    assert statuses(ws) == {
        ok.id: ("queued", ""),
        out.id: ("suppressed", "opted_out"),
        unknown.id: ("suppressed", "no_consent"),
    }
    assert queries.suppression_counts(workspace=ws) == {"no_consent": 1, "opted_out": 1}


def test_without_require_consent_only_an_opt_out_suppresses(ws):
    ok, out = factories.contact(ws), factories.contact(ws)
    consent_set(workspace=ws, contact=out, channel="sms", status="opted_out")
    sms = factories.channel(ws, "sms", {"url": "http://127.0.0.1:9/"})

    result = queue(ws, factories.message_template(ws, "sms", body="x"), sms, [ok, out])

    assert (result.queued, result.suppressed) == (1, {"opted_out": 1})


def test_an_opt_out_after_queueing_suppresses_at_send_time(ws):
    alice = factories.contact(ws)
    channel = factories.channel(ws, "console", consent_channel="wecom")
    queue(ws, factories.message_template(ws, "console", body="x"), channel, [alice])
    consent_set(workspace=ws, contact=alice, channel="wecom", status="opted_out")

    done = services.messages_dispatch(worker_id="w1", now=NOON)

    assert (done.sent, done.suppressed) == (0, {"opted_out": 1})
    assert statuses(ws) == {alice.id: ("suppressed", "opted_out")}


def test_the_daily_cap_counts_the_workspaces_local_day(other_ws):
    ws = factories.workspace(time_zone="America/New_York")
    services.cap_settings_set(
        workspace=ws, daily_caps={"console": 1}, quiet_start=time(0), quiet_end=time(0)
    )
    channel, template = console(ws)
    alice = factories.contact(ws)
    morning = datetime(2026, 3, 2, 10, 0, tzinfo=NEW_YORK)
    evening = datetime(2026, 3, 2, 20, 0, tzinfo=NEW_YORK)  # already 3 March in UTC and in Shanghai
    next_morning = datetime(2026, 3, 3, 9, 0, tzinfo=NEW_YORK)

    assert queue(ws, template, channel, [alice], "c:1", morning).queued == 1
    assert queue(ws, template, channel, [alice], "c:2", evening).suppressed == {"frequency_cap": 1}
    assert queue(ws, template, channel, [alice], "c:3", next_morning).queued == 1


def test_a_journey_may_override_the_workspace_cap(ws):
    services.cap_settings_set(workspace=ws, daily_caps={"console": 1})
    channel, template = console(ws)
    alice = factories.contact(ws)

    queue(ws, template, channel, [alice], "c:1")
    assert queue(ws, template, channel, [alice], "c:2").suppressed == {"frequency_cap": 1}
    assert queue(ws, template, channel, [alice], "journey:7:step:2", daily_cap=2).queued == 1
    assert queue(ws, template, channel, [alice], "journey:7:step:3", daily_cap=2).suppressed == {
        "frequency_cap": 1
    }


def test_the_weekly_cap_counts_the_last_seven_days(ws):
    services.cap_settings_set(workspace=ws, daily_caps={"console": 5}, weekly_caps={"console": 2})
    channel, template = console(ws)
    alice = factories.contact(ws)

    for day in range(2):
        assert (
            queue(ws, template, channel, [alice], f"d{day}", NOON + timedelta(days=day)).queued == 1
        )
    assert queue(ws, template, channel, [alice], "d6", NOON + timedelta(days=6)).suppressed == {
        "frequency_cap": 1
    }
    assert queue(ws, template, channel, [alice], "d7", NOON + timedelta(days=7)).queued == 1


def test_the_cap_is_enforced_again_at_send_time(ws):
    services.cap_settings_set(workspace=ws, daily_caps={"console": 2})
    channel, template = console(ws)
    alice = factories.contact(ws)
    queue(ws, template, channel, [alice], "c:1")
    queue(ws, template, channel, [alice], "c:2")
    services.cap_settings_set(workspace=ws, daily_caps={"console": 1})  # tightened meanwhile

    done = services.messages_dispatch(worker_id="w1", now=NOON)

    assert (done.sent, done.suppressed) == (1, {"frequency_cap": 1})


def test_quiet_hours_delay_to_eight_in_the_morning_local_time(ws):
    channel, template = console(ws)
    alice = factories.contact(ws)
    late = datetime(2026, 3, 2, 23, 0, tzinfo=SHANGHAI)

    result = queue(ws, template, channel, [alice], now=late)

    assert (result.queued, result.delayed) == (0, 1)
    message = Message.objects.get()
    assert (message.status, message.next_attempt_at) == (
        "queued",
        datetime(2026, 3, 3, 0, 0, tzinfo=UTC),
    )
    assert (
        services.messages_dispatch(
            worker_id="w1", now=late + timedelta(hours=8, minutes=59)
        ).claimed
        == 0
    )
    assert (
        services.messages_dispatch(
            worker_id="w1", now=datetime(2026, 3, 3, 8, 0, tzinfo=SHANGHAI)
        ).sent
        == 1
    )


def test_quiet_hours_in_new_york_across_the_start_of_daylight_saving(db):
    ws = factories.workspace(time_zone="America/New_York")
    channel, template = console(ws)
    saturday_night = datetime(2026, 3, 7, 22, 30, tzinfo=NEW_YORK)  # EST, UTC-5

    queue(ws, template, channel, [factories.contact(ws)], now=saturday_night)

    wake = Message.objects.get().next_attempt_at
    assert wake == datetime(
        2026, 3, 8, 12, 0, tzinfo=UTC
    )  # 08:00 EDT, UTC-4: one hour earlier in UTC
    assert wake.astimezone(NEW_YORK).time() == time(8, 0)


def test_a_message_due_during_quiet_hours_waits_at_send_time_without_spending_an_attempt(ws):
    channel, template = console(ws)
    queue(
        ws,
        template,
        channel,
        [factories.contact(ws)],
        now=datetime(2026, 3, 2, 20, 50, tzinfo=SHANGHAI),
    )

    done = services.messages_dispatch(
        worker_id="w1", now=datetime(2026, 3, 2, 21, 10, tzinfo=SHANGHAI)
    )

    assert (done.claimed, done.sent, done.delayed) == (1, 0, 1)
    message = Message.objects.get()
    assert (message.status, message.attempts, message.locked_by) == ("queued", 0, "")
    assert message.next_attempt_at == datetime(2026, 3, 3, 8, 0, tzinfo=SHANGHAI)


def test_the_global_daily_cap_suppresses_beyond_it_across_campaigns(ws):
    services.cap_settings_set(workspace=ws, global_daily_cap=3)
    channel, template = console(ws)
    contacts = [factories.contact(ws) for _ in range(5)]

    first = queue(ws, template, channel, contacts[:2], "c:1")
    second = queue(ws, template, channel, contacts[2:], "c:2")

    assert (first.queued, first.suppressed) == (2, {})
    assert (second.queued, second.suppressed) == (1, {"global_daily_cap": 2})
    assert [s for s, _ in statuses(ws).values()].count("queued") == 3


def test_requeueing_the_same_campaign_is_a_no_op(ws):
    channel, template = console(ws)
    contacts = [factories.contact(ws) for _ in range(3)]
    queue(ws, template, channel, contacts[:2])

    again = queue(ws, template, channel, contacts)

    assert (again.queued, again.already_queued) == (1, 2)
    assert Message.objects.filter(workspace=ws).count() == 3


def test_an_audience_queryset_is_queued_and_other_workspaces_contacts_are_ignored(ws, other_ws):
    channel, template = console(ws)
    mine = [
        factories.contact(ws, city="上海"),
        factories.contact(ws, city="上海"),
        factories.contact(ws, city="北京"),
    ]
    theirs = factories.contact(other_ws, city="上海")

    by_query = services.messages_queue(
        workspace=ws,
        template=template,
        channel=channel,
        idempotency_prefix="c:1",
        now=NOON,
        contact_ids=Contact.objects.filter(city="上海"),
    )
    by_ids = queue(ws, template, channel, [mine[2], theirs], "c:2")

    assert (by_query.queued, by_ids.queued) == (2, 1)
    assert not Message.objects.filter(contact=theirs).exists()
    assert Message.objects.filter(workspace=other_ws).count() == 0


def test_a_dead_workers_claim_is_taken_over_after_its_lease(ws):
    channel, template = console(ws)
    queue(ws, template, channel, [factories.contact(ws)])
    claimed = services._claim(worker_id="dead", limit=10, now=NOON, lease_seconds=60)

    assert services.messages_dispatch(worker_id="w2", now=NOON + timedelta(seconds=59)).claimed == 0
    done = services.messages_dispatch(worker_id="w2", now=NOON + timedelta(seconds=60))

    assert (len(claimed), done.sent) == (1, 1)
    message = Message.objects.get()
    assert (message.status, message.attempts, message.locked_by) == ("sent", 2, "")
