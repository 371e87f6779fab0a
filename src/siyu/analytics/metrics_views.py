"""The 指标 console page: the metrics tree for a period and cut with each definition and the
change from the previous period, the GMV decomposition as a waterfall, the health score with its
sub-scores (and, for a user in several workspaces, the comparison across them), and the CSV of
the metrics table. A staff login sees its own store only."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _

from siyu.analytics import health, metrics
from siyu.analytics.metrics import Figure, Report, Scope
from siyu.audiences import queries as audiences_queries
from siyu.commerce import queries as commerce_queries
from siyu.console.access import console_view, deferred_in_browser
from siyu.console.charts import chart_layout
from siyu.contacts.models import SourceChannel
from siyu.errors import ValidationFailed
from siyu.tenancy.models import Membership, Role, Workspace

PRESETS = (7, 30, 90)
MAX_DAYS = 731


@dataclass(frozen=True)
class Request:
    """The page's parameters, validated."""

    start: date
    end: date
    days: int | None  # the preset, or None for a custom range
    cut: str
    segment_id: int | None
    staff_id: int | None


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def parse(params: Any, today: date) -> Request:
    """Last N days ending today (N in PRESETS), or a custom start..end; bad input falls back to
    the last 30 days rather than failing the page."""
    start, end = _date(params.get("start")), _date(params.get("end"))
    days = _int(params.get("days"))
    if start and end and start <= end and (end - start).days < MAX_DAYS:
        days = None
    else:
        days = days if days in PRESETS else 30
        start, end = today - timedelta(days=days - 1), today
    cut = params.get("cut") if params.get("cut") in metrics.CUTS else "all"
    return Request(start, end, days, cut, _int(params.get("segment")), _int(params.get("staff")))


def scope_for(*, workspace: Workspace, membership: Membership, req: Request) -> Scope:
    """The cut as a Scope; a staff member is pinned to their store (no store: nothing)."""
    store_id = None
    if membership.role == Role.STAFF:
        store_id = (
            commerce_queries.store_id_for_user(workspace=workspace, user=membership.user) or -1
        )
    if req.cut == "segment" and req.segment_id:
        segment = audiences_queries.segment_get(workspace=workspace, segment_id=req.segment_id)
        ids = audiences_queries.segment_expression(
            workspace=workspace, rule=segment.rule, membership=membership
        )
        return Scope(cut="segment", contact_ids=ids, store_id=store_id)
    if req.cut == "staff" and req.staff_id:
        ids = metrics.staff_contacts(workspace=workspace, staff_id=req.staff_id)
        return Scope(cut="staff", contact_ids=ids, store_id=store_id)
    if req.cut in ("segment", "staff"):
        return Scope(store_id=store_id)
    return Scope(cut=req.cut, store_id=store_id)


def show(figure: Figure, unit: str) -> str:
    """A figure as the page prints it; "—" when missing."""
    v = figure.value
    if v is None:
        return "—"
    if unit == "money":
        return f"¥{v:,.2f}"
    if unit == "ratio":
        return f"{v * 100:,.1f}%"
    if unit == "multiple":
        return f"{v:,.2f}×"
    return f"{v:,}"


def show_factor(figure: Figure, unit: str) -> str:
    """A factor of an event formula: minutes, per-minute rates and indices as plain numbers."""
    if figure.value is None:
        return "—"
    if unit == "minutes":
        return _("%(v)s 分钟") % {"v": f"{figure.value:,.2f}"}
    if unit == "rate":
        return _("%(v)s / 分钟") % {"v": f"{figure.value:,.4f}"}
    if unit == "index":
        return f"{figure.value:,.4f}"
    return show(figure, unit)


def _formulas(formulas: list[metrics.Formula]) -> list[dict[str, Any]]:
    return [
        {
            "code": f.code,
            "name": f.name,
            "formula": f.formula,
            "is_index": f.is_index,
            "value": show_factor(f.result, f.unit),
            "why": f.result.why,
            "holds": f.holds,
            "factors": [
                {
                    "code": x.code,
                    "name": x.name,
                    "definition": x.definition,
                    "value": show_factor(x.figure, x.unit),
                    "why": x.figure.why,
                }
                for x in f.factors
            ],
        }
        for f in formulas
    ]


def show_delta(figure: Figure) -> str:
    if figure.value is None:
        return "—"
    return f"{'+' if figure.value > 0 else ''}{figure.value * 100:.1f}%"


def _labels(workspace: Workspace, cut: str) -> dict[Any, str]:
    if cut == "store":
        labels: dict[Any, str] = {
            s.id: s.name for s in commerce_queries.stores_list(workspace=workspace)
        }
        labels[None] = _("无门店")
        return labels
    if cut == "channel":
        return {k: str(v) for k, v in SourceChannel.choices}
    if cut == "category":
        return {metrics.NO_CATEGORY: _("未分类商品")}
    return {"all": _("全部")}


