"""Writes for workspaces, members, API keys and the audit log."""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from siyu.errors import DomainError, ValidationFailed
from siyu.tenancy.models import ApiKey, AuditLog, Membership, Role, Workspace

API_KEY_PREFIX = "sy_"
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


@transaction.atomic
def workspace_create(*, slug: str, name: str, time_zone: str = "Asia/Shanghai", currency: str = "CNY") -> Workspace:
    if not _SLUG.match(slug):
        raise ValidationFailed("invalid_slug", f"Workspace slug {slug!r} must be 2-63 lowercase letters, digits or '-'.")
    if Workspace.objects.filter(slug=slug).exists():
        raise DomainError("slug_taken", f"A workspace with slug {slug!r} already exists.", http_status=409)
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(time_zone)
    except Exception as exc:
        raise ValidationFailed("invalid_time_zone", f"Unknown time zone {time_zone!r}.") from exc
    return Workspace.objects.create(slug=slug, name=name, time_zone=time_zone, currency=currency)


@transaction.atomic
def user_create(*, username: str, password: str, email: str = "") -> Any:
    User = get_user_model()
    if User.objects.filter(username=username).exists():
        raise DomainError("username_taken", f"User {username!r} already exists.", http_status=409)
    if len(password) < 8:
        raise ValidationFailed("weak_password", "Password must be at least 8 characters.")
    return User.objects.create_user(username=username, password=password, email=email)


@transaction.atomic
def membership_set(*, workspace: Workspace, user: Any, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationFailed("invalid_role", f"Role must be one of {', '.join(Role.values)}.")
    membership, _ = Membership.objects.update_or_create(workspace=workspace, user=user, defaults={"role": role})
    return membership


@transaction.atomic
def api_key_create(*, workspace: Workspace, name: str, created_by: Any = None) -> tuple[ApiKey, str]:
    """Returns the key row and the raw key; the raw key is never stored and cannot be shown again."""
    prefix = secrets.token_hex(4)
    raw = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        workspace=workspace, name=name, prefix=prefix, key_hash=hash_api_key(raw), created_by=created_by
    )
    audit_record(workspace=workspace, action="api_key.create", actor_user=created_by, target=key, data={"name": name})
    return key, raw


@transaction.atomic
def api_key_revoke(*, workspace: Workspace, key_id: int, actor: Any = None) -> ApiKey:
    key = ApiKey.objects.select_for_update().filter(workspace=workspace, id=key_id).first()
    if key is None:
        raise DomainError("not_found", "API key not found.", http_status=404)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(workspace=workspace, action="api_key.revoke", actor_user=actor, target=key)
    return key


def api_key_touch(*, key: ApiKey) -> None:
    """Marks use at most once a minute so a busy integration does not write on every call."""
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(id=key.id).update(last_used_at=now)


def actor_login(actor: Any) -> Any:
    """The user behind a service's ``actor`` (a console login), or None (an API key, a job):
    what a ``created_by``-style user column can hold."""
    return actor if getattr(actor, "is_authenticated", False) else None


def audit_record(
    *,
    workspace: Workspace,
    action: str,
    actor_user: Any = None,
    actor_api_key: ApiKey | None = None,
    target: Any = None,
    data: dict | None = None,
) -> AuditLog:
    """``actor_user`` may be an API key (services take one ``actor``, a login or the key an API
    call came with); it is then recorded as the key."""
    if isinstance(actor_user, ApiKey):
        actor_user, actor_api_key = None, actor_api_key or actor_user
    return AuditLog.objects.create(
        workspace=workspace,
        action=action,
        actor_user=actor_login(actor_user),
        actor_api_key=actor_api_key,
        target_type=type(target).__name__.lower() if target is not None else "",
        target_id=str(getattr(target, "pk", "") or ""),
        data=data or {},
    )


@transaction.atomic
def owner_login_reset(*, workspace: Workspace, username: str, password: str) -> Any:
    """For the demo: (re)creates an owner login with a fresh password the CLI prints."""
    User = get_user_model()
    user = User.objects.filter(username=username).first() or User(username=username)
    user.set_password(password)
    user.save()
    membership_set(workspace=workspace, user=user, role=Role.OWNER)
    return user
