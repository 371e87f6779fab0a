"""The outbox over the API, and delivery receipts from providers (HMAC-signed callbacks)."""

import json
import time
from datetime import UTC, datetime
from datetime import time as time_of_day

from django.test import Client, override_settings

from siyu.messaging import services
from siyu.messaging.channels.base import signed_headers
from siyu.messaging.models import Message
from siyu.messaging.tasks import dispatch_outbox
from siyu.scheduler.jobs import JOBS
from tests import factories

NOON = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
SECRET = "receipt-secret"


def sent_message(ws) -> Message:
    channel = factories.channel(ws, "console", settings={"secret": SECRET})
    services.messages_queue(
        workspace=ws,
        template=factories.message_template(ws, "console", body="x"),
        channel=channel,
        contact_ids=[factories.contact(ws).id],
        idempotency_prefix="campaign:9",
        now=NOON,
    )
    services.messages_dispatch(worker_id="w1", now=NOON)
    return Message.objects.get(workspace=ws)


def post_receipts(
    message: Message, receipts: list[dict], secret: str = SECRET, stamp: float | None = None
):
    body = json.dumps({"receipts": receipts}).encode()
    headers = {
        f"HTTP_{k.upper().replace('-', '_')}": v
        for k, v in signed_headers(secret, body, now=stamp).items()
    }
    return Client().post(
        f"/api/v1/messages/receipts/{message.channel_id}",
        body,
        content_type="application/json",
        **headers,
    )


def test_a_signed_receipt_moves_the_message_forward_only(ws):
    message = sent_message(ws)

    answer = post_receipts(
        message,
        [
            {
                "provider_message_id": message.provider_message_id,
                "status": "read",
                "at": "2026-03-02T12:05:00+08:00",
            },
            {"message_id": message.id, "status": "delivered", "at": "2026-03-02T12:01:00+08:00"},
            {"provider_message_id": "nobody-knows", "status": "delivered"},
        ],
    )

    assert answer.status_code == 200, answer.content
    assert answer.json() == {"applied": 2, "unknown": 1}
    message.refresh_from_db()
    assert message.status == "read"
    assert (message.delivered_at, message.read_at) == (
        datetime(2026, 3, 2, 4, 1, tzinfo=UTC),
        datetime(2026, 3, 2, 4, 5, tzinfo=UTC),
    )


def test_a_receipt_with_a_bad_or_stale_signature_is_refused_and_changes_nothing(ws):
    message = sent_message(ws)
    receipt = [{"message_id": message.id, "status": "delivered"}]

    forged = post_receipts(message, receipt, secret="guessed")
    stale = post_receipts(message, receipt, stamp=time.time() - 600)

    assert (forged.status_code, forged.json()["code"]) == (401, "bad_signature")
    assert (stale.status_code, stale.json()["detail"]) == (
        401,
        "X-Siyu-Timestamp is more than 5 minutes off.",
    )
    message.refresh_from_db()
    assert (message.status, message.delivered_at) == ("sent", None)


def test_a_receipt_cannot_reach_another_workspaces_message(ws, other_ws):
    mine, theirs = sent_message(ws), sent_message(other_ws)

    answer = post_receipts(mine, [{"message_id": theirs.id, "status": "delivered"}])

    assert answer.json() == {"applied": 0, "unknown": 1}
    theirs.refresh_from_db()
    assert theirs.status == "sent"


def test_list_messages_by_status_in_the_workspace_zone(ws, other_ws, api):
    message = sent_message(ws)
    sent_message(other_ws)

    answer = api.get("/api/v1/messages?status=sent")
    none = api.get("/api/v1/messages?status=failed")

    assert answer.status_code == 200
    [row] = answer.json()
    assert (row["id"], row["status"], row["idempotency_key"]) == (
        message.id,
        "sent",
        message.idempotency_key,
    )
    assert row["sent_at"] == "2026-03-02T12:00:00+08:00"
    assert none.json() == []


