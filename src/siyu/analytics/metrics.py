"""The metrics tree: every formula of DESIGN.md as a named metric, computed for any period and cut,
and the period-over-period decomposition of GMV and 销量 into their factors.

Figures come from the daily rollups (one small ``SUM … GROUP BY`` over at most a few hundred rows
per day), so a cut by store or source channel costs nothing extra. A cut by segment or by the
owning staff member has no rollup dimension: the very same rollup expression is computed on the
fly for just those contacts (``rollups.daily_expression(contact_ids=…)``).

Additive definitions keep the tree exact: traffic (UV) over a period is the sum of each day's
unique visitors (visitor-days), so 销量 = UV × 转化率 and GMV = UV × 转化率 × 笔单价 hold to the
fen for any period. A ratio whose denominator is zero is ``None`` with a reason, shown as "—".
See docs/metrics.md for every definition.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import ibis
import ibis.expr.datatypes as dt
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from ibis.expr.types import Table

from siyu.analytics import rollups
from siyu.analytics.tables import fetch, table
from siyu.commerce import queries as commerce_queries
from siyu.commerce.models import Order, OrderItem, Product
from siyu.contacts.models import (
    Consent,
    ConsentChannel,
    ConsentStatus,
    Contact,
    Identity,
    IdentityKind,
)
from siyu.events.models import Event, EventType
from siyu.tenancy.models import Workspace

FEN = Decimal("0.01")
ZERO = Decimal("0.00")
_MONEY = dt.Decimal(precision=16, scale=2)

#: Why a figure is missing. Shown next to the "—".
REASONS: dict[str, Promise] = {
    "no_visitors": _("期内没有访客（UV 为 0），无法计算转化率。"),
    "no_orders": _("期内没有订单，无法计算单价与复购。"),
    "no_spend": _("这段时间没有录入渠道支出。"),
    "zero_spend": _("录入的支出为 0，比值无从计算。"),
    "spend_not_by_cut": _("支出按渠道录入，不能分摊到门店、人群、导购或品类。"),
    "category_no_traffic": _("流量（UV）按客户行为记录，不分商品品类，按品类切分时无法计算。"),
    "category_no_contacts": _("新客与推荐按客户记录，不属于某个品类，按品类切分时无法计算。"),
    "category_no_opt_outs": _("退订按客户记录，不属于某个品类。"),
    "no_first_orders": _("期内没有首单客户，无法估算购买频次。"),
    "no_organic_new": _("期内没有非推荐带来的新客户，无法计算推荐系数。"),
    "no_new_contacts": _("期内没有新增客户，无法计算获客成本。"),
    "no_previous": _("上期没有数据，无法比较。"),
    "zero_factor": _("某个因子在一期为 0，对数分解需要两期都为正数。"),
}

CUTS = ("all", "store", "channel", "segment", "staff", "category")
#: The key of the category section for items whose product is unknown or has no category.
NO_CATEGORY = ""
#: Metrics a product-category cut cannot give, and why: traffic, new contacts, referrals and
#: opt-outs belong to contacts, not to the products of an order (docs/metrics.md).
NOT_BY_CATEGORY: dict[str, str] = {
    "uv": "category_no_traffic",
    "conversion": "category_no_traffic",
    "new_contacts": "category_no_contacts",
    "referral_new_contacts": "category_no_contacts",
    "referral_coef": "category_no_contacts",
    "user_value": "category_no_contacts",
    "opt_outs": "category_no_opt_outs",
}


@dataclass(frozen=True)
class Figure:
    """A computed value, or None and the code of the reason it could not be computed."""

    value: Any
    reason: str | None = None

    @property
    def why(self) -> str:
        return str(REASONS[self.reason]) if self.reason else ""


@dataclass(frozen=True)
class Totals:
    """The rollup measures summed over a period for one cut value, plus the period's spend."""

    new_contacts: int = 0
    referral_new_contacts: int = 0
    uv: int = 0
    purchasers: int = 0
    orders: int = 0
    first_orders: int = 0
    gmv: Decimal = ZERO
    refunds: Decimal = ZERO
    discount: Decimal = ZERO
    referred_revenue: Decimal = ZERO
    cost: Decimal = ZERO
    uncosted_items: int = 0
    opt_outs: int = 0
    spend: Figure = field(default_factory=lambda: Figure(None, "no_spend"))
    by_category: bool = False  # restricted to the order items of one product category


def _money(value: Any) -> Decimal:
    """SQLite sums decimals as floating point; every sum is brought back to exact fen."""
    return Decimal(str(value or 0)).quantize(FEN, rounding=ROUND_HALF_UP)


def _ratio(num: float | Decimal, den: float | Decimal, reason: str) -> Figure:
    return Figure(float(num) / float(den)) if den else Figure(None, reason)


def _money_ratio(num: Decimal, den: float | Decimal, reason: str) -> Figure:
    return (
        Figure((Decimal(num) / Decimal(den)).quantize(FEN, ROUND_HALF_UP))
        if den
        else Figure(None, reason)
    )


