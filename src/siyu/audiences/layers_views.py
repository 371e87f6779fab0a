"""The console's layers page (分层): the RFM matrix of the eight classes, the contacts per
lifecycle stage and intent layer, the month-over-month stage flow (a Sankey and the same numbers
as a table), the layer configuration and the button that recomputes the layers; and the contacts
of one class, stage or intent layer.

Every role reads (a staff member over their store's contacts only); owners and operators change
the configuration and recompute. Reads go through ``layers_queries``, writes through
``layers_services``; docs/layers.md states the rules."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect
from django_tasks import TaskResult, TaskResultStatus
from django_tasks.exceptions import TaskResultDoesNotExist, TaskResultMismatch

from siyu.audiences import layers_queries as queries
from siyu.audiences import layers_services as services
from siyu.audiences import tasks
from siyu.audiences.models import IntentLayer, LayerConfig, LifecycleStage, RFMClass, RFMMethod
from siyu.commerce import queries as commerce_queries
from siyu.console.access import console_view
from siyu.console.charts import chart_layout
from siyu.errors import ValidationFailed
from siyu.tenancy.models import Role

WRITE_ROLES = (Role.OWNER, Role.OPERATOR)
CONTACTS_PER_PAGE = 25
#: No store has this id: a staff login bound to no store sees no contacts (as in the contacts
#: list), rather than the whole workspace's.
NO_STORE = 0

#: One colour per stage, the same in the cards, the Sankey and the table.
STAGE_COLOURS = {
    LifecycleStage.PROSPECT: "#9aa3b5",
    LifecycleStage.NEW: "#2f6fed",
    LifecycleStage.REPEAT: "#17a589",
    LifecycleStage.LOYAL: "#7b4fd6",
    LifecycleStage.DORMANT: "#e0a030",
    LifecycleStage.CHURNED: "#d64545",
}
NO_RECORD_COLOUR = "#c4cad6"

#: The configuration form: (setting, label, help, unit); the order of the form.
CONFIG_FIELDS = (
    ("rfm_window_days", gettext_lazy("RFM 窗口"), gettext_lazy("只看最近 N 天内支付的订单"), "d"),
    (
        "rfm_recency_days",
        gettext_lazy("R 阈值"),
        gettext_lazy("阈值法：最近一单不超过 N 天为高"),
        "d",
    ),
    ("rfm_frequency", gettext_lazy("F 阈值"), gettext_lazy("阈值法：窗口内至少 N 单为高"), "o"),
    (
        "rfm_monetary",
        gettext_lazy("M 阈值"),
        gettext_lazy("阈值法：窗口内净消费不低于该金额为高"),
        "¥",
    ),
    ("loyal_orders", gettext_lazy("忠诚客订单数"), gettext_lazy("至少 N 单……"), "o"),
    ("loyal_window_days", gettext_lazy("忠诚客窗口"), gettext_lazy("……在最近 N 天内"), "d"),
    (
        "dormant_factor",
        gettext_lazy("沉睡倍数"),
        gettext_lazy("距上次购买超过 k × 自身购买间隔为沉睡"),
        "×",
    ),
    (
        "churned_factor",
        gettext_lazy("流失倍数"),
        gettext_lazy("超过 k × 自身购买间隔为流失，须大于沉睡倍数"),
        "×",
    ),
    (
        "default_interval_days",
        gettext_lazy("默认购买间隔"),
        gettext_lazy("还没有人复购时，只买过一次的客户按此间隔判断"),
        "d",
    ),
    (
        "intent_window_days",
        gettext_lazy("意向窗口"),
        gettext_lazy("统计最近 N 天的互动与报价"),
        "d",
    ),
    (
        "intent_min_interactions",
        gettext_lazy("意向互动次数"),
        gettext_lazy("窗口内至少 N 次浏览、加购、消息点击或内容阅读为意向"),
        "n",
    ),
)
_DECIMAL_FIELDS = {"rfm_monetary", "dormant_factor", "churned_factor"}

#: The contacts lists: URL kind -> (ContactLayer column, choices).
LIST_KINDS: dict[str, tuple[str, Any]] = {
    "rfm": ("rfm_class", RFMClass),
    "lifecycle": ("lifecycle_stage", LifecycleStage),
    "intent": ("intent_layer", IntentLayer),
}


def _store_id(request: HttpRequest) -> int | None:
    """None (the whole workspace) except for staff, who see their own store only."""
    if request.membership.role != Role.STAFF:
        return None
    found = commerce_queries.store_id_for_user(workspace=request.workspace, user=request.user)
    return found or NO_STORE


def _month(text: str | None, months: list[date]) -> date | None:
    """The month asked for as YYYY-MM if it has a snapshot, the newest one otherwise."""
    for month in months:
        if text == month.strftime("%Y-%m"):
            return month
    return months[0] if months else None


def _previous(month: date) -> date:
    return date(month.year - 1, 12, 1) if month.month == 1 else date(month.year, month.month - 1, 1)


# --- display ------------------------------------------------------------------------------------


def _rfm_rows(cells: list[queries.RFMCell]) -> tuple[list[dict[str, Any]], int]:
    """The matrix as two rows (重要 / 一般: M high or low) of four cells (value, develop, keep,
    retain: R and F high or low), each cell with its share of the classified contacts."""
    total = sum(cell.contacts for cell in cells)
    shown = [{"cell": cell, "share": cell.contacts / total if total else 0.0} for cell in cells]
    return [
        {"label": _("重要（M 高）"), "cells": shown[:4]},
        {"label": _("一般（M 低）"), "cells": shown[4:]},
    ], total


def _stage_label(stage: str | None) -> str:
    return str(LifecycleStage(stage).label) if stage else _("无记录")


def _sankey_figure(flows: list[queries.StageFlow], month: date) -> dict[str, Any]:
    """A Sankey from the stages at the end of the previous month (left) to the stages at the end
    of ``month`` (right); nodes are labelled with their month so the direction reads alone."""
    before, after = _previous(month).strftime("%Y-%m"), month.strftime("%Y-%m")
    nodes: dict[tuple[str, str | None], int] = {}
    labels: list[str] = []
    colours: list[str] = []

    def node(side: str, stage: str | None) -> int:
        key = (side, stage)
        if key not in nodes:
            nodes[key] = len(labels)
            labels.append(f"{before if side == 'from' else after} {_stage_label(stage)}")
            colours.append(STAGE_COLOURS.get(stage, NO_RECORD_COLOUR))
        return nodes[key]

    # Nodes in the lifecycle order on both sides, so the chart reads top to bottom alike.
    order = [None, *LifecycleStage.values]
    for stage in order:
        if any(f.from_stage == stage for f in flows):
            node("from", stage)
    for stage in order:
        if any(f.to_stage == stage for f in flows):
            node("to", stage)
    sources = [node("from", f.from_stage) for f in flows]
    targets = [node("to", f.to_stage) for f in flows]
    return {
        "data": [
            {
                "type": "sankey",
                "arrangement": "snap",
                "valueformat": ",d",
                "node": {
                    "label": labels,
                    "color": colours,
                    "pad": 14,
                    "thickness": 16,
                    "line": {"color": "#ffffff", "width": 1},
                    "hovertemplate": "%{label}<br>%{value:,d}<extra></extra>",
                },
                "link": {
                    "source": sources,
                    "target": targets,
                    "value": [f.contacts for f in flows],
                    "color": [
                        _soft(STAGE_COLOURS.get(f.from_stage, NO_RECORD_COLOUR)) for f in flows
                    ],
                    "hovertemplate": "%{source.label} → %{target.label}<br>%{value:,d}"
                    "<extra></extra>",
                },
            }
        ],
        "layout": chart_layout(margin={"l": 8, "r": 8, "t": 8, "b": 8}, height=380),
    }


def _soft(colour: str) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},0.35)"


def _flow_table(flows: list[queries.StageFlow]) -> dict[str, Any]:
    """The flows as a from × to table: every stage as a column; as rows the stages, plus "no
    record" when someone had no snapshot the month before; totals on both sides."""
    counts = {(f.from_stage, f.to_stage): f.contacts for f in flows}
    stages = list(LifecycleStage.values)
    row_stages: list[str | None] = stages + (
        [None] if any(f.from_stage is None for f in flows) else []
    )
    rows = []
    for stage in row_stages:
        values = [counts.get((stage, to), 0) for to in stages]
        rows.append(
            {
                "stage": stage,
                "label": _stage_label(stage),
                "cells": [
                    {"n": n, "same": stage == to} for n, to in zip(values, stages, strict=True)
                ],
                "total": sum(values),
            }
        )
    return {
        "columns": [{"stage": s, "label": _stage_label(s)} for s in stages],
        "rows": rows,
        "totals": [sum(counts.get((f, to), 0) for f in row_stages) for to in stages],
        "total": sum(counts.values()),
    }


