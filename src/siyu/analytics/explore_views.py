"""Console pages of the explore analyses: funnel builder, retention heatmap, distribution and
attribution. Each page reads its question from the query string (so a link reproduces it), shows
a Plotly chart and a table, and returns the table as CSV with ``format=csv``. Bad input is shown
as a form error, never a 500; a staff member sees their store's contacts only."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from datetime import date, timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.analytics import attribution, distribution, funnels, retention
from siyu.analytics.explore import Scope, period, top_n
from siyu.analytics.queries import workspace_today
from siyu.audiences.services import segment_create_from_expression
from siyu.console.access import console_view, deferred_in_browser
from siyu.console.charts import chart_layout
from siyu.contacts.models import SourceChannel
from siyu.errors import ValidationFailed
from siyu.events.models import EventType
from siyu.tenancy.models import Role

SAVE_ROLES = (Role.OWNER, Role.OPERATOR)
COLOUR, SECOND_COLOUR = "#2f6fed", "#17a589"


DEFAULT_STEPS = ["page_view", "add_to_cart", funnels.ORDER]


def _date(request: HttpRequest, name: str, default: date) -> date:
    raw = request.GET.get(name) or request.POST.get(name)
    if not raw:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValidationFailed("invalid", _("日期格式应为 YYYY-MM-DD。"), path=name) from exc


def _int(request: HttpRequest, name: str, default: int) -> int:
    raw = request.GET.get(name) or request.POST.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValidationFailed("invalid", _("请输入整数。"), path=name) from exc


def _dates(request: HttpRequest) -> tuple[date, date]:
    today = workspace_today(request.workspace)
    return _date(request, "start", today - timedelta(days=29)), _date(request, "end", today)


def _csv(filename: str, header: list[str], rows: Iterable[list[Any]]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    response.write("\ufeff")  # Excel opens UTF-8 Chinese correctly only with a BOM
    writer = csv.writer(response)
    writer.writerow(header)
    writer.writerows(rows)
    return response


def _page(
    request: HttpRequest, template: str, build: Callable[[dict], HttpResponse | None]
) -> HttpResponse:
    """Renders ``template`` with what ``build`` adds to the context; a ValidationFailed becomes
    a form error (422) on the same page."""
    context: dict[str, Any] = {"query": request.GET.urlencode(), "params": request.GET}
    try:
        response = build(context)
    except ValidationFailed as exc:
        context["error"] = exc.message
        return render(request, template, context, status=422)
    return response or render(request, template, context)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


# --- funnel -------------------------------------------------------------------------------------


def _funnel_spec(request: HttpRequest) -> funnels.FunnelSpec:
    data = request.POST if request.method == "POST" else request.GET
    steps = [s for s in data.getlist("step") if s] or DEFAULT_STEPS
    start, end = _dates(request)
    return funnels.funnel_spec(
        scope=Scope.of(request.workspace, request.membership),
        steps=steps,
        window_days=_int(request, "window", 7),
        start=start,
        end=end,
        breakdown=data.get("breakdown") or None,
        top=_int(request, "top", 10),
    )


def _funnel_figure(result: funnels.FunnelResult) -> dict:
    return {
        "data": [
            {
                "type": "funnel",
                "y": [f"{s.number}. {s.label}" for s in result.steps],
                "x": [s.reached for s in result.steps],
                "textinfo": "value+percent initial",
                "marker": {"color": COLOUR},
            }
        ],
        "layout": chart_layout(margin={"l": 160, "r": 24, "t": 8, "b": 24}),
    }


@console_view()
@deferred_in_browser("analytics/explore/funnel.html")
def funnel_page(request: HttpRequest) -> HttpResponse:
    def build(context: dict) -> HttpResponse | None:
        context.update(
            {
                "step_choices": [(funnels.ORDER, _("下单")), *EventType.choices],
                "chosen_steps": request.GET.getlist("step") or DEFAULT_STEPS,
                "slots": range(funnels.MAX_STEPS),
                "breakdowns": funnels.BREAKDOWNS,
                "can_save": request.membership.role in SAVE_ROLES,
            }
        )
        context["start"], context["end"] = _dates(request)
        spec = _funnel_spec(request)
        result = funnels.funnel(spec)
        if request.GET.get("format") == "csv":
            header = [
                _("步骤"),
                _("到达人数"),
                _("较上一步转化率"),
                _("总转化率"),
                _("流失人数"),
                _("中位用时（小时）"),
            ]
            rows = [
                [
                    s.number,
                    s.label,
                    s.reached,
                    _pct(s.from_previous),
                    _pct(s.from_first),
                    s.dropped,
                    "" if s.median_seconds is None else round(s.median_seconds / 3600, 2),
                ]
                for s in result.steps
            ]
            rows += [[_("拆分"), b.label, *b.counts] for b in result.breakdown]
            return _csv("funnel", ["#", *header], rows)
        context.update(
            {
                "spec": spec,
                "result": result,
                "figure": _funnel_figure(result) if result.steps[0].reached else None,
            }
        )
        return None

    return _page(request, "analytics/explore/funnel.html", build)


@require_POST
@console_view(roles=SAVE_ROLES)
def funnel_save_dropoffs(request: HttpRequest) -> HttpResponse:
    """Saves the contacts who reached step k-1 but not step k as a static segment."""
    try:
        spec = _funnel_spec(request)
        step = _int(request, "dropoff_step", 2)
        segment = segment_create_from_expression(
            workspace=request.workspace,
            name=request.POST.get("name", ""),
            contact_ids=funnels.dropoff_expression(spec, step),
            source={
                "analysis": "funnel",
                "steps": [s.as_json() for s in spec.steps],
                "window_days": spec.window_days,
                "start": spec.window.start.isoformat(),
                "end": spec.window.end.isoformat(),
                "dropoff_step": step,
            },
            description=_("漏斗第 %(k)s 步流失的客户") % {"k": step},
            actor=request.user,
        )
    except ValidationFailed as exc:
        return render(
            request,
            "analytics/explore/funnel.html",
            {"error": exc.message, "query": "", "params": request.POST},
            status=422,
        )
    return redirect(reverse("console:audiences:segment", args=[segment.id]))


# --- retention ----------------------------------------------------------------------------------


def _heatmap(result: retention.RetentionResult) -> dict:
    z = [[None if v is None else round(v * 100, 1) for v in r.shares] for r in result.rows]
    return {
        "data": [
            {
                "type": "heatmap",
                "z": z,
                "x": result.headers,
                "y": [f"{r.start:%Y-%m-%d} ({r.size})" for r in result.rows],
                "colorscale": "Blues",
                "hovertemplate": "%{y} · %{x}: %{z}%<extra></extra>",
                "zmin": 0,
            }
        ],
        "layout": chart_layout(yaxis={"autorange": "reversed", "type": "category"}),
    }


@console_view()
@deferred_in_browser("analytics/explore/retention.html")
def retention_page(request: HttpRequest) -> HttpResponse:
    def build(context: dict) -> HttpResponse | None:
        context["channels"] = SourceChannel.choices
        today = workspace_today(request.workspace)
        start = context["start"] = _date(request, "start", today - timedelta(weeks=11))
        end = context["end"] = _date(request, "end", today)
        spec = retention.retention_spec(
            scope=Scope.of(request.workspace, request.membership),
            start=start,
            end=end,
            cohort=request.GET.get("cohort", "first_order"),
            unit=request.GET.get("unit", "week"),
            metric=request.GET.get("metric", "repurchase"),
            channel=request.GET.get("channel") or None,
            now=timezone.now(),
        )
        result = retention.retention(spec)
        if request.GET.get("format") == "csv":
            rows = [
                [
                    f"{r.start:%Y-%m-%d}",
                    r.size,
                    *["" if v is None else f"{v:.4f}" for v in r.shares],
                ]
                for r in result.rows
            ]
            return _csv("retention", [_("同期群"), _("人数"), *result.headers], rows)
        context.update(
            {
                "spec": spec,
                "result": result,
                "figure": None if result.message else _heatmap(result),
            }
        )
        return None

    return _page(request, "analytics/explore/retention.html", build)


# --- distribution -------------------------------------------------------------------------------


def _bars(labels: list[str], values: list[int], title: str) -> dict:
    return {
        "data": [{"type": "bar", "x": labels, "y": values, "marker": {"color": COLOUR}}],
        "layout": chart_layout(
            showlegend=False,
            xaxis={"type": "category", "title": {"text": title}},
            yaxis={"title": {"text": _("客户数")}, "rangemode": "tozero"},
        ),
    }


@console_view()
@deferred_in_browser("analytics/explore/distribution.html")
def distribution_page(request: HttpRequest) -> HttpResponse:
    def build(context: dict) -> HttpResponse | None:
        start, end = context["start"], context["end"] = _dates(request)
        window = period(request.workspace, start, end)
        result = distribution.distribution(Scope.of(request.workspace, request.membership), window)
        if request.GET.get("format") == "csv":
            rows = [[_("订单数"), b.label, b.contacts, ""] for b in result.orders]
            rows += [[_("消费金额"), b.label, b.contacts, b.revenue] for b in result.revenue]
            return _csv("distribution", [_("分布"), _("区间"), _("客户数"), _("金额")], rows)
        context.update(
            {
                "result": result,
                "orders_figure": _bars(
                    [b.label for b in result.orders],
                    [b.contacts for b in result.orders],
                    _("订单数"),
                ),
                "revenue_figure": _bars(
                    [b.label for b in result.revenue],
                    [b.contacts for b in result.revenue],
                    _("消费金额"),
                ),
            }
        )
        return None

    return _page(request, "analytics/explore/distribution.html", build)


# --- attribution --------------------------------------------------------------------------------


def _attribution_figure(result: attribution.Attribution) -> dict:
    def trace(name: str, rows: list[attribution.Credit], colour: str) -> dict:
        return {
            "type": "bar",
            "name": name,
            "x": [r.label for r in rows],
            "y": [float(r.revenue) for r in rows],
            "marker": {"color": colour},
        }

    return {
        "data": [
            trace(_("首次触点"), result.first, COLOUR),
            trace(_("末次触点"), result.last, SECOND_COLOUR),
        ],
        "layout": chart_layout(
            barmode="group", yaxis={"title": {"text": _("净收入")}, "tickprefix": "¥"}
        ),
    }


@console_view()
@deferred_in_browser("analytics/explore/attribution.html")
def attribution_page(request: HttpRequest) -> HttpResponse:
    def build(context: dict) -> HttpResponse | None:
        context["dimensions"] = attribution.DIMENSIONS
        start, end = context["start"], context["end"] = _dates(request)
        scope = Scope.of(request.workspace, request.membership)
        window = period(request.workspace, start, end)
        dimension = attribution.check_dimension(request.GET.get("dimension", "channel"))
        top = top_n(_int(request, "top", 10))
        result = attribution.attribution(scope, window, dimension, top)
        if request.GET.get("format") == "csv":
            rows = [
                [model, r.label, r.orders, r.revenue, _pct(r.share)]
                for model, credits in ((_("首次触点"), result.first), (_("末次触点"), result.last))
                for r in credits
            ]
            return _csv(
                "attribution", [_("模型"), _("来源"), _("订单数"), _("净收入"), _("占比")], rows
            )
        context.update(
            {
                "dimension": dimension,
                "result": result,
                "paths": attribution.first_order_paths(scope, window, top),
                "figure": None if result.message else _attribution_figure(result),
            }
        )
        return None

    return _page(request, "analytics/explore/attribution.html", build)
