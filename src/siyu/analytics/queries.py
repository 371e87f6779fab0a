"""Workspace metrics for the console dashboard.

Every number is aggregated in SQL and scoped by the workspace (and, for a staff member, by their
store's contacts, the same rule the contact list applies). Days are the workspace's local days, so
a 23:30 order in Shanghai counts on the Shanghai date, not the UTC one. Python only shapes the few
aggregated rows into chart series.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count, DecimalField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from siyu.commerce.models import Order
from siyu.contacts.models import Contact
from siyu.contacts.queries import contacts_visible
from siyu.tenancy.models import Membership, Role, Workspace

ZERO = Decimal("0.00")
_MONEY = DecimalField(max_digits=16, decimal_places=2)


@dataclass(frozen=True)
class Window:
    """Half-open [start, end) in aware datetimes, built from whole local days."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class PeriodKpis:
    new_contacts: int
    purchasers: int
    orders: int
    revenue: Decimal
    repeat_purchasers: int

    @property
    def aov(self) -> Decimal | None:
        """Average order value: net revenue per order."""
        return (self.revenue / self.orders).quantize(Decimal("0.01")) if self.orders else None

    @property
    def repeat_rate(self) -> float | None:
        return self.repeat_purchasers / self.purchasers if self.purchasers else None


@dataclass(frozen=True)
class DailySeries:
    days: list[date]
    new_contacts_by_channel: dict[str, list[int]]
    orders: list[int]
    revenue: list[Decimal]


def workspace_today(workspace: Workspace, now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(ZoneInfo(workspace.time_zone)).date()


def days_window(workspace: Workspace, first_day: date, last_day: date) -> Window:
    """Local midnight of ``first_day`` up to local midnight after ``last_day``."""
    tz = ZoneInfo(workspace.time_zone)
    return Window(
        start=datetime.combine(first_day, time.min, tzinfo=tz),
        end=datetime.combine(last_day + timedelta(days=1), time.min, tzinfo=tz),
    )


def _contacts(workspace: Workspace, membership: Membership | None) -> QuerySet[Contact]:
    return contacts_visible(workspace=workspace, membership=membership)


def _orders(workspace: Workspace, membership: Membership | None) -> QuerySet[Order]:
    qs = Order.objects.filter(workspace=workspace)
    if membership is not None and membership.role == Role.STAFF:
        # Orders count for a staff member when the buyer is one of the contacts they may see.
        qs = qs.filter(contact_id__in=_contacts(workspace, membership).values("id"))
    return qs


def _net_revenue() -> Coalesce:
    """Paid amount less refunds: what the brand kept."""
    return Coalesce(Sum("amount") - Sum("refunded_amount"), Value(ZERO), output_field=_MONEY)


def pool_size(*, workspace: Workspace, membership: Membership | None = None) -> int:
    return _contacts(workspace, membership).count()


def repeat_purchase(
    *, workspace: Workspace, membership: Membership | None = None, window: Window | None = None
) -> tuple[int, int]:
    """(purchasers, purchasers with two or more orders) in the window, or over all time."""
    orders = _orders(workspace, membership)
    if window is not None:
        orders = orders.filter(paid_at__gte=window.start, paid_at__lt=window.end)
    per_contact = orders.values("contact_id").annotate(n=Count("id"))
    row = per_contact.aggregate(
        purchasers=Count("contact_id"), repeaters=Count("contact_id", filter=Q(n__gte=2))
    )
    return row["purchasers"], row["repeaters"]


def period_kpis(
    *, workspace: Workspace, membership: Membership | None = None, window: Window
) -> PeriodKpis:
    in_window = Q(paid_at__gte=window.start, paid_at__lt=window.end)
    orders = (
        _orders(workspace, membership)
        .filter(in_window)
        .aggregate(
            orders=Count("id"),
            purchasers=Count("contact_id", distinct=True),
            revenue=_net_revenue(),
        )
    )
    new_contacts = (
        _contacts(workspace, membership)
        .filter(first_seen_at__gte=window.start, first_seen_at__lt=window.end)
        .count()
    )
    _, repeaters = repeat_purchase(workspace=workspace, membership=membership, window=window)
    return PeriodKpis(
        new_contacts=new_contacts,
        purchasers=orders["purchasers"],
        orders=orders["orders"],
        revenue=orders["revenue"],
        repeat_purchasers=repeaters,
    )


def daily_series(
    *, workspace: Workspace, membership: Membership | None = None, first_day: date, last_day: date
) -> DailySeries:
    """New contacts per local day and source channel, orders and net revenue per local day."""
    tz = ZoneInfo(workspace.time_zone)
    window = days_window(workspace, first_day, last_day)
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    index = {d: i for i, d in enumerate(days)}

    contact_rows = (
        _contacts(workspace, membership)
        .filter(first_seen_at__gte=window.start, first_seen_at__lt=window.end)
        .annotate(day=TruncDate("first_seen_at", tzinfo=tz))
        .values("day", "source_channel")
        .annotate(n=Count("id"))
        .order_by("source_channel", "day")
    )
    by_channel: dict[str, list[int]] = {}
    for row in contact_rows:
        by_channel.setdefault(row["source_channel"], [0] * len(days))[index[row["day"]]] = row["n"]

    order_rows = (
        _orders(workspace, membership)
        .filter(paid_at__gte=window.start, paid_at__lt=window.end)
        .annotate(day=TruncDate("paid_at", tzinfo=tz))
        .values("day")
        .annotate(n=Count("id"), revenue=_net_revenue())
        .order_by("day")
    )
    orders, revenue = [0] * len(days), [ZERO] * len(days)
    for row in order_rows:
        orders[index[row["day"]]], revenue[index[row["day"]]] = row["n"], row["revenue"]
    return DailySeries(
        days=days, new_contacts_by_channel=by_channel, orders=orders, revenue=revenue
    )