@dataclass(frozen=True)
class Metric:
    code: str
    name: Promise
    name_en: str
    formula: Promise
    unit: str  # count, money, ratio (shown as %), multiple (shown as ×)
    level: int
    compute: Callable[[Totals], Figure]


def _revenue(t: Totals) -> Decimal:
    return t.gmv - t.refunds


def _repurchase(t: Totals) -> Figure:
    return _ratio(t.orders - t.first_orders, t.orders, "no_orders")


def _frequency(t: Totals) -> Figure:
    return _ratio(t.orders, t.first_orders, "no_first_orders")


def _referral_coef(t: Totals) -> Figure:
    return _ratio(
        t.referral_new_contacts, t.new_contacts - t.referral_new_contacts, "no_organic_new"
    )


def _user_value(t: Totals) -> Figure:
    aov = _money_ratio(_revenue(t), t.orders, "no_orders")
    freq, coef = _frequency(t), _referral_coef(t)
    for part in (aov, freq, coef):
        if part.value is None:
            return part
    value = aov.value * Decimal(str(freq.value)) * (1 + Decimal(str(coef.value)))
    return Figure(value.quantize(FEN, ROUND_HALF_UP))


def _with_spend(t: Totals, fn: Callable[[Decimal], Figure]) -> Figure:
    if t.spend.value is None:
        return t.spend
    return fn(t.spend.value)


def _profit(t: Totals) -> Figure:
    return _with_spend(t, lambda s: Figure(_revenue(t) - t.cost - s))


def _roi_seed(t: Totals) -> Figure:
    return _with_spend(t, lambda s: _ratio(s + _revenue(t), s, "zero_spend"))


def _roi(t: Totals) -> Figure:
    return _with_spend(t, lambda s: _ratio(_revenue(t), s, "zero_spend"))


def _cac(t: Totals) -> Figure:
    return _with_spend(t, lambda s: _money_ratio(s, t.new_contacts, "no_new_contacts"))


#: The tree, in display order; ``level`` indents a factor under the result it explains.
METRICS: tuple[Metric, ...] = (
    Metric("profit", _("利润"), "Profit", _("利润 = 收入 − 成本 − 支出"), "money", 0, _profit),
    Metric(
        "revenue",
        _("收入"),
        "Revenue",
        _("收入 = 销量 × 客单价（已扣退款）"),
        "money",
        1,
        lambda t: Figure(_revenue(t)),
    ),
    Metric(
        "orders",
        _("销量"),
        "Orders",
        _("销量 = 流量 × 转化率"),
        "count",
        2,
        lambda t: Figure(t.orders),
    ),
    Metric(
        "uv",
        _("流量 UV"),
        "Traffic (UV)",
        _("每天有任一行为的去重客户数，按天相加（访客人天）"),
        "count",
        3,
        lambda t: Figure(t.uv),
    ),
    Metric(
        "conversion",
        _("转化率"),
        "Conversion rate",
        _("转化率 = 销量 ÷ 流量"),
        "ratio",
        3,
        lambda t: _ratio(t.orders, t.uv, "no_visitors"),
    ),
    Metric(
        "aov",
        _("客单价"),
        "Average order value",
        _("客单价 = 收入 ÷ 销量"),
        "money",
        2,
        lambda t: _money_ratio(_revenue(t), t.orders, "no_orders"),
    ),
    Metric(
        "cost",
        _("成本"),
        "Cost of goods",
        _("成本 = Σ 商品成本 × 数量（成本已知的商品）"),
        "money",
        1,
        lambda t: Figure(t.cost),
    ),
    Metric(
        "spend",
        _("支出"),
        "Spend",
        _("支出 = 录入的渠道花费，按天数分摊到期间"),
        "money",
        1,
        lambda t: t.spend,
    ),
    Metric(
        "gmv",
        "GMV",
        "GMV",
        _("GMV = UV × 转化率 × 笔单价（支付金额，未扣退款）"),
        "money",
        0,
        lambda t: Figure(t.gmv),
    ),
    Metric(
        "aov_gmv",
        _("笔单价"),
        "GMV per order",
        _("笔单价 = GMV ÷ 销量"),
        "money",
        1,
        lambda t: _money_ratio(t.gmv, t.orders, "no_orders"),
    ),
    Metric(
        "user_value",
        _("用户价值"),
        "User value",
        _("用户价值 = 客单价 × 购买频次 × (1 + 推荐系数)"),
        "money",
        0,
        _user_value,
    ),
    Metric(
        "frequency",
        _("购买频次"),
        "Purchases per customer",
        _("购买频次 = 销量 ÷ 首单数：每位新买家带来的订单数"),
        "multiple",
        1,
        _frequency,
    ),
    Metric(
        "referral_coef",
        _("推荐系数"),
        "Referral coefficient",
        _("推荐系数 = 推荐新客 ÷ 非推荐新客：每位自然新客带来的推荐新客"),
        "ratio",
        1,
        _referral_coef,
    ),
    Metric(
        "repurchase",
        _("复购率"),
        "Repeat-order rate",
        _("复购率 = (销量 − 首单数) ÷ 销量：老客订单占比"),
        "ratio",
        1,
        _repurchase,
    ),
    Metric(
        "roi_seed",
        _("投入产出比（种子口径）"),
        "ROI, seed form (spend + return) / spend",
        _("(投入 + 产出) ÷ 投入 × 100%，投入 = 支出，产出 = 收入"),
        "ratio",
        0,
        _roi_seed,
    ),
    Metric(
        "roi",
        _("投入产出比（常用口径）"),
        "ROI, usual form return / spend",
        _("产出 ÷ 投入，投入 = 支出，产出 = 收入"),
        "multiple",
        0,
        _roi,
    ),
    Metric(
        "cac",
        _("获客成本 CAC"),
        "Customer acquisition cost",
        _("CAC = 支出 ÷ 新增客户"),
        "money",
        0,
        _cac,
    ),
    Metric(
        "new_contacts",
        _("新增客户"),
        "New contacts",
        _("期内首次出现的客户"),
        "count",
        1,
        lambda t: Figure(t.new_contacts),
    ),
    Metric(
        "referral_new_contacts",
        _("推荐新客"),
        "Referred new contacts",
        _("新增客户中有推荐人的"),
        "count",
        1,
        lambda t: Figure(t.referral_new_contacts),
    ),
    Metric(
        "discount",
        _("优惠金额"),
        "Discounts",
        _("Σ 订单优惠"),
        "money",
        0,
        lambda t: Figure(t.discount),
    ),
    Metric(
        "opt_outs",
        _("退订"),
        "Opt-outs",
        _("期内退订任一渠道的客户次数"),
        "count",
        0,
        lambda t: Figure(t.opt_outs),
    ),
)
METRIC_BY_CODE = {m.code: m for m in METRICS}


