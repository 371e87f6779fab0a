"""Metrics over the API: the metrics tree for a period and cut, the GMV and 销量 decomposition
against the previous period, and the health score.

Register with ``api.add_router("/v1/", router, tags=["metrics"])``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from django.http import HttpRequest
from ninja import Query, Router, Schema

from siyu.analytics import health, metrics
from siyu.analytics.metrics import Figure, Scope
from siyu.errors import ValidationFailed

router = Router()


class PeriodIn(Schema):
    start: date
    end: date
    cut: Literal["all", "store", "channel", "category"] = "all"


class FigureOut(Schema):
    value: Any
    reason: str | None
    why: str


class MetricOut(Schema):
    code: str
    name: str
    name_en: str
    formula: str
    unit: str
    now: FigureOut
    previous: FigureOut
    change: FigureOut


class SectionOut(Schema):
    key: str | int | None
    metrics: list[MetricOut]


class MetricsOut(Schema):
    start: date
    end: date
    previous_start: date
    previous_end: date
    cut: str
    sections: list[SectionOut]


class PartOut(Schema):
    factor: str
    amount: str


class DecompositionOut(Schema):
    result: str
    previous: str
    current: str
    change: str
    parts: list[PartOut]
    reason: str | None
    why: str


class SubScoreOut(Schema):
    code: str
    name: str
    definition: str
    weight: int
    raw: float | None
    score: float | None
    previous_raw: float | None
    previous_score: float | None
    reason: str | None


class HealthOut(Schema):
    start: date
    end: date
    score: float | None
    previous_score: float | None
    as_of: datetime | None  # the snapshot's time when read from one; null: counted now
    subscores: list[SubScoreOut]


def _figure(f: Figure) -> dict[str, Any]:
    value = (
        str(f.value) if f.value is not None and not isinstance(f.value, float | int) else f.value
    )
    return {"value": value, "reason": f.reason, "why": f.why}


def _check(period: PeriodIn) -> None:
    if period.end < period.start:
        raise ValidationFailed("invalid_period", "end is before start", path="end")
    if (period.end - period.start).days > 730:
        raise ValidationFailed("invalid_period", "at most 731 days", path="end")


@router.get("/metrics", response=MetricsOut)
def metrics_get(request: HttpRequest, period: Query[PeriodIn]) -> dict[str, Any]:
    """Every metric of the tree (money as decimal strings), its definition, the previous period
    and the change; a missing value carries its reason. ``cut=category`` gives one section per
    product category ("" = items of no known category); metrics that belong to contacts rather
    than products (traffic, new contacts, referrals, opt-outs) and spend-based ones carry a
    reason instead of a value."""
    _check(period)
    report = metrics.metrics_report(
        workspace=request.workspace, start=period.start, end=period.end, scope=Scope(cut=period.cut)
    )
    return {
        "start": report.start,
        "end": report.end,
        "previous_start": report.previous[0],
        "previous_end": report.previous[1],
        "cut": report.cut,
        "sections": [
            {
                "key": key,
                "metrics": [
                    {
                        "code": r.metric.code,
                        "name": str(r.metric.name),
                        "name_en": r.metric.name_en,
                        "formula": str(r.metric.formula),
                        "unit": r.metric.unit,
                        "now": _figure(r.now),
                        "previous": _figure(r.before),
                        "change": _figure(r.delta),
                    }
                    for r in rows
                ],
            }
            for key, rows in report.sections.items()
        ],
    }


@router.get("/metrics/decomposition", response=list[DecompositionOut])
def decomposition_get(request: HttpRequest, period: Query[PeriodIn]) -> list[dict[str, Any]]:
    """GMV = UV × 转化率 × 笔单价 and 销量 = UV × 转化率, this period against the previous one."""
    _check(period)
    scope = Scope()
    prev = metrics.previous_period(period.start, period.end)
    now = metrics.period_totals(
        workspace=request.workspace, start=period.start, end=period.end, scope=scope
    )["all"]
    before = metrics.period_totals(
        workspace=request.workspace, start=prev[0], end=prev[1], scope=scope
    )["all"]
    out = []
    for d in (metrics.decompose_gmv(before, now), metrics.decompose_orders(before, now)):
        out.append(
            {
                "result": d.result,
                "previous": str(d.before),
                "current": str(d.after),
                "change": str(d.total),
                "parts": [{"factor": n, "amount": str(p)} for n, p in d.parts],
                "reason": d.reason,
                "why": d.why,
            }
        )
    return out


@router.get("/health", response=HealthOut)
def health_get(request: HttpRequest, start: date, end: date) -> dict[str, Any]:
    """The health score and its sub-scores for the period, with the previous period's; read
    from the 15-minute job's snapshot when there is a usable one (``as_of`` says when)."""
    _check(PeriodIn(start=start, end=end))
    h = health.workspace_health(workspace=request.workspace, start=start, end=end)
    return {
        "start": h.start,
        "end": h.end,
        "score": h.score,
        "previous_score": h.previous_score,
        "as_of": h.as_of,
        "subscores": [
            {
                "code": s.definition.code,
                "name": str(s.definition.name),
                "definition": str(s.definition.definition),
                "weight": s.definition.weight,
                "raw": s.raw,
                "score": s.score,
                "previous_raw": s.previous_raw,
                "previous_score": s.previous_score,
                "reason": s.reason,
            }
            for s in h.subscores
        ],
    }
