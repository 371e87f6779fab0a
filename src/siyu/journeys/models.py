"""Journeys (SOP automation) as durable state machines in tables.

A Journey is the thing operators name and switch on; each edit of a live journey makes a new
JourneyVersion (its definition is frozen once published) and running enrollments finish on the
version they entered. An Enrollment is one contact's walk through one version: the step it is
at and when it is next due. Nothing about a walk lives in a worker's memory, so a worker that
dies loses nothing: the next one picks up the due rows.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from siyu.contacts.models import Contact
from siyu.tenancy.models import WorkspaceScoped, bulk_workspace_key


class JourneyStatus(models.TextChoices):
    DRAFT = "draft", _("草稿")
    LIVE = "live", _("运行中")
    PAUSED = "paused", _("已暂停")
    STOPPED = "stopped", _("已停止")


class Journey(WorkspaceScoped):
    """``trigger_watermark`` is how far event triggers have been scanned (arrival time of the
    source rows) and ``live_since`` when the journey was last switched on: nothing that arrived
    before it enrolls anybody. ``goal_checked_at`` is the watermark of goals; ``next_fire_at`` is the next slot of
    a schedule (or birthday) trigger."""

    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    status = models.CharField(
        max_length=8, choices=JourneyStatus.choices, default=JourneyStatus.DRAFT
    )
    current_version = models.ForeignKey(
        "JourneyVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trigger_watermark = models.DateTimeField(null=True, blank=True)
    live_since = models.DateTimeField(null=True, blank=True)
    next_fire_at = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    goal_checked_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="journey_unique_name")
        ]
        indexes = [models.Index(fields=["status", "next_fire_at"], name="journey_due_fire")]

    def __str__(self) -> str:
        return self.name


class JourneyVersion(WorkspaceScoped):
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    published_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "number"], name="journeyversion_unique_number"
            )
        ]

    def __str__(self) -> str:
        return f"{self.journey_id} v{self.number}"


class EnrollmentStatus(models.TextChoices):
    ACTIVE = "active", _("进行中")
    COMPLETED = "completed", _("已完成")
    CONVERTED = "converted", _("已达成目标")
    HOLDOUT = "holdout", _("对照组")
    STOPPED = "stopped", _("已停止")
    FAILED = "failed", _("失败")


class Enrollment(WorkspaceScoped):
    """``entry_key`` names what let the contact in (an event, an order, a schedule slot, a
    launch); ``seq`` counts the contact's entries into this journey (1, 2, …) and is unique per
    journey and contact, so a "once only" journey (every entry has seq 1) can never take the
    same contact twice, even from two workers. A trigger row seen twice enrolls once because a
    rescan skips rows that arrived before the contact's last entry (services._enroll)."""

    # A launch writes a row per contact: only the indexes and checks the engine reads pay
    # their way (the unique keys lead with the journey; the claim has its own partial index).
    workspace = bulk_workspace_key()
    journey = models.ForeignKey(
        Journey,
        on_delete=models.CASCADE,
        related_name="enrollments",
        db_index=False,
        db_constraint=False,
    )
    version = models.ForeignKey(
        JourneyVersion,
        on_delete=models.CASCADE,
        related_name="enrollments",
        db_index=False,
        db_constraint=False,
    )
    # Django's collector cascades deletes; a deferred database check per row would double
    # the cost of a launch's commit (as on the outbox).
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="journey_enrollments", db_constraint=False
    )
    entry_key = models.CharField(max_length=100)
    seq = models.PositiveIntegerField(default=1)
    status = models.CharField(
        max_length=10, choices=EnrollmentStatus.choices, default=EnrollmentStatus.ACTIVE
    )
    step_key = models.CharField(max_length=64, blank=True)
    next_run_at = models.DateTimeField()
    variant = models.CharField(max_length=32, blank=True)
    entered_at = models.DateTimeField()
    exited_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "contact", "seq"], name="enrollment_unique_seq"
            ),
        ]
        indexes = [
            # which (version, step) groups are due, then a worker's claim of one group in id order
            models.Index(
                fields=["next_run_at"], condition=Q(status="active"), name="enrollment_due"
            ),
            models.Index(
                fields=["version", "step_key", "seq", "id"],
                condition=Q(status="active"),
                name="enrollment_claim",
            ),
        ]


class StepCount(WorkspaceScoped):
    """How many enrollments reached each step of each version (and, for a split, each arm),
    counted as they move so the journey page needs no scan of the enrollments."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="step_counts")
    version = models.ForeignKey(JourneyVersion, on_delete=models.CASCADE, related_name="+")
    step_key = models.CharField(max_length=64)
    reached = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "step_key"], name="stepcount_unique")
        ]


class JourneyRun(WorkspaceScoped):
    """One firing of a schedule or one manual launch, and what it did: the console shows them
    and a missed slot that was skipped is recorded too."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey(JourneyVersion, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10)  # schedule | launch
    slot = models.DateTimeField(null=True, blank=True)
    skipped_slots = models.PositiveIntegerField(default=0)
    enrolled = models.PositiveIntegerField(default=0)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["journey", "at"])]