# --- reading the totals -----------------------------------------------------------------------


def period_source(
    *, workspace: Workspace, start: date, end: date, contact_ids: Table | None = None
) -> Table:
    """The rollup rows of the period: the stored table, or — for a contact subset — the rollup
    expression computed on the fly (one chunk per ≤31 days, unioned)."""
    if contact_ids is None:
        return rollups.rollup_table()
    parts = [
        rollups.daily_expression(workspace=workspace, first=a, last=b, contact_ids=contact_ids)
        for a, b in rollups.chunks(start, end)
    ]
    return ibis.union(*parts, distinct=False)


def staff_contacts(*, workspace: Workspace, staff_id: int) -> Table:
    """The contacts a staff member owns, as the ``contact_ids`` of a staff cut."""
    c = table(Contact)
    return c.filter(c.workspace_id == workspace.id, c.owner_staff_id == staff_id).select(
        contact_id=c.id
    )


def category_totals_expression(
    *, workspace: Workspace, start: date, end: date, store_id: int | None = None
) -> Table:
    """The order measures of ``MEASURES`` per product category over local days ``start``..``end``,
    restricted to the order items of each category (docs/metrics.md, "Cut by product category").

    An order counts once in every category it has items of. Its paid amount, refunds and
    discount are shared among its categories in proportion to their items' amounts, so the
    categories' GMV adds up to the GMV of the orders that have items. A first order is the
    buyer's first order ever with an item of the category (so 复购率 is repeat buying within the
    category). Cost is product cost × quantity of the category's items. Traffic, new contacts,
    referrals and opt-outs belong to contacts and stay 0 here (shown as "—")."""
    t0 = rollups.day_range(workspace, start, start).start
    t1 = rollups.day_range(workspace, end, end).end
    wid = workspace.id

    p = table(Product)
    p = p.filter(p.workspace_id == wid).select(
        product_id=p.id, category=p.category, unit_cost=p.cost
    )
    i = table(OrderItem)
    i = i.filter(i.workspace_id == wid).select(
        order_id=i.order_id, product_id=i.product_id, quantity=i.quantity, amount=i.amount
    )
    i = i.left_join(p, "product_id")
    i = i.select(
        "order_id",
        "quantity",
        "amount",
        "unit_cost",
        category=i.category.fill_null(NO_CATEGORY),
    )
    per_cat = i.group_by(["order_id", "category"]).aggregate(
        cat_amount=i.amount.sum(),
        cost=(i.unit_cost * i.quantity).sum(),
        uncosted_items=i.order_id.count(where=i.unit_cost.isnull()),
    )
    per_order = i.group_by(o_id=i.order_id).aggregate(items_amount=i.amount.sum())

    c = table(Contact)
    c = c.filter(c.workspace_id == wid)
    if store_id is not None:
        c = c.filter(c.store_id == store_id)
    c = c.select(c_id=c.id, referred=c.referred_by_id.notnull())

    o = table(Order)
    o = o.filter(o.workspace_id == wid, o.paid_at < t1)
    o = o.select(
        order_id=o.id,
        contact_id=o.contact_id,
        paid_at=o.paid_at,
        amount=o.amount,
        refunded=o.refunded_amount,
        discount=o.discount_amount,
    )
    j = o.join(c, o.contact_id == c.c_id).join(per_cat, "order_id")
    j = j.join(per_order, j.order_id == per_order.o_id)
    share = ibis.ifelse(
        j.items_amount > 0, j.cat_amount.cast("float64") / j.items_amount.cast("float64"), 0.0
    )
    j = j.select(
        "order_id",
        "contact_id",
        "paid_at",
        "category",
        "cost",
        "uncosted_items",
        "referred",
        gmv=j.amount.cast("float64") * share,
        refunds=j.refunded.cast("float64") * share,
        discount=j.discount.cast("float64") * share,
        first_at=j.paid_at.min().over(group_by=[j.contact_id, j.category]),
    )
    j = j.filter(j.paid_at >= t0)
    zero = ibis.literal(0, type=dt.int64)
    return (
        j.group_by("category")
        .aggregate(
            new_contacts=zero,
            referral_new_contacts=zero,
            uv=zero,
            purchasers=j.contact_id.nunique(),
            orders=j.order_id.count(),
            first_orders=j.contact_id.nunique(where=j.paid_at == j.first_at),
            gmv=j.gmv.sum(),
            refunds=j.refunds.sum(),
            discount=j.discount.sum(),
            referred_revenue=(j.gmv - j.refunds).sum(where=j.referred).fill_null(0),
            cost=j.cost.sum().fill_null(0),
            uncosted_items=j.uncosted_items.sum(),
            opt_outs=zero,
        )
        .order_by("category")
    )


