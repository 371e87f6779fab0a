"""The outbox: every outbound message is one row that walks queued → sending → sent →
delivered → read → clicked, or ends failed or suppressed with the reason. Channels, templates
and each workspace's guardrails (frequency caps, quiet hours, a global daily cap) live here too.
"""

from __future__ import annotations

from datetime import time
from functools import cache

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from siyu.audiences.models import LifecycleStage
from siyu.commerce.models import Product, Store
from siyu.contacts.models import Contact
from siyu.tenancy.models import WorkspaceScoped, bulk_workspace_key


class ChannelKind(models.TextChoices):
    CONSOLE = "console", _("控制台（开发）")
    WEBHOOK = "webhook", _("Webhook")
    EMAIL = "email", _("邮件")
    SMS = "sms", _("短信")


class ChannelConfig(WorkspaceScoped):
    """One configured way out: an SMS gateway account, an SMTP relay, a webhook endpoint.
    ``settings`` holds what the adapter needs (url, secret, SMTP host, gateway field names);
    ``consent_channel`` names the contact consent that governs it (blank: none does, as for the
    development console or an internal webhook)."""

    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    name = models.CharField(max_length=100)
    settings = models.JSONField(default=dict, blank=True)
    consent_channel = models.CharField(max_length=20, blank=True)
    require_consent = models.BooleanField(
        default=False,
        help_text="send only to contacts who granted consent, not merely did not opt out",
    )
    rate_per_second = models.FloatField(default=10.0)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="channel_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class TemplateScene(models.TextChoices):
    """The usual occasions of a private-domain routine; a template may also name its own."""

    WELCOME = "welcome", _("欢迎")
    MORNING = "morning", _("早安")
    GOODNIGHT = "goodnight", _("晚安")
    MEMBER_DAY = "member_day", _("会员日")
    REPURCHASE = "repurchase", _("复购提醒")
    BIRTHDAY = "birthday", _("生日")
    WINBACK = "winback", _("流失召回")
    NEW_PRODUCT = "new_product", _("上新")


class TemplateStatus(models.TextChoices):
    DRAFT = "draft", _("草稿")
    PUBLISHED = "published", _("已发布")


@cache
def media_storage() -> FileSystemStorage:
    """Uploaded template images live in the data dir's ``media`` folder, next to the embedded
    database: one place to back up. They are served by the console (login and workspace
    checked), never from a public folder."""
    return FileSystemStorage(location=settings.DATA_DIR / "media")


def _template_image_path(instance: MessageTemplate, filename: str) -> str:
    return f"templates/{instance.workspace_id}/{filename}"


