"""The daily rollup as ONE Ibis expression: what ``services.rollups_rebuild`` inserts, what a
segment or staff cut computes on the fly, and what DuckDB runs unchanged on the Parquet export.

Every figure is attributed to the contact it belongs to, and grouped by that contact's owning
store and source channel: an order counts for the store that owns the buyer (the same rule that
scopes a staff member's contact list), not for the till that rang it up, so a store's rollup rows
are exactly what its staff may see.

Local days: times are stored in UTC and the day is the workspace's local day. SQLite has no
portable time-zone arithmetic (and rejects intervals), so the day is a ``CASE`` over the UTC
instants of each local midnight, computed here in Python; that is exact in any time zone,
daylight saving included. A range is therefore built at most ``MAX_DAYS`` days at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import ibis
import ibis.expr.datatypes as dt
from ibis.expr.types import Column, Table

from siyu.analytics.models import DailyRollup
from siyu.analytics.tables import table, utc_cutoff
from siyu.commerce.models import Order, OrderItem, Product
from siyu.contacts.models import Consent, ConsentStatus, Contact
from siyu.events.models import Event
from siyu.tenancy.models import Workspace

#: The longest day range one expression covers (one CASE branch per day).
MAX_DAYS = 31

_COUNT = dt.int64
_MONEY = dt.Decimal(precision=16, scale=2)

#: The measures of a rollup row in column order, with their types.
MEASURES: dict[str, dt.DataType] = {
    "new_contacts": _COUNT,
    "referral_new_contacts": _COUNT,
    "uv": _COUNT,
    "purchasers": _COUNT,
    "orders": _COUNT,
    "first_orders": _COUNT,
    "gmv": _MONEY,
    "refunds": _MONEY,
    "discount": _MONEY,
    "referred_revenue": _MONEY,
    "cost": _MONEY,
    "uncosted_items": _COUNT,
    "opt_outs": _COUNT,
}
DIMENSIONS = ("day", "store_id", "source_channel")
#: Columns of the rollup table the expression fills, in order.
COLUMNS = ("workspace_id", *DIMENSIONS, *MEASURES)


@dataclass(frozen=True)
class DayRange:
    """Local days ``first``..``last`` (inclusive) and the UTC instant of each local midnight."""

    first: date
    last: date
    midnights: tuple[datetime, ...]  # len = days + 1; the last is the end of ``last``

    @property
    def start(self) -> datetime:
        return self.midnights[0]

    @property
    def end(self) -> datetime:
        return self.midnights[-1]


def day_range(workspace: Workspace, first: date, last: date) -> DayRange:
    if last < first:
        raise ValueError("last day before first day")
    tz = ZoneInfo(workspace.time_zone)
    days = (last - first).days + 1
    midnights = tuple(
        utc_cutoff(datetime.combine(first + timedelta(days=i), time.min, tzinfo=tz))
        for i in range(days + 1)
    )
    return DayRange(first=first, last=last, midnights=midnights)


def chunks(first: date, last: date, size: int = MAX_DAYS) -> list[tuple[date, date]]:
    """``first``..``last`` cut into consecutive ranges of at most ``size`` days."""
    out = []
    while first <= last:
        end = min(last, first + timedelta(days=size - 1))
        out.append((first, end))
        first = end + timedelta(days=1)
    return out


def _local_day(ts: Column, days: DayRange) -> Column:
    """The local day of a UTC timestamp already filtered to the range."""
    if len(days.midnights) - 1 > MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days per expression")
    branches = [
        (ts < days.midnights[i + 1], ibis.literal(days.first + timedelta(days=i)))
        for i in range(len(days.midnights) - 2)
    ]
    last = ibis.literal(days.last)
    return ibis.cases(*branches, else_=last) if branches else last


def _in(ts: Column, days: DayRange) -> ibis.expr.types.BooleanValue:
    return (ts >= days.start) & (ts < days.end)


def _shape(piece: Table, **measures: ibis.Value) -> Table:
    """One piece of the union: the dimensions plus every measure, zero where the piece has none."""
    return piece.select(
        day=piece.day.cast(dt.date),
        store_id=piece.store_id.cast(dt.int64),
        source_channel=piece.source_channel.cast(dt.string),
        **{
            name: measures.get(name, ibis.literal(0)).cast(kind).fill_null(0)
            for name, kind in MEASURES.items()
        },
    )


def daily_expression(
    *, workspace: Workspace, first: date, last: date, contact_ids: Table | None = None
) -> Table:
    """Rollup rows (``COLUMNS``) for local days ``first``..``last`` (at most ``MAX_DAYS``),
    optionally only for the contacts in ``contact_ids`` (a table with a ``contact_id`` column:
    a segment's rule expression, a staff member's contacts)."""
    days = day_range(workspace, first, last)
    wid = workspace.id

    c = table(Contact)
    c = c.filter(c.workspace_id == wid)
    if contact_ids is not None:
        c = c.semi_join(contact_ids, c.id == contact_ids.contact_id)
    dims = c.select(
        contact_id=c.id,
        store_id=c.store_id,
        source_channel=c.source_channel,
        referred=c.referred_by_id.notnull(),
    )

    # New contacts, and those someone referred, on the day they were first seen.
    new = c.filter(_in(c.first_seen_at, days)).mutate(day=_local_day(c.first_seen_at, days))
    new = new.group_by(["day", "store_id", "source_channel"]).aggregate(
        new_contacts=new.id.count(), referral_new_contacts=new.referred_by_id.count()
    )

    # UV: distinct contacts with any event that day.
    e = table(Event)
    e = e.filter(e.workspace_id == wid, _in(e.occurred_at, days))
    e = e.select(contact_id=e.contact_id, day=_local_day(e.occurred_at, days)).distinct()
    ev = e.join(dims, "contact_id")
    ev = ev.group_by(["day", "store_id", "source_channel"]).aggregate(uv=ev.contact_id.count())

    # Orders on their paid day, each knowing when its buyer first bought (ever).
    all_orders = table(Order)
    all_orders = all_orders.filter(all_orders.workspace_id == wid)
    first_paid = (
        all_orders.filter(all_orders.paid_at < days.end)
        .group_by("contact_id")
        .aggregate(first_paid_at=all_orders.paid_at.min())
    )
    o = all_orders.filter(_in(all_orders.paid_at, days))
    o = o.select(
        order_id=o.id,
        contact_id=o.contact_id,
        paid_at=o.paid_at,
        amount=o.amount,
        refunded=o.refunded_amount,
        discount=o.discount_amount,
        day=_local_day(o.paid_at, days),
    )
    o = o.join(dims, "contact_id").join(first_paid, "contact_id")
    net = o.amount - o.refunded
    orders = o.group_by(["day", "store_id", "source_channel"]).aggregate(
        purchasers=o.contact_id.nunique(),
        orders=o.order_id.count(),
        # Ties at the same instant are one first purchase (distinct buyer), the rest repeats.
        first_orders=o.contact_id.nunique(where=o.paid_at == o.first_paid_at),
        gmv=o.amount.sum(),
        refunds=o.refunded.sum(),
        discount=o.discount.sum(),
        referred_revenue=net.sum(where=o.referred),
    )

    # Cost of goods: product cost × quantity where the product and its cost are known.
    i = table(OrderItem)
    i = i.filter(i.workspace_id == wid).select(
        order_id=i.order_id, product_id=i.product_id, quantity=i.quantity
    )
    p = table(Product)
    p = p.filter(p.workspace_id == wid).select(product_id=p.id, unit_cost=p.cost)
    items = i.join(o.select("order_id", "day", "store_id", "source_channel"), "order_id").left_join(
        p, "product_id"
    )
    items = items.group_by(["day", "store_id", "source_channel"]).aggregate(
        cost=(items.unit_cost * items.quantity).sum(),
        uncosted_items=items.order_id.count(where=items.unit_cost.isnull()),
    )

    # Opt-outs: a consent turned to opted-out on the day (its latest change).
    k = table(Consent)
    k = k.filter(
        k.workspace_id == wid, k.status == ConsentStatus.OPTED_OUT.value, _in(k.updated_at, days)
    )
    k = k.select(contact_id=k.contact_id, day=_local_day(k.updated_at, days)).join(
        dims, "contact_id"
    )
    opt = k.group_by(["day", "store_id", "source_channel"]).aggregate(opt_outs=k.contact_id.count())

    pieces = [
        _shape(new, new_contacts=new.new_contacts, referral_new_contacts=new.referral_new_contacts),
        _shape(ev, uv=ev.uv),
        _shape(orders, **{m: orders[m] for m in orders.columns if m in MEASURES}),
        _shape(items, cost=items.cost, uncosted_items=items.uncosted_items),
        _shape(opt, opt_outs=opt.opt_outs),
    ]
    u = ibis.union(*pieces, distinct=False)
    out = u.group_by(list(DIMENSIONS)).aggregate(
        **{m: u[m].sum().cast(kind) for m, kind in MEASURES.items()}
    )
    return out.select(
        workspace_id=ibis.literal(wid, type=dt.int64), **{c: out[c] for c in COLUMNS[1:]}
    )


def rollup_table() -> Table:
    """The stored rollups, with the same columns as ``daily_expression``."""
    return table(DailyRollup)
