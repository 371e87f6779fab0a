"""The journeys console: the list, the builder (a form per step, serialised to the same JSON
the API takes; a JSON tab imports and exports it), the dry run, and one journey's page with its
measurement per step, versions and runs. Reads through ``queries``, writes through ``services``."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.audiences import queries as audiences_queries
from siyu.console.access import console_view
from siyu.console.charts import chart_layout
from siyu.errors import DomainError, ValidationFailed
from siyu.events.models import EventType
from siyu.inbox.models import TaskKind
from siyu.journeys import queries, services
from siyu.journeys.models import EnrollmentStatus, Journey
from siyu.messaging.models import ChannelConfig, MessageTemplate, SuppressReason
from siyu.tenancy.models import Role

#: Journeys send on the brand's behalf: those who run campaigns build and switch them.
WRITE_ROLES = (Role.OWNER, Role.OPERATOR)
READ_ROLES = (Role.OWNER, Role.OPERATOR, Role.ANALYST)

TRIGGER_EVENT_LABELS = {
    "contact_added": "新增客户 / 添加好友",
    "group_joined": "入群",
    "group_left": "退群",
    "order_paid": "订单支付",
    "coupon_claimed": "领券",
    "birthday": "生日当天",
    "segment_entered": "进入人群包",
    "segment_exited": "离开人群包",
}
EXAMPLE = {
    "trigger": {"type": "event", "event": "contact_added"},
    "reentry": "once",
    "goal": {"type": "order_paid", "within_days": 7},
    "holdout_percent": 10,
    "steps": [],
}


def _options(workspace) -> dict[str, Any]:
    """What the builder's dropdowns offer, as JSON for its script."""
    return {
        "channels": [
            {"id": c.id, "name": c.name, "kind": c.kind}
            for c in ChannelConfig.objects.filter(workspace=workspace, enabled=True).order_by(
                "name"
            )
        ],
        "templates": [
            {"id": t.id, "name": t.name, "kind": t.channel_kind}
            for t in MessageTemplate.objects.filter(workspace=workspace).order_by("name")
        ],
        "segments": [
            {"id": s.id, "name": s.name}
            for s in audiences_queries.segments_list(workspace=workspace)
        ],
        "tags": [
            {"id": t.id, "name": f"{t.group.name}: {t.name}"}
            for t in audiences_queries.tags_list(workspace=workspace).select_related("group")
        ],
        "trigger_events": [{"value": k, "label": v} for k, v in TRIGGER_EVENT_LABELS.items()],
        "goal_events": [{"value": v, "label": str(label)} for v, label in EventType.choices],
        "task_kinds": [{"value": v, "label": str(label)} for v, label in TaskKind.choices],
        "step_types": [{"value": k, "label": v} for k, v in queries.STEP_LABELS.items()],
    }


@console_view(roles=READ_ROLES)
def journeys_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "journeys/list.html",
        {
            "journeys": queries.journeys_list(workspace=request.workspace),
            "can_write": request.membership.role in WRITE_ROLES,
        },
    )


def _builder(request: HttpRequest, journey: Journey | None) -> HttpResponse:
    ws = request.workspace
    error, error_path, status = "", "", 200
    name = journey.name if journey else ""
    description = journey.description if journey else ""
    definition: Any = journey.current_version.definition if journey else EXAMPLE
    if request.method == "POST":
        name = request.POST.get("name", "")
        description = request.POST.get("description", "")
        raw = request.POST.get("definition", "")
        try:
            definition = json.loads(raw)
        except json.JSONDecodeError as exc:
            error, error_path, status = (
                _("定义不是有效的 JSON：%(e)s") % {"e": exc},
                "definition",
                400,
            )
        else:
            try:
                if journey is None:
                    journey = services.journey_create(
                        workspace=ws,
                        name=name,
                        description=description,
                        definition=definition,
                        actor=request.user,
                    )
                else:
                    journey = services.journey_update(
                        workspace=ws,
                        journey=journey,
                        name=name,
                        description=description,
                        definition=definition,
                        actor=request.user,
                    )
            except ValidationFailed as exc:
                error, error_path, status = exc.message, exc.path or "", 400
            else:
                return redirect("console:journeys:detail", journey_id=journey.id)
    return render(
        request,
        "journeys/builder.html",
        {
            "journey": journey,
            "name": name,
            "description": description,
            "definition": definition,
            "options": _options(ws),
            "error": error,
            "error_path": error_path,
        },
        status=status,
    )


@console_view(roles=WRITE_ROLES)
def journey_new(request: HttpRequest) -> HttpResponse:
    return _builder(request, None)


@console_view(roles=WRITE_ROLES)
def journey_edit(request: HttpRequest, journey_id: int) -> HttpResponse:
    return _builder(
        request, queries.journey_get(workspace=request.workspace, journey_id=journey_id)
    )


@console_view(roles=WRITE_ROLES)
@require_POST
def journey_dry_run(request: HttpRequest) -> HttpResponse:
    """The builder's preview (htmx): who would enter and what each would receive."""
    ws = request.workspace
    journey_id = request.POST.get("journey_id")
    journey = queries.journey_get(workspace=ws, journey_id=int(journey_id)) if journey_id else None
    try:
        definition = json.loads(request.POST.get("definition", ""))
        result = queries.journey_dry_run(workspace=ws, definition=definition, journey=journey)
    except json.JSONDecodeError as exc:
        return render(
            request, "journeys/_dry_run.html", {"error": str(exc), "error_path": "definition"}
        )
    except ValidationFailed as exc:
        return render(
            request, "journeys/_dry_run.html", {"error": exc.message, "error_path": exc.path or ""}
        )
    return render(request, "journeys/_dry_run.html", {"result": result})


