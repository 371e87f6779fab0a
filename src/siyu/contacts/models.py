"""The customer pool: one Contact per person (OneID), their per-channel identities,
consent per channel, and the audit trail of merges."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from siyu.tenancy.models import WorkspaceScoped


class SourceChannel(models.TextChoices):
    STORE_QR = "store_qr", _("门店渠道活码")
    WECOM = "wecom", _("企业微信")
    OFFICIAL_ACCOUNT = "official_account", _("公众号")
    MINI_PROGRAM = "mini_program", _("小程序")
    DELIVERY_CARD = "delivery_card", _("外卖卡片")
    DOUYIN = "douyin", _("抖音")
    XIAOHONGSHU = "xiaohongshu", _("小红书")
    MEITUAN = "meituan", _("美团")
    REFERRAL = "referral", _("老带新")
    APP = "app", _("App")
    STORE_POS = "store_pos", _("门店收银")
    ADS = "ads", _("广告")
    IMPORT = "import", _("导入")
    OTHER = "other", _("其他")


class IdentityKind(models.TextChoices):
    PHONE = "phone", _("手机号")
    EMAIL = "email", _("邮箱")
    MEMBER_NO = "member_no", _("会员号")
    WECHAT_UNIONID = "wechat_unionid", _("微信 UnionID")
    WECHAT_OPENID = "wechat_openid", _("微信 OpenID")
    WECOM_EXTERNAL_USERID = "wecom_external_userid", _("企微外部联系人")
    APP_USER_ID = "app_user_id", _("App 用户")
    DOUYIN_ID = "douyin_id", _("抖音 ID")
    XIAOHONGSHU_ID = "xiaohongshu_id", _("小红书 ID")
    MEITUAN_ID = "meituan_id", _("美团 ID")


#: Kinds whose value is personal data: stored encrypted, looked up by keyed hash, shown masked.
SENSITIVE_KINDS = frozenset({IdentityKind.PHONE, IdentityKind.EMAIL})
#: Kinds that only make sense with the app id they were issued for.
APP_SCOPED_KINDS = frozenset({IdentityKind.WECHAT_OPENID})


class ConsentChannel(models.TextChoices):
    SMS = "sms", _("短信")
    EMAIL = "email", _("邮件")
    WECOM = "wecom", _("企业微信")
    OFFICIAL_ACCOUNT = "official_account", _("公众号")
    MINI_PROGRAM = "mini_program", _("小程序订阅消息")
    PHONE_CALL = "phone_call", _("电话")
    APP_PUSH = "app_push", _("App 推送")


class ConsentStatus(models.TextChoices):
    GRANTED = "granted", _("已同意")
    OPTED_OUT = "opted_out", _("已退订")
    UNKNOWN = "unknown", _("未知")


class Contact(WorkspaceScoped):
    name = models.CharField(max_length=100, blank=True)
    nickname = models.CharField(max_length=100, blank=True)
    gender = models.CharField(max_length=1, blank=True, choices=[("m", _("男")), ("f", _("女"))])
    birthday = models.DateField(null=True, blank=True)
    city = models.CharField(max_length=64, blank=True)
    # Primary phone: encrypted at rest, searchable by keyed hash or by masked form.
    phone_enc = models.TextField(blank=True)
    phone_hash = models.CharField(max_length=64, blank=True)
    phone_masked = models.CharField(max_length=20, blank=True)
    member_no = models.CharField(max_length=64, blank=True)
    source_channel = models.CharField(
        max_length=20, choices=SourceChannel.choices, default=SourceChannel.OTHER
    )
    first_touch_campaign = models.CharField(max_length=100, blank=True)
    first_touch_state = models.CharField(
        max_length=100, blank=True, help_text="channel QR code state"
    )
    first_touch_store = models.ForeignKey(
        "commerce.Store", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_touch_staff = models.ForeignKey(
        "commerce.Staff", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    store = models.ForeignKey(
        "commerce.Store",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="contacts",
        help_text="the store that owns this contact; staff see only their store's contacts",
    )
    owner_staff = models.ForeignKey(
        "commerce.Staff", null=True, blank=True, on_delete=models.SET_NULL, related_name="contacts"
    )
    referred_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="referrals"
    )
    attributes = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "first_seen_at"]),
            models.Index(fields=["workspace", "phone_hash"]),
            models.Index(fields=["workspace", "member_no"]),
            models.Index(fields=["workspace", "store"]),
            models.Index(fields=["workspace", "source_channel"]),
        ]

    def __str__(self) -> str:
        return self.name or self.nickname or f"#{self.pk}"

    @property
    def display_name(self) -> str:
        return self.name or self.nickname or f"#{self.pk}"


class Identity(WorkspaceScoped):
    """One id under which a channel knows the contact. (workspace, kind, app_id, value_hash) is
    unique, so the same id can never belong to two contacts: that is what OneID merges on."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=32, choices=IdentityKind.choices)
    app_id = models.CharField(max_length=64, blank=True, default="")
    value_hash = models.CharField(max_length=64)
    value = models.TextField(help_text="plain id, or ciphertext for sensitive kinds")
    display = models.CharField(max_length=128, help_text="safe to show: masked for sensitive kinds")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # value_hash leads so that the batch lookup (workspace, value_hash IN ...) uses this index.
            models.UniqueConstraint(
                fields=["workspace", "value_hash", "kind", "app_id"], name="identity_unique"
            ),
        ]
        indexes = [models.Index(fields=["contact"])]


class Consent(WorkspaceScoped):
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(max_length=20, choices=ConsentChannel.choices)
    status = models.CharField(max_length=12, choices=ConsentStatus.choices)
    source = models.CharField(max_length=64, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["contact", "channel"], name="consent_unique_channel")
        ]
        indexes = [models.Index(fields=["workspace", "channel", "status"])]


class ContactMerge(WorkspaceScoped):
    """What was merged into what and why, so a merge can be audited (and, by hand, undone)."""

    survivor = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="merges")
    merged_contact_id = models.BigIntegerField()
    merged_snapshot = models.JSONField(
        help_text="the merged contact's fields and identities before the merge"
    )
    moved = models.JSONField(default=dict, help_text="rows moved per table")
    reason = models.CharField(max_length=200)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["workspace", "merged_contact_id"])]
        constraints = [
            models.CheckConstraint(condition=~Q(merged_contact_id=0), name="merge_has_source")
        ]