def totals_expression(
    *,
    source: Table,
    workspace: Workspace,
    start: date,
    end: date,
    by: str | None = None,
    store_id: int | None = None,
) -> Table:
    """Sum of every measure over local days ``start``..``end``, per ``by`` (store_id or
    source_channel) or in total; ``store_id`` narrows to one store (a staff member's view)."""
    t = source.filter(source.workspace_id == workspace.id, source.day >= start, source.day <= end)
    if store_id is not None:
        t = t.filter(t.store_id == store_id)
    sums = {m: t[m].sum() for m in rollups.MEASURES}
    if by is None:
        return t.aggregate(**sums)
    return t.group_by(by).aggregate(**sums).order_by(by)


def _totals(row: tuple) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for (name, kind), value in zip(rollups.MEASURES.items(), row, strict=True):
        out[name] = _money(value) if kind.is_decimal() else int(value or 0)
    return out


def _month_days(month: date) -> int:
    nxt = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (nxt - month).days


def spend_by_channel(*, workspace: Workspace, start: date, end: date) -> dict[str, Decimal]:
    """Channel spend over the period: each monthly amount × the share of its days in the period."""
    out: dict[str, Decimal] = {}
    rows = commerce_queries.channel_spend_list(workspace=workspace, month_from=start, month_to=end)
    for row in rows.values_list("channel", "month", "amount"):
        channel, month, amount = row
        month_end = month + timedelta(days=_month_days(month) - 1)
        overlap = (min(end, month_end) - max(start, month)).days + 1
        if overlap > 0:
            share = Decimal(amount) * overlap / _month_days(month)
            out[channel] = out.get(channel, Decimal(0)) + share
    return {k: v.quantize(FEN, ROUND_HALF_UP) for k, v in out.items()}


def _spend_figure(amounts: list[Decimal]) -> Figure:
    return Figure(sum(amounts, ZERO)) if amounts else Figure(None, "no_spend")


@dataclass(frozen=True)
class Scope:
    """Which slice of the workspace: a cut (and for segment/staff, the contacts), and a fixed
    store for a staff member's login."""

    cut: str = "all"
    contact_ids: Table | None = None
    store_id: int | None = None


