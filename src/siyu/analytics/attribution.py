"""Which sources brought the orders and revenue of a period, credited two ways side by side.

First touch: the contact's own acquisition record — source channel, channel QR state, first-touch
store, staff member or campaign.

Last touch (docs/analysis.md): per dimension, what touched the contact last before the order:
- channel: the ``channel`` of the contact's last event with one in the 30 days up to the
  payment; without such an event, the order's own channel (``order:<channel>``);
- campaign / QR state: ``properties.utm_campaign`` / ``properties.state`` of the last event
  carrying it in those 30 days; none means unknown;
- store / staff: the order's own store / staff member (who made the sale).

Each order is credited wholly to one value in each model, so both columns add up to the
period's orders and net revenue. The last event is picked with ROW_NUMBER over the order's
candidate events — set-at-a-time, one statement per model.

Also here: the top paths to a first order — the sequence of the first three distinct event types
a contact did before their first order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import ibis
from django.utils.translation import gettext as _
from ibis.expr.types import StringValue, Table

from siyu.analytics.explore import OTHER, Scope, epoch, labels
from siyu.analytics.queries import Window
from siyu.analytics.tables import fetch, table, utc_cutoff
from siyu.errors import ValidationFailed
from siyu.events.models import Event, EventType

LAST_TOUCH_DAYS = 30
DIMENSIONS = ("channel", "campaign", "state", "store", "staff")
PATH_LENGTH = 3
_FIRST = {
    "channel": "source_channel",
    "campaign": "first_touch_campaign",
    "state": "first_touch_state",
    "store": "first_touch_store_id",
    "staff": "first_touch_staff_id",
}
_PROPERTY = {"campaign": "utm_campaign", "state": "state"}


def check_dimension(dimension: str) -> str:
    if dimension not in DIMENSIONS:
        raise ValidationFailed(
            "invalid", _("未知的归因维度，可选：%s") % ", ".join(DIMENSIONS), path="dimension"
        )
    return dimension


def _text(col: ibis.Value) -> StringValue:
    return col.cast("string").fill_null("")


def _orders(scope: Scope, window: Window, dimension: str) -> Table:
    """(order_id, contact_id, paid_at, revenue, first, fallback) for the period's orders of
    visible contacts. Both sides are narrowed to the columns used before the join: the
    expression builds and compiles in a fraction of the time a join of two whole tables takes."""
    o = scope.orders()
    o = o.filter(o.paid_at >= utc_cutoff(window.start), o.paid_at < utc_cutoff(window.end))
    fallback = {
        "channel": ibis.literal("order:") + o.channel,
        "store": _text(o.store_id),
        "staff": _text(o.staff_id),
    }.get(dimension, ibis.literal(""))
    o = o.select(
        order_id=o.id,
        contact_id=o.contact_id,
        paid_at=o.paid_at,
        revenue=o.amount - o.refunded_amount,
        fallback=fallback,
    )
    c = scope.contacts()
    c = c.select(cid=c.id, first=_text(c[_FIRST[dimension]]))
    j = o.join(c, o.contact_id == c.cid)
    return j.select("order_id", "contact_id", "paid_at", "revenue", "first", "fallback")


def _last_touch(scope: Scope, window: Window, dimension: str, orders: Table) -> Table:
    """(order_id, value): the attributed value of the last qualifying event before each order
    that has one."""
    e = table(Event)
    value = e.channel if dimension == "channel" else e.properties[_PROPERTY[dimension]].str
    lo = utc_cutoff(window.start - timedelta(days=LAST_TOUCH_DAYS))
    e = e.filter(
        e.workspace_id == scope.workspace.id,
        e.occurred_at >= lo,
        e.occurred_at < utc_cutoff(window.end),
    ).select(ev_contact=e.contact_id, ev_id=e.id, ev_at=e.occurred_at, value=value)
    e = e.filter(e.value.notnull(), e.value != "")
    j = orders.join(e, orders.contact_id == e.ev_contact).select(
        orders.order_id, orders.paid_at, e.ev_id, e.ev_at, e.value
    )
    j = j.filter(
        j.ev_at <= j.paid_at, epoch(j.paid_at) - epoch(j.ev_at) <= LAST_TOUCH_DAYS * 86_400
    )
    ranked = j.mutate(
        rn=ibis.row_number().over(
            group_by=j.order_id, order_by=[ibis.desc(j.ev_at), ibis.desc(j.ev_id)]
        )
    )
    return ranked.filter(ranked.rn == 0).select(last_order=ranked.order_id, last=ranked.value)


def credited_expression(scope: Scope, window: Window, dimension: str) -> Table:
    """One row per order: (order_id, revenue, first, last)."""
    orders = _orders(scope, window, dimension).view()
    if dimension in _PROPERTY or dimension == "channel":
        last = _last_touch(scope, window, dimension, orders).view()
        j = orders.left_join(last, orders.order_id == last.last_order)
        last_value = last.last.fill_null(orders.fallback)
        return j.select(orders.order_id, orders.revenue, orders.first, last=last_value)
    return orders.select("order_id", "revenue", "first", last=orders.fallback)


def totals_expression(credited: Table, model: str, top: int) -> Table:
    """(bucket, orders, revenue) for one model (``first`` or ``last``): the ``top`` values by
    revenue, the rest as OTHER."""
    t = credited.select(value=credited[model], revenue=credited.revenue)
    per = t.group_by("value").aggregate(orders=t.count(), revenue=t.revenue.sum())
    per = per.mutate(rank=ibis.row_number().over(order_by=[ibis.desc(per.revenue), per.value]))
    per = per.mutate(bucket=ibis.ifelse(per.rank < top, per.value, OTHER))
    return per.group_by("bucket").aggregate(orders=per.orders.sum(), revenue=per.revenue.sum())


def models_expression(credited: Table, top: int) -> Table:
    """(model, bucket, orders, revenue) for both models in ONE query: the credited orders (the
    costly last-touch join) are a CTE computed once rather than once per model."""
    parts = [
        totals_expression(credited, m, top).select(
            model=ibis.literal(m), bucket="bucket", orders="orders", revenue="revenue"
        )
        for m in ("first", "last")
    ]
    return ibis.union(*parts, distinct=False)


@dataclass(frozen=True)
class Credit:
    value: str
    label: str
    orders: int
    revenue: Decimal
    share: float | None


@dataclass
class Attribution:
    dimension: str
    first: list[Credit]
    last: list[Credit]
    orders: int = 0
    revenue: Decimal = Decimal("0.00")
    message: str = ""


def _money(value: object) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def attribution(scope: Scope, window: Window, dimension: str, top: int) -> Attribution:
    check_dimension(dimension)
    credited = credited_expression(scope, window, dimension)
    raw: dict[str, list[tuple]] = {"first": [], "last": []}
    for model, *row in fetch(models_expression(credited, top)):
        raw[model].append(tuple(row))
    names = labels(
        scope.workspace,
        {"channel": "channel", "store": "store", "staff": "staff"}.get(dimension, dimension),
        {r[0] for rows in raw.values() for r in rows},
    )
    result = Attribution(dimension=dimension, first=[], last=[])
    result.orders = sum(int(r[1]) for r in raw["first"])
    result.revenue = sum((_money(r[2]) for r in raw["first"]), Decimal("0.00"))
    for model, rows in raw.items():
        credits = [
            Credit(
                value=v,
                label=names[v],
                orders=int(n),
                revenue=_money(r),
                share=float(_money(r) / result.revenue) if result.revenue else None,
            )
            for v, n, r in rows
        ]
        credits.sort(key=lambda c: (c.value == OTHER, -c.revenue, c.value))
        setattr(result, model, credits)
    if not result.orders:
        result.message = _("所选时间段内没有订单。")
    return result


def paths_expression(scope: Scope, window: Window) -> Table:
    """(s1, s2, s3, contacts): the first three distinct event types before the first order, for
    contacts whose first order is in the period; a shorter path leaves NULLs."""
    o = scope.orders()
    c = scope.contacts()
    f = o.group_by("contact_id").aggregate(first_order=o.paid_at.min())
    f = f.join(c, f.contact_id == c.id).select(f.contact_id, f.first_order)
    f = f.filter(
        f.first_order >= utc_cutoff(window.start), f.first_order < utc_cutoff(window.end)
    ).view()
    e = table(Event)
    e = e.filter(e.workspace_id == scope.workspace.id)
    j = e.join(f, e.contact_id == f.contact_id).select(
        f.contact_id, e.type, at=e.occurred_at, first_order=f.first_order
    )
    j = j.filter(j.at < j.first_order)
    firsts = j.group_by("contact_id", "type").aggregate(at=j.at.min())
    ranked = firsts.mutate(
        rn=ibis.row_number().over(group_by=firsts.contact_id, order_by=[firsts.at, firsts.type])
    )
    ranked = ranked.filter(ranked.rn < PATH_LENGTH)
    steps = ranked.group_by("contact_id").aggregate(
        **{f"s{k + 1}": ranked.type.max(where=ranked.rn == k) for k in range(PATH_LENGTH)}
    )
    return steps.group_by([f"s{k + 1}" for k in range(PATH_LENGTH)]).aggregate(
        contacts=steps.count()
    )


@dataclass(frozen=True)
class PathRow:
    steps: list[str]
    contacts: int


@dataclass
class Paths:
    rows: list[PathRow] = field(default_factory=list)
    buyers: int = 0
    without_events: int = 0


def first_order_paths(scope: Scope, window: Window, top: int) -> Paths:
    """The ``top`` most common paths, and how many first buyers had no event before buying."""
    types = dict(EventType.choices)
    rows = fetch(paths_expression(scope, window))
    ranked = sorted(rows, key=lambda r: (-int(r[-1]), [s or "" for s in r[:-1]]))
    o = scope.orders()
    c = scope.contacts()
    f = o.group_by("contact_id").aggregate(first_order=o.paid_at.min())
    f = f.join(c, f.contact_id == c.id).select(f.first_order)
    f = f.filter(f.first_order >= utc_cutoff(window.start), f.first_order < utc_cutoff(window.end))
    buyers = fetch(f.aggregate(n=f.count()))[0][0]
    with_events = sum(int(r[-1]) for r in rows)
    return Paths(
        rows=[
            PathRow(steps=[str(types.get(s, s)) for s in r[:-1] if s], contacts=int(r[-1]))
            for r in ranked[:top]
        ],
        buyers=int(buyers),
        without_events=int(buyers) - with_events,
    )
