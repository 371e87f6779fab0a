"""Leaderboards: stores and staff ranked for a period by pool growth, conversion, repurchase rate,
revenue and 私域价值; KOCs (contacts who referred others) ranked by referrals and the revenue of
those they referred. The top N are listed and the rest summarised in one row.

Every figure is a count or a sum per contact, grouped set-at-a-time over
``metrics.contact_period_flags`` (one row per contact of the pool), so the rest row is the total
minus the top rows and its ratios are recomputed from its counts, never averaged. A contact counts
for the store that owns it and the staff member who owns it (``Contact.store`` /
``Contact.owner_staff``); contacts with no store / no owner are not ranked. A staff login sees its
own store only (KOCs and the contacts they referred both within it). docs/metrics.md gives every
definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import ibis
import ibis.expr.datatypes as dt
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from ibis.expr.types import Table

from siyu.analytics.metrics import Figure, _money, contact_period_flags
from siyu.analytics.tables import fetch, table
from siyu.commerce.models import Staff, Store
from siyu.tenancy.models import Workspace

KINDS = ("store", "staff", "koc")
DEFAULT_TOP = 20
MAX_TOP = 500

REASONS: dict[str, Promise] = {
    "no_active": _("期内没有活跃客户，无法计算转化率。"),
    "no_purchasers": _("期内没有购买客户，无法计算复购率。"),
    "no_reachable": _("流量池为空：没有可免费触达的客户。"),
    "no_reached": _("期内没有被触达（有行为）的池内客户。"),
}

#: The measures summed per store / staff member (all additive over contacts).
OWNER_COUNTS = (
    "pool",
    "new_contacts",
    "active",
    "purchasers",
    "repeaters",
    "orders",
    "revenue",
    "reachable",
    "reached",
    "reached_buyers",
)
KOC_COUNTS = ("referrals", "referrals_total", "referred_buyers", "referred_orders", "revenue")

#: What a board may be ranked by; the first is the default.
RANK_BY: dict[str, tuple[str, ...]] = {
    "store": ("revenue", "new_contacts", "conversion", "repurchase", "private_value"),
    "staff": ("private_value", "revenue", "new_contacts", "conversion", "repurchase"),
    "koc": ("referrals", "revenue"),
}

#: A ratio measure: (numerator, denominator, reason when the denominator is 0).
RATIOS: dict[str, tuple[str, str, str]] = {
    "conversion": ("purchasers", "active", "no_active"),
    "repurchase": ("repeaters", "purchasers", "no_purchasers"),
    "reach_rate": ("reached", "reachable", "no_reachable"),
    "buy_rate": ("reached_buyers", "reached", "no_reached"),
}


@dataclass(frozen=True)
class Entry:
    """One ranked row (``rank`` None for the rest and total rows)."""

    rank: int | None
    key: int | None
    label: str
    counts: dict[str, Any]

    def figure(self, code: str) -> Figure:
        if code in RATIOS:
            num, den, reason = RATIOS[code]
            d = self.counts[den]
            return Figure(self.counts[num] / d) if d else Figure(None, reason)
        if code == "private_value":
            # 流量池 × 触达率 × 转化率 = reachable contacts reached and buying in the period.
            if not self.counts["reachable"]:
                return Figure(None, "no_reachable")
            if not self.counts["reached"]:
                return Figure(None, "no_reached")
            return Figure(self.counts["reached_buyers"])
        return Figure(self.counts[code])

    @property
    def figures(self) -> dict[str, Figure]:
        codes = (
            ("referrals", "referrals_total", "referred_buyers", "referred_orders", "revenue")
            if "referrals" in self.counts
            else (
                "new_contacts",
                "conversion",
                "repurchase",
                "revenue",
                "private_value",
                "reachable",
                "reach_rate",
                "buy_rate",
                "pool",
                "active",
                "purchasers",
            )
        )
        return {c: self.figure(c) for c in codes}


def why(figure: Figure) -> str:
    return str(REASONS[figure.reason]) if figure.reason else ""


@dataclass(frozen=True)
class Board:
    kind: str
    by: str
    start: date
    end: date
    top: list[Entry]
    rest: Entry | None  # None when every entity is listed
    total: Entry
    entities: int
    limit: int  # the N of top N


def _owner_groups(flags: Table, key: str) -> Table:
    f = flags.filter(flags[key].notnull())
    reached = (f.reachable == 1) & (f.events > 0)
    return f.group_by(key=f[key]).aggregate(
        pool=f.count(),
        new_contacts=f.is_new.sum(),
        active=f.count(where=(f.events > 0) | (f.orders > 0)),
        purchasers=f.count(where=f.orders > 0),
        repeaters=f.count(where=(f.orders > 0) & (f.orders_ever >= 2)),
        orders=f.orders.sum(),
        revenue=f.revenue.sum(),
        reachable=f.reachable.sum(),
        reached=f.count(where=reached),
        reached_buyers=f.count(where=reached & (f.orders > 0)),
    )


def _koc_groups(flags: Table) -> Table:
    f = flags.filter(flags.referred_by_id.notnull())
    g = f.group_by(key=f.referred_by_id).aggregate(
        referrals=f.is_new.sum(),
        referrals_total=f.count(),
        referred_buyers=f.count(where=f.orders > 0),
        referred_orders=f.orders.sum(),
        revenue=f.revenue.sum(),
    )
    # The KOC must be a contact in scope (its store for a staff login).
    kocs = flags.select(koc_id=flags.contact_id, label=flags.name)
    j = g.join(kocs, g.key == kocs.koc_id)
    return j.select(*g.columns, "label")


def _labelled(groups: Table, kind: str, workspace: Workspace) -> Table:
    if kind == "koc":
        return groups
    model = Store if kind == "store" else Staff
    t = table(model)
    names = t.filter(t.workspace_id == workspace.id).select(n_id=t.id, label=t.name)
    j = groups.left_join(names, groups.key == names.n_id)
    return j.select(*groups.columns, label=j.label.fill_null(""))


def _sort_value(g: Table, by: str) -> ibis.Value:
    if by in RATIOS:
        num, den, _reason = RATIOS[by]
        return g[num].cast(dt.float64) / g[den].nullif(0).cast(dt.float64)
    if by == "private_value":
        return ibis.ifelse(g.reached > 0, g.reached_buyers, ibis.null()).cast(dt.float64)
    return g[by].cast(dt.float64)


def _counts(names: tuple[str, ...], row: tuple) -> dict[str, Any]:
    return {
        n: _money(v) if n == "revenue" else int(v or 0) for n, v in zip(names, row, strict=True)
    }


def leaderboard(
    *,
    workspace: Workspace,
    kind: str,
    start: date,
    end: date,
    by: str | None = None,
    top: int = DEFAULT_TOP,
    store_id: int | None = None,
) -> Board:
    """The ``top`` entities of ``kind`` ranked by ``by`` (highest first, missing values last,
    ties by id), the rest summed in one row, and the total: two queries."""
    if kind not in KINDS:
        raise ValueError(f"unknown leaderboard kind {kind!r}")
    by = by or RANK_BY[kind][0]
    if by not in RANK_BY[kind]:
        raise ValueError(f"cannot rank {kind} by {by!r}")
    top = max(1, min(top, MAX_TOP))
    flags = contact_period_flags(workspace=workspace, start=start, end=end, store_id=store_id)
    if kind == "koc":
        groups, names = _koc_groups(flags), KOC_COUNTS
    else:
        key = "store_id" if kind == "store" else "owner_staff_id"
        groups, names = _owner_groups(flags, key), OWNER_COUNTS
    groups = _labelled(groups, kind, workspace)

    ranked = groups.mutate(sort=_sort_value(groups, by))
    ranked = ranked.order_by([ibis.desc(ranked.sort, nulls_first=False), ranked.key]).limit(top)
    top_rows = fetch(ranked.select("key", "label", *names))
    total_row = fetch(
        groups.aggregate(entities=groups.count(), **{n: groups[n].sum() for n in names})
    )
    entities, *total_values = total_row[0]
    total = Entry(None, None, str(_("合计")), _counts(names, tuple(total_values)))

    entries = [
        Entry(i + 1, row[0], row[1] or f"#{row[0]}", _counts(names, row[2:]))
        for i, row in enumerate(top_rows)
    ]
    rest = None
    if int(entities or 0) > len(entries):
        rest_counts = {
            n: total.counts[n] - sum((e.counts[n] for e in entries), type(total.counts[n])())
            for n in names
        }
        n_rest = int(entities) - len(entries)
        label = str(_("其余 %(n)d 个")) % {"n": n_rest}
        rest = Entry(None, None, label, rest_counts)
    return Board(kind, by, start, end, entries, rest, total, int(entities or 0), top)


#: Column headings of each board (code, name), in display and CSV order.
COLUMNS: dict[str, tuple[tuple[str, Promise, str], ...]] = {
    "owner": (
        ("new_contacts", _("新增客户（池增长）"), "count"),
        ("conversion", _("转化率"), "ratio"),
        ("repurchase", _("复购率"), "ratio"),
        ("revenue", _("收入"), "money"),
        ("private_value", _("私域价值"), "count"),
        ("reachable", _("流量池"), "count"),
        ("reach_rate", _("触达率"), "ratio"),
        ("buy_rate", _("转化率（触达后）"), "ratio"),
    ),
    "koc": (
        ("referrals", _("期内推荐新客"), "count"),
        ("referrals_total", _("累计推荐客户"), "count"),
        ("referred_buyers", _("被推荐客户中下单的"), "count"),
        ("referred_orders", _("被推荐客户订单数"), "count"),
        ("revenue", _("被推荐客户收入"), "money"),
    ),
}


def columns_for(kind: str) -> tuple[tuple[str, Promise, str], ...]:
    return COLUMNS["koc" if kind == "koc" else "owner"]
