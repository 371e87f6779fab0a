"""Behavioural events, deduplicated by the caller's ``event_id`` within a workspace."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from siyu.tenancy.models import WorkspaceScoped, bulk_workspace_key


class EventType(models.TextChoices):
    PAGE_VIEW = "page_view", _("浏览页面")
    PRODUCT_VIEW = "product_view", _("浏览商品")
    ADD_TO_CART = "add_to_cart", _("加购")
    SHARE = "share", _("分享")
    INVITE = "invite", _("邀请")
    JOIN_GROUP = "join_group", _("入群")
    LEAVE_GROUP = "leave_group", _("退群")
    MESSAGE_READ = "message_read", _("阅读消息")
    MESSAGE_CLICK = "message_click", _("点击消息")
    COUPON_CLAIM = "coupon_claim", _("领券")
    COUPON_REDEEM = "coupon_redeem", _("核销券")
    CONTENT_VIEW = "content_view", _("内容浏览")
    CONTACT_ADDED = "contact_added", _("添加好友")
    FOLLOW = "follow", _("关注公众号")
    UNFOLLOW = "unfollow", _("取消关注")
    SIGN_UP = "sign_up", _("注册会员")
    SEARCH = "search", _("搜索")
    CUSTOM = "custom", _("自定义")


class Event(WorkspaceScoped):
    # Indexes as lean as on Order (see there): the workspace is served by the unique key and the
    # type index and has no database check; a contact's events are found by contact id.
    workspace = bulk_workspace_key()
    event_id = models.CharField(max_length=64)
    contact = models.ForeignKey("contacts.Contact", on_delete=models.CASCADE, related_name="events", db_index=False)
    type = models.CharField(max_length=32, choices=EventType.choices)
    name = models.CharField(max_length=64, blank=True, help_text="for custom events")
    channel = models.CharField(max_length=32, blank=True)
    occurred_at = models.DateTimeField()
    duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "event_id"], name="event_unique_id")]
        indexes = [
            models.Index(fields=["workspace", "type", "occurred_at"]),
            models.Index(fields=["contact", "occurred_at"], name="event_contact_time"),
        ]
