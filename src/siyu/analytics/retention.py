"""Retention cohorts: of the contacts whose first order (or first touch) fell in week/month i,
which share came back in period i+k.

Periods are the workspace's local weeks (from Monday) or months. Their boundaries are computed
in Python as aware datetimes and a timestamp's period index is the number of boundaries it has
passed — a sum of comparisons, so no date truncation, time-zone conversion or interval arithmetic
is asked of SQLite, and the expression runs unchanged on PostgreSQL and DuckDB.

"repurchase": another order in period k (for a first-order cohort, the first order itself does
not count; in period 0 a second order is needed). "activity": any order or event in period k.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import ibis
from django.utils.translation import gettext as _
from ibis.expr.types import IntegerValue, Table, TimestampValue

from siyu.analytics.explore import Scope
from siyu.analytics.tables import fetch, table, utc_cutoff
from siyu.contacts.models import SourceChannel
from siyu.errors import ValidationFailed
from siyu.events.models import Event

MAX_PERIODS = 12
COHORTS = ("first_order", "first_seen")
UNITS = ("week", "month")
METRICS = ("repurchase", "activity")


@dataclass(frozen=True)
class RetentionSpec:
    scope: Scope
    cohort: str
    unit: str
    metric: str
    starts: list[datetime]  # local start of each cohort period and of the periods after them
    cohorts: int
    channel: str | None
    now: datetime


def _period_start(day: date, unit: str) -> date:
    return day - timedelta(days=day.weekday()) if unit == "week" else day.replace(day=1)


def _next(day: date, unit: str) -> date:
    if unit == "week":
        return day + timedelta(days=7)
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _choice(value: str, allowed: tuple[str, ...], path: str) -> str:
    if value not in allowed:
        raise ValidationFailed(
            "invalid",
            _("“%(v)s”无效，可选：%(all)s") % {"v": value, "all": ", ".join(allowed)},
            path=path,
        )
    return value


def retention_spec(
    *,
    scope: Scope,
    start: date | None,
    end: date | None,
    cohort: str = "first_order",
    unit: str = "week",
    metric: str = "repurchase",
    channel: str | None = None,
    now: datetime,
) -> RetentionSpec:
    """Cohorts are the periods from the one containing ``start`` to the one containing ``end``
    (at most 12), each followed for up to 12 periods."""
    _choice(cohort, COHORTS, "cohort")
    _choice(unit, UNITS, "unit")
    _choice(metric, METRICS, "metric")
    if channel:
        _choice(channel, tuple(SourceChannel.values), "channel")
    if start is None or end is None:
        raise ValidationFailed("invalid", _("请选择开始和结束日期。"), path="start")
    if start > end:
        raise ValidationFailed("invalid", _("开始日期不能晚于结束日期。"), path="start")
    days = [_period_start(start, unit)]
    while days[-1] <= _period_start(end, unit) and len(days) <= MAX_PERIODS + 1:
        days.append(_next(days[-1], unit))
    cohorts = len(days) - 1
    if cohorts > MAX_PERIODS:
        raise ValidationFailed(
            "invalid", _("最多 %(n)s 个同期群，请缩短时间范围。") % {"n": MAX_PERIODS}, path="end"
        )
    while len(days) < cohorts + MAX_PERIODS:  # the last cohort is followed for 12 periods too
        days.append(_next(days[-1], unit))
    tz = ZoneInfo(scope.workspace.time_zone)
    return RetentionSpec(
        scope=scope,
        cohort=cohort,
        unit=unit,
        metric=metric,
        starts=[datetime.combine(d, time.min, tzinfo=tz) for d in days],
        cohorts=cohorts,
        channel=channel or None,
        now=now,
    )


def _index(spec: RetentionSpec, ts: TimestampValue) -> IntegerValue:
    """0 for the first period, 1 for the next…: how many later boundaries ``ts`` has passed."""
    return functools.reduce(
        operator.add,
        [ibis.ifelse(ts >= utc_cutoff(b), 1, 0) for b in spec.starts[1:]],
    )


def cohort_expression(spec: RetentionSpec) -> Table:
    """(contact_id, cohort): each contact whose first order / first touch is in a cohort period."""
    c = spec.scope.contacts()
    if spec.channel:
        c = c.filter(c.source_channel == spec.channel)
    lo, hi = utc_cutoff(spec.starts[0]), utc_cutoff(spec.starts[spec.cohorts])
    if spec.cohort == "first_seen":
        firsts = c.select(contact_id=c.id, first_at=c.first_seen_at)
    else:
        o = spec.scope.orders()
        f = o.group_by("contact_id").aggregate(first_at=o.paid_at.min())
        firsts = f.join(c, f.contact_id == c.id).select(f.contact_id, f.first_at)
    firsts = firsts.filter(firsts.first_at >= lo, firsts.first_at < hi)
    return firsts.select("contact_id", cohort=_index(spec, firsts.first_at))


def _activity(spec: RetentionSpec) -> Table:
    lo, hi = utc_cutoff(spec.starts[0]), utc_cutoff(spec.starts[-1])
    o = spec.scope.orders()
    orders = o.filter(o.paid_at >= lo, o.paid_at < hi).select(contact_id=o.contact_id, at=o.paid_at)
    if spec.metric == "repurchase":
        return orders
    e = table(Event)
    events = e.filter(
        e.workspace_id == spec.scope.workspace.id, e.occurred_at >= lo, e.occurred_at < hi
    ).select(contact_id=e.contact_id, at=e.occurred_at)
    return ibis.union(orders, events)


def matrix_expression(spec: RetentionSpec) -> Table:
    """(cohort, offset, retained): contacts of cohort i active in period i+offset."""
    cohort = cohort_expression(spec).view()
    act = _activity(spec)
    j = act.join(cohort, act.contact_id == cohort.contact_id).select(
        cohort.contact_id, cohort.cohort, period=_index(spec, act.at)
    )
    per = j.group_by("contact_id", "cohort", "period").aggregate(n=j.count())
    per = per.mutate(offset=per.period - per.cohort)
    # The first order is itself an order in the cohort's period: a repurchase needs another.
    own = 1 if (spec.cohort, spec.metric) == ("first_order", "repurchase") else 0
    kept = per.filter(per.offset >= 0, per.n - ibis.ifelse(per.offset == 0, own, 0) > 0)
    return kept.group_by("cohort", "offset").aggregate(retained=kept.count())


def sizes_expression(spec: RetentionSpec) -> Table:
    c = cohort_expression(spec)
    return c.group_by("cohort").aggregate(size=c.count())


@dataclass(frozen=True)
class CohortRow:
    start: date
    size: int
    retained: list[int | None]  # None: the period has not begun yet
    shares: list[float | None]


@dataclass
class RetentionResult:
    rows: list[CohortRow]
    periods: int
    message: str = ""
    headers: list[str] = field(default_factory=list)


def retention(spec: RetentionSpec) -> RetentionResult:
    sizes = {int(k): int(n) for k, n in fetch(sizes_expression(spec))}
    cells = {(int(i), int(k)): int(n) for i, k, n in fetch(matrix_expression(spec))}
    rows = []
    for i in range(spec.cohorts):
        size = sizes.get(i, 0)
        retained: list[int | None] = [
            cells.get((i, k), 0) if spec.starts[i + k] <= spec.now else None
            for k in range(MAX_PERIODS)
        ]
        rows.append(
            CohortRow(
                start=spec.starts[i].date(),
                size=size,
                retained=retained,
                shares=[n / size if n is not None and size else None for n in retained],
            )
        )
    unit = _("周") if spec.unit == "week" else _("月")
    result = RetentionResult(
        rows=rows, periods=MAX_PERIODS, headers=[f"{unit} {k}" for k in range(MAX_PERIODS)]
    )
    if not any(sizes.values()):
        result.message = _("所选时间段内没有新的同期群客户。")
    return result
