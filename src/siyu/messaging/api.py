"""Messaging over the API: the outbox list and its suppression counts (API key), and the
delivery-receipt callback for providers, which carries no API key but the channel's HMAC
signature instead."""

from __future__ import annotations

import time
from datetime import datetime

from django.http import HttpRequest
from ninja import Query, Router, Schema

from siyu.api.common import ErrorOut, local_time
from siyu.errors import DomainError
from siyu.messaging import queries, services
from siyu.messaging.channels import adapter_for
from siyu.messaging.models import MessageStatus

router = Router()


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