def period_totals(
    *, workspace: Workspace, start: date, end: date, scope: Scope
) -> dict[Any, Totals]:
    """Totals per cut value (key "all" when not cut by store, channel or category)."""
    if scope.cut == "category":
        rows = fetch(
            category_totals_expression(
                workspace=workspace, start=start, end=end, store_id=scope.store_id
            )
        )
        no_cut_spend = Figure(None, "spend_not_by_cut")
        return {
            row[0]: Totals(**_totals(row[1:]), spend=no_cut_spend, by_category=True) for row in rows
        }
    by = {"store": "store_id", "channel": "source_channel"}.get(scope.cut)
    source = period_source(workspace=workspace, start=start, end=end, contact_ids=scope.contact_ids)
    expr = totals_expression(
        source=source, workspace=workspace, start=start, end=end, by=by, store_id=scope.store_id
    )
    rows = fetch(expr)
    spend = spend_by_channel(workspace=workspace, start=start, end=end)
    # Spend belongs to channels: only the whole workspace or a channel carries it.
    has_spend = scope.cut in ("all", "channel") and scope.store_id is None
    no_cut_spend = Figure(None, "spend_not_by_cut")
    if by is None:
        totals = _totals(rows[0]) if rows else {}
        s = _spend_figure(list(spend.values())) if has_spend else no_cut_spend
        return {"all": Totals(**totals, spend=s)}
    out = {}
    for row in rows:
        key, values = row[0], _totals(row[1:])
        if by == "source_channel" and has_spend:
            s = _spend_figure([spend[key]] if key in spend else [])
        else:
            s = no_cut_spend
        out[key] = Totals(**values, spend=s)
    if by == "source_channel" and has_spend:
        # A channel with spend but no contacts yet still shows its spend (and a CAC of "—").
        for key, amount in spend.items():
            out.setdefault(key, Totals(spend=Figure(amount)))
    return out


def evaluate(totals: Totals) -> dict[str, Figure]:
    if totals.by_category:
        return {
            m.code: Figure(None, NOT_BY_CATEGORY[m.code])
            if m.code in NOT_BY_CATEGORY
            else m.compute(totals)
            for m in METRICS
        }
    return {m.code: m.compute(totals) for m in METRICS}


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The period of the same length just before."""
    days = (end - start).days + 1
    return start - timedelta(days=days), start - timedelta(days=1)


def change(now: Figure, before: Figure) -> Figure:
    """Relative change, None when either side is missing or the base is 0."""
    if now.value is None or before.value is None:
        return Figure(None, now.reason or before.reason or "no_previous")
    if before.value == 0:
        return Figure(None, "no_previous")
    return Figure(float(now.value) / float(before.value) - 1)


# --- decomposition ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Decomposition:
    """How much of ``total`` (V1 − V0) each factor explains; the parts add up to it exactly."""

    result: str
    before: Any
    after: Any
    total: Decimal | None
    parts: list[tuple[str, Decimal]]
    reason: str | None = None

    @property
    def why(self) -> str:
        return str(REASONS[self.reason]) if self.reason else ""


def _log_mean(a: float, b: float) -> float:
    return a if a == b else (a - b) / (math.log(a) - math.log(b))


def lmdi(
    result: str,
    before: list[tuple[str, Any]],
    after: list[tuple[str, Any]],
    v0: Decimal,
    v1: Decimal,
) -> Decomposition:
    """LMDI-I (Ang 2004): factor k explains L(V1, V0) · ln(x1k / x0k), where L is the
    logarithmic mean. For V = Π xk these add up to V1 − V0 exactly; rounded to the fen, the
    rounding remainder goes to the largest part so the shown parts still add up to the change."""
    total = v1 - v0
    values = [x for _, x in before] + [x for _, x in after]
    if any(x is None or x <= 0 for x in values):
        return Decomposition(result, v0, v1, total, [], "zero_factor")
    weight = _log_mean(float(v1), float(v0))
    parts = [
        (name, Decimal(weight * math.log(float(x1) / float(x0))).quantize(FEN, ROUND_HALF_UP))
        for (name, x0), (_n, x1) in zip(before, after, strict=True)
    ]
    remainder = total - sum((p for _, p in parts), ZERO)
    if remainder:
        biggest = max(range(len(parts)), key=lambda i: abs(parts[i][1]))
        parts[biggest] = (parts[biggest][0], parts[biggest][1] + remainder)
    return Decomposition(result, v0, v1, total, parts)


def _factors(t: Totals) -> list[tuple[str, Any]]:
    conv = Decimal(t.orders) / Decimal(t.uv) if t.uv else None
    aov = t.gmv / t.orders if t.orders else None
    return [("uv", Decimal(t.uv)), ("conversion", conv), ("aov_gmv", aov)]


def decompose_gmv(before: Totals, after: Totals) -> Decomposition:
    """GMV = UV × 转化率 × 笔单价, period over period."""
    return lmdi("gmv", _factors(before), _factors(after), before.gmv, after.gmv)


def decompose_orders(before: Totals, after: Totals) -> Decomposition:
    """销量 = UV × 转化率, period over period (parts in orders, to 0.01)."""
    return lmdi(
        "orders",
        _factors(before)[:2],
        _factors(after)[:2],
        Decimal(before.orders),
        Decimal(after.orders),
    )


# --- the report the page and the API show -----------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One metric for one cut value: this period, the previous one, and the change."""

    metric: Metric
    now: Figure
    before: Figure
    delta: Figure


@dataclass(frozen=True)
class Report:
    start: date
    end: date
    previous: tuple[date, date]
    cut: str
    sections: dict[Any, list[Row]]  # cut value → rows in tree order
    totals: dict[Any, tuple[Totals, Totals]]  # cut value → (now, before)


