"""The content library (内容库) as services: templates with a scene, a lifecycle node and
attachments; HQ publishes, stores use; audience-wide variables given when queued; journey tags
on every queued row; attachments travelling to the adapters."""

import json
import logging

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from siyu.errors import NotFound, PermissionDenied, ValidationFailed
from siyu.messaging import library_queries, services
from siyu.messaging.models import Message, MessageTemplate
from siyu.tenancy.models import Membership
from tests import factories
from tests.messaging.helpers import NOON, queue

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def staff_of(ws, store) -> Membership:
    user = factories.member(ws, role="staff")
    factories.staff(ws, store, user=user)
    return Membership.objects.get(workspace=ws, user=user)


def hq(ws) -> Membership:
    return Membership.objects.get(workspace=ws, user=factories.member(ws, role="operator"))


def test_a_template_carries_scene_lifecycle_and_attachments(ws, settings):
    tea = factories.product(ws, name="冷泡茶", sku="TEA-1", price="29.00")

    template = services.template_save(
        workspace=ws,
        name="复购提醒",
        channel_kind="webhook",
        body="{{nickname}}，{{product}} 快喝完了吧？",
        scene="repurchase",
        lifecycle_stage="repeat",
        product=tea,
        miniprogram_appid="wx1234567890abcdef",
        miniprogram_path="/pages/item?id=1",
        image=SimpleUploadedFile("tea.png", PNG, content_type="image/png"),
    )

    template.refresh_from_db()
    assert (template.scene_label, template.get_lifecycle_stage_display()) == ("复购提醒", "复购客")
    assert (template.status, template.store) == ("draft", None)
    assert template.image.name.startswith(f"templates/{ws.id}/{template.id}-")
    assert (settings.DATA_DIR / "media" / template.image.name).read_bytes() == PNG
    assert library_queries.attachments_of(template) == {
        "product": {"id": tea.id, "sku": "TEA-1", "name": "冷泡茶", "price": "29.00"},
        "miniprogram": {"appid": "wx1234567890abcdef", "path": "pages/item?id=1"},
        "image": {"file": template.image.name, "name": template.image.name.rsplit("/", 1)[-1]},
    }


@pytest.mark.parametrize(
    ("kw", "code", "path"),
    [
        ({"body": "Hi {{product}}"}, "product_missing", "product"),
        ({"lifecycle_stage": "vip"}, "bad_lifecycle_stage", "lifecycle_stage"),
        (
            {"miniprogram_appid": "wx12", "miniprogram_path": "pages/a"},
            "bad_miniprogram_appid",
            "miniprogram_appid",
        ),
        ({"miniprogram_appid": "wx1234567890abcdef"}, "bad_miniprogram_path", "miniprogram_path"),
        ({"image_url": "ftp://cdn/x.png"}, "bad_image_url", "image_url"),
        ({"image": SimpleUploadedFile("x.png", b"<svg/>")}, "image_type", "image"),
        (
            {"image": SimpleUploadedFile("x.png", PNG + b"0" * (2 * 1024 * 1024))},
            "image_too_large",
            "image",
        ),
        ({"scene": "x" * 33}, "bad_scene", "scene"),
    ],
)
def test_bad_template_input_is_refused_naming_the_field(ws, kw, code, path):
    base = {"workspace": ws, "name": "t", "channel_kind": "console", "body": "Hi"}

    with pytest.raises(ValidationFailed) as refused:
        services.template_save(**{**base, **kw})

    assert (refused.value.code, refused.value.path) == (code, path)
    assert not MessageTemplate.objects.filter(workspace=ws).exists()


def test_hq_publishes_and_stores_see_published_hq_items_and_their_own(ws):
    north, south = factories.store(ws, name="北店"), factories.store(ws, name="南店")
    clerk = staff_of(ws, north)
    draft = services.template_save(workspace=ws, name="早安草稿", channel_kind="console", body="早")
    hq_item = services.template_save(workspace=ws, name="晚安", channel_kind="console", body="晚")
    services.template_publish(workspace=ws, template=hq_item, actor=hq(ws))
    own = services.template_save(
        workspace=ws, name="北店上新", channel_kind="console", body="新", actor=clerk
    )
    services.template_save(
        workspace=ws, name="南店上新", channel_kind="console", body="新", store=south
    )

    seen = library_queries.templates_list(workspace=ws, membership=clerk)

    assert own.store == north
    assert sorted(t.name for t in seen) == ["北店上新", "晚安"]
    assert library_queries.can_edit(own, clerk) and not library_queries.can_edit(hq_item, clerk)
    with pytest.raises(NotFound):
        library_queries.template_get(workspace=ws, template_id=draft.id, membership=clerk)


def test_store_staff_cannot_edit_or_publish_hq_items_and_nothing_changes(ws):
    clerk = staff_of(ws, factories.store(ws))
    hq_item = services.template_save(workspace=ws, name="会员日", channel_kind="console", body="A")

    with pytest.raises(PermissionDenied):
        services.template_save(
            workspace=ws,
            template=hq_item,
            name="会员日",
            channel_kind="console",
            body="B",
            actor=clerk,
        )
    with pytest.raises(PermissionDenied):
        services.template_publish(workspace=ws, template=hq_item, actor=clerk)

    hq_item.refresh_from_db()
    assert (hq_item.body, hq_item.status) == ("A", "draft")


