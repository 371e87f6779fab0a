"""The outbox: every outbound message is one row that walks queued → sending → sent →
delivered → read → clicked, or ends failed or suppressed with the reason. Channels, templates
and each workspace's guardrails (frequency caps, quiet hours, a global daily cap) live here too.
"""

from __future__ import annotations

from datetime import time

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from siyu.contacts.models import Contact
from siyu.tenancy.models import WorkspaceScoped


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


class MessageTemplate(WorkspaceScoped):
    """Subject and body with ``{{variable}}`` placeholders, checked against the known variables
    when saved so that a typo fails in the editor rather than in a customer's inbox."""

    name = models.CharField(max_length=100)
    channel_kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="template_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


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
    left in ``sending`` past its lease belongs to a dead worker and is claimed again."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    channel = models.ForeignKey(ChannelConfig, on_delete=models.PROTECT, related_name="messages")
    channel_kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    template = models.ForeignKey(
        MessageTemplate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
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
            # The dispatcher's claim: due queued rows, and sending rows whose lease ran out.
            models.Index(fields=["status", "next_attempt_at"], name="message_due"),
            models.Index(fields=["status", "locked_until"], name="message_lease"),
            models.Index(
                fields=["workspace", "contact", "channel_kind", "scheduled_at"], name="message_cap"
            ),
            models.Index(fields=["workspace", "scheduled_at"], name="message_day"),
            models.Index(fields=["workspace", "status", "id"], name="message_list"),
            models.Index(fields=["workspace", "provider_message_id"], name="message_provider_id"),
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
