"""Writes of the analytics app: the daily rollups and the health snapshots. A day range is rebuilt by deleting its rows and
inserting the rollup expression's result with one ``INSERT … SELECT`` per (≤31-day) chunk, in one
transaction, so a reader sees either the old or the new figures of a day, never a mix."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Min
from django.db.models.functions import TruncDate
from django.utils import timezone

from siyu.analytics import health, rollups
from siyu.analytics.models import DailyRollup, HealthSnapshot
from siyu.analytics.queries import days_window, pool_size, repeat_purchase, snapshot_final
from siyu.analytics.tables import to_sql
from siyu.commerce.models import Order, Refund
from siyu.contacts.models import Contact
from siyu.events.models import Event
from siyu.progress import NoProgress, Progress
from siyu.tenancy.models import Workspace

#: How many local days the periodic update rebuilds: late events and orders land within them.
RECENT_DAYS = 3


@transaction.atomic
def rollups_rebuild(*, workspace: Workspace, start: date, end: date) -> int:
    """Replaces the rollup rows of local days ``start``..``end``; returns the rows written."""
    DailyRollup.objects.filter(workspace=workspace, day__gte=start, day__lte=end).delete()
    target = DailyRollup._meta.db_table
    columns = ", ".join(f'"{c}"' for c in rollups.COLUMNS)
    written = 0
    with connection.cursor() as cursor:
        for first, last in rollups.chunks(start, end):
            expr = rollups.daily_expression(workspace=workspace, first=first, last=last)
            cursor.execute(f'INSERT INTO "{target}" ({columns}) {to_sql(expr)}')  # noqa: S608 (compiled expression, no user text)
            written += max(cursor.rowcount, 0)
    return written


def _local_today(workspace: Workspace, now: datetime | None) -> date:
    return (now or timezone.now()).astimezone(ZoneInfo(workspace.time_zone)).date()


@transaction.atomic
def rollups_update_recent(*, workspace: Workspace, now: datetime | None = None) -> list[date]:
    """Rebuilds the last ``RECENT_DAYS`` local days, and the paid days of older orders refunded in
    that time (a refund changes its order's day). Returns the days rebuilt."""
    today = _local_today(workspace, now)
    first = today - timedelta(days=RECENT_DAYS - 1)
    rollups_rebuild(workspace=workspace, start=first, end=today)
    since = rollups.day_range(workspace, first, today).start
    tz = ZoneInfo(workspace.time_zone)
    refunded_days = set(
        Refund.objects.filter(workspace=workspace, refunded_at__gte=since, order__paid_at__lt=since)
        .annotate(day=TruncDate("order__paid_at", tzinfo=tz))
        .values_list("day", flat=True)
        .distinct()
    )
    for day in sorted(refunded_days):
        rollups_rebuild(workspace=workspace, start=day, end=day)
    return [first + timedelta(days=i) for i in range(RECENT_DAYS)] + sorted(refunded_days)


def _earliest_day(workspace: Workspace) -> date | None:
    """The first local day anything happened in the workspace."""
    moments = [
        Contact.objects.filter(workspace=workspace).aggregate(m=Min("first_seen_at"))["m"],
        Order.objects.filter(workspace=workspace).aggregate(m=Min("paid_at"))["m"],
        Event.objects.filter(workspace=workspace).aggregate(m=Min("occurred_at"))["m"],
    ]
    known = [m for m in moments if m is not None]
    if not known:
        return None
    return min(known).astimezone(ZoneInfo(workspace.time_zone)).date()


def rollups_backfill(
    *, workspace: Workspace, progress: Progress | None = None, now: datetime | None = None
) -> int:
    """Rebuilds every day from the workspace's first activity to today, one transaction per
    chunk so a long backfill holds no lock for long and shows progress. Returns rows written."""
    progress = progress or NoProgress()
    first = _earliest_day(workspace)
    if first is None:
        return 0
    parts = rollups.chunks(first, _local_today(workspace, now))
    progress.start(f"{workspace.slug}: rollups", len(parts))
    written = 0
    for start, end in parts:
        written += rollups_rebuild(workspace=workspace, start=start, end=end)
        progress.advance()
    return written


@transaction.atomic
def health_snapshot_refresh(
    *, workspace: Workspace, now: datetime | None = None
) -> list[HealthSnapshot]:
    """Stores the health counts of the periods the metrics page opens on (``SNAPSHOT_PERIODS``
    days ending today), and of the period before each (the trend) unless a final snapshot of it
    exists, with the home dashboard's figures (pool size, all-time and in-period purchasers and
    repeat purchasers). Run by the 15-minute rollups job, so a page load reads a few rows
    instead of counting distinct contacts over the raw tables. Returns the snapshots written."""
    now = now or timezone.now()
    today = _local_today(workspace, now)
    purchasers, repeaters = repeat_purchase(workspace=workspace)
    pool = pool_size(workspace=workspace)
    written = []
    for days in health.SNAPSHOT_PERIODS:
        before = today - timedelta(days=days)
        kept = HealthSnapshot.objects.filter(workspace=workspace, day=before, days=days).first()
        ends = [today]
        if kept is None or not snapshot_final(kept, workspace=workspace):
            ends.append(before)
        for end in ends:
            first = end - timedelta(days=days - 1)
            counts = health.raw_counts(workspace=workspace, start=first, end=end)
            in_period = repeat_purchase(
                workspace=workspace, window=days_window(workspace, first, end)
            )
            snapshot, _created = HealthSnapshot.objects.update_or_create(
                workspace=workspace,
                day=end,
                days=days,
                defaults={
                    "counts": counts,
                    "pool_size": pool,
                    "purchasers_ever": purchasers,
                    "repeaters_ever": repeaters,
                    "period_purchasers": in_period[0],
                    "period_repeaters": in_period[1],
                    "computed_at": now,
                },
            )
            written.append(snapshot)
    return written
