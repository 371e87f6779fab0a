"""Experiments (A/B tests and holdouts) run on a segment: each member is assigned a variant by a
hash of the experiment's salt and the contact id, so the variant never changes however often,
and by whichever path, the contact is assigned."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.tenancy.models import WorkspaceScoped


class ExperimentStatus(models.TextChoices):
    DRAFT = "draft", _("草稿")
    RUNNING = "running", _("进行中")
    FINISHED = "finished", _("已结束")


class ExperimentGoal(models.TextChoices):
    ORDER = "order", _("下单")


class Experiment(WorkspaceScoped):
    """``variants`` is ``[{"key": "A", "weight": 50}, …]``: 2–5 unique keys whose weights (whole
    percents) sum to 100; a key ``holdout`` is the control, otherwise the first variant is.
    A contact converts with an order paid after its assignment and within ``window_days`` (and
    before ``end_at`` once the experiment is finished)."""

    name = models.CharField(max_length=100)
    # SET_NULL: deleting the segment must not delete an experiment's assignments and results.
    segment = models.ForeignKey(
        "audiences.Segment", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    variants = models.JSONField()
    salt = models.CharField(max_length=32)
    window_days = models.PositiveIntegerField(default=14)
    goal = models.CharField(
        max_length=16, choices=ExperimentGoal.choices, default=ExperimentGoal.ORDER
    )
    status = models.CharField(
        max_length=10, choices=ExperimentStatus.choices, default=ExperimentStatus.DRAFT
    )
    start_at = models.DateTimeField(null=True, blank=True)
    end_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="experiment_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class ExperimentAssignment(WorkspaceScoped):
    """``window_ends_at`` is ``assigned_at`` plus the experiment's window, stored so that the
    results compare two columns instead of doing date arithmetic, which SQLite lacks portably."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="assignments")
    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, related_name="experiment_assignments"
    )
    variant = models.CharField(max_length=32)
    assigned_at = models.DateTimeField()
    window_ends_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "contact"], name="experimentassignment_unique"
            )
        ]
        indexes = [models.Index(fields=["contact"])]