def _funnel(stats: queries.JourneyStats) -> dict:
    steps = [s for s in stats.steps if s.type != "exit"]
    return {
        "data": [
            {
                "type": "bar",
                "name": _("到达"),
                "x": [s.label + f" ({s.key})" for s in steps],
                "y": [s.reached for s in steps],
                "marker": {"color": "#2f6fed"},
            },
            {
                "type": "bar",
                "name": _("已发送"),
                "x": [s.label + f" ({s.key})" for s in steps],
                "y": [s.sent for s in steps],
                "marker": {"color": "#16a34a"},
            },
        ],
        "layout": chart_layout(barmode="group"),
    }


@console_view(roles=READ_ROLES)
def journey_detail(request: HttpRequest, journey_id: int) -> HttpResponse:
    ws = request.workspace
    journey = queries.journey_get(workspace=ws, journey_id=journey_id)
    stats = queries.journey_stats(workspace=ws, journey=journey)
    reasons = dict(SuppressReason.choices)
    return render(
        request,
        "journeys/detail.html",
        {
            "journey": journey,
            "stats": stats,
            "funnel": _funnel(stats),
            "versions": queries.journey_versions(workspace=ws, journey=journey),
            "runs": queries.journey_runs(workspace=ws, journey=journey),
            "step_rows": [
                (step, [(reasons.get(r, r), n) for r, n in sorted(step.suppressed.items())])
                for step in stats.steps
            ],
            "status_rows": [
                (EnrollmentStatus(k).label, n) for k, n in sorted(stats.statuses.items())
            ],
            "arm_rows": [
                _arm_row(a) for a in [stats.treated, stats.holdout, *stats.arms] if a is not None
            ],
            "lift": _lift(stats.lift),
            "segments": audiences_queries.segments_list(workspace=ws),
            "can_write": request.membership.role in WRITE_ROLES,
            "notice": request.session.pop("journey_notice", ""),
            "definition_json": json.dumps(
                journey.current_version.definition, ensure_ascii=False, indent=2
            ),
            "trigger_label": _trigger_label(journey.current_version.definition["trigger"]),
        },
    )


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _arm_row(arm: queries.Arm) -> dict[str, Any]:
    names = {"treated": _("参与旅程"), "holdout": _("对照组")}
    return {
        "name": names.get(arm.name, arm.name.replace("variant:", _("分组 "))),
        "contacts": arm.n,
        "converted": arm.converted,
        "conversion": _percent(arm.conversion),
        "revenue": arm.revenue,
        "per_contact": arm.revenue_per_contact if arm.revenue_per_contact is not None else "—",
    }


def _lift(lift) -> str:
    if lift is None:
        return ""
    return _("转化率差 %(d)s（95%% 区间 %(lo)s ~ %(hi)s，p = %(p).3f）") % {
        "d": _percent(lift.difference),
        "lo": _percent(lift.interval.low),
        "hi": _percent(lift.interval.high),
        "p": lift.p_value,
    }


def _trigger_label(trigger: dict) -> str:
    if trigger["type"] == "event":
        return _("事件：%(e)s") % {"e": TRIGGER_EVENT_LABELS[trigger["event"]]}
    if trigger["type"] == "schedule":
        return _("定时：%(c)s") % {"c": trigger["cron"]}
    return _("手动启动")


@console_view(roles=WRITE_ROLES)
@require_POST
def journey_action(request: HttpRequest, journey_id: int, action: str) -> HttpResponse:
    ws = request.workspace
    journey = queries.journey_get(workspace=ws, journey_id=journey_id)
    try:
        if action == "publish":
            services.journey_publish(workspace=ws, journey=journey, actor=request.user)
        elif action == "pause":
            services.journey_pause(workspace=ws, journey=journey, actor=request.user)
        elif action == "stop":
            services.journey_stop(workspace=ws, journey=journey, actor=request.user)
        elif action == "launch":
            segment_id = request.POST.get("segment_id")
            segment = (
                audiences_queries.segment_get(workspace=ws, segment_id=int(segment_id))
                if segment_id
                else None
            )
            run = services.journey_launch(
                workspace=ws, journey=journey, segment=segment, actor=request.user
            )
            request.session["journey_notice"] = _("已启动：%(n)s 位客户进入旅程。") % {
                "n": run.enrolled
            }
    except DomainError as exc:
        request.session["journey_notice"] = exc.message
    return redirect("console:journeys:detail", journey_id=journey.id)


@console_view(roles=READ_ROLES)
def journey_export(request: HttpRequest, journey_id: int) -> HttpResponse:
    journey = queries.journey_get(workspace=request.workspace, journey_id=journey_id)
    body = json.dumps(
        {
            "name": journey.name,
            "description": journey.description,
            "definition": journey.current_version.definition,
        },
        ensure_ascii=False,
        indent=2,
    )
    response = HttpResponse(body, content_type="application/json; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="journey-{journey.id}.json"'
    return response
