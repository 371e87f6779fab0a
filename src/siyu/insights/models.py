"""Fitted customer-value models and the per-contact scores they produce."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.commerce.models import MONEY
from siyu.tenancy.models import WorkspaceScoped


class ModelKind(models.TextChoices):
    BG_NBD = "bgnbd", "BG/NBD"
    PARETO_NBD = "pareto_nbd", "Pareto/NBD"


class FitStatus(models.TextChoices):
    RUNNING = "running", _("运行中")
    DONE = "done", _("完成")
    FAILED = "failed", _("失败")


class ModelFit(WorkspaceScoped):
    """One fitting run: its parameters, its holdout check and how many contacts it scored."""

    kind = models.CharField(max_length=16, choices=ModelKind.choices, default=ModelKind.BG_NBD)
    status = models.CharField(max_length=10, choices=FitStatus.choices, default=FitStatus.RUNNING)
    message = models.TextField(blank=True)
    observation_end = models.DateField(null=True)
    transaction_params = models.JSONField(default=dict)
    transaction_log_likelihood = models.FloatField(null=True)
    spend_params = models.JSONField(default=dict)
    customers = models.PositiveIntegerField(default=0)
    repeat_buyers = models.PositiveIntegerField(default=0)
    calibration = models.JSONField(
        default=dict, help_text="holdout check: predicted vs actual per frequency"
    )
    horizon_months = models.PositiveSmallIntegerField(default=12)
    monthly_discount_rate = models.FloatField(default=0.01)
    progress = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "status", "started_at"])]


class ChurnBand(models.TextChoices):
    LOW = "low", _("低")
    MEDIUM = "medium", _("中")
    HIGH = "high", _("高")


class ContactScore(WorkspaceScoped):
    """The latest model scores of one contact (contacts who never bought have none)."""

    contact = models.OneToOneField(
        "contacts.Contact", on_delete=models.CASCADE, related_name="score"
    )
    fit = models.ForeignKey(ModelFit, on_delete=models.CASCADE, related_name="+")
    frequency = models.PositiveIntegerField()
    recency_weeks = models.FloatField()
    age_weeks = models.FloatField()
    p_alive = models.FloatField()
    expected_purchases_30d = models.FloatField()
    expected_purchases_90d = models.FloatField()
    expected_purchases_365d = models.FloatField()
    expected_order_value = models.DecimalField(**MONEY)
    clv = models.DecimalField(**MONEY)
    historical_value = models.DecimalField(**MONEY, help_text="net spend so far")
    churn_band = models.CharField(max_length=8, choices=ChurnBand.choices)
    scored_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "churn_band"]),
            models.Index(fields=["workspace", "clv"]),
            models.Index(fields=["workspace", "p_alive"]),
            # The insights page's valuable contacts at risk, biggest spenders first: read in
            # this order, the first fifty are found without sorting every risky score.
            models.Index(
                fields=["workspace", "-historical_value", "p_alive"],
                name="score_at_risk_by_value",
                condition=models.Q(churn_band__in=["high", "medium"]),
            ),
        ]
