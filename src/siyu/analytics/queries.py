"""Workspace metrics for the console dashboard.

Every number is aggregated in SQL and scoped by the workspace (and, for a staff member, by their
store's contacts, the same rule the contact list applies). Days are the workspace's local days, so
a 23:30 order in Shanghai counts on the Shanghai date, not the UTC one. Python only shapes the few
aggregated rows into chart series.

The home dashboard (``home_dashboard``) reads the daily rollups (``DailyRollup``) for every
completed local day they cover and the raw tables only for the rest: today, any day the rollups
have not reached yet, and everything when a workspace was never backfilled. The additive figures
(new contacts by channel, orders, net revenue) are sums of days, so a 30-day card is the sum of
its 30 daily points. Distinct purchasers and repeat purchasers over a period are not additive over
days; they, and the pool size, come from the health snapshots the 15-minute job writes
(``HealthSnapshot``, at most 30 minutes old for the running period) and from the raw tables when
there is none (or for a staff member's store). A rollup day shows
the figures as of its last rebuild (every 15 minutes for the last 3 days, and refunded days): a
contact merged away or moved to another store later still counts where it did on older days.
On SQLite the rollup path is exact to the fen where the raw ``SUM`` of decimals is a float.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count, DecimalField, Max, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from siyu.analytics.models import DailyRollup, HealthSnapshot
from siyu.commerce import queries as commerce_queries
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


#: A snapshot of a period that has not ended yet is read while younger than this (the job that
#: writes it runs every 15 minutes); older, the figures are computed on the spot.
SNAPSHOT_MAX_AGE = timedelta(minutes=30)


def snapshot_final(snapshot: HealthSnapshot, *, workspace: Workspace) -> bool:
    """Computed after its period's last local day ended: it will not change any more."""
    return snapshot.computed_at >= days_window(workspace, snapshot.day, snapshot.day).end


def snapshot_usable(
    snapshot: HealthSnapshot, *, workspace: Workspace, now: datetime | None = None
) -> bool:
    """Final, or fresh enough."""
    now = now or timezone.now()
    return (
        snapshot_final(snapshot, workspace=workspace)
        or now - snapshot.computed_at <= SNAPSHOT_MAX_AGE
    )


def health_snapshot_get(
    *, workspace: Workspace, day: date, days: int, now: datetime | None = None
) -> HealthSnapshot | None:
    """The usable snapshot of the ``days`` local days ending on ``day``, if any."""
    snapshot = HealthSnapshot.objects.filter(workspace=workspace, day=day, days=days).first()
    if snapshot is None or not snapshot_usable(snapshot, workspace=workspace, now=now):
        return None
    return snapshot


@dataclass(frozen=True)
class HomeDashboard:
    pool_size: int
    current: PeriodKpis  # the last 30 local days, today included
    previous: PeriodKpis  # the 30 days before them
    series: DailySeries  # the last 90 local days
    purchasers: int  # over all time
    repeaters: int  # over all time: purchasers with two or more orders
    rollups_through: date | None  # the last day read from the rollups; None: all raw
    snapshot_at: datetime | None = None  # when the distinct counts' snapshot was computed


def rollups_last_day(*, workspace: Workspace) -> date | None:
    """The latest local day the workspace's rollups hold a row for (days without activity have
    none), or None when never built."""
    return DailyRollup.objects.filter(workspace=workspace).aggregate(d=Max("day"))["d"]


def _rollups(workspace: Workspace, membership: Membership | None) -> QuerySet[DailyRollup]:
    """Rollup rows a viewer may see: a staff member's are those of their store's contacts, the
    same rule ``contacts_visible`` applies (rollups are grouped by the contact's owning store)."""
    qs = DailyRollup.objects.filter(workspace=workspace)
    if membership is not None and membership.role == Role.STAFF:
        store_id = commerce_queries.store_id_for_user(workspace=workspace, user=membership.user)
        qs = qs.filter(store_id=store_id) if store_id else qs.none()
    return qs