def metrics_report(*, workspace: Workspace, start: date, end: date, scope: Scope) -> Report:
    """Every metric for the period and the one before, per cut value."""
    prev = previous_period(start, end)
    now = period_totals(workspace=workspace, start=start, end=end, scope=scope)
    before = period_totals(workspace=workspace, start=prev[0], end=prev[1], scope=scope)
    sections: dict[Any, list[Row]] = {}
    pairs: dict[Any, tuple[Totals, Totals]] = {}
    empty = (
        Totals(spend=Figure(None, "spend_not_by_cut"), by_category=True)
        if scope.cut == "category"
        else Totals()
    )
    for key in list(now) + [k for k in before if k not in now]:
        t_now, t_before = now.get(key, empty), before.get(key, empty)
        pairs[key] = (t_now, t_before)
        f_now, f_before = evaluate(t_now), evaluate(t_before)
        sections[key] = [
            Row(m, f_now[m.code], f_before[m.code], change(f_now[m.code], f_before[m.code]))
            for m in METRICS
        ]
    return Report(start, end, prev, scope.cut, sections, pairs)


# --- the three formulas computed from events on the fly ---------------------------------------
#
# 私域 GMV (short-video form), 私域价值 and 社交红利 need distinct contacts and event durations,
# which the daily rollups do not keep, so they are computed on the raw tables for the period: one
# per-contact expression (``contact_period_flags``) summed in one query. docs/metrics.md gives
# every measurable definition.

#: Why one of the three event formulas could not be computed.
FORMULA_REASONS: dict[str, Promise] = {
    "no_content_viewers": _("期内没有内容浏览（content_view）访客。"),
    "no_content_time": _("内容浏览没有记录时长（duration_seconds）。"),
    "no_content_buyers": _("内容访客期内没有下单。"),
    "no_reachable": _("流量池为空：没有可免费触达的客户。"),
    "no_reached": _("期内没有被触达（有行为）的池内客户。"),
    "no_seeded": _("被触达的客户期内没有浏览商品。"),
    "no_active": _("期内没有活跃客户。"),
    "no_contacts": _("客户池为空。"),
}
REASONS.update(FORMULA_REASONS)

#: Channels on which reaching a contact costs nothing per message (as in the health score).
FREE_CHANNELS = (ConsentChannel.WECOM, ConsentChannel.OFFICIAL_ACCOUNT, ConsentChannel.MINI_PROGRAM)
INFO_EVENTS = (EventType.MESSAGE_READ.value, EventType.CONTENT_VIEW.value)
SOCIAL_EVENTS = (EventType.SHARE.value, EventType.INVITE.value)


def reachable_contact_ids(*, workspace: Workspace) -> Table:
    """Contacts reachable for free: consent granted on WeCom, Official Account or mini program,
    or a WeCom external-user identity (the 流量池 rule, shared with the health score)."""
    k = table(Consent)
    granted = k.filter(
        k.workspace_id == workspace.id,
        k.status == ConsentStatus.GRANTED.value,
        k.channel.isin([ch.value for ch in FREE_CHANNELS]),
    )
    i = table(Identity)
    wecom = i.filter(
        i.workspace_id == workspace.id, i.kind == IdentityKind.WECOM_EXTERNAL_USERID.value
    )
    return ibis.union(
        granted.select(contact_id=granted.contact_id),
        wecom.select(contact_id=wecom.contact_id),
        distinct=True,
    )


def contact_period_flags(
    *, workspace: Workspace, start: date, end: date, store_id: int | None = None
) -> Table:
    """One row per contact first seen before the end of local day ``end`` (the pool), with what
    it did in local days ``start``..``end``: events by kind, content seconds, orders, GMV and net
    revenue, plus its orders ever (to the end) and whether it is reachable for free.
    ``store_id`` narrows to one store's contacts (a staff login)."""
    t0 = rollups.day_range(workspace, start, start).start
    t1 = rollups.day_range(workspace, end, end).end
    wid = workspace.id

    c = table(Contact)
    c = c.filter(c.workspace_id == wid, c.first_seen_at < t1)
    if store_id is not None:
        c = c.filter(c.store_id == store_id)
    base = c.select(
        contact_id=c.id,
        name=c.name,
        store_id=c.store_id,
        owner_staff_id=c.owner_staff_id,
        referred_by_id=c.referred_by_id,
        is_new=ibis.ifelse(c.first_seen_at >= t0, 1, 0).cast(dt.int64),
    )

    e = table(Event)
    e = e.filter(e.workspace_id == wid, e.occurred_at >= t0, e.occurred_at < t1)
    content = e.type == EventType.CONTENT_VIEW.value
    ev = e.group_by(ev_id=e.contact_id).aggregate(
        events=e.count(),
        product_views=e.count(where=e.type == EventType.PRODUCT_VIEW.value),
        content_views=e.count(where=content),
        content_seconds=e.duration_seconds.sum(where=content),
        info_events=e.count(where=e.type.isin(INFO_EVENTS)),
        social_events=e.count(where=e.type.isin(SOCIAL_EVENTS)),
    )

    o = table(Order)
    o = o.filter(o.workspace_id == wid, o.paid_at < t1)
    in_period = o.paid_at >= t0
    od = o.group_by(o_id=o.contact_id).aggregate(
        orders=o.count(where=in_period),
        gmv=o.amount.sum(where=in_period),
        revenue=(o.amount - o.refunded_amount).sum(where=in_period),
        orders_ever=o.count(),
    )

    reach = reachable_contact_ids(workspace=workspace)
    reach = reach.select(r_id=reach.contact_id, reachable=ibis.literal(1, type=dt.int64))

    j = base.left_join(ev, base.contact_id == ev.ev_id)
    j = j.left_join(od, j.contact_id == od.o_id)
    j = j.left_join(reach, j.contact_id == reach.r_id)
    counts = (
        "events",
        "product_views",
        "content_views",
        "content_seconds",
        "info_events",
        "social_events",
        "orders",
        "orders_ever",
        "reachable",
    )
    return j.select(
        *base.columns,
        **{name: j[name].cast(dt.int64).fill_null(0) for name in counts},
        gmv=j.gmv.cast(_MONEY).fill_null(0),
        revenue=j.revenue.cast(_MONEY).fill_null(0),
    )


