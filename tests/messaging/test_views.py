"""The console's content library and outbox pages, as an operator, an analyst and a store's staff
member see and use them."""

import csv
import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from siyu.contacts.services import consent_set
from siyu.messaging import services
from siyu.messaging.models import Message, MessageTemplate
from siyu.tenancy.models import AuditLog
from tests import factories
from tests.messaging.helpers import NOON, queue

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def login(client, ws, role="operator", store=None):
    user = factories.member(ws, role=role)
    if store is not None:
        factories.staff(ws, store, user=user)
    client.force_login(user)
    return user


def names(html: str) -> list[str]:
    table = re.search(r'<table[^>]*data-testid="library".*?</table>', html, re.S).group(0)
    return re.findall(r"<td><strong>(.*?)</strong>", table)


def save(client, **fields):
    data = {"name": "早安", "channel_kind": "console", "body": "{{nickname}} 早安", **fields}
    return client.post(reverse("console:messaging:template_new"), data)


# --- content library ------------------------------------------------------------------------------


def test_the_library_filters_by_scene_and_lifecycle_and_links_from_the_nav(client, ws):
    login(client, ws)
    services.template_save(
        workspace=ws, name="早安", channel_kind="console", body="a", scene="morning"
    )
    services.template_save(
        workspace=ws,
        name="召回",
        channel_kind="sms",
        body="b",
        scene="winback",
        lifecycle_stage="dormant",
    )

    everything = client.get(reverse("console:messaging:library")).content.decode()
    dormant = client.get(reverse("console:messaging:library"), {"lifecycle_stage": "dormant"})
    morning = client.get(reverse("console:messaging:library"), {"scene": "morning"})

    assert sorted(names(everything)) == ["召回", "早安"]
    assert names(dormant.content.decode()) == ["召回"]
    assert names(morning.content.decode()) == ["早安"]
    assert f'href="{reverse("console:messaging:library")}"' in everything
    assert f'href="{reverse("console:messaging:outbox")}"' in everything


def test_store_staff_see_published_hq_items_and_their_own_only(client, ws):
    north, south = factories.store(ws), factories.store(ws)
    login(client, ws, role="staff", store=north)
    published = services.template_save(
        workspace=ws, name="会员日", channel_kind="console", body="a"
    )
    services.template_publish(workspace=ws, template=published)
    services.template_save(workspace=ws, name="总部草稿", channel_kind="console", body="b")
    services.template_save(workspace=ws, name="北店", channel_kind="console", body="c", store=north)
    services.template_save(workspace=ws, name="南店", channel_kind="console", body="d", store=south)

    html = client.get(reverse("console:messaging:library")).content.decode()

    assert sorted(names(html)) == ["会员日", "北店"]
    edit_hq = reverse("console:messaging:template_edit", args=[published.id])
    assert edit_hq not in html
    assert client.get(edit_hq).status_code == 403


def test_creating_a_template_saves_a_draft_and_a_bad_variable_reshows_the_form(client, ws):
    login(client, ws)

    refused = save(client, body="Hi {{nick}}")
    created = save(client, scene="morning", lifecycle_stage="new")

    assert refused.status_code == 422
    html = refused.content.decode()
    assert 'data-path="body"' in html and "Unknown variable {{nick}} in the body" in html
    assert "Hi {{nick}}" in html  # what was typed stays
    assert created.status_code == 302
    template = MessageTemplate.objects.get(workspace=ws)
    assert (template.name, template.status, template.scene, template.lifecycle_stage) == (
        "早安",
        "draft",
        "morning",
        "new",
    )


def test_a_name_already_taken_is_refused_on_the_new_form(client, ws):
    login(client, ws)
    save(client)

    again = save(client, body="另一条")

    assert again.status_code == 422
    assert "A template named &#x27;早安&#x27; already exists." in again.content.decode()
    assert MessageTemplate.objects.get(workspace=ws).body == "{{nickname}} 早安"


def test_the_live_preview_renders_for_a_sample_contact(client, ws):
    login(client, ws)
    alice = factories.contact(ws, nickname="Alice")
    tea = factories.product(ws, name="冷泡茶")

    answer = client.post(
        reverse("console:messaging:template_preview"),
        {
            "body": "{{nickname}}，{{product}} 用券 {{coupon}}",
            "product_id": tea.id,
            "preview_contact_id": alice.id,
            "preview_coupon": "SPRING",
        },
        HTTP_HX_REQUEST="true",
    )

    body = re.search(r'data-testid="preview-body">(.*?)</span>', answer.content.decode()).group(1)
    assert body == "Alice，冷泡茶 用券 SPRING"


def test_publishing_from_the_console_and_staff_cannot_publish_hq_items(client, ws):
    template = services.template_save(workspace=ws, name="晚安", channel_kind="console", body="a")
    login(client, ws, role="staff", store=factories.store(ws))

    refused = client.post(reverse("console:messaging:template_publish", args=[template.id]))
    template.refresh_from_db()
    assert (refused.status_code, template.status) == (404, "draft")  # a draft HQ item is unseen

    login(client, ws)
    published = client.post(reverse("console:messaging:template_publish", args=[template.id]))
    template.refresh_from_db()
    assert (published.status_code, template.status) == (302, "published")