def _waterfall(d: metrics.Decomposition) -> dict[str, Any]:
    names = {"uv": _("流量 UV"), "conversion": _("转化率"), "aov_gmv": _("笔单价")}
    x = [_("上期 GMV"), *[names[n] for n, _v in d.parts], _("本期 GMV")]
    y = [float(d.before), *[float(p) for _n, p in d.parts], float(d.after)]
    return {
        "data": [
            {
                "type": "waterfall",
                "x": x,
                "y": y,
                "measure": ["absolute", *["relative"] * len(d.parts), "total"],
                "texttemplate": "¥%{y:,.2f}",
                "textposition": "outside",
                "increasing": {"marker": {"color": "#17a589"}},
                "decreasing": {"marker": {"color": "#d9534f"}},
                "totals": {"marker": {"color": "#2f6fed"}},
            }
        ],
        "layout": chart_layout(margin={"l": 56, "r": 24, "t": 16, "b": 48}, showlegend=False),
    }


def _sections(report: Report, labels: dict[Any, str]) -> list[dict[str, Any]]:
    out = []
    for key, rows in report.sections.items():
        out.append(
            {
                "key": key,
                "label": labels.get(key, str(key)),
                "rows": [
                    {
                        "code": r.metric.code,
                        "name": r.metric.name,
                        "formula": r.metric.formula,
                        "level": r.metric.level,
                        "now": show(r.now, r.metric.unit),
                        "now_why": r.now.why,
                        "before": show(r.before, r.metric.unit),
                        "before_why": r.before.why,
                        "delta": show_delta(r.delta),
                        "delta_why": r.delta.why,
                        "up": r.delta.value is not None and r.delta.value > 0,
                    }
                    for r in rows
                ],
            }
        )
    return out


def _build(request: HttpRequest) -> tuple[Request, Scope, Report]:
    ws, membership = request.workspace, request.membership
    today = timezone.localdate()
    req = parse(request.GET, today)
    scope = scope_for(workspace=ws, membership=membership, req=req)
    report = metrics.metrics_report(workspace=ws, start=req.start, end=req.end, scope=scope)
    return req, scope, report


@console_view()
@deferred_in_browser("analytics/metrics.html")
def metrics_page(request: HttpRequest) -> HttpResponse:
    ws, membership = request.workspace, request.membership
    try:
        req, scope, report = _build(request)
    except ValidationFailed as exc:  # a segment whose rule no longer compiles
        return render(request, "analytics/metrics.html", {"error": exc.message}, status=400)
    whole = metrics.period_totals(
        workspace=ws,
        start=req.start,
        end=req.end,
        scope=Scope(cut="all", contact_ids=scope.contact_ids, store_id=scope.store_id),
    )["all"]
    prev = metrics.period_totals(
        workspace=ws,
        start=report.previous[0],
        end=report.previous[1],
        scope=Scope(cut="all", contact_ids=scope.contact_ids, store_id=scope.store_id),
    )["all"]
    decomposition = metrics.decompose_gmv(prev, whole)
    orders_split = metrics.decompose_orders(prev, whole)
    store_id = scope.store_id
    h = health.workspace_health(workspace=ws, start=req.start, end=req.end, store_id=store_id)
    comparison = (
        health.health_comparison(memberships=request.memberships, start=req.start, end=req.end)
        if len(request.memberships) > 1 and membership.role != Role.STAFF
        else []
    )
    names = {"uv": _("流量 UV"), "conversion": _("转化率"), "aov_gmv": _("笔单价")}
    formulas = metrics.event_formulas(workspace=ws, start=req.start, end=req.end, store_id=store_id)
    context = {
        "formulas": _formulas(formulas),
        "req": req,
        "presets": PRESETS,
        "report": report,
        "sections": _sections(report, _labels(ws, report.cut)),
        "decomposition": decomposition,
        "decomposition_parts": [(names[n], p) for n, p in decomposition.parts],
        "orders_parts": [(names[n], p) for n, p in orders_split.parts],
        "orders_split": orders_split,
        "waterfall": _waterfall(decomposition) if decomposition.parts else None,
        "health": h,
        "comparison": comparison,
        "segments": audiences_queries.segments_list(workspace=ws),
        "staff_list": commerce_queries.staff_list(workspace=ws),
        "is_staff": membership.role == Role.STAFF,
        "query": request.GET.urlencode(),
    }
    return render(request, "analytics/metrics.html", context)


@console_view()
def metrics_csv(request: HttpRequest) -> HttpResponse:
    """The metrics table as shown, one row per cut value and metric, UTF-8 with BOM for Excel."""
    req, _scope, report = _build(request)
    labels = _labels(request.workspace, report.cut)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="metrics-{req.start}-{req.end}-{report.cut}.csv"'
    )
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(
        [_("切分"), _("指标代码"), _("指标"), _("本期"), _("上期"), _("变化"), _("说明"), _("定义")]
    )
    for key, rows in report.sections.items():
        for r in rows:
            writer.writerow(
                [
                    labels.get(key, key),
                    r.metric.code,
                    str(r.metric.name),
                    "" if r.now.value is None else r.now.value,
                    "" if r.before.value is None else r.before.value,
                    "" if r.delta.value is None else round(r.delta.value, 4),
                    r.now.why,
                    str(r.metric.formula),
                ]
            )
    return response
