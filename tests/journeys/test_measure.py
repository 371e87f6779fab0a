"""Per-journey measurement against the holdout, and the dry run."""

from datetime import timedelta
from decimal import Decimal

from siyu.journeys import queries, services
from siyu.journeys.models import Enrollment
from siyu.messaging.models import Message
from siyu.messaging.services import messages_dispatch
from tests import factories
from tests.journeys.conftest import NOON, send_step


def test_conversion_and_revenue_within_the_goal_window_against_the_holdout(ws, console):
    members = factories.contacts_many(ws, 40)
    journey = services.journey_create(
        workspace=ws,
        name="Winback",
        definition={
            "trigger": {"type": "manual", "segment_id": factories.segment_with(ws, members).id},
            "holdout_percent": 50,
            "goal": {"type": "order_paid", "within_days": 7},
            "cost_per_message": "0.10",
            "steps": [send_step(console)],
        },
        now=NOON,
    )
    services.journey_publish(workspace=ws, journey=journey, now=NOON)
    services.journey_launch(workspace=ws, journey=journey, now=NOON)
    services.journeys_tick(now=NOON)
    messages_dispatch(worker_id="test", limit=100, now=NOON)
    held = list(Enrollment.objects.filter(journey=journey, status="holdout").values_list("contact_id", flat=True))
    treated = list(Enrollment.objects.filter(journey=journey).exclude(status="holdout").values_list("contact_id", flat=True))
    by_id = {m.id: m for m in members}
    factories.order(ws, by_id[treated[0]], amount="100.00", paid_at=NOON + timedelta(days=1))
    factories.order(ws, by_id[treated[1]], amount="50.00", paid_at=NOON + timedelta(days=6))
    factories.order(ws, by_id[treated[2]], amount="999.00", paid_at=NOON + timedelta(days=8))  # after the window
    factories.order(ws, by_id[held[0]], amount="30.00", paid_at=NOON + timedelta(days=2))

    result = queries.journey_stats(workspace=ws, journey=journey)

    nt, nh = len(treated), len(held)
    assert (result.treated.n, result.treated.converted, result.treated.revenue) == (nt, 2, Decimal("150.00"))
    assert (result.holdout.n, result.holdout.converted, result.holdout.revenue) == (nh, 1, Decimal("30.00"))
    assert result.messages_sent == nt
    assert result.cost == (Decimal("0.10") * nt).quantize(Decimal("0.01"))
    expected_increment = ((Decimal(150) / nt - Decimal(30) / nh) * nt).quantize(Decimal("0.01"))
    assert result.incremental_revenue == expected_increment
    assert result.roi == (expected_increment / result.cost).quantize(Decimal("0.01"))
    assert abs(result.lift.difference - (2 / nt - 1 / nh)) < 1e-12
    step = result.steps[0]
    assert (step.key, step.reached, step.sent) == ("hello", nt, nt)


def test_without_a_holdout_roi_says_why_it_is_missing(ws, console):
    members = factories.contacts_many(ws, 3)
    journey = services.journey_create(
        workspace=ws,
        name="Plain",
        definition={"trigger": {"type": "manual", "segment_id": factories.segment_with(ws, members).id}, "steps": [send_step(console)]},
        now=NOON,
    )
    result = queries.journey_stats(workspace=ws, journey=journey)
    assert result.roi is None and result.incremental_revenue is None
    assert "没有对照组" in result.roi_reason


def test_suppressions_are_counted_per_step_and_reason(ws):
    from siyu.contacts.models import Consent
    from siyu.messaging.services import channel_create

    sms = channel_create(workspace=ws, kind="sms", name="sms", settings={"url": "http://127.0.0.1:9/"})
    template = factories.message_template(ws, kind="sms", body="hi")
    reachable = factories.contact(ws)
    gone = factories.contact(ws)
    Consent.objects.create(workspace=ws, contact=gone, channel="sms", status="opted_out", updated_at=NOON)
    journey = services.journey_create(
        workspace=ws,
        name="SMS",
        definition={
            "trigger": {"type": "manual", "segment_id": factories.segment_with(ws, [reachable, gone]).id},
            "steps": [{"key": "text", "type": "send", "channel_id": sms.id, "template_id": template.id}],
        },
        now=NOON,
    )
    services.journey_publish(workspace=ws, journey=journey, now=NOON)
    services.journey_launch(workspace=ws, journey=journey, now=NOON)
    services.journeys_tick(now=NOON)
    step = queries.journey_stats(workspace=ws, journey=journey).steps[0]
    assert step.suppressed == {"opted_out": 1}
    assert step.messages == {"queued": 1, "suppressed": 1}


def test_a_dry_run_shows_who_would_enter_and_what_each_would_get_without_writing(ws, console):
    buyers = [factories.plain_contact(ws, name=f"buyer{i}", nickname=f"B{i}") for i in range(3)]
    for c in buyers:
        factories.order(ws, c, paid_at=NOON - timedelta(days=3))
    browsers = [factories.plain_contact(ws, name=f"browser{i}", nickname=f"W{i}") for i in range(5)]
    segment = factories.segment_with(ws, buyers + browsers)
    channel, template = console
    definition = {
        "trigger": {"type": "manual", "segment_id": segment.id},
        "steps": [
            {"key": "b", "type": "branch", "rule": {"orders": {"count": {"gte": 1}}}, "yes": "thanks", "no": "nudge"},
            send_step(console, key="thanks", next="exit"),
            {"key": "nudge", "type": "task", "kind": "follow_up", "title": "跟进 {{nickname}}", "due_in_hours": 4},
        ],
    }

    result = queries.journey_dry_run(workspace=ws, definition=definition, now=NOON)

    assert result.audience == 8
    assert {s.key: s.reach for s in result.steps} == {"b": 8, "thanks": 3, "nudge": 5}
    first = next(c for c in result.sample if c.contact_id == buyers[0].id)
    assert first.messages[0]["body"] == "Hi B0, cherries are in!"
    other = next(c for c in result.sample if c.contact_id == browsers[0].id)
    assert other.messages == [] and other.notes == ["为负责员工创建任务：跟进 W0"]
    assert not Message.objects.filter(workspace=ws).exists()
    assert not Enrollment.objects.exists()
