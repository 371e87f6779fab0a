"""Reads of experiments: lists, lookups, a contact's variant, and the results.

The results are one SQL statement (an Ibis expression run by ``analytics.tables.fetch``): each
assignment joined to its qualifying orders gives per-contact conversion and net revenue, which
are summed per variant with their sums of squares; ``stats`` turns those sufficient statistics
into intervals, tests and the verdict. No order ever reaches Python.

A qualifying order is paid at or after the contact's assignment and before its window ends (and
before ``end_at`` once the experiment is finished); a fully refunded order does not convert, and
revenue is net of refunds.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from siyu.analytics.tables import fetch, table, utc_cutoff
from siyu.commerce.models import Order, OrderStatus
from siyu.errors import NotFound
from siyu.experiments import stats
from siyu.experiments.models import Experiment, ExperimentAssignment
from siyu.tenancy.models import Workspace

HOLDOUT = "holdout"


def experiments_list(*, workspace: Workspace) -> QuerySet[Experiment]:
    return (
        Experiment.objects.filter(workspace=workspace)
        .select_related("segment")
        .order_by("-created_at", "-id")
    )


def experiment_get(*, workspace: Workspace, experiment_id: int) -> Experiment:
    experiment = (
        Experiment.objects.filter(workspace=workspace, id=experiment_id)
        .select_related("segment")
        .first()
    )
    if experiment is None:
        raise NotFound("not_found", _("实验 %(id)s 不存在。") % {"id": experiment_id})
    return experiment


def variant_for(experiment: Experiment, contact_id: int) -> str | None:
    """The variant the contact was assigned (what a journey branches on), or None when the
    contact is not in the experiment; assign first with ``services.experiment_assign``."""
    return (
        ExperimentAssignment.objects.filter(
            workspace_id=experiment.workspace_id, experiment=experiment, contact_id=contact_id
        )
        .values_list("variant", flat=True)
        .first()
    )


def control_key(experiment: Experiment) -> str:
    """The variant others are compared with: ``holdout`` when there is one, else the first."""
    keys = [v["key"] for v in experiment.variants]
    return HOLDOUT if HOLDOUT in keys else keys[0]


@dataclass(frozen=True)
class VariantResult:
    key: str
    weight: int
    is_control: bool
    contacts: int
    converters: int
    conversion_rate: float
    conversion_interval: stats.Interval
    revenue: float
    revenue_per_contact: float
    revenue_interval: stats.Interval
    conversion_diff: stats.Comparison | None
    revenue_diff: stats.Comparison | None
    minimum_detectable_effect: float | None


@dataclass(frozen=True)
class ExperimentResults:
    control: str
    variants: list[VariantResult]
    verdicts: list[str]

    @property
    def contacts(self) -> int:
        return sum(v.contacts for v in self.variants)


def _per_variant(experiment: Experiment) -> dict[str, tuple[int, int, float, float]]:
    """(contacts, converters, revenue sum, revenue sum of squares) per variant key."""
    ws = experiment.workspace_id
    a = table(ExperimentAssignment)
    a = a.filter(a.workspace_id == ws, a.experiment_id == experiment.id)
    o = table(Order)
    o = o.filter(o.workspace_id == ws, o.status != OrderStatus.REFUNDED.value)
    if experiment.end_at is not None:
        o = o.filter(o.paid_at < ibis.literal(utc_cutoff(experiment.end_at)))
    o = o.select(
        order_contact=o.contact_id,
        paid_at=o.paid_at,
        net=(o.amount - o.refunded_amount).cast("float64"),
    )
    joined = a.left_join(
        o,
        [
            a.contact_id == o.order_contact,
            o.paid_at >= a.assigned_at,
            o.paid_at < a.window_ends_at,
        ],
    )
    per_contact = joined.group_by([joined.contact_id, joined.variant]).aggregate(
        orders=joined.order_contact.count(),
        revenue=joined.net.sum().fill_null(0.0),
    )
    per_variant = per_contact.group_by(per_contact.variant).aggregate(
        contacts=per_contact.count(),
        converters=(per_contact.orders > 0).ifelse(1, 0).sum(),
        revenue=per_contact.revenue.sum(),
        squares=(per_contact.revenue * per_contact.revenue).sum(),
    )
    return {
        key: (int(n), int(x or 0), float(s or 0), float(q or 0))
        for key, n, x, s, q in fetch(per_variant)
    }


def experiment_results(*, workspace: Workspace, experiment: Experiment) -> ExperimentResults:
    """Per variant: contacts, converters, conversion with its Wilson interval, revenue per
    contact with its t interval; for each non-control variant the difference from the control
    in conversion (two-proportion z-test) and revenue per contact (Welch), and the verdict."""
    if experiment.workspace_id != workspace.id:
        raise NotFound("not_found", _("实验 %(id)s 不存在。") % {"id": experiment.id})
    sums = _per_variant(experiment)
    control = control_key(experiment)
    n0, x0, s0, q0 = sums.get(control, (0, 0, 0.0, 0.0))
    rows = []
    for variant in experiment.variants:
        key = variant["key"]
        n, x, s, q = sums.get(key, (0, 0, 0.0, 0.0))
        is_control = key == control
        rows.append(
            VariantResult(
                key=key,
                weight=variant["weight"],
                is_control=is_control,
                contacts=n,
                converters=x,
                conversion_rate=x / n if n else 0.0,
                conversion_interval=stats.wilson(x, n),
                revenue=s,
                revenue_per_contact=s / n if n else 0.0,
                revenue_interval=stats.mean_interval(n, s, q),
                conversion_diff=None if is_control else stats.two_proportions(x0, n0, x, n),
                revenue_diff=None if is_control else stats.welch((n0, s0, q0), (n, s, q)),
                minimum_detectable_effect=None
                if is_control
                else stats.minimum_detectable_effect(x0 / n0 if n0 else 0.0, n0, n),
            )
        )
    by_key = {r.key: r for r in rows}
    verdicts = [verdict(by_key[control], r) for r in rows if not r.is_control]
    return ExperimentResults(control=control, variants=rows, verdicts=verdicts)


def _points(rate: float) -> str:
    return f"{rate * 100:.1f}"


def verdict(control: VariantResult, variant: VariantResult) -> str:
    """One plain sentence on conversion (and revenue when it differs significantly), with the
    interval, and what sample would be needed when nothing is significant yet."""
    c, v = control.key, variant.key
    diff = variant.conversion_diff
    if diff is None:
        return _("%(v)s 与 %(c)s 还没有足够的客户可以比较。") % {"v": v, "c": c}
    interval = {
        "v": v,
        "c": c,
        "diff": _points(abs(diff.difference)),
        "low": _points(diff.interval.low),
        "high": _points(diff.interval.high),
    }
    if diff.significant and diff.difference != 0:
        text = (
            _(
                "%(v)s 的转化率比 %(c)s 高 %(diff)s 个百分点 "
                "(95%% 置信区间 %(low)s–%(high)s)，差异显著。"
            )
            if diff.difference > 0
            else _(
                "%(v)s 的转化率比 %(c)s 低 %(diff)s 个百分点 "
                "(95%% 置信区间 %(low)s–%(high)s)，差异显著。"
            )
        ) % interval
    else:
        text = _(
            "%(v)s 与 %(c)s 的转化率差异不显著 (相差 %(diff)s 个百分点，"
            "95%% 置信区间 %(low)s–%(high)s)，需要更多样本 (当前每组 %(n)s 人)。"
        ) % {**interval, "n": min(control.contacts, variant.contacts)}
        if variant.minimum_detectable_effect is not None:
            text += _(
                "以当前样本量，能可靠检出 (把握度 80%%) 的最小差异约为 %(mde)s 个百分点。"
            ) % {"mde": _points(variant.minimum_detectable_effect)}
    revenue = variant.revenue_diff
    if revenue is not None and revenue.significant and revenue.difference != 0:
        values = {
            "v": v,
            "c": c,
            "diff": f"{abs(revenue.difference):,.2f}",
            "low": f"{revenue.interval.low:,.2f}",
            "high": f"{revenue.interval.high:,.2f}",
        }
        text += (
            _(
                "%(v)s 的人均收入比 %(c)s 高 ¥%(diff)s (95%% 置信区间 ¥%(low)s–¥%(high)s)，差异显著。"
            )
            if revenue.difference > 0
            else _(
                "%(v)s 的人均收入比 %(c)s 低 ¥%(diff)s (95%% 置信区间 ¥%(low)s–¥%(high)s)，差异显著。"
            )
        ) % values
    return text
