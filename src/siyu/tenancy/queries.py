"""Reads for workspaces, members and API keys."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from siyu.tenancy.models import ApiKey, AuditLog, Membership, Workspace
from siyu.tenancy.services import API_KEY_PREFIX, hash_api_key


def workspaces_for_user(user: Any) -> QuerySet[Workspace]:
    return Workspace.objects.filter(id__in=Membership.objects.filter(user=user).values("workspace_id"))


def memberships_for_user(user: Any) -> QuerySet[Membership]:
    """A user's memberships with their workspaces, in one query, for choosing the current one."""
    return Membership.objects.filter(user=user).select_related("workspace").order_by("workspace__name", "workspace_id")


def membership_get(*, workspace: Workspace, user: Any) -> Membership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(workspace=workspace, user=user).first()


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    if not raw_key or not raw_key.startswith(API_KEY_PREFIX):
        return None
    return (
        ApiKey.objects.select_related("workspace")
        .filter(key_hash=hash_api_key(raw_key), revoked_at__isnull=True)
        .first()
    )


def api_keys_list(*, workspace: Workspace) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(workspace=workspace).order_by("-created_at")


def audit_log_list(*, workspace: Workspace, action: str | None = None) -> QuerySet[AuditLog]:
    qs = AuditLog.objects.filter(workspace=workspace)
    if action:
        qs = qs.filter(action=action)
    return qs.order_by("-created_at")