@dataclass(frozen=True)
class Factor:
    code: str
    name: Promise
    definition: Promise
    unit: str  # count, ratio, multiple, money, minutes
    figure: Figure


@dataclass(frozen=True)
class Formula:
    """A formula with its result and each factor; ``holds`` says the product of the factors
    equals the result exactly (checked with fractions, not floats)."""

    code: str
    name: Promise
    name_en: str
    formula: Promise
    unit: str
    result: Figure
    factors: list[Factor]
    holds: bool | None
    is_index: bool = False


_F = Fraction


def _frac(
    num: int | Decimal | Fraction, den: int | Decimal | Fraction, reason: str
) -> tuple[Fraction | None, Figure]:
    """Exact: money (Decimal), counts and minutes (a Fraction of seconds) divide without
    rounding, so the factors multiply back to the result."""
    if not den:
        return None, Figure(None, reason)
    value = _F(num) / _F(den)
    return value, Figure(float(value))


def _holds(parts: list[Fraction | None], result: Fraction) -> bool | None:
    if any(p is None for p in parts):
        return None
    product = _F(1)
    for p in parts:
        product *= p
    return product == result


def _first_missing(figures: list[Figure]) -> Figure | None:
    return next((f for f in figures if f.value is None), None)


def formula_counts(
    *, workspace: Workspace, start: date, end: date, store_id: int | None = None
) -> dict[str, Any]:
    """The counts behind the three event formulas, in one query over ``contact_period_flags``."""
    f = contact_period_flags(workspace=workspace, start=start, end=end, store_id=store_id)
    viewer = f.content_views > 0
    reached = (f.reachable == 1) & (f.events > 0)
    seeded = reached & (f.product_views > 0)
    active = (f.events > 0) | (f.orders > 0)
    expr = f.aggregate(
        pool=f.count(),
        active=f.count(where=active),
        referred=f.count(where=f.referred_by_id.notnull()),
        info_events=f.info_events.sum(),
        social_events=f.social_events.sum(),
        viewers=f.count(where=viewer),
        content_seconds=f.content_seconds.sum(where=viewer),
        viewer_buyers=f.count(where=viewer & (f.orders > 0)),
        viewer_orders=f.orders.sum(where=viewer),
        viewer_gmv=f.gmv.sum(where=viewer),
        reachable=f.count(where=f.reachable == 1),
        reached=f.count(where=reached),
        seeded=f.count(where=seeded),
        seeded_buyers=f.count(where=seeded & (f.orders > 0)),
    )
    row = fetch(expr)[0]
    out = dict(zip(expr.columns, row, strict=True))
    return {k: _money(v) if k == "viewer_gmv" else int(v or 0) for k, v in out.items()}