def _rollup_series(
    workspace: Workspace, membership: Membership | None, first_day: date, last_day: date
) -> DailySeries:
    """``daily_series`` summed from the rollup rows: one ``GROUP BY day, source_channel``."""
    days = [first_day + timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    index = {d: i for i, d in enumerate(days)}
    by_channel: dict[str, list[int]] = {}
    orders, revenue = [0] * len(days), [ZERO] * len(days)
    rows = (
        _rollups(workspace, membership)
        .filter(day__gte=first_day, day__lte=last_day)
        .values("day", "source_channel")
        .annotate(n=Sum("new_contacts"), o=Sum("orders"), gmv=Sum("gmv"), refunds=Sum("refunds"))
        .order_by("day", "source_channel")
    )
    for row in rows:
        i = index[row["day"]]
        if row["n"]:
            by_channel.setdefault(row["source_channel"], [0] * len(days))[i] += row["n"]
        orders[i] += row["o"] or 0
        revenue[i] += (row["gmv"] or ZERO) - (row["refunds"] or ZERO)
    return DailySeries(
        days=days,
        new_contacts_by_channel=by_channel,
        orders=orders,
        revenue=[r.quantize(Decimal("0.01")) for r in revenue],
    )


def _concat(head: DailySeries, tail: DailySeries) -> DailySeries:
    channels = sorted(set(head.new_contacts_by_channel) | set(tail.new_contacts_by_channel))
    return DailySeries(
        days=head.days + tail.days,
        new_contacts_by_channel={
            ch: head.new_contacts_by_channel.get(ch, [0] * len(head.days))
            + tail.new_contacts_by_channel.get(ch, [0] * len(tail.days))
            for ch in channels
        },
        orders=head.orders + tail.orders,
        revenue=head.revenue + tail.revenue,
    )


def _period(
    workspace: Workspace,
    membership: Membership | None,
    series: DailySeries,
    first_day: date,
    last_day: date,
    snapshot: HealthSnapshot | None = None,
) -> PeriodKpis:
    """A period's additive figures summed from the daily series; purchasers from the period's
    health snapshot when there is a usable one, else from raw orders."""
    picked = [i for i, d in enumerate(series.days) if first_day <= d <= last_day]
    if snapshot is not None:
        purchasers, repeaters = snapshot.period_purchasers, snapshot.period_repeaters
    else:
        purchasers, repeaters = repeat_purchase(
            workspace=workspace,
            membership=membership,
            window=days_window(workspace, first_day, last_day),
        )
    return PeriodKpis(
        new_contacts=sum(
            counts[i] for counts in series.new_contacts_by_channel.values() for i in picked
        ),
        purchasers=purchasers,
        orders=sum(series.orders[i] for i in picked),
        revenue=sum((series.revenue[i] for i in picked), ZERO),
        repeat_purchasers=repeaters,
    )


def home_dashboard(
    *,
    workspace: Workspace,
    membership: Membership | None = None,
    today: date,
    now: datetime | None = None,
) -> HomeDashboard:
    """Everything the home page shows: 90 daily points, 30-vs-30 cards and the pool cards.

    The distinct counts (pool size, purchasers, repeat purchasers) come from the 30-day health
    snapshots of the 15-minute job when usable (a whole workspace; at most 30 minutes old for
    the period still running), else from the raw tables."""
    first_day = today - timedelta(days=89)
    last_rollup = rollups_last_day(workspace=workspace)
    # Rollups answer completed days they cover; today is still changing, so it reads raw rows.
    through = min(last_rollup, today - timedelta(days=1)) if last_rollup else None
    if through is None or through < first_day:
        through = None
        series = daily_series(
            workspace=workspace, membership=membership, first_day=first_day, last_day=today
        )
    else:
        series = _concat(
            _rollup_series(workspace, membership, first_day, through),
            daily_series(
                workspace=workspace,
                membership=membership,
                first_day=through + timedelta(days=1),
                last_day=today,
            ),
        )
    current = previous = None
    if membership is None or membership.role != Role.STAFF:
        current = health_snapshot_get(workspace=workspace, day=today, days=30, now=now)
        previous = health_snapshot_get(
            workspace=workspace, day=today - timedelta(days=30), days=30, now=now
        )
    if current is not None:
        pool, purchasers, repeaters = (
            current.pool_size,
            current.purchasers_ever,
            current.repeaters_ever,
        )
    else:
        pool = pool_size(workspace=workspace, membership=membership)
        purchasers, repeaters = repeat_purchase(workspace=workspace, membership=membership)
    return HomeDashboard(
        pool_size=pool,
        current=_period(workspace, membership, series, today - timedelta(days=29), today, current),
        previous=_period(
            workspace,
            membership,
            series,
            today - timedelta(days=59),
            today - timedelta(days=30),
            previous,
        ),
        series=series,
        purchasers=purchasers,
        repeaters=repeaters,
        rollups_through=through,
        snapshot_at=current.computed_at if current is not None else None,
    )
