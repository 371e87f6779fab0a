"""Reads for messaging: guardrail settings, the outbox list and its suppression counts, and the
addresses a batch of messages goes to (decrypted only at send time, never stored in the outbox)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, QuerySet

from siyu.contacts import pii
from siyu.contacts.models import Contact, Identity, IdentityKind
from siyu.errors import NotFound
from siyu.messaging.models import ChannelConfig, Message, MessageCapSettings, MessageStatus
from siyu.tenancy.models import Workspace


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
