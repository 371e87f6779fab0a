"""Bad journeys are refused when saved, with the place of the mistake."""

import pytest

from siyu.errors import ValidationFailed
from siyu.journeys import services
from tests import factories
from tests.journeys.conftest import NOON, send_step


def _refusal(ws, definition):
    with pytest.raises(ValidationFailed) as caught:
        services.journey_create(workspace=ws, name="J", definition=definition, now=NOON)
    return caught.value.path, caught.value.message


def _manual(*steps):
    return {"trigger": {"type": "manual"}, "steps": list(steps)}


def test_a_cycle_is_refused_and_named(ws, console):
    path, message = _refusal(
        ws,
        _manual(
            send_step(console, key="a"),
            {"key": "w", "type": "wait", "duration": {"hours": 1}, "next": "a"},
        ),
    )
    assert path == "definition.steps.0"
    assert message == "The steps form a cycle (a → w → a); a journey must always end."


def test_a_wait_of_zero_is_refused(ws):
    path, message = _refusal(ws, _manual({"key": "w", "type": "wait", "duration": {"hours": 0}}))
    assert path == "definition.steps.0.duration"
    assert "A wait of zero does nothing" in message


def test_a_branch_on_an_unknown_field_names_the_path_inside_the_rule(ws):
    path, message = _refusal(
        ws,
        _manual(
            {"key": "b", "type": "branch", "rule": {"all": [{"shoe_size": {"gte": 40}}]}, "yes": "exit", "no": "exit"}
        ),
    )
    assert path.startswith("definition.steps.0.rule.all.0")
    assert "shoe_size" in message


def test_a_template_variable_without_a_value_is_refused(ws):
    channel = factories.channel(ws)
    template = factories.message_template(ws, body="券码 {{coupon}}")
    path, message = _refusal(
        ws, _manual({"key": "s", "type": "send", "channel_id": channel.id, "template_id": template.id})
    )
    assert path == "definition.steps.0.variables.coupon"
    assert "{{coupon}}" in message


def test_a_cron_that_never_fires_is_refused(ws, console):
    path, message = _refusal(ws, {"trigger": {"type": "schedule", "cron": "0 9 31 2 *"}, "steps": [send_step(console)]})
    assert path == "definition.trigger.cron"
    assert "never fires" in message


def test_a_step_that_can_never_be_reached_is_refused(ws, console):
    path, message = _refusal(
        ws, _manual(send_step(console, key="a", next="exit"), send_step(console, key="orphan"))
    )
    assert (path, message) == ("definition.steps.1", "Step 'orphan' is never reached from the first step.")


def test_next_must_name_a_step(ws, console):
    path, message = _refusal(ws, _manual(send_step(console, key="a", next="nowhere")))
    assert (path, message) == ("definition.steps.0.next", "No step has the key 'nowhere'.")


def test_a_tag_of_another_workspace_is_refused(ws, other_ws):
    theirs = factories.tag(other_ws)
    path, message = _refusal(ws, _manual({"key": "t", "type": "tag", "action": "add", "tag_id": theirs.id}))
    assert path == "definition.steps.0.tag_id"
    assert message == f"Tag {theirs.id} does not exist in this workspace."


def test_split_weights_must_add_up(ws, console):
    path, message = _refusal(
        ws,
        _manual(
            {"key": "ab", "type": "split", "arms": [{"key": "a", "weight": 50, "next": "s"}, {"key": "b", "weight": 40}]},
            send_step(console, key="s"),
        ),
    )
    assert path == "definition.steps.0.arms"
    assert "add up to 100, not 90" in message


def test_unknown_fields_are_named(ws, console):
    path, message = _refusal(ws, {**_manual(send_step(console)), "colour": "red"})
    assert path == "definition.colour"
    assert "Unknown field 'colour'" in message


def test_a_send_through_a_webhook_channel_must_be_a_webhook_step(ws):
    from siyu.messaging.services import channel_create

    hook = channel_create(workspace=ws, kind="webhook", name="h", settings={"url": "http://127.0.0.1:9/", "secret": "s"})
    template = factories.message_template(ws, kind="webhook", body="{}")
    path, _ = _refusal(ws, _manual({"key": "s", "type": "send", "channel_id": hook.id, "template_id": template.id}))
    assert path == "definition.steps.0.channel_id"


def test_a_task_title_with_an_audience_variable_is_refused(ws):
    path, message = _refusal(
        ws, _manual({"key": "t", "type": "task", "kind": "call", "title": "送 {{coupon}}", "due_in_hours": 4})
    )
    assert path.startswith("definition.steps.0.title")
    assert "{{coupon}}" in message
