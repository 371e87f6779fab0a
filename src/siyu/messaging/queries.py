"""Reads for messaging: guardrail settings, the outbox list and its suppression counts, and the
addresses a batch of messages goes to (decrypted only at send time, never stored in the outbox)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, QuerySet

from siyu.commerce import queries as commerce_queries
from siyu.contacts import pii
from siyu.contacts.models import Contact, Identity, IdentityKind
from siyu.errors import NotFound
from siyu.messaging.models import (
    ChannelConfig,
    Message,
    MessageCapSettings,
    MessageStatus,
    SuppressReason,
)
from siyu.tenancy.models import Membership, Role, Workspace


def cap_settings_for(*, workspace: Workspace) -> MessageCapSettings:
    """The workspace's guardrails, or the defaults (unsaved) when it never changed them."""
    found = MessageCapSettings.objects.filter(workspace=workspace).first()
    return found or MessageCapSettings(workspace=workspace)


def channel_get(*, workspace: Workspace, channel_id: int) -> ChannelConfig:
    found = ChannelConfig.objects.filter(workspace=workspace, id=channel_id).first()
    if found is None:
        raise NotFound("channel_not_found", f"No channel {channel_id} in this workspace.")
    return found


def channel_for_callback(*, channel_id: int) -> ChannelConfig:
    """A provider's callback names its channel in the URL and proves itself with the channel's
    secret, so this lookup alone is not scoped by a workspace: the channel brings it."""
    found = ChannelConfig.objects.filter(id=channel_id).select_related("workspace").first()
    if found is None:
        raise NotFound("channel_not_found", f"No channel {channel_id}.")
    return found


