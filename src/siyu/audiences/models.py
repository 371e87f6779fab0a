"""Tags (grouped, set by hand, in bulk or by a rule) and segments (人群包): a saved rule whose
membership is refreshed in SQL, with who entered and left at each refresh and the size by day."""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.tenancy.models import WorkspaceScoped, bulk_workspace_key


class TagGroup(WorkspaceScoped):
    name = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="taggroup_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class Tag(WorkspaceScoped):
    """``rule`` (a segment rule) makes an auto tag: applying it tags who matches and untags, among
    the contacts it tagged itself, who no longer does; tags set by hand are never removed by it."""

    group = models.ForeignKey(TagGroup, on_delete=models.CASCADE, related_name="tags")
    name = models.CharField(max_length=64)
    color = models.CharField(max_length=7, default="#6b7280")
    rule = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "name"], name="tag_unique_name_in_group")
        ]

    def __str__(self) -> str:
        return self.name


class TagSource(models.TextChoices):
    MANUAL = "manual", _("手动")
    RULE = "rule", _("规则")
    IMPORT = "import", _("导入")
    API = "api", _("API")
    JOURNEY = "journey", _("旅程")


class ContactTag(WorkspaceScoped):
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="tags")
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="contact_tags")
    source = models.CharField(max_length=8, choices=TagSource.choices, default=TagSource.MANUAL)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "tag"], name="contacttag_unique")]
        indexes = [models.Index(fields=["workspace", "tag"])]


class SegmentKind(models.TextChoices):
    DYNAMIC = "dynamic", _("动态")
    STATIC = "static", _("静态")


class SegmentStatus(models.TextChoices):
    NEW = "new", _("未计算")
    READY = "ready", _("已就绪")
    FAILED = "failed", _("计算失败")


class SegmentSchedule(models.TextChoices):
    MANUAL = "manual", _("手动")
    HOURLY = "hourly", _("每小时")
    DAILY = "daily", _("每天")


class Segment(WorkspaceScoped):
    """A dynamic segment is recomputed at each refresh; a static one keeps the members it had
    when it was created."""

    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True)
    rule = models.JSONField()
    kind = models.CharField(max_length=8, choices=SegmentKind.choices, default=SegmentKind.DYNAMIC)
    status = models.CharField(
        max_length=8, choices=SegmentStatus.choices, default=SegmentStatus.NEW
    )
    size = models.PositiveIntegerField(default=0)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    # A dynamic segment on a schedule is refreshed by the worker once ``next_refresh_at`` passes.
    refresh_every = models.CharField(
        max_length=8, choices=SegmentSchedule.choices, default=SegmentSchedule.MANUAL
    )
    next_refresh_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="segment_unique_name")
        ]
        indexes = [models.Index(fields=["next_refresh_at"], name="segment_next_refresh")]

    def __str__(self) -> str:
        return self.name


class SegmentMember(WorkspaceScoped):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="members")
    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, related_name="segment_memberships"
    )
    added_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "contact"], name="segmentmember_unique")
        ]
        indexes = [models.Index(fields=["contact"])]


class SegmentRefresh(WorkspaceScoped):
    """One recomputation: how many entered and left, the size after, or why it failed."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="refreshes")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    entered = models.PositiveIntegerField(default=0)
    left = models.PositiveIntegerField(default=0)
    size = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=8, choices=SegmentStatus.choices)
    error = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["segment", "started_at"])]


class SegmentChangeKind(models.TextChoices):
    ENTERED = "entered", _("进入")
    LEFT = "left", _("离开")


class SegmentChange(WorkspaceScoped):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="changes")
    refresh = models.ForeignKey(SegmentRefresh, on_delete=models.CASCADE, related_name="changes")
    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, related_name="segment_changes"
    )
    change = models.CharField(max_length=8, choices=SegmentChangeKind.choices)
    at = models.DateTimeField()

    class Meta:
        indexes = [
            # A refresh's entrants or leavers in contact order: the segment page names the
            # first few without reading the hundreds of thousands a first refresh enters.
            models.Index(fields=["refresh", "change", "contact"], name="segmentchange_by_contact"),
            models.Index(fields=["segment", "at"]),
        ]


class SegmentSizeHistory(WorkspaceScoped):
    """The size after the day's last refresh, per local day of the workspace."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="size_history")
    date = models.DateField()
    size = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "date"], name="segmentsize_unique_day")
        ]


