"""The staff task inbox: tasks for store staff (follow up, invite to the group, birthday
greeting, call back) and each contact's follow-up cadence, which produces follow-up tasks.

A task's ``assignee`` is the contact's owner staff member; without one (or when that staff member
left) it is null and the task waits in its store's unassigned queue — or HQ's, when there is no
store either — until a store manager or an operator assigns it. ``idempotency_key`` is unique per
workspace: a journey step or a cadence run that happens twice creates the task once.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from siyu.tenancy.models import WorkspaceScoped


class TaskKind(models.TextChoices):
    FOLLOW_UP = "follow_up", _("跟进")
    GROUP_INVITE = "group_invite", _("邀请入群")
    BIRTHDAY = "birthday", _("生日祝福")
    CALL = "call", _("电话回访")
    OTHER = "other", _("其他")


class TaskStatus(models.TextChoices):
    OPEN = "open", _("待处理")
    SNOOZED = "snoozed", _("已延后")
    DONE = "done", _("已完成")
    CANCELLED = "cancelled", _("已取消")


#: Statuses of a task still waiting for someone (a snoozed one reappears at ``snoozed_until``).
PENDING_STATUSES = (TaskStatus.OPEN, TaskStatus.SNOOZED)


class SourceKind(models.TextChoices):
    """Who made the task. Other short identifiers are accepted too (an integration's name)."""

    JOURNEY = "journey", _("旅程")
    CADENCE = "cadence", _("跟进周期")
    MANUAL = "manual", _("手动")
    API = "api", _("API")


class StaffTask(WorkspaceScoped):
    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, related_name="staff_tasks"
    )
    assignee = models.ForeignKey(
        "commerce.Staff", null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks"
    )
    store = models.ForeignKey(
        "commerce.Store", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=TaskKind.choices)
    title = models.CharField(max_length=200)
    note = models.TextField(blank=True)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=TaskStatus.choices, default=TaskStatus.OPEN)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.TextField(blank=True)
    source_kind = models.CharField(max_length=32)
    source_id = models.BigIntegerField(null=True, blank=True)
    source_key = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=200)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"], name="task_unique_key"
            ),
            models.CheckConstraint(
                condition=~Q(status="snoozed") | Q(snoozed_until__isnull=False),
                name="task_snoozed_has_until",
            ),
            models.CheckConstraint(
                condition=~Q(status="done") | Q(completed_at__isnull=False),
                name="task_done_has_time",
            ),
        ]
        indexes = [
            # "My open tasks by due date" and "the store's overdue tasks".
            models.Index(fields=["workspace", "assignee", "status", "due_at"], name="task_mine"),
            models.Index(fields=["workspace", "store", "status", "due_at"], name="task_store"),
            # A contact's tasks (contact page; the cadence job's open-task and last-touch checks).
            models.Index(fields=["workspace", "contact", "status"], name="task_contact"),
        ]

    def __str__(self) -> str:
        return self.title


class ContactCadence(WorkspaceScoped):
    """How often a contact should hear from their staff member (seed 003). ``starts_at`` counts
    as the first touch, so a new cadence produces its first task ``every_days`` later, not at once."""

    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, related_name="cadences"
    )
    every_days = models.PositiveIntegerField()
    starts_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "contact"], name="cadence_unique_contact"),
            models.CheckConstraint(
                condition=Q(every_days__gte=1) & Q(every_days__lte=365), name="cadence_days_range"
            ),
        ]
