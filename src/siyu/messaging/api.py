"""Messaging over the API: the content library (templates: list, create or update, publish),
the channels and the guardrails (caps, quiet hours, global daily cap), the outbox list and its
suppression counts (API key), and the delivery-receipt callback for providers, which carries no
API key but the channel's HMAC signature instead. An API key acts as HQ: it sees and writes
every template and channel of its workspace; channel secrets are answered masked."""

from __future__ import annotations

import time
from datetime import datetime
from datetime import time as time_of_day

from django.http import HttpRequest
from ninja import Query, Router, Schema

from siyu.api.common import ErrorOut, api_actor, local_time
from siyu.commerce.models import Product, Store
from siyu.errors import DomainError, NotFound
from siyu.messaging import library_queries, queries, services
from siyu.messaging.channels import adapter_for
from siyu.messaging.models import ChannelConfig, MessageCapSettings, MessageStatus, MessageTemplate

router = Router()


class TemplateIn(Schema):
    name: str
    channel_kind: str
    body: str
    subject: str = ""
    scene: str = ""
    lifecycle_stage: str = ""
    product_id: int | None = None
    miniprogram_appid: str = ""
    miniprogram_path: str = ""
    image_url: str = ""
    store_id: int | None = None


class TemplateOut(Schema):
    id: int
    name: str
    channel_kind: str
    subject: str
    body: str
    scene: str
    lifecycle_stage: str
    status: str
    store_id: int | None
    product_id: int | None
    attachments: dict
    published_at: datetime | None
    updated_at: datetime


class TemplateFilter(Schema):
    scene: str = ""
    lifecycle_stage: str = ""
    channel_kind: str = ""
    status: str = ""
    owner: str = ""


def _template_out(template: MessageTemplate) -> dict:
    workspace = template.workspace
    return {
        "id": template.id,
        "name": template.name,
        "channel_kind": template.channel_kind,
        "subject": template.subject,
        "body": template.body,
        "scene": template.scene,
        "lifecycle_stage": template.lifecycle_stage,
        "status": template.status,
        "store_id": template.store_id,
        "product_id": template.product_id,
        "attachments": library_queries.attachments_of(template) or {},
        "published_at": local_time(template.published_at, workspace),
        "updated_at": local_time(template.updated_at, workspace),
    }


@router.get("/templates", response={200: list[TemplateOut]})
def list_templates(request: HttpRequest, filters: Query[TemplateFilter]):
    """The content library, newest edit first; filter by scene, lifecycle_stage, channel_kind,
    status (draft, published) and owner ("hq", "store" or a store id)."""
    rows = library_queries.templates_list(workspace=request.workspace, **filters.dict())
    return [_template_out(t) for t in rows]


@router.post("/templates", response={200: TemplateOut, 403: ErrorOut, 404: ErrorOut, 422: ErrorOut})
def save_template(request: HttpRequest, payload: TemplateIn):
    """Creates the template named ``name`` or updates it (a new one is a draft). Unknown
    ``{{variables}}``, {{product}} without ``product_id``, a bad mini-program appid or image
    URL answer 422 naming the field. ``store_id`` null makes it an HQ template."""
    ws = request.workspace
    product = store = None
    if payload.product_id is not None:
        product = Product.objects.filter(workspace=ws, id=payload.product_id).first()
        if product is None:
            raise NotFound(
                "product_not_found", f"No product {payload.product_id}.", path="product_id"
            )
    if payload.store_id is not None:
        store = Store.objects.filter(workspace=ws, id=payload.store_id).first()
        if store is None:
            raise NotFound("store_not_found", f"No store {payload.store_id}.", path="store_id")
    template = services.template_save(
        workspace=ws,
        name=payload.name,
        channel_kind=payload.channel_kind,
        body=payload.body,
        subject=payload.subject,
        scene=payload.scene,
        lifecycle_stage=payload.lifecycle_stage,
        product=product,
        miniprogram_appid=payload.miniprogram_appid,
        miniprogram_path=payload.miniprogram_path,
        image_url=payload.image_url,
        store=store,
    )
    return _template_out(template)


class ChannelIn(Schema):
    kind: str
    name: str
    settings: dict = {}
    consent_channel: str | None = None
    require_consent: bool = False
    rate_per_second: float = 10.0


class ChannelUpdateIn(Schema):
    """Every field but the kind; a secret sent back as it was answered (masked) is kept."""

    name: str
    settings: dict = {}
    consent_channel: str = ""
    require_consent: bool = False
    rate_per_second: float = 10.0
    enabled: bool = True


class ChannelOut(Schema):
    id: int
    kind: str
    name: str
    settings: dict
    consent_channel: str
    require_consent: bool
    rate_per_second: float
    enabled: bool


class GuardrailsIO(Schema):
    daily_caps: dict[str, int]
    weekly_caps: dict[str, int]
    quiet_start: time_of_day
    quiet_end: time_of_day
    global_daily_cap: int | None = None


def _channel_out(channel: ChannelConfig) -> dict:
    return {
        "id": channel.id,
        "kind": channel.kind,
        "name": channel.name,
        "settings": services.settings_masked(channel.settings),
        "consent_channel": channel.consent_channel,
        "require_consent": channel.require_consent,
        "rate_per_second": channel.rate_per_second,
        "enabled": channel.enabled,
    }


def _guardrails_out(caps: MessageCapSettings) -> dict:
    return {
        "daily_caps": caps.daily_caps,
        "weekly_caps": caps.weekly_caps,
        "quiet_start": caps.quiet_start,
        "quiet_end": caps.quiet_end,
        "global_daily_cap": caps.global_daily_cap,
    }