class MessageTemplate(WorkspaceScoped):
    """One item of the content library (内容库): subject and body with ``{{variable}}``
    placeholders, checked when saved so that a typo fails in the editor rather than in a
    customer's inbox, and the attachments that travel with it (a product card, a mini-program
    page, an image).

    ``store`` empty means an HQ item (made by owners and operators, for every store); a store's
    own item names the store. Stores see published HQ items and their own, and never edit HQ's:
    HQ prepares the material, store managers post it."""

    name = models.CharField(max_length=100)
    channel_kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    scene = models.CharField(
        max_length=32, blank=True, help_text="a TemplateScene value or the brand's own word"
    )
    lifecycle_stage = models.CharField(max_length=16, choices=LifecycleStage.choices, blank=True)
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    miniprogram_appid = models.CharField(max_length=64, blank=True)
    miniprogram_path = models.CharField(max_length=500, blank=True)
    image = models.FileField(
        storage=media_storage, upload_to=_template_image_path, max_length=300, blank=True
    )
    image_url = models.URLField(max_length=500, blank=True)
    status = models.CharField(
        max_length=12, choices=TemplateStatus.choices, default=TemplateStatus.DRAFT
    )
    store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="template_unique_name")
        ]
        indexes = [
            models.Index(fields=["workspace", "status", "store"], name="template_library"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def scene_label(self) -> str:
        return str(dict(TemplateScene.choices).get(self.scene, self.scene))

    @property
    def is_hq(self) -> bool:
        return self.store_id is None


class MessageStatus(models.TextChoices):
    QUEUED = "queued", _("排队中")
    SENDING = "sending", _("发送中")
    SENT = "sent", _("已发送")
    DELIVERED = "delivered", _("已送达")
    READ = "read", _("已读")
    CLICKED = "clicked", _("已点击")
    FAILED = "failed", _("失败")
    SUPPRESSED = "suppressed", _("已拦截")


class SuppressReason(models.TextChoices):
    OPTED_OUT = "opted_out", _("已退订")
    NO_CONSENT = "no_consent", _("未授权")
    NO_ADDRESS = "no_address", _("无联系方式")
    FREQUENCY_CAP = "frequency_cap", _("超出频次上限")
    GLOBAL_DAILY_CAP = "global_daily_cap", _("超出每日总量")
    CHANNEL_DISABLED = "channel_disabled", _("渠道已停用")


#: Statuses that count against caps: everything on its way or already out.
COUNTED_STATUSES = (
    MessageStatus.QUEUED,
    MessageStatus.SENDING,
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
    MessageStatus.CLICKED,
)
#: Statuses of a message that left siyu.
OUT_STATUSES = (
    MessageStatus.SENT,
    MessageStatus.DELIVERED,
    MessageStatus.READ,
    MessageStatus.CLICKED,
)


class Message(WorkspaceScoped):
    """One outbound message. ``idempotency_key`` is unique per workspace, so re-queueing a
    campaign is a no-op; it also travels to the provider so that a resend after a crash is
    recognised there. ``scheduled_at`` is when it is meant to go out (after quiet hours): the
    caps count messages by that day. ``locked_by``/``locked_until`` are a claim's lease: a row
    left in ``sending`` past its lease belongs to a dead worker and is claimed again.

    Built for a million rows per campaign: the foreign keys carry no database constraint (a
    deferred check per key per row cost more than the insert itself; the outbox is written only
    by ``messages_queue``, which takes its contacts from the contacts table, and deletions still
    cascade through Django), and only the indexes that a query needs, partial where the rows
    they serve are few (due, leased, with a provider id, of a journey)."""

    workspace = bulk_workspace_key()
    contact = models.ForeignKey(
        Contact,
        on_delete=models.CASCADE,
        related_name="messages",
        db_constraint=False,
        db_index=False,  # message_contact_time leads with it
    )
    channel = models.ForeignKey(
        ChannelConfig,
        on_delete=models.PROTECT,
        related_name="messages",
        db_constraint=False,
        db_index=False,
    )
    channel_kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    template = models.ForeignKey(
        MessageTemplate,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_constraint=False,
        db_index=False,
    )
    idempotency_key = models.CharField(max_length=200)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    status = models.CharField(
        max_length=12, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    suppress_reason = models.CharField(max_length=20, choices=SuppressReason.choices, blank=True)
    daily_cap = models.PositiveIntegerField(null=True, blank=True, help_text="per-journey override")
    weekly_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text="per-journey override"
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    scheduled_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    provider_message_id = models.CharField(max_length=200, blank=True)
    locked_by = models.CharField(max_length=100, blank=True)
    locked_until = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    # Which journey and step queued it, for per-step measurement. A plain number, not a foreign
    # key: messaging sits below journeys and must not know its models.
    journey_id = models.PositiveBigIntegerField(null=True, blank=True)
    journey_step = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"], name="message_unique_key"
            ),
            models.CheckConstraint(
                condition=Q(status="suppressed", suppress_reason__gt="") | ~Q(status="suppressed"),
                name="message_suppressed_has_reason",
            ),
        ]
        indexes = [
            # The dispatcher's claim: due queued rows in order, and sending rows whose lease ran
            # out. Partial, so sent and suppressed rows cost these indexes nothing.
            models.Index(
                fields=["next_attempt_at", "id"],
                name="message_due",
                condition=Q(status="queued"),
            ),
            models.Index(
                fields=["locked_until"], name="message_lease", condition=Q(status="sending")
            ),
            # The global cap's day and the outbox's date filter.
            models.Index(fields=["workspace", "scheduled_at"], name="message_day"),
            # One contact's messages in a cap window (queueing looks up each contact it queues
            # for, so the cost follows the batch, not the week's volume), merges and the
            # contact page.
            models.Index(fields=["contact", "scheduled_at"], name="message_contact_time"),
            # The outbox list and its counts per status.
            models.Index(fields=["workspace", "status", "id"], name="message_list"),
            models.Index(
                fields=["workspace", "provider_message_id"],
                name="message_provider_id",
                condition=~Q(provider_message_id=""),
            ),
            models.Index(
                fields=["workspace", "journey_id", "journey_step", "status"],
                name="message_journey",
                condition=Q(journey_id__isnull=False),
            ),
        ]


def default_daily_caps() -> dict[str, int]:
    return {ChannelKind.SMS: 1, ChannelKind.EMAIL: 1}


def default_weekly_caps() -> dict[str, int]:
    return {ChannelKind.SMS: 3, ChannelKind.EMAIL: 3}


class MessageCapSettings(WorkspaceScoped):
    """A workspace's guardrails. Caps are per contact and channel kind ({"sms": 1}); a kind not
    listed is uncapped; the week is the last seven local days. Quiet hours are local times in the workspace's zone; start == end turns
    them off. Without a row the defaults below apply."""

    daily_caps = models.JSONField(default=default_daily_caps, blank=True)
    weekly_caps = models.JSONField(default=default_weekly_caps, blank=True)
    quiet_start = models.TimeField(default=time(21, 0))
    quiet_end = models.TimeField(default=time(8, 0))
    global_daily_cap = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace"], name="capsettings_one_per_workspace")
        ]
