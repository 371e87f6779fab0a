"""Stores, staff (导购), products, orders with items, and refunds. Money is exact Decimal (fen)."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from siyu.tenancy.models import WorkspaceScoped, bulk_workspace_key

MONEY = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal("0.00")
HALF_FEN = Decimal("0.005")


class Store(WorkspaceScoped):
    code = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    city = models.CharField(max_length=64, blank=True)
    region = models.CharField(max_length=64, blank=True)
    opened_at = models.DateField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "code"], name="store_unique_code")
        ]

    def __str__(self) -> str:
        return self.name


class Staff(WorkspaceScoped):
    """A store employee who owns contacts; ``user`` links a console login, which then sees only
    this store's contacts. ``is_manager`` marks the store manager (店长): in the task inbox they
    see every task of their store, colleagues' overdue ones included, and may reassign them."""

    code = models.CharField(max_length=64)
    name = models.CharField(max_length=100)
    store = models.ForeignKey(
        Store, null=True, blank=True, on_delete=models.SET_NULL, related_name="staff"
    )
    wecom_userid = models.CharField(max_length=64, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="staff_profiles",
    )
    is_manager = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "code"], name="staff_unique_code"),
            models.UniqueConstraint(
                fields=["workspace", "user"],
                condition=Q(user__isnull=False),
                name="staff_unique_user",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Product(WorkspaceScoped):
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    category = models.CharField(max_length=64, blank=True)
    price = models.DecimalField(**MONEY)
    cost = models.DecimalField(**MONEY, null=True, blank=True)
    is_new = models.BooleanField(default=False)
    launch_date = models.DateField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "sku"], name="product_unique_sku"),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_not_negative"),
            models.CheckConstraint(
                condition=Q(cost__isnull=True) | Q(cost__gte=0), name="product_cost_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class OrderChannel(models.TextChoices):
    STORE = "store", _("门店")
    MINI_PROGRAM = "mini_program", _("小程序")
    DELIVERY = "delivery", _("外卖/到家")
    THIRD_PARTY = "third_party", _("第三方平台")
    APP = "app", _("App")
    OTHER = "other", _("其他")


class OrderStatus(models.TextChoices):
    PAID = "paid", _("已支付")
    PARTIALLY_REFUNDED = "partially_refunded", _("部分退款")
    REFUNDED = "refunded", _("已退款")


class Order(WorkspaceScoped):
    """``amount`` is what the customer paid: ``gross_amount - discount_amount``.

    Every index costs each imported row a B-tree insert, so there is none that another already
    serves: a contact's and a store's orders are found by contact / store id (which imply the
    workspace), and the workspace's own key carries no database constraint (a per-row check at
    commit on the one workspace row; workspaces are deleted through Django, which cascades). The
    contact keeps its constraint: it is what stops an import racing a merge from leaving orders
    of a contact that no longer exists."""

    workspace = bulk_workspace_key()
    order_no = models.CharField(max_length=64)
    contact = models.ForeignKey(
        "contacts.Contact", on_delete=models.CASCADE, related_name="orders", db_index=False
    )
    channel = models.CharField(max_length=16, choices=OrderChannel.choices)
    platform = models.CharField(max_length=32, blank=True)
    store = models.ForeignKey(
        Store,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
        db_index=False,
    )
    staff = models.ForeignKey(
        Staff, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    paid_at = models.DateTimeField()
    gross_amount = models.DecimalField(**MONEY)
    discount_amount = models.DecimalField(**MONEY, default=ZERO)
    amount = models.DecimalField(**MONEY)
    refunded_amount = models.DecimalField(**MONEY, default=ZERO)
    status = models.CharField(max_length=20, choices=OrderStatus.choices, default=OrderStatus.PAID)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "order_no"], name="order_unique_no"),
            models.CheckConstraint(
                condition=Q(discount_amount__gte=0), name="order_discount_not_negative"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="order_amount_not_negative"),
            # Within half a fen rather than equal: SQLite keeps decimals as floating point, where
            # 19.90 - 10.00 is not exactly 9.90. On PostgreSQL (exact numeric) this is equality.
            models.CheckConstraint(
                condition=Q(amount__gte=F("gross_amount") - F("discount_amount") - HALF_FEN)
                & Q(amount__lte=F("gross_amount") - F("discount_amount") + HALF_FEN),
                name="order_amount_is_gross_less_discount",
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0) & Q(refunded_amount__lte=F("amount")),
                name="order_refund_within_amount",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "paid_at"]),
            models.Index(fields=["contact", "paid_at"], name="order_contact_time"),
            models.Index(fields=["store", "paid_at"], name="order_store_time"),
        ]


class OrderItem(WorkspaceScoped):
    # As on Order: (workspace, sku) serves the workspace, and its key has no database check.
    workspace = bulk_workspace_key()
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(
        Product, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True)
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(**MONEY)
    amount = models.DecimalField(**MONEY)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="item_quantity_positive"),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0) & Q(amount__gte=0), name="item_money_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["workspace", "sku"])]


class Refund(WorkspaceScoped):
    refund_no = models.CharField(max_length=64)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="refunds")
    amount = models.DecimalField(**MONEY)
    refunded_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "refund_no"], name="refund_unique_no"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive"),
        ]


class ChannelSpend(WorkspaceScoped):
    """What acquiring contacts through a channel cost in a month: the denominator of CAC and ROI."""

    channel = models.CharField(max_length=20, help_text="a contacts SourceChannel value")
    campaign = models.CharField(max_length=100, blank=True, default="")
    month = models.DateField(help_text="first day of the month")
    amount = models.DecimalField(**MONEY)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "channel", "campaign", "month"], name="spend_unique_month"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="spend_not_negative"),
        ]