def test_an_uploaded_image_is_served_only_inside_its_workspace(client, ws, other_ws):
    login(client, ws)
    saved = client.post(
        reverse("console:messaging:template_new"),
        {
            "name": "上新",
            "channel_kind": "console",
            "body": "x",
            "image": SimpleUploadedFile("a.png", PNG, content_type="image/png"),
        },
    )
    template = MessageTemplate.objects.get(workspace=ws)

    image = client.get(reverse("console:messaging:template_image", args=[template.id]))
    login(client, other_ws)
    foreign = client.get(reverse("console:messaging:template_image", args=[template.id]))
    foreign_edit = client.get(reverse("console:messaging:template_edit", args=[template.id]))

    assert saved.status_code == 302
    assert b"".join(image.streaming_content) == PNG
    assert (foreign.status_code, foreign_edit.status_code) == (404, 404)


# --- outbox ---------------------------------------------------------------------------------------


@pytest.fixture
def outbox(ws):
    """Two messages to the north store's contacts (one opted out), one to a south contact."""
    north, south = factories.store(ws, name="北店"), factories.store(ws, name="南店")
    a = factories.plain_contact(ws, nickname="A", store=north)
    b = factories.plain_contact(ws, nickname="B", store=north)
    c = factories.plain_contact(ws, nickname="C", store=south)
    consent_set(workspace=ws, contact=b, channel="wecom", status="opted_out")
    channel = factories.channel(ws, "console", consent_channel="wecom", name="开发")
    template = factories.message_template(ws, "console", body="{{nickname}} 你好")
    queue(ws, template, channel, [a, b, c], journey_id=3, journey_step="welcome")
    services.messages_dispatch(worker_id="w1", now=NOON)
    return {"north": north, "a": a, "b": b, "c": c}


def counts(html: str, attribute: str) -> dict[str, int]:
    return {
        code: int(n)
        for code, n in re.findall(
            rf'data-{attribute}="(\w+)"[^>]*>.*?<(?:strong|td class="num")>(\d+)<', html, re.S
        )
    }


def test_the_outbox_counts_statuses_and_reasons_with_explanations(client, ws, outbox):
    login(client, ws, role="analyst")

    html = client.get(reverse("console:messaging:outbox")).content.decode()
    suppressed = client.get(reverse("console:messaging:outbox"), {"reason": "opted_out"})

    assert {k: v for k, v in counts(html, "status").items() if v} == {"sent": 2, "suppressed": 1}
    assert {k: v for k, v in counts(html, "reason").items() if v} == {"opted_out": 1}
    assert "客户已退订该渠道，不再发送。" in html
    blocked = Message.objects.get(contact=outbox["b"])
    listed = re.findall(r'<a href="([^"]+)">\d+</a>', suppressed.content.decode())
    assert listed == [reverse("console:messaging:message", args=[blocked.id])]


def test_staff_see_only_their_stores_messages_and_not_other_message_pages(client, ws, outbox):
    login(client, ws, role="staff", store=outbox["north"])
    theirs = Message.objects.get(contact=outbox["c"])

    html = client.get(reverse("console:messaging:outbox")).content.decode()
    detail = client.get(reverse("console:messaging:message", args=[theirs.id]))

    assert sum(counts(html, "status").values()) == 2
    assert detail.status_code == 404


def test_a_message_page_shows_its_timeline_attempts_and_error(client, ws, outbox, other_ws):
    login(client, ws)
    sent = Message.objects.get(contact=outbox["a"])

    html = client.get(reverse("console:messaging:message", args=[sent.id])).content.decode()
    login(client, other_ws)
    foreign = client.get(reverse("console:messaging:message", args=[sent.id]))

    assert re.search(r'data-testid="attempts">1<', html)
    assert "2026-03-02 12:00:00" in html  # queued and sent at noon, Shanghai time
    assert "#3 welcome" in html
    assert foreign.status_code == 404


def test_the_filtered_outbox_exports_as_csv_and_is_audited(client, ws, outbox):
    user = login(client, ws)

    answer = client.post(reverse("console:messaging:outbox_export") + "?status=sent&journey=3")

    rows = list(
        csv.reader(io.StringIO(b"".join(answer.streaming_content).decode().lstrip("\ufeff")))
    )
    assert rows[0][:5] == ["message_id", "contact_id", "channel", "channel_kind", "status"]
    assert [(r[1], r[4], r[6], r[7], r[-1]) for r in rows[1:]] == [
        (str(outbox["a"].id), "sent", "3", "welcome", "A 你好"),
        (str(outbox["c"].id), "sent", "3", "welcome", "C 你好"),
    ]
    audit = AuditLog.objects.get(workspace=ws, action="outbox.export")
    assert (audit.actor_user, audit.data) == (
        user,
        {"rows": 2, "filters": {"status": "sent", "journey": "3"}},
    )


def test_staff_cannot_export_the_outbox(client, ws, outbox):
    login(client, ws, role="staff", store=outbox["north"])

    answer = client.post(reverse("console:messaging:outbox_export"))

    assert answer.status_code == 403
    assert not AuditLog.objects.filter(action="outbox.export").exists()