def messages_list(
    *,
    workspace: Workspace,
    status: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> QuerySet[Message]:
    rows = Message.objects.filter(workspace=workspace)
    if status:
        rows = rows.filter(status=status)
    if before_id:
        rows = rows.filter(id__lt=before_id)
    return rows.select_related("channel").order_by("-id")[:limit]


def suppression_counts(*, workspace: Workspace, since: datetime | None = None) -> dict[str, int]:
    """How many messages were suppressed, per reason: every suppression is counted."""
    rows = Message.objects.filter(workspace=workspace, status=MessageStatus.SUPPRESSED)
    if since is not None:
        rows = rows.filter(queued_at__gte=since)
    counts = rows.values("suppress_reason").annotate(n=Count("id")).order_by("suppress_reason")
    return {row["suppress_reason"]: row["n"] for row in counts}


def addresses_for(
    *, workspace_id: int, kind: str | None, contact_ids: Iterable[int]
) -> dict[int, str]:
    """contact id -> plain phone or e-mail address for ``kind`` ("phone", "email")."""
    ids = list(set(contact_ids))
    if kind == "phone":
        rows = Contact.objects.filter(workspace_id=workspace_id, id__in=ids).exclude(phone_enc="")
        return {cid: pii.decrypt(enc) for cid, enc in rows.values_list("id", "phone_enc")}
    if kind == "email":
        rows = Identity.objects.filter(
            workspace_id=workspace_id, contact_id__in=ids, kind=IdentityKind.EMAIL
        )
        found: dict[int, str] = {}
        for cid, value in rows.order_by("-id").values_list("contact_id", "value"):
            found[cid] = pii.decrypt(value)  # the oldest identity wins: written last
        return found
    return {}


def outbox_counts(*, workspace: Workspace) -> dict[str, int]:
    """Messages per status: the outbox at a glance."""
    rows = Message.objects.filter(workspace=workspace).values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


def channels_list(*, workspace: Workspace) -> QuerySet[ChannelConfig]:
    return ChannelConfig.objects.filter(workspace=workspace).order_by("name")


@dataclass(frozen=True)
class OutboxFilter:
    """The outbox page's and its export's filters. ``day`` is a local calendar day of the
    workspace, matched against when the message is meant to go out (``scheduled_at``)."""

    status: str = ""
    channel_id: int | None = None
    suppress_reason: str = ""
    journey_id: int | None = None
    journey_step: str = ""
    day: date | None = None


def messages_visible(
    *, workspace: Workspace, membership: Membership | None = None
) -> QuerySet[Message]:
    """A staff member sees only the messages to their store's contacts."""
    rows = Message.objects.filter(workspace=workspace)
    if membership is not None and membership.role == Role.STAFF:
        store_id = commerce_queries.store_id_for_user(workspace=workspace, user=membership.user)
        rows = rows.filter(contact__store_id=store_id) if store_id else rows.none()
    return rows


def outbox_filtered(
    *, workspace: Workspace, membership: Membership | None, filters: OutboxFilter
) -> QuerySet[Message]:
    rows = messages_visible(workspace=workspace, membership=membership)
    if filters.day is not None:
        zone = ZoneInfo(workspace.time_zone)
        start = datetime.combine(filters.day, time(0), tzinfo=zone)
        rows = rows.filter(scheduled_at__gte=start, scheduled_at__lt=start + timedelta(days=1))
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.channel_id:
        rows = rows.filter(channel_id=filters.channel_id)
    if filters.suppress_reason:
        rows = rows.filter(status=MessageStatus.SUPPRESSED, suppress_reason=filters.suppress_reason)
    if filters.journey_id is not None:
        rows = rows.filter(journey_id=filters.journey_id)
        if filters.journey_step:
            rows = rows.filter(journey_step=filters.journey_step)
    return rows


def outbox_page(
    rows: QuerySet[Message], *, before_id: int | None = None, size: int = 50
) -> list[Message]:
    """One page, newest first, paged by id (no OFFSET, no total count to compute)."""
    if before_id:
        rows = rows.filter(id__lt=before_id)
    return list(rows.select_related("channel", "contact").order_by("-id")[:size])


def outbox_summary(rows: QuerySet[Message]) -> tuple[dict[str, int], dict[str, int]]:
    """Messages per status and suppressions per reason, over the filtered rows; every status
    and reason present (zero when none), in their declared order."""
    by_status = dict.fromkeys(MessageStatus.values, 0)
    by_reason = dict.fromkeys(SuppressReason.values, 0)
    counts = rows.order_by().values("status", "suppress_reason").annotate(n=Count("id"))
    for row in counts:
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        if row["status"] == MessageStatus.SUPPRESSED:
            by_reason[row["suppress_reason"]] = by_reason.get(row["suppress_reason"], 0) + row["n"]
    return by_status, by_reason


def message_get(
    *, workspace: Workspace, message_id: int, membership: Membership | None = None
) -> Message:
    found = (
        messages_visible(workspace=workspace, membership=membership)
        .select_related("channel", "contact", "template")
        .filter(id=message_id)
        .first()
    )
    if found is None:
        raise NotFound("message_not_found", f"No message {message_id} in this workspace.")
    return found


OUTBOX_EXPORT_HEADER = [
    "message_id",
    "contact_id",
    "channel",
    "channel_kind",
    "status",
    "suppress_reason",
    "journey_id",
    "journey_step",
    "attempts",
    "queued_at",
    "scheduled_at",
    "sent_at",
    "delivered_at",
    "read_at",
    "clicked_at",
    "last_error",
    "subject",
    "body",
]


def outbox_export_rows(rows: QuerySet[Message], *, zone: ZoneInfo) -> Iterable[list[str]]:
    """The filtered outbox as CSV rows, oldest first, streamed in chunks; times in ``zone``."""

    def stamp(value: datetime | None) -> str:
        return value.astimezone(zone).isoformat() if value else ""

    for m in rows.select_related("channel").order_by("id").iterator(chunk_size=2000):
        yield [
            str(m.id),
            str(m.contact_id),
            m.channel.name,
            m.channel_kind,
            m.status,
            m.suppress_reason,
            "" if m.journey_id is None else str(m.journey_id),
            m.journey_step,
            str(m.attempts),
            stamp(m.queued_at),
            stamp(m.scheduled_at),
            stamp(m.sent_at),
            stamp(m.delivered_at),
            stamp(m.read_at),
            stamp(m.clicked_at),
            m.last_error,
            m.subject,
            m.body,
        ]