def test_a_template_of_another_workspace_or_its_product_is_not_found(ws, other_ws):
    theirs = services.template_save(workspace=other_ws, name="x", channel_kind="console", body="x")

    with pytest.raises(NotFound):
        services.template_publish(workspace=ws, template=theirs)
    with pytest.raises(NotFound):
        services.template_save(
            workspace=ws,
            name="y",
            channel_kind="console",
            body="{{product}}",
            product=factories.product(other_ws),
        )

    theirs.refresh_from_db()
    assert theirs.status == "draft"


# --- queueing with audience-wide variables ---------------------------------------------------------


def test_audience_variables_render_for_everyone_and_contact_values_stay_literal(ws):
    tea = factories.product(ws, name="冷泡茶")
    alice = factories.contact(ws, nickname="Alice")
    tricky = factories.contact(ws, nickname="{{coupon}}")
    channel = factories.channel(ws, "console")
    template = services.template_save(
        workspace=ws,
        name="券",
        channel_kind="console",
        subject="{{product}} 上新",
        body="{{nickname}}，券码 {{coupon}}，{{link}}",
        product=tea,
    )

    result = queue(
        ws,
        template,
        channel,
        [alice, tricky],
        variables={"coupon": "SPRING'26", "link": "https://s.example/x?a=1&b=%20"},
    )

    assert result.queued == 2
    bodies = dict(Message.objects.values_list("contact_id", "body"))
    assert bodies == {
        alice.id: "Alice，券码 SPRING'26，https://s.example/x?a=1&b=%20",
        tricky.id: "{{coupon}}，券码 SPRING'26，https://s.example/x?a=1&b=%20",
    }
    assert set(Message.objects.values_list("subject", flat=True)) == {"冷泡茶 上新"}


@pytest.mark.parametrize(
    ("variables", "code", "path", "message"),
    [
        (
            None,
            "variable_missing",
            "variables.coupon",
            "The template uses {{coupon}} but no value was given for it.",
        ),
        (
            {"coupon": "A", "gift": "x"},
            "unknown_variable",
            "variables.gift",
            "Unknown variable 'gift'; the audience-wide variables are product, coupon, link.",
        ),
        (
            {"coupon": "A", "nickname": "x"},
            "contact_variable_given",
            "variables.nickname",
            "{{nickname}} comes from each contact and cannot be given for the audience.",
        ),
        (
            {"coupon": 5},
            "bad_variable_value",
            "variables.coupon",
            "{{coupon}} must be text of at most 500 characters.",
        ),
    ],
)
def test_queueing_refuses_missing_or_unknown_variables_and_writes_nothing(
    ws, variables, code, path, message
):
    template = factories.message_template(ws, "console", body="{{coupon}}")

    with pytest.raises(ValidationFailed) as refused:
        queue(
            ws,
            template,
            factories.channel(ws, "console"),
            [factories.contact(ws)],
            variables=variables,
        )

    assert (refused.value.code, refused.value.path, refused.value.message) == (code, path, message)
    assert not Message.objects.exists()


def test_every_queued_row_carries_the_journey_and_step(ws):
    contacts = [factories.contact(ws) for _ in range(3)]
    template = factories.message_template(ws, "console", body="x")
    channel = factories.channel(ws, "console")

    queue(
        ws,
        template,
        channel,
        contacts,
        prefix="journey:7:step:welcome",
        journey_id=7,
        journey_step="welcome",
    )
    queue(ws, template, channel, contacts[:1], prefix="campaign:2")

    rows = sorted(Message.objects.values_list("journey_id", "journey_step"), key=str)
    assert rows == [(7, "welcome")] * 3 + [(None, "")]


# --- attachments reach the adapters ----------------------------------------------------------------


def test_attachments_travel_in_the_webhook_json_and_the_console_log(ws, webhook, caplog):
    tea = factories.product(ws, name="冷泡茶", sku="TEA-1", price="29.00")
    alice = factories.contact(ws, nickname="Alice")
    hook = factories.channel(ws, "webhook", {"url": webhook.url, "secret": webhook.secret})
    for kind, channel in (("webhook", hook), ("console", factories.channel(ws, "console"))):
        template = services.template_save(
            workspace=ws,
            name=f"card-{kind}",
            channel_kind=kind,
            body="{{product}}",
            product=tea,
            image_url="https://cdn.example/tea.png",
        )
        queue(ws, template, channel, [alice], prefix=f"c:{kind}")

    with caplog.at_level(logging.WARNING, logger="siyu.messaging.console"):
        done = services.messages_dispatch(worker_id="w1", now=NOON)

    expected = {
        "product": {"id": tea.id, "sku": "TEA-1", "name": "冷泡茶", "price": "29.00"},
        "image": {"url": "https://cdn.example/tea.png"},
    }
    assert done.sent == 2
    assert webhook.bodies[0]["attachments"] == expected
    assert caplog.messages == [
        f"message c:console:contact:{alice.id} to contact {alice.id}:  | 冷泡茶 | attachments "
        + json.dumps(expected, ensure_ascii=False, sort_keys=True)
    ]


def test_outcomes_recorded_in_chunks_leave_every_row_sent_once(ws):
    contacts = factories.contacts_many(ws, 250)
    channel = factories.channel(ws, "console", rate_per_second=100_000)
    queue(ws, factories.message_template(ws, "console", body="{{name}}"), channel, contacts)

    done = services.messages_dispatch(worker_id="w1", limit=300, now=NOON, record_every=100)

    assert (done.claimed, done.sent) == (250, 250)
    assert set(Message.objects.values_list("status", "locked_by", "attempts")) == {("sent", "", 1)}
    assert Message.objects.filter(provider_message_id__startswith="console-").count() == 250