def test_suppression_counts_over_the_api(ws, api):
    alice = factories.contact(ws)
    sms = factories.channel(ws, "sms", {"url": "http://127.0.0.1:9/"}, require_consent=True)
    services.messages_queue(
        workspace=ws,
        template=factories.message_template(ws, "sms", body="x"),
        channel=sms,
        contact_ids=[alice.id],
        idempotency_prefix="c:1",
        now=NOON,
    )

    assert api.get("/api/v1/messages/suppressions").json() == {"no_consent": 1}


@override_settings(
    TASKS={"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
)
def test_the_scheduler_runs_the_dispatch_task_every_ten_seconds(ws):
    services.cap_settings_set(workspace=ws, quiet_start=time_of_day(0), quiet_end=time_of_day(0))
    channel = factories.channel(ws, "console")
    services.messages_queue(
        workspace=ws,
        template=factories.message_template(ws, "console", body="x"),
        channel=channel,
        contact_ids=[factories.contact(ws).id],
        idempotency_prefix="c:1",
        now=datetime.now(UTC),
    )

    assert [job.every_seconds for job in JOBS if job.name == "messaging.dispatch_outbox"] == [10]
    assert dispatch_outbox.enqueue().return_value == 1
    assert Message.objects.get().status == "sent"


# --- the content library over the API -----------------------------------------------------------


def test_create_list_and_publish_templates_over_the_api(ws, api):
    tea = factories.product(ws, name="冷泡茶", sku="TEA-1", price="29.00")
    store = factories.store(ws)

    created = api.post(
        "/api/v1/templates",
        {
            "name": "复购",
            "channel_kind": "webhook",
            "body": "{{nickname}}，{{product}} 用券 {{coupon}}",
            "scene": "repurchase",
            "lifecycle_stage": "repeat",
            "product_id": tea.id,
            "miniprogram_appid": "wx1234567890abcdef",
            "miniprogram_path": "pages/item",
        },
        content_type="application/json",
    )
    api.post(
        "/api/v1/templates",
        {"name": "门店", "channel_kind": "console", "body": "x", "store_id": store.id},
        content_type="application/json",
    )
    template_id = created.json()["id"]
    published = api.post(f"/api/v1/templates/{template_id}/publish")
    listed = api.get("/api/v1/templates?scene=repurchase&status=published")
    hq_only = api.get("/api/v1/templates?owner=hq")

    assert created.status_code == 200, created.content
    assert (created.json()["status"], created.json()["attachments"]) == (
        "draft",
        {
            "product": {"id": tea.id, "sku": "TEA-1", "name": "冷泡茶", "price": "29.00"},
            "miniprogram": {"appid": "wx1234567890abcdef", "path": "pages/item"},
        },
    )
    assert published.json()["status"] == "published"
    assert [t["id"] for t in listed.json()] == [template_id]
    assert [t["name"] for t in hq_only.json()] == ["复购"]


def test_a_bad_template_answers_422_naming_the_field_and_saves_nothing(ws, api):
    answer = api.post(
        "/api/v1/templates",
        {"name": "t", "channel_kind": "sms", "body": "{{product}} 到了"},
        content_type="application/json",
    )

    assert answer.status_code == 422
    assert (answer.json()["code"], answer.json()["path"]) == ("product_missing", "product")
    assert api.get("/api/v1/templates").json() == []


def test_another_workspaces_template_and_product_are_not_found(ws, other_ws, api):
    theirs = factories.message_template(other_ws, "console", body="x")

    publish = api.post(f"/api/v1/templates/{theirs.id}/publish")
    with_product = api.post(
        "/api/v1/templates",
        {
            "name": "t",
            "channel_kind": "console",
            "body": "x",
            "product_id": factories.product(other_ws).id,
        },
        content_type="application/json",
    )

    assert (publish.status_code, with_product.status_code) == (404, 404)
    theirs.refresh_from_db()
    assert theirs.status == "draft"


def test_messages_over_the_api_carry_their_journey_and_step(ws, api):
    services.messages_queue(
        workspace=ws,
        template=factories.message_template(ws, "console", body="x"),
        channel=factories.channel(ws, "console"),
        contact_ids=[factories.contact(ws).id],
        idempotency_prefix="journey:4:step:a",
        now=NOON,
        journey_id=4,
        journey_step="a",
    )

    [row] = api.get("/api/v1/messages").json()

    assert (row["journey_id"], row["journey_step"]) == (4, "a")