# --- layers: RFM classes, lifecycle stages, intent layers (docs/layers.md) ---------------------


class RFMMethod(models.TextChoices):
    QUINTILE = "quintile", _("五分位")
    THRESHOLD = "threshold", _("阈值")


class RFMClass(models.TextChoices):
    """The eight classic classes, from recency (R), frequency (F) and monetary (M) high/low."""

    IMPORTANT_VALUE = "important_value", _("重要价值")  # R↑ F↑ M↑
    IMPORTANT_DEVELOP = "important_develop", _("重要发展")  # R↑ F↓ M↑
    IMPORTANT_KEEP = "important_keep", _("重要保持")  # R↓ F↑ M↑
    IMPORTANT_RETAIN = "important_retain", _("重要挽留")  # R↓ F↓ M↑
    GENERAL_VALUE = "general_value", _("一般价值")  # R↑ F↑ M↓
    GENERAL_DEVELOP = "general_develop", _("一般发展")  # R↑ F↓ M↓
    GENERAL_KEEP = "general_keep", _("一般保持")  # R↓ F↑ M↓
    GENERAL_RETAIN = "general_retain", _("一般挽留")  # R↓ F↓ M↓


class LifecycleStage(models.TextChoices):
    PROSPECT = "prospect", _("潜客")
    NEW = "new", _("新客")
    REPEAT = "repeat", _("复购客")
    LOYAL = "loyal", _("忠诚客")
    DORMANT = "dormant", _("沉睡")
    CHURNED = "churned", _("流失")


class IntentLayer(models.TextChoices):
    SILENT = "silent", _("无语")
    INTERESTED = "interested", _("意向")
    QUOTED = "quoted", _("报价")
    CLOSED = "closed", _("成交")


class LayerConfig(WorkspaceScoped):
    """How a workspace's layers are computed; a workspace without a row uses these defaults.

    RFM looks at ``rfm_window_days`` of orders. With ``quintile`` a dimension is high when its
    score (1-5) is at least 3; with ``threshold`` when recency is at most ``rfm_recency_days``,
    frequency at least ``rfm_frequency`` and net spend at least ``rfm_monetary``. Lifecycle
    judges a buyer against their own purchase rhythm (``dormant_factor`` and ``churned_factor``
    times their mean interval); intent counts interactions in ``intent_window_days``."""

    rfm_method = models.CharField(
        max_length=10, choices=RFMMethod.choices, default=RFMMethod.QUINTILE
    )
    rfm_window_days = models.PositiveIntegerField(default=365)
    rfm_recency_days = models.PositiveIntegerField(null=True, blank=True)
    rfm_frequency = models.PositiveIntegerField(null=True, blank=True)
    rfm_monetary = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    loyal_orders = models.PositiveIntegerField(default=4)
    loyal_window_days = models.PositiveIntegerField(default=365)
    dormant_factor = models.DecimalField(max_digits=5, decimal_places=2, default=2)
    churned_factor = models.DecimalField(max_digits=5, decimal_places=2, default=4)
    default_interval_days = models.PositiveIntegerField(
        default=90, help_text="the rhythm of one-order buyers when no contact has bought twice"
    )
    intent_window_days = models.PositiveIntegerField(default=90)
    intent_min_interactions = models.PositiveIntegerField(default=3)
    updated_at = models.DateTimeField(auto_now=True)
    #: When ``layers_refresh`` last ran: every ContactLayer row is as of this moment, also the
    #: rows it left alone because nothing about them changed.
    refreshed_at = models.DateTimeField(null=True, blank=True)
    #: The months ("YYYY-MM-01", workspace-local) in which a refresh ran, oldest first: the
    #: months whose stage snapshot can be read (LayerSnapshot keeps only the changes).
    snapshot_months = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace"], name="layerconfig_one_per_workspace")
        ]


