"""How orders and revenue spread over contacts: contacts per number of orders (0, 1, …, 10+)
and purchasers per band of net revenue, for the orders paid in a period.

Every visible contact first seen before the period ends is counted, so the 0-orders bar shows
the pool that did not buy. Both histograms are one GROUP BY each; a contact's bucket is computed
in SQL (LEAST / a sum of comparisons), so no per-contact row reaches Python.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field
from decimal import Decimal

import ibis
from django.utils.translation import gettext as _
from ibis.expr.types import Table

from siyu.analytics.explore import Scope
from siyu.analytics.queries import Window
from siyu.analytics.tables import fetch, utc_cutoff

MAX_ORDERS_BUCKET = 10
#: Lower edges of the revenue bands, in yuan.
REVENUE_EDGES = (0, 50, 100, 200, 500, 1000, 2000, 5000)


def _per_contact(scope: Scope, window: Window) -> Table:
    """(contact_id, orders, revenue) of every visible contact known by the end of the period."""
    lo, hi = utc_cutoff(window.start), utc_cutoff(window.end)
    c = scope.contacts()
    c = c.filter(c.first_seen_at < hi)
    o = scope.orders()
    o = o.filter(o.paid_at >= lo, o.paid_at < hi)
    per = o.group_by("contact_id").aggregate(
        orders=o.count(), revenue=(o.amount - o.refunded_amount).sum()
    )
    j = c.left_join(per, c.id == per.contact_id)
    return j.select(
        contact_id=c.id, orders=per.orders.fill_null(0), revenue=per.revenue.fill_null(0)
    )


def orders_histogram_expression(scope: Scope, window: Window) -> Table:
    """(bucket, contacts): bucket is the number of orders, 10 meaning 10 or more."""
    p = _per_contact(scope, window)
    p = p.mutate(bucket=ibis.least(p.orders, MAX_ORDERS_BUCKET))
    return p.group_by("bucket").aggregate(contacts=p.count())


def revenue_histogram_expression(scope: Scope, window: Window) -> Table:
    """(band, contacts, revenue) over purchasers: band i holds net revenue from
    REVENUE_EDGES[i] up to the next edge."""
    p = _per_contact(scope, window)
    p = p.filter(p.orders > 0)
    band = functools.reduce(
        operator.add, [ibis.ifelse(p.revenue >= edge, 1, 0) for edge in REVENUE_EDGES[1:]]
    )
    p = p.mutate(band=band)
    return p.group_by("band").aggregate(contacts=p.count(), revenue=p.revenue.sum())


@dataclass(frozen=True)
class Bar:
    label: str
    contacts: int
    revenue: Decimal | None = None


@dataclass
class Distribution:
    orders: list[Bar]
    revenue: list[Bar]
    message: str = ""
    totals: dict[str, int] = field(default_factory=dict)


def _money(value: object) -> Decimal:
    return Decimal(str(value or 0)).quantize(Decimal("0.01"))


def distribution(scope: Scope, window: Window) -> Distribution:
    by_orders = {int(b): int(n) for b, n in fetch(orders_histogram_expression(scope, window))}
    by_band = {
        int(b): (int(n), _money(r))
        for b, n, r in fetch(revenue_histogram_expression(scope, window))
    }
    orders = [
        Bar(
            label=f"{k}+" if k == MAX_ORDERS_BUCKET else str(k),
            contacts=by_orders.get(k, 0),
        )
        for k in range(MAX_ORDERS_BUCKET + 1)
    ]
    edges = list(REVENUE_EDGES)
    revenue = [
        Bar(
            label=f"¥{lo:,}–{edges[i + 1]:,}" if i + 1 < len(edges) else f"¥{lo:,}+",
            contacts=by_band.get(i, (0, None))[0],
            revenue=by_band.get(i, (0, _money(0)))[1],
        )
        for i, lo in enumerate(edges)
    ]
    result = Distribution(
        orders=orders,
        revenue=revenue,
        totals={
            "contacts": sum(by_orders.values()),
            "purchasers": sum(n for n, _r in by_band.values()),
        },
    )
    if not result.totals["purchasers"]:
        result.message = _("所选时间段内没有订单。")
    return result