def _short_video_gmv(n: dict[str, Any]) -> Formula:
    gmv = n["viewer_gmv"]
    minutes = _F(n["content_seconds"], 60)
    uv = Figure(n["viewers"]) if n["viewers"] else Figure(None, "no_content_viewers")
    t, t_fig = _frac(minutes, n["viewers"], "no_content_viewers")
    r, r_fig = (
        _frac(n["viewer_buyers"], minutes, "no_content_time")
        if n["viewers"]
        else (None, Figure(None, "no_content_viewers"))
    )
    p, p_fig = _frac(gmv, n["viewer_orders"], "no_content_buyers")
    f, f_fig = _frac(n["viewer_orders"], n["viewer_buyers"], "no_content_buyers")
    if p_fig.value is not None:
        p_fig = Figure(gmv / n["viewer_orders"])
    factors = [
        Factor("uv", _("UV"), _("期内有内容浏览的去重客户"), "count", uv),
        Factor(
            "content_minutes",
            _("内容消费时长"),
            _("内容浏览时长（分钟）÷ UV：每位访客的平均分钟数"),
            "minutes",
            t_fig,
        ),
        Factor(
            "order_per_minute",
            _("单位时长订单转化率"),
            _("下单的内容访客 ÷ 内容总分钟：每分钟内容带来的下单客户"),
            "rate",
            r_fig,
        ),
        Factor("order_price", _("订单价"), _("内容访客的 GMV ÷ 其订单数"), "money", p_fig),
        Factor(
            "repeat_frequency",
            _("复购频次"),
            _("内容访客的订单数 ÷ 下单的内容访客"),
            "multiple",
            f_fig,
        ),
    ]
    missing = _first_missing([x.figure for x in factors])
    result = missing if missing else Figure(gmv)
    holds = _holds([_F(n["viewers"]), t, r, p, f], _F(gmv)) if not missing else None
    return Formula(
        "short_video_gmv",
        _("私域 GMV（短视频口径）"),
        "Private-domain GMV, short-video form",
        _("UV × 内容消费时长 × 单位时长订单转化率 × 订单价 × 复购频次"),
        "money",
        result,
        factors,
        holds,
    )


def _private_value(n: dict[str, Any]) -> Formula:
    pool = Figure(n["reachable"]) if n["reachable"] else Figure(None, "no_reachable")
    reach, reach_fig = _frac(n["reached"], n["reachable"], "no_reachable")
    seed, seed_fig = _frac(n["seeded"], n["reached"], "no_reached")
    _fan, fan_fig = _frac(n["seeded"], n["reachable"], "no_reachable")
    conv, conv_fig = _frac(n["seeded_buyers"], n["seeded"], "no_seeded")
    factors = [
        Factor(
            "pool", _("流量池"), _("可免费触达的客户（企微好友或免费渠道已同意）"), "count", pool
        ),
        Factor(
            "fan_power",
            _("圈粉能力"),
            _("圈粉能力 = 触达率 × 种草率 = 种草客户 ÷ 流量池"),
            "ratio",
            fan_fig,
        ),
        Factor(
            "reach_rate", _("触达率"), _("期内有任一行为的池内客户 ÷ 流量池"), "ratio", reach_fig
        ),
        Factor("seed_rate", _("种草率"), _("被触达客户中期内浏览过商品的占比"), "ratio", seed_fig),
        Factor(
            "fan_conversion",
            _("粉丝变现率"),
            _("种草客户中期内下单的占比"),
            "ratio",
            conv_fig,
        ),
    ]
    missing = _first_missing([x.figure for x in factors])
    result = missing if missing else Figure(n["seeded_buyers"])
    parts = [_F(n["reachable"]), reach, seed, conv]
    holds = _holds(parts, _F(n["seeded_buyers"])) if not missing else None
    return Formula(
        "private_value",
        _("私域价值"),
        "Private-domain value",
        _("流量池 × 圈粉能力（触达率 × 种草率）× 粉丝变现率 = 变现粉丝数"),
        "count",
        result,
        factors,
        holds,
    )


def _social_dividend(n: dict[str, Any]) -> Formula:
    info, info_fig = _frac(n["info_events"], n["active"], "no_active")
    links, links_fig = _frac(n["referred"], n["pool"], "no_contacts")
    inter, inter_fig = _frac(n["social_events"], n["active"], "no_active")
    factors = [
        Factor(
            "information",
            _("信息"),
            _("期内消息阅读与内容浏览次数 ÷ 活跃客户"),
            "multiple",
            info_fig,
        ),
        Factor(
            "relationship",
            _("关系链"),
            _("有推荐人的客户 ÷ 客户池：每位客户的推荐关系数"),
            "multiple",
            links_fig,
        ),
        Factor(
            "interaction",
            _("互动"),
            _("期内分享与邀请次数 ÷ 活跃客户"),
            "multiple",
            inter_fig,
        ),
    ]
    missing = _first_missing([x.figure for x in factors])
    value = info * links * inter if not missing else None
    return Formula(
        "social_dividend",
        _("社交红利指数"),
        "Social dividend index",
        _("信息 × 关系链 × 互动（无量纲指数，只宜同口径跨期或跨门店比较）"),
        "index",
        missing if missing else Figure(float(value)),
        factors,
        True if value is not None else None,
        is_index=True,
    )


def event_formulas(
    *, workspace: Workspace, start: date, end: date, store_id: int | None = None
) -> list[Formula]:
    """私域 GMV (short-video form), 私域价值 and the 社交红利 index for the period, each with
    its factors; a zero denominator gives None and its reason."""
    n = formula_counts(workspace=workspace, start=start, end=end, store_id=store_id)
    return [_short_video_gmv(n), _private_value(n), _social_dividend(n)]
