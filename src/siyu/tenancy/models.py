"""Workspaces (brands), their members and roles, API keys and the audit log.

Every tenant-owned row elsewhere inherits ``WorkspaceScoped`` so that the
workspace is a required column and the first filter of every query.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Workspace(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, default="Asia/Shanghai")
    currency = models.CharField(max_length=3, default="CNY")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class WorkspaceScoped(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True


def bulk_workspace_key() -> models.ForeignKey:
    """The workspace key of a table written a million rows at a time: no database constraint (a
    deferred check per row at commit, of the same workspace row each time) and no index of its
    own (the table's other indexes lead with the workspace). Deletion still cascades through
    the ORM."""
    return models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )


class Role(models.TextChoices):
    OWNER = "owner", _("所有者")
    OPERATOR = "operator", _("运营")
    ANALYST = "analyst", _("分析师")
    STAFF = "staff", _("导购")


class Membership(WorkspaceScoped):
    """A user's role in one workspace. A ``staff`` member sees only their store's contacts;
    the store comes from the commerce Staff record that links to the user."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "user"], name="membership_unique_user")]

    @property
    def can_see_personal_data(self) -> bool:
        return self.role in (Role.OWNER, Role.OPERATOR)


class ApiKey(WorkspaceScoped):
    """Only a SHA-256 of the secret is stored; the full key is shown once at creation."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuditLog(WorkspaceScoped):
    """Append-only record of sensitive actions: merges, exports, key use and revocation."""

    action = models.CharField(max_length=64)
    actor_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    actor_api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "action", "created_at"])]
