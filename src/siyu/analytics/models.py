"""Daily rollups: the additive day totals every metric of the metrics tree is summed from.

One row per workspace × local day × (owning store, source channel) of the contact the figure
belongs to. Every measure is a count or a sum, so any period and any cut by store or channel is a
plain ``SUM`` over rows; distinct counts (UV, purchasers) are per day, and a period's figure is
their sum (visitor-days), which is what keeps the tree exact and the dashboard one small query.
"""

from __future__ import annotations

from django.db import models

from siyu.tenancy.models import WorkspaceScoped

ROLLUP_MONEY = {"max_digits": 16, "decimal_places": 2}


class DailyRollup(WorkspaceScoped):
    day = models.DateField(help_text="local day in the workspace's time zone")
    # Dimension keys, not foreign keys: a deleted store must not rewrite history, and the rebuild
    # deletes and re-inserts rows wholesale. NULL store = contacts no store owns.
    store_id = models.BigIntegerField(null=True, blank=True)
    source_channel = models.CharField(max_length=20)
    new_contacts = models.BigIntegerField(default=0)
    referral_new_contacts = models.BigIntegerField(default=0)
    uv = models.BigIntegerField(default=0, help_text="contacts with any event that day")
    purchasers = models.BigIntegerField(default=0)
    orders = models.BigIntegerField(default=0)
    first_orders = models.BigIntegerField(
        default=0, help_text="buyers whose first order ever fell on this day"
    )
    gmv = models.DecimalField(**ROLLUP_MONEY, default=0, help_text="paid amount, before refunds")
    refunds = models.DecimalField(**ROLLUP_MONEY, default=0)
    discount = models.DecimalField(**ROLLUP_MONEY, default=0)
    referred_revenue = models.DecimalField(
        **ROLLUP_MONEY, default=0, help_text="net revenue from contacts someone referred"
    )
    cost = models.DecimalField(**ROLLUP_MONEY, default=0, help_text="product cost × quantity")
    uncosted_items = models.BigIntegerField(default=0, help_text="items whose cost is unknown")
    opt_outs = models.BigIntegerField(default=0)

    class Meta:
        # One row per cell is kept by construction (a day is deleted and re-inserted whole); a
        # unique constraint cannot say it portably, since store_id is NULL for unowned contacts.
        indexes = [models.Index(fields=["workspace", "day", "store_id"])]


class HealthSnapshot(WorkspaceScoped):
    """The counts behind the health score for the ``days`` local days ending on ``day``, and the
    home dashboard's pool size, purchasers and repeat purchasers, as of ``computed_at``.

    The counts need distinct contacts over the raw tables (seconds on a large pool), so the
    15-minute rollups job stores them here and the metrics page, the health API and the home
    dashboard read them; a period without a usable snapshot is computed on the spot
    (``health.workspace_health``). A snapshot computed after its period ended is final."""

    day = models.DateField(help_text="last local day of the period")
    days = models.PositiveSmallIntegerField(help_text="length of the period in days")
    counts = models.JSONField(help_text="health.raw_counts for the period")
    # What the home dashboard shows (queries.home_dashboard), as of ``computed_at``.
    pool_size = models.BigIntegerField(default=0)
    purchasers_ever = models.BigIntegerField(default=0)
    repeaters_ever = models.BigIntegerField(default=0, help_text="purchasers with ≥ 2 orders")
    period_purchasers = models.BigIntegerField(default=0, help_text="buyers in the period")
    period_repeaters = models.BigIntegerField(
        default=0, help_text="buyers with ≥ 2 orders in the period"
    )
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "day", "days"], name="analytics_health_snapshot_unique"
            )
        ]
