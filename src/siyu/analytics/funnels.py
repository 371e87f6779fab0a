"""Ordered funnels: how many contacts did step 1, then step 2, … within a window.

Definition (docs/analysis.md): a contact enters at their FIRST step-1 occurrence in the period
(``t0``). Step k counts when the contact has a step-k occurrence strictly after their step k-1
time and at most ``window_days`` after ``t0``; its time is the earliest such occurrence, which
leaves the most room for the later steps. So a step done before the previous one (out of order)
never counts, and one occurrence cannot satisfy two steps.

The whole funnel is one Ibis expression: a table with one row per entering contact and one
timestamp column per step (NULL when not reached), built by a join + group-by per step. Counts,
breakdowns, medians and drop-offs are small aggregates over that table, so the database does the
work whatever the number of contacts, and the same expression runs on DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import ibis
from django.utils.translation import gettext as _
from ibis.expr.types import BooleanValue, StringValue, Table

from siyu.analytics.explore import OTHER, Scope, epoch, labels, period, top_n
from siyu.analytics.queries import Window
from siyu.analytics.tables import fetch, table, utc_cutoff
from siyu.commerce.models import OrderChannel
from siyu.errors import ValidationFailed
from siyu.events.models import Event, EventType

MIN_STEPS, MAX_STEPS = 2, 8
MAX_WINDOW_DAYS = 365
DAY = 86_400
BREAKDOWNS = ("source_channel", "store", "owner_staff", "first_touch_campaign", "first_touch_state")
ORDER = "order"


@dataclass(frozen=True)
class Step:
    """An event of a type (optionally with property values), or a paid order (optionally of a
    channel)."""

    kind: str  # "event" or "order"
    type: str = ""
    properties: tuple[tuple[str, Any], ...] = ()
    channel: str = ""

    @property
    def label(self) -> str:
        if self.kind == ORDER:
            name = _("下单")
            if self.channel:
                name += f" · {OrderChannel(self.channel).label}"
            return name
        name = str(EventType(self.type).label)
        if self.properties:
            name += " · " + ", ".join(f"{k}={v}" for k, v in self.properties)
        return name

    def as_json(self) -> dict[str, Any]:
        if self.kind == ORDER:
            return {ORDER: {"channel": self.channel} if self.channel else {}}
        body: dict[str, Any] = {"event": self.type}
        if self.properties:
            body["properties"] = dict(self.properties)
        return body


def _property(key: Any, value: Any, path: str) -> tuple[str, Any]:
    if not isinstance(key, str) or not key.isidentifier() or len(key) > 64:
        raise ValidationFailed(
            "invalid", _("属性名只能由字母、数字和下划线组成（最多 64 个）。"), path=path
        )
    if isinstance(value, bool | int) or (isinstance(value, str) and len(value) <= 200):
        return key, value
    raise ValidationFailed(
        "invalid", _("属性值须为文本（最多 200 字）、整数或 true/false。"), path=path
    )


def parse_step(raw: Any, index: int) -> Step:
    path = f"steps.{index}"
    if isinstance(raw, str):
        raw = {ORDER: {}} if raw == ORDER else {"event": raw}
    if not isinstance(raw, dict) or len(set(raw) & {"event", ORDER}) != 1:
        raise ValidationFailed(
            "invalid", _("每一步是一个事件（event）或下单（order）。"), path=path
        )
    if ORDER in raw:
        spec = raw[ORDER] or {}
        channel = spec.get("channel", "") if isinstance(spec, dict) else None
        if channel is None or (channel and channel not in OrderChannel.values):
            raise ValidationFailed(
                "invalid",
                _("未知的订单渠道，可选：%s") % ", ".join(OrderChannel.values),
                path=f"{path}.order.channel",
            )
        return Step(ORDER, channel=channel)
    if raw["event"] not in EventType.values:
        raise ValidationFailed(
            "invalid",
            _("未知的事件类型“%(type)s”，可选：%(types)s")
            % {"type": raw["event"], "types": ", ".join(EventType.values)},
            path=f"{path}.event",
        )
    props = raw.get("properties") or {}
    if not isinstance(props, dict):
        raise ValidationFailed(
            "invalid", _("properties 是“属性名: 值”的对象。"), path=f"{path}.properties"
        )
    return Step(
        "event",
        type=raw["event"],
        properties=tuple(
            _property(k, v, f"{path}.properties.{k}") for k, v in sorted(props.items())
        ),
    )


def parse_steps(raw: Any) -> list[Step]:
    if not isinstance(raw, list) or not MIN_STEPS <= len(raw) <= MAX_STEPS:
        raise ValidationFailed(
            "invalid",
            _("漏斗需要 %(min)s 到 %(max)s 个步骤。") % {"min": MIN_STEPS, "max": MAX_STEPS},
            path="steps",
        )
    return [parse_step(s, i) for i, s in enumerate(raw)]


def check_window(window_days: Any) -> int:
    if (
        not isinstance(window_days, int)
        or isinstance(window_days, bool)
        or not 1 <= window_days <= MAX_WINDOW_DAYS
    ):
        raise ValidationFailed(
            "invalid",
            _("转化窗口须为 1 到 %(max)s 天。") % {"max": MAX_WINDOW_DAYS},
            path="window_days",
        )
    return window_days


def check_breakdown(breakdown: str | None) -> str | None:
    if breakdown and breakdown not in BREAKDOWNS:
        raise ValidationFailed(
            "invalid", _("未知的拆分维度，可选：%s") % ", ".join(BREAKDOWNS), path="breakdown"
        )
    return breakdown or None


@dataclass(frozen=True)
class FunnelSpec:
    """A validated funnel question."""

    scope: Scope
    steps: list[Step]
    window_days: int
    window: Window
    breakdown: str | None = None
    top: int = 10


def funnel_spec(
    *,
    scope: Scope,
    steps: Any,
    window_days: Any,
    start: date | None,
    end: date | None,
    breakdown: str | None = None,
    top: int | None = None,
) -> FunnelSpec:
    return FunnelSpec(
        scope=scope,
        steps=parse_steps(steps),
        window_days=check_window(window_days),
        window=period(scope.workspace, start, end),
        breakdown=check_breakdown(breakdown),
        top=top_n(top),
    )


def _occurrences(spec: FunnelSpec, step: Step, *, until: Any) -> Table:
    """(contact_id, at) of every occurrence of ``step`` from the period start up to ``until``."""
    lo = utc_cutoff(spec.window.start)
    ws = spec.scope.workspace.id
    if step.kind == ORDER:
        o = spec.scope.orders()
        preds: list[BooleanValue] = [o.paid_at >= lo, o.paid_at < until]
        if step.channel:
            preds.append(o.channel == step.channel)
        return o.filter(*preds).select(contact_id=o.contact_id, at=o.paid_at)
    e = table(Event)
    preds = [e.workspace_id == ws, e.type == step.type, e.occurred_at >= lo, e.occurred_at < until]
    for key, value in step.properties:
        if isinstance(value, bool):
            preds.append(e.properties[key].bool == value)
        elif isinstance(value, int):
            preds.append(e.properties[key].int == value)
        else:
            preds.append(e.properties[key].str == value)
    return e.filter(*preds).select(contact_id=e.contact_id, at=e.occurred_at)


def _dimension(c: Table, breakdown: str | None) -> StringValue:
    if breakdown is None:
        return ibis.literal("")
    col = c[{"store": "store_id", "owner_staff": "owner_staff_id"}.get(breakdown, breakdown)]
    return col.cast("string").fill_null("") if breakdown in {"store", "owner_staff"} else col


def reach_expression(spec: FunnelSpec) -> Table:
    """One row per contact entering the funnel: ``contact_id``, ``value`` (the breakdown value)
    and ``t0``..``t{n-1}``, the time each step was reached (NULL if not)."""
    c = spec.scope.contacts()
    c = c.select(cid=c.id, value=_dimension(c, spec.breakdown))
    first = _occurrences(spec, spec.steps[0], until=utc_cutoff(spec.window.end))
    entry = first.group_by("contact_id").aggregate(t0=first.at.min())
    entry = entry.join(c, entry.contact_id == c.cid).select("contact_id", "t0", "value")
    # Step k joins only the contacts that reached step k-1 (their table, carrying t0 and the
    # step k-1 time) to the step's occurrences after that time and within the window, keeping
    # the earliest. Each step's table is used twice — by the next step and by the final pivot —
    # so Ibis names it once as a CTE: every step is computed once, over the survivors only
    # (joining each step back to the entrants instead inlines all earlier steps again: quadratic).
    limit = spec.window_days * DAY
    until = utc_cutoff(spec.window.end + timedelta(days=spec.window_days))
    reached = entry.select("contact_id", "t0", at=entry.t0)
    parts = [entry.select("contact_id", "value", step=ibis.literal(0), at=entry.t0)]
    for k, step in enumerate(spec.steps[1:], start=1):
        occ = _occurrences(spec, step, until=until)
        j = reached.join(
            occ,
            [
                reached.contact_id == occ.contact_id,
                occ.at > reached.at,
                epoch(occ.at) - epoch(reached.t0) <= limit,
            ],
        ).select(contact_id=reached.contact_id, t0=reached.t0, at=occ.at)
        reached = j.group_by("contact_id").aggregate(t0=j.t0.min(), at=j.at.min())
        parts.append(
            reached.select("contact_id", value=ibis.null(str), step=ibis.literal(k), at=reached.at)
        )
    u = ibis.union(*parts, distinct=False)
    return u.group_by("contact_id").aggregate(
        value=u.value.max(),
        **{f"t{k}": u.at.min(where=u.step == k) for k in range(len(spec.steps))},
    )


def counts_expression(spec: FunnelSpec) -> Table:
    """Contacts reaching each step (``n0``..) per breakdown bucket: the ``top`` values with the
    most entrants, and OTHER for the rest — so 100k campaign names still give top+1 rows."""
    reach = reach_expression(spec)
    counts = {f"n{k}": reach.count(where=reach[f"t{k}"].notnull()) for k in range(len(spec.steps))}
    if spec.breakdown is None:
        # One bucket: no ranking, so the reach table is computed once rather than twice.
        return reach.group_by(bucket=reach.value).aggregate(**counts)
    # One pass: each entrant knows the size of its bucket (a window count), values rank by it.
    sized = reach.mutate(entrants=reach.count().over(group_by=reach.value))
    ranked = sized.mutate(
        rank=ibis.dense_rank().over(order_by=[ibis.desc(sized.entrants), sized.value])
    )
    j = ranked.mutate(bucket=ibis.ifelse(ranked["rank"] < spec.top, ranked.value, OTHER))
    return j.group_by("bucket").aggregate(
        **{f"n{k}": j.count(where=j[f"t{k}"].notnull()) for k in range(len(spec.steps))}
    )


def medians_expression(spec: FunnelSpec) -> Table:
    """(``step``, ``median``): the median seconds from step k-1 to step k among contacts who
    reached k. Row numbers instead of a MEDIAN aggregate, which SQLite lacks."""
    reach = reach_expression(spec)
    parts = []
    for k in range(1, len(spec.steps)):
        d = reach.filter(reach[f"t{k}"].notnull()).select(
            d=epoch(reach[f"t{k}"]) - epoch(reach[f"t{k - 1}"])
        )
        ranked = d.mutate(rn=ibis.row_number().over(order_by=d.d), n=d.d.count().over())
        middle = ranked.filter((ranked.rn == (ranked.n - 1) // 2) | (ranked.rn == ranked.n // 2))
        parts.append(middle.aggregate(step=ibis.literal(k), median=middle.d.mean()))
    return ibis.union(*parts)


def dropoff_expression(spec: FunnelSpec, step: int) -> Table:
    """``contact_id`` of the contacts who reached step ``step - 1`` but not ``step`` (1-based
    ``step`` ≥ 2, as the console numbers them)."""
    if not 2 <= step <= len(spec.steps):
        raise ValidationFailed(
            "invalid",
            _("流失步骤须在 2 到 %(n)s 之间。") % {"n": len(spec.steps)},
            path="step",
        )
    reach = reach_expression(spec)
    return reach.filter(reach[f"t{step - 2}"].notnull(), reach[f"t{step - 1}"].isnull()).select(
        "contact_id"
    )


@dataclass(frozen=True)
class StepRow:
    number: int
    label: str
    reached: int
    from_previous: float | None
    from_first: float | None
    dropped: int
    median_seconds: float | None


@dataclass(frozen=True)
class BreakdownRow:
    value: str
    label: str
    counts: list[int]

    @property
    def conversion(self) -> float | None:
        return self.counts[-1] / self.counts[0] if self.counts[0] else None


@dataclass
class FunnelResult:
    steps: list[StepRow]
    breakdown: list[BreakdownRow] = field(default_factory=list)
    message: str = ""


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def funnel(spec: FunnelSpec) -> FunnelResult:
    """Runs the funnel: per step the contacts reaching it, conversion from the previous and the
    first step, the median time from the previous step; per breakdown bucket the counts."""
    n = len(spec.steps)
    rows = fetch(counts_expression(spec))
    totals = [sum(int(r[k + 1]) for r in rows) for k in range(n)]
    medians = {int(k): m for k, m in fetch(medians_expression(spec))} if totals[0] else {}
    steps = [
        StepRow(
            number=k + 1,
            label=step.label,
            reached=totals[k],
            from_previous=_share(totals[k], totals[k - 1]) if k else None,
            from_first=_share(totals[k], totals[0]),
            dropped=totals[k - 1] - totals[k] if k else 0,
            median_seconds=float(medians[k]) if medians.get(k) is not None else None,
        )
        for k, step in enumerate(spec.steps)
    ]
    result = FunnelResult(steps=steps)
    if not totals[0]:
        result.message = _("所选时间段内没有客户完成第一步。")
        return result
    if spec.breakdown:
        names = labels(spec.scope.workspace, spec.breakdown, [r[0] for r in rows])
        ordered = sorted(rows, key=lambda r: (r[0] == OTHER, -int(r[1]), r[0]))
        result.breakdown = [
            BreakdownRow(value=r[0], label=names[r[0]], counts=[int(x) for x in r[1:]])
            for r in ordered
        ]
    return result