class ContactLayer(WorkspaceScoped):
    """One contact's layers as of the workspace's last refresh (``LayerConfig.refreshed_at``).
    A refresh writes only the rows whose values changed, so a day's refresh of a million
    contacts touches the few thousand that bought, lapsed or crossed a threshold.

    ``frequency`` and ``monetary`` cover the RFM window only (no order in it: no scores, no
    class); ``last_order_at`` and ``interval_days`` (the mean gap between the contact's orders,
    none for fewer than two) cover the whole history and drive the stage. Recency is not stored
    (it grows every day for every buyer, and storing it would rewrite every row each refresh):
    ``recency_days_as_of`` derives it from ``last_order_at``."""

    # No database FK constraints (the ORM still cascades): the table is rewritten whole from the
    # contacts in the same transaction, and checking a million deferred FK triggers at commit
    # cost more than the rewrite itself. No index of the workspace alone either: the indexes
    # below lead with it.
    workspace = bulk_workspace_key()
    # The contact is the primary key: a separate id would be one more index for every row a
    # refresh writes, and nothing looks a layer row up by anything but its contact.
    contact = models.OneToOneField(
        "contacts.Contact",
        on_delete=models.CASCADE,
        related_name="layer",
        db_constraint=False,
        primary_key=True,
    )
    frequency = models.PositiveIntegerField(default=0)
    monetary = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    r_score = models.PositiveSmallIntegerField(null=True, blank=True)
    f_score = models.PositiveSmallIntegerField(null=True, blank=True)
    m_score = models.PositiveSmallIntegerField(null=True, blank=True)
    rfm_class = models.CharField(max_length=20, choices=RFMClass.choices, blank=True)
    last_order_at = models.DateTimeField(null=True, blank=True)
    interval_days = models.FloatField(null=True, blank=True)
    lifecycle_stage = models.CharField(max_length=10, choices=LifecycleStage.choices)
    intent_layer = models.CharField(max_length=10, choices=IntentLayer.choices)
    #: The refresh that last changed this row (its values have held since).
    changed_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "rfm_class"]),
            models.Index(fields=["workspace", "lifecycle_stage"]),
            models.Index(fields=["workspace", "intent_layer"]),
        ]

    def recency_days_as_of(self, moment: datetime | None) -> int | None:
        """Whole days from the last order to ``moment`` (the refresh), for a contact with an
        order in the RFM window (its last order is then the window's last); None otherwise."""
        if moment is None or not self.frequency or self.last_order_at is None:
            return None
        return int((moment - self.last_order_at).total_seconds() // 86_400)


class LayerSnapshot(WorkspaceScoped):
    """A contact's lifecycle stage at the end of ``month`` (the first day of the
    workspace-local month, as of that month's last refresh) and of the months after it, up to
    the contact's next row: a contact's stage at a month's end is its latest row up to that
    month. So stage flows between months can be counted and opened.

    Only changes are kept: a refresh writes a row for its month where the stage differs from
    the contact's stage at the previous month's end. A monthly copy of every contact would
    rewrite a million rows on the first day of each month and add twelve million a year."""

    # Copied from ContactLayer by the refresh; no database FK constraints, as there, and no
    # index of either key alone: the unique constraint leads with the workspace, the
    # contact-month index with the contact (each index costs the first refresh of a million
    # contacts seconds).
    workspace = bulk_workspace_key()
    month = models.DateField()
    contact = models.ForeignKey(
        "contacts.Contact",
        on_delete=models.CASCADE,
        related_name="layer_snapshots",
        db_index=False,
        db_constraint=False,
    )
    lifecycle_stage = models.CharField(max_length=10, choices=LifecycleStage.choices)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "month", "contact"], name="layersnapshot_unique"
            )
        ]
        # A contact's rows in month order: its stage before a month, merges, deletions.
        indexes = [models.Index(fields=["contact", "month"], name="layersnapshot_contact_month")]