# --- the page -----------------------------------------------------------------------------------


def _config_values(config: LayerConfig) -> dict[str, str]:
    values = {name: getattr(config, name) for name, *_rest in CONFIG_FIELDS}
    return {
        "rfm_method": config.rfm_method,
        **{name: "" if value is None else str(value) for name, value in values.items()},
    }


def _page(
    request: HttpRequest,
    *,
    config_values: dict[str, str] | None = None,
    config_error: tuple[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    ws = request.workspace
    store_id = _store_id(request)
    overview = queries.layers_overview(workspace=ws, store_id=store_id)
    rows, classified = _rfm_rows(overview.rfm)
    stages, intents = overview.stages, overview.intents
    months = queries.snapshot_months(workspace=ws)
    month = _month(request.GET.get("month"), months)
    values = config_values or _config_values(queries.layer_config_get(workspace=ws))
    error_path, error = config_error or ("", "")
    return render(
        request,
        "audiences/layers.html",
        {
            "computed_at": queries.layers_computed_at(workspace=ws),
            "rfm_rows": rows,
            "rfm_columns": [
                _("价值（R 高 F 高）"),
                _("发展（R 高 F 低）"),
                _("保持（R 低 F 高）"),
                _("挽留（R 低 F 低）"),
            ],
            "classified": classified,
            "layered": sum(stages.values()),
            "stages": [
                {"code": s, "label": LifecycleStage(s).label, "n": n, "colour": STAGE_COLOURS[s]}
                for s, n in stages.items()
            ],
            "intents": [
                {"code": i, "label": IntentLayer(i).label, "n": n} for i, n in intents.items()
            ],
            "months": months,
            "month": month,
            "config_fields": [
                {
                    "name": name,
                    "label": label,
                    "help": help_text,
                    "unit": unit,
                    "value": values.get(name, ""),
                    "error": error if error_path == name else "",
                    "step": "0.01" if name in _DECIMAL_FIELDS else "1",
                }
                for name, label, help_text, unit in CONFIG_FIELDS
            ],
            "config_method": values.get("rfm_method", RFMMethod.QUINTILE),
            "config_method_error": error if error_path == "rfm_method" else "",
            # A refusal without a field of the form is shown above it.
            "config_error": error
            if error and error_path not in {"rfm_method", *(f[0] for f in CONFIG_FIELDS)}
            else "",
            "methods": RFMMethod.choices,
            "can_write": request.membership.role in WRITE_ROLES,
            "staff_scoped": store_id is not None,
            # A refresh handed to the worker: the page polls its status until it finishes.
            "task_id": request.GET.get("task", "")
            if request.membership.role in WRITE_ROLES
            else "",
        },
        status=status,
    )


@console_view()
def layers_home(request: HttpRequest) -> HttpResponse:
    return _page(request)


@console_view()
def layers_flow(request: HttpRequest) -> HttpResponse:
    """The stage flow of a month (the Sankey and the table), which the layers page loads after
    it has shown: at a million contacts the flow takes seconds, the rest of the page a fraction
    of one, so the page shows a "computing" line until it arrives."""
    ws = request.workspace
    month = _month(request.GET.get("month"), queries.snapshot_months(workspace=ws))
    flows = (
        queries.stage_flow(workspace=ws, month=month, store_id=_store_id(request)) if month else []
    )
    return render(
        request,
        "audiences/_layers_flow.html",
        {
            "month": month,
            "previous_month": _previous(month) if month else None,
            "figure": _sankey_figure(flows, month) if flows else None,
            "flow_table": _flow_table(flows) if flows else None,
        },
    )


def _posted_value(name: str, text: str) -> Any:
    """A form value as the service takes it: blank is None (no threshold), whole numbers are
    ints; anything else goes as typed, so the service's refusal names it."""
    text = text.strip()
    if not text:
        return None
    if name in _DECIMAL_FIELDS:
        return text
    try:
        return int(text)
    except ValueError:
        return text


@require_POST
@console_view(roles=WRITE_ROLES)
def layers_config(request: HttpRequest) -> HttpResponse:
    """Saves the configuration; a refusal re-renders the page with the service's message next to
    the setting it names and what was typed kept in the form."""
    typed = {"rfm_method": request.POST.get("rfm_method", "")}
    typed.update({name: request.POST.get(name, "") for name, *_rest in CONFIG_FIELDS})
    values = {name: _posted_value(name, text) for name, text in typed.items()}
    try:
        services.layer_config_update(workspace=request.workspace, values=values, actor=request.user)
    except ValidationFailed as exc:
        return _page(
            request, config_values=typed, config_error=(exc.path or "", exc.message), status=422
        )
    messages.success(request, _("分层配置已保存，重新计算后生效。"))
    return redirect(reverse("console:audiences:layers") + "#config")


def _refreshed_message(request: HttpRequest, done: dict[str, Any]) -> None:
    messages.success(
        request,
        _("已重新计算 %(n)s 位客户的分层（%(month)s 快照已更新）。")
        % {"n": done["contacts"], "month": done["month"]},
    )


@require_POST
@console_view(roles=WRITE_ROLES)
def layers_recompute(request: HttpRequest) -> HttpResponse:
    """Hands the refresh to the worker (a few seconds for the demo's 20,000 contacts on SQLite,
    too long to hold the request) and returns to the page, which polls the task's status."""
    result = tasks.refresh_layers.enqueue(request.workspace.id)
    if result.status == TaskResultStatus.SUCCESSFUL:  # a backend that runs tasks at once
        _refreshed_message(request, result.return_value)
        return redirect("console:audiences:layers")
    if result.status == TaskResultStatus.FAILED:
        messages.error(request, _("重新计算失败，请稍后再试。"))
        return redirect("console:audiences:layers")
    return redirect(reverse("console:audiences:layers") + f"?task={result.id}")


def _refresh_result(request: HttpRequest, task_id: str) -> TaskResult:
    """The refresh task of this workspace; anything else (another workspace's, another task's,
    an unknown id) is not found."""
    try:
        result = tasks.refresh_layers.get_result(task_id)
    except (TaskResultDoesNotExist, TaskResultMismatch, ValueError, ValidationError) as exc:
        raise Http404 from exc
    if list(result.args) != [request.workspace.id]:
        raise Http404
    return result


@console_view(roles=WRITE_ROLES)
def layers_status(request: HttpRequest, task_id: str) -> HttpResponse:
    """The fragment the page polls every second while a refresh runs; once it has finished, the
    page is reloaded (htmx) so the new layers replace the old."""
    result = _refresh_result(request, task_id)
    if result.status == TaskResultStatus.SUCCESSFUL:
        _refreshed_message(request, result.return_value)
        return HttpResponseClientRedirect(reverse("console:audiences:layers"))
    return render(
        request, "audiences/_layers_status.html", {"task_id": task_id, "status": result.status}
    )


@console_view()
def layer_contacts(request: HttpRequest, kind: str, code: str) -> HttpResponse:
    """The contacts of one RFM class, lifecycle stage or intent layer, paginated, phones
    masked, a staff member's store only."""
    if kind not in LIST_KINDS or code not in LIST_KINDS[kind][1].values:
        raise Http404
    field, choices = LIST_KINDS[kind]
    rows = queries.layer_contacts(
        workspace=request.workspace, field=field, value=code, store_id=_store_id(request)
    )
    page = Paginator(rows, CONTACTS_PER_PAGE).get_page(request.GET.get("page"))
    queries.with_recency(workspace=request.workspace, rows=page)
    titles = {"rfm": _("RFM 分类"), "lifecycle": _("生命周期"), "intent": _("意向分层")}
    return render(
        request,
        "audiences/layers_contacts.html",
        {
            "page": page,
            "kind": kind,
            "code": code,
            "kind_label": titles[kind],
            "label": choices(code).label,
            "staff_scoped": request.membership.role == Role.STAFF,
        },
    )