@router.get("/channels", response={200: list[ChannelOut]}, summary="List channels")
def list_channels(request: HttpRequest):
    return [_channel_out(c) for c in queries.channels_list(workspace=request.workspace)]


@router.post("/channels", response={200: ChannelOut, 422: ErrorOut}, summary="Add a channel")
def create_channel(request: HttpRequest, payload: ChannelIn):
    """Kinds: console, webhook (settings url, secret), email (host, from; port, username,
    password, starttls), sms (url; fields, params, ok_field, ok_value, id_field, secret)."""
    channel = services.channel_create(
        workspace=request.workspace, actor=api_actor(request), **payload.dict()
    )
    return _channel_out(channel)


@router.put(
    "/channels/{channel_id}",
    response={200: ChannelOut, 404: ErrorOut, 422: ErrorOut},
    summary="Change a channel",
)
def update_channel(request: HttpRequest, channel_id: int, payload: ChannelUpdateIn):
    channel = queries.channel_get(workspace=request.workspace, channel_id=channel_id)
    channel = services.channel_update(
        workspace=request.workspace, channel=channel, actor=api_actor(request), **payload.dict()
    )
    return _channel_out(channel)


@router.get("/messages/guardrails", response={200: GuardrailsIO}, summary="Sending guardrails")
def get_guardrails(request: HttpRequest):
    return _guardrails_out(queries.cap_settings_for(workspace=request.workspace))


@router.put(
    "/messages/guardrails",
    response={200: GuardrailsIO, 422: ErrorOut},
    summary="Change the sending guardrails",
)
def put_guardrails(request: HttpRequest, payload: GuardrailsIO):
    """Caps per contact and channel kind (a kind left out is uncapped), quiet hours in the
    workspace's zone (start equal to end: none), the global daily cap (null: none)."""
    caps = services.cap_settings_set(
        workspace=request.workspace, actor=api_actor(request), **payload.dict()
    )
    return _guardrails_out(caps)


@router.post("/templates/{template_id}/publish", response={200: TemplateOut, 404: ErrorOut})
def publish_template(request: HttpRequest, template_id: int):
    """Publishes the template: an HQ template becomes visible to every store."""
    template = library_queries.template_get(workspace=request.workspace, template_id=template_id)
    return _template_out(services.template_publish(workspace=request.workspace, template=template))


class MessageOut(Schema):
    id: int
    contact_id: int
    channel: str
    channel_kind: str
    idempotency_key: str
    status: str
    suppress_reason: str
    attempts: int
    last_error: str
    provider_message_id: str
    queued_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    delivered_at: datetime | None
    journey_id: int | None
    journey_step: str


class MessageFilter(Schema):
    status: MessageStatus | None = None
    before_id: int | None = None
    limit: int = 100


class ReceiptsOut(Schema):
    applied: int
    unknown: int


@router.get("/messages", response={200: list[MessageOut]})
def list_messages(request: HttpRequest, filters: Query[MessageFilter]):
    """Newest first; page with ``before_id`` (the last id seen). Times in the workspace's zone."""
    workspace = request.workspace
    rows = queries.messages_list(
        workspace=workspace,
        status=filters.status,
        before_id=filters.before_id,
        limit=min(filters.limit, 1000),
    )
    return [
        {
            "id": m.id,
            "contact_id": m.contact_id,
            "channel": m.channel.name,
            "channel_kind": m.channel_kind,
            "idempotency_key": m.idempotency_key,
            "status": m.status,
            "suppress_reason": m.suppress_reason,
            "attempts": m.attempts,
            "last_error": m.last_error,
            "provider_message_id": m.provider_message_id,
            "queued_at": local_time(m.queued_at, workspace),
            "next_attempt_at": local_time(m.next_attempt_at, workspace),
            "sent_at": local_time(m.sent_at, workspace),
            "delivered_at": local_time(m.delivered_at, workspace),
            "journey_id": m.journey_id,
            "journey_step": m.journey_step,
        }
        for m in rows
    ]


@router.get("/messages/suppressions", response={200: dict[str, int]})
def suppressions(request: HttpRequest, since: datetime | None = None):
    """Suppressed messages per reason (opted_out, no_consent, no_address, frequency_cap, …)."""
    return queries.suppression_counts(workspace=request.workspace, since=since)


@router.post(
    "/messages/receipts/{channel_id}",
    auth=None,
    response={200: ReceiptsOut, 401: ErrorOut, 404: ErrorOut},
)
def receipts(request: HttpRequest, channel_id: int):
    """Delivery receipts from a provider, signed with the channel's secret: headers
    ``X-Siyu-Timestamp`` and ``X-Siyu-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``;
    body ``{"receipts": [{"provider_message_id" or "message_id", "status", "at"}]}``.
    Receipts for messages siyu does not know are counted, not refused."""
    channel = queries.channel_for_callback(channel_id=channel_id)
    parsed = adapter_for(channel).parse_receipts(request.headers, request.body, now=time.time())
    applied = unknown = 0
    for receipt in parsed:
        try:
            services.message_receipt(
                workspace=channel.workspace,
                status=receipt.status,
                at=receipt.at,
                provider_message_id=receipt.provider_message_id,
                message_id=receipt.message_id,
            )
            applied += 1
        except DomainError as exc:
            if exc.code != "message_not_found":
                raise
            unknown += 1
    return {"applied": applied, "unknown": unknown}
