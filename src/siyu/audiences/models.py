"""Tags (grouped, set by hand, in bulk or by a rule) and segments (人群包): a saved rule whose
membership is refreshed in SQL, with who entered and left at each refresh and the size by day."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.tenancy.models import WorkspaceScoped


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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="segment_unique_name")
        ]

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
            models.Index(fields=["refresh", "change"]),
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
