"""The console's audience pages: segments (a form builder with a live count and sample, the
segment's size over time, who entered and left, its members, CSV export) and tags (groups, tags,
tagging from an uploaded list and on a contact's page).

Who may do what: every role reads and previews (a staff member only over their store's contacts);
owners and operators write (save, refresh, tag, delete); owners, operators and analysts export.
An export carries masked phones, except an owner's, which carries full numbers: the owner answers
for the brand's data, and every export is audited with ``full_phone`` saying which it was."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django.views.decorators.vary import vary_on_headers

from siyu.audiences import queries, services
from siyu.audiences.models import Segment, SegmentKind, SegmentSchedule
from siyu.audiences.rules import FIELDS
from siyu.commerce import queries as commerce_queries
from siyu.commerce.models import OrderChannel
from siyu.console.access import console_view
from siyu.console.charts import chart_layout
from siyu.contacts import queries as contacts_queries
from siyu.contacts.models import ConsentChannel, ConsentStatus, IdentityKind, SourceChannel
from siyu.errors import ValidationFailed
from siyu.events.models import EventType
from siyu.insights.models import ChurnBand
from siyu.tenancy.models import Membership, Role

WRITE_ROLES = (Role.OWNER, Role.OPERATOR)
EXPORT_ROLES = (Role.OWNER, Role.OPERATOR, Role.ANALYST)
MEMBERS_PER_PAGE = 25
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_PROBLEMS_SHOWN = 200
EXPORT_HEADER = ["contact_id", "name", "phone", "store", "source_channel", "first_seen_at"]

FIELD_LABELS = {
    "contact.city": gettext_lazy("城市"),
    "contact.gender": gettext_lazy("性别"),
    "contact.source_channel": gettext_lazy("来源渠道"),
    "contact.store": gettext_lazy("归属门店"),
    "contact.owner_staff": gettext_lazy("专属导购"),
    "contact.first_touch_store": gettext_lazy("首触门店"),
    "contact.first_touch_staff": gettext_lazy("首触导购"),
    "contact.first_touch_campaign": gettext_lazy("首触活动"),
    "contact.first_touch_state": gettext_lazy("活码 state"),
    "contact.birthday_month": gettext_lazy("生日月份"),
    "contact.first_seen_at": gettext_lazy("首次出现时间"),
}
FIELD_OPS = {
    "eq": gettext_lazy("等于"),
    "ne": gettext_lazy("不等于"),
    "in": gettext_lazy("属于"),
    "not_in": gettext_lazy("不属于"),
    "contains": gettext_lazy("包含"),
    "is_set": gettext_lazy("已填写"),
    "gte": "≥",
    "lte": "≤",
}
TIME_OPS = {
    "within_days": gettext_lazy("最近 N 天内"),
    "older_than_days": gettext_lazy("N 天以前"),
    "gte": gettext_lazy("不早于日期"),
    "lt": gettext_lazy("早于日期"),
}
NUMBER_OPS = {"gte": "≥", "gt": ">", "lte": "≤", "lt": "<", "eq": "="}
LIST_COLUMNS = {
    "phone": "phone",
    "手机号": "phone",
    "member_no": "member_no",
    "会员号": "member_no",
    "contact_id": "contact_id",
    "客户id": "contact_id",
}
PROBLEM_MESSAGES = {
    ("phone", "unknown"): gettext_lazy("第 %(line)s 行：未知手机号 %(value)s"),
    ("phone", "invalid"): gettext_lazy("第 %(line)s 行：%(value)s 不是有效的手机号"),
    ("member_no", "unknown"): gettext_lazy("第 %(line)s 行：未知会员号 %(value)s"),
    ("member_no", "invalid"): gettext_lazy("第 %(line)s 行：%(value)s 不是有效的会员号"),
    ("contact_id", "unknown"): gettext_lazy("第 %(line)s 行：未知客户 ID %(value)s"),
    ("contact_id", "invalid"): gettext_lazy("第 %(line)s 行：%(value)s 不是客户 ID"),
}


def _choices(pairs: Any) -> list[list[Any]]:
    return [[value, str(label)] for value, label in pairs]


def _field_catalog() -> list[dict[str, Any]]:
    labels = {"contact.gender": [("m", _("男")), ("f", _("女"))]}
    labels["contact.source_channel"] = SourceChannel.choices
    fields = []
    for name, spec in FIELDS.items():
        ops = TIME_OPS if spec.kind == "date-time" else FIELD_OPS
        fields.append(
            {
                "name": name,
                "label": str(FIELD_LABELS.get(name, name)),
                "kind": spec.kind,
                "ops": [[op, str(ops[op])] for op in spec.ops],
                "choices": _choices(labels.get(name, [])),
            }
        )
    return fields


def _builder_catalog(request: HttpRequest) -> dict[str, Any]:
    """Everything the builder's script needs to draw a condition row, in the viewer's language:
    the rule language's fields and operators, and this workspace's stores, staff and tags."""
    ws = request.workspace
    offset = timezone.localtime().strftime("%z")
    return {
        "types": _choices(
            [
                ("field", _("联系人字段")),
                ("has_identity", _("标识")),
                ("consent", _("授权")),
                ("tag", _("标签")),
                ("orders", _("订单")),
                ("event", _("行为")),
                ("score", _("模型分")),
            ]
        ),
        "fields": _field_catalog(),
        "stores": [[s.id, s.name] for s in commerce_queries.stores_list(workspace=ws)],
        "staff": [[s.id, s.name] for s in commerce_queries.staff_list(workspace=ws)],
        "tags": [[t.id, f"{t.group.name} / {t.name}"] for t in queries.tags_list(workspace=ws)],
        "identities": _choices(IdentityKind.choices),
        "consent_channels": _choices(ConsentChannel.choices),
        "consent_statuses": _choices(ConsentStatus.choices),
        "order_channels": _choices(OrderChannel.choices),
        "order_metrics": _choices(
            [
                ("any", _("有订单")),
                ("count", _("订单数")),
                ("sum", _("消费金额（净额）")),
                ("avg", _("客单价")),
                ("last_at", _("最近下单")),
                ("first_at", _("首次下单")),
            ]
        ),
        "number_ops": _choices(NUMBER_OPS.items()),
        "time_ops": _choices(
            [
                ("within_days", TIME_OPS["within_days"]),
                ("older_than_days", TIME_OPS["older_than_days"]),
            ]
        ),
        "event_types": _choices(EventType.choices),
        "score_keys": _choices(
            [
                ("clv", _("预测 CLV")),
                ("p_alive", _("活跃概率 P(alive)")),
                ("expected_purchases_90d", _("未来 90 天预计购买次数")),
                ("expected_order_value", _("预计客单价")),
                ("churn_band", _("流失风险")),
            ]
        ),
        "churn_bands": _choices(ChurnBand.choices),
        "tz_offset": f"{offset[:3]}:{offset[3:]}",
        "labels": {
            "type": _("条件类型"),
            "field": _("字段"),
            "op": _("运算符"),
            "value": _("值"),
            "metric": _("指标"),
            "channel": _("渠道"),
            "status": _("状态"),
            "event": _("行为类型"),
            "exclude": _("排除"),
            "remove": _("删除"),
            "add": _("添加条件"),
            "all": _("满足全部"),
            "any": _("满足任一"),
            "group": _("条件组"),
            "yes": _("是"),
            "no": _("否"),
            "days": _("天"),
            "window": _("最近天数"),
            "any_channel": _("任意渠道"),
            "any_store": _("任意门店"),
            "category": _("品类"),
            "min_count": _("次数 ≥"),
            "max_count": _("次数 ≤"),
            "comma": _("多个值用逗号分隔"),
            "no_tags": _("还没有标签"),
            "too_complex": _("这条规则超出了表单能表示的范围，请在 JSON 中编辑。"),
            "bad_json": _("JSON 格式有误："),
        },
    }


def _rule_error(exc: ValidationFailed) -> tuple[str, str]:
    """(path, "path: message") with the path as the builder knows it, without the ``rule.``
    prefix the services put on rule errors."""
    path = exc.path or ""
    path = path[len("rule.") :] if path.startswith("rule.") else "" if path == "rule" else path
    return path, f"{path}: {exc.message}" if path else exc.message


def _parse_rule(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed("invalid_rule", _("规则不是有效的 JSON：%s") % exc.msg) from exc


# --- segments -----------------------------------------------------------------------------------


@console_view()
def segments_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "audiences/segments.html",
        {
            "segments": queries.segments_list(workspace=request.workspace),
            "can_write": request.membership.role in WRITE_ROLES,
        },
    )


def _builder(
    request: HttpRequest,
    segment: Segment | None,
    values: dict[str, str],
    status: int = 200,
    error: tuple[str, str] | None = None,
    name_error: str = "",
) -> HttpResponse:
    return render(
        request,
        "audiences/builder.html",
        {
            "segment": segment,
            "values": values,
            "catalog": _builder_catalog(request),
            "kinds": SegmentKind.choices,
            "schedules": SegmentSchedule.choices,
            "can_write": request.membership.role in WRITE_ROLES,
            "error_path": error[0] if error else "",
            "error": error[1] if error else "",
            "name_error": name_error,
        },
        status=status,
    )


def _save(request: HttpRequest, segment: Segment | None) -> HttpResponse:
    """The builder's save: a refusal re-renders the builder with what was typed and the message
    naming the offending path (the row is highlighted by the script)."""
    if request.membership.role not in WRITE_ROLES:
        raise PermissionDenied
    values = {
        "name": request.POST.get("name", ""),
        "kind": request.POST.get("kind", SegmentKind.DYNAMIC),
        "refresh_every": request.POST.get("refresh_every", SegmentSchedule.MANUAL),
        "rule": request.POST.get("rule", ""),
    }
    try:
        if not values["rule"].strip():
            raise ValidationFailed("invalid_rule", _("请至少添加一个条件。"), path="rule")
        segment = services.segment_save(
            workspace=request.workspace,
            segment=segment,
            name=values["name"],
            rule=_parse_rule(values["rule"]),
            kind=values["kind"],
            refresh_every=values["refresh_every"],
            actor=request.user,
        )
    except ValidationFailed as exc:
        if exc.path == "name":
            return _builder(request, segment, values, 422, name_error=exc.message)
        return _builder(request, segment, values, 422, error=_rule_error(exc))
    messages.success(request, _("人群「%s」已保存。") % segment.name)
    return redirect("console:audiences:segment", segment_id=segment.id)


@console_view()
def segment_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request, None)
    return _builder(request, None, {"kind": SegmentKind.DYNAMIC, "refresh_every": "daily"})


@console_view()
def segment_edit(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = queries.segment_get(workspace=request.workspace, segment_id=segment_id)
    if request.method == "POST":
        return _save(request, segment)
    values = {
        "name": segment.name,
        "kind": segment.kind,
        "refresh_every": segment.refresh_every,
        "rule": json.dumps(segment.rule, ensure_ascii=False),
    }
    return _builder(request, segment, values)


@require_POST
@console_view()
def segment_preview(request: HttpRequest) -> HttpResponse:
    """The live count and sample while the rule is being built; nothing is saved, so every
    role may preview (a staff member over their store's contacts only)."""
    text = request.POST.get("rule", "").strip()
    context: dict[str, Any] = {"empty": not text}
    if text:
        try:
            context["preview"] = queries.segment_preview(
                workspace=request.workspace,
                rule=_parse_rule(text),
                membership=request.membership,
            )
        except ValidationFailed as exc:
            context["error_path"], context["error"] = _rule_error(exc)
    return render(request, "audiences/_preview.html", context)


def _day_axis(days: list[date]) -> dict[str, Any]:
    """A date axis that ticks once per day over a short history: left alone, Plotly ticks every
    few hours and repeats each day's label."""
    axis: dict[str, Any] = {"type": "date", "gridcolor": "#eef0f4", "tickformat": "%m-%d"}
    if days and (days[-1] - days[0]).days < 14:
        axis["range"] = [
            (days[0] - timedelta(days=1)).isoformat(),
            (days[-1] + timedelta(days=1)).isoformat(),
        ]
        axis["dtick"] = 86_400_000  # one day, in milliseconds
    return axis


def _size_figure(history: list[tuple[date, int]]) -> dict[str, Any]:
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": _("人数"),
                "x": [day.isoformat() for day, _size in history],
                "y": [size for _day, size in history],
                "line": {"color": "#2f6fed", "width": 2},
                "marker": {"size": 6},
                "hovertemplate": "%{x|%Y-%m-%d}<br>%{y:,d}<extra></extra>",
            }
        ],
        "layout": chart_layout(
            **{
                "margin": {"l": 56, "r": 24, "t": 8, "b": 40},
                "height": 280,
                "xaxis": _day_axis([day for day, _size in history]),
                "yaxis": {
                    "title": {"text": _("人数")},
                    "rangemode": "tozero",
                    "gridcolor": "#eef0f4",
                    "tickformat": ",d",
                    **({"dtick": 1} if max((s for _d, s in history), default=0) <= 5 else {}),
                },
                "showlegend": False,
            }
        ),
    }


@vary_on_headers("HX-Request")
@console_view()
def segment_detail(request: HttpRequest, segment_id: int) -> HttpResponse:
    ws, membership = request.workspace, request.membership
    segment = queries.segment_get(workspace=ws, segment_id=segment_id)
    members = queries.segment_members(workspace=ws, segment=segment, membership=membership)
    page = Paginator(members.select_related("store"), MEMBERS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    context = {"segment": segment, "page": page}
    # Paging swaps only the members table.
    if request.htmx and not request.htmx.history_restore_request:
        return render(request, "audiences/_members.html", context)
    history = [
        (row.date, row.size) for row in queries.segment_size_history(workspace=ws, segment=segment)
    ]
    context.update(
        {
            "figure": _size_figure(history) if history else None,
            "refresh_log": queries.segment_refresh_log(
                workspace=ws, segment=segment, membership=membership
            ),
            "tags": queries.tags_list(workspace=ws),
            "can_write": membership.role in WRITE_ROLES,
            "can_export": membership.role in EXPORT_ROLES,
            "full_phone_export": membership.role == Role.OWNER,
            "rule_json": json.dumps(segment.rule, ensure_ascii=False, indent=2),
        }
    )
    return render(request, "audiences/segment.html", context)


@require_POST
@console_view(roles=WRITE_ROLES)
def segment_refresh(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = queries.segment_get(workspace=request.workspace, segment_id=segment_id)
    try:
        segment = services.segment_refresh(workspace=request.workspace, segment=segment)
    except ValidationFailed as exc:
        messages.error(request, exc.message)
        return redirect("console:audiences:segment", segment_id=segment.id)
    if segment.last_error:
        messages.error(request, _("刷新失败：%s") % segment.last_error)
    else:
        messages.success(request, _("已刷新，当前 %(size)s 人。") % {"size": segment.size})
    return redirect("console:audiences:segment", segment_id=segment.id)


class _Echo:
    """csv.writer writes into this and gets the line back, so rows stream as they are made."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(rows: Iterator[list[str]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    # The byte order mark makes Excel, which most operators open exports in, read UTF-8 Chinese.
    yield "\ufeff" + writer.writerow(EXPORT_HEADER)
    for row in rows:
        yield writer.writerow(row)


@require_POST
@console_view(roles=EXPORT_ROLES)
def segment_export(request: HttpRequest, segment_id: int) -> StreamingHttpResponse:
    ws, membership = request.workspace, request.membership
    segment = queries.segment_get(workspace=ws, segment_id=segment_id)
    full_phone = membership.role == Role.OWNER
    rows = queries.segment_members(workspace=ws, segment=segment, membership=membership).count()
    services.segment_export_record(
        workspace=ws, segment=segment, actor=request.user, rows=rows, full_phone=full_phone
    )
    response = StreamingHttpResponse(
        _csv_lines(
            queries.segment_export_rows(
                workspace=ws, segment=segment, membership=membership, full_phone=full_phone
            )
        ),
        content_type="text/csv; charset=utf-8",
    )
    stamp = timezone.localdate().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="segment-{segment.id}-{stamp}.csv"'
    return response


@require_POST
@console_view(roles=WRITE_ROLES)
def segment_tag(request: HttpRequest, segment_id: int) -> HttpResponse:
    ws = request.workspace
    segment = queries.segment_get(workspace=ws, segment_id=segment_id)
    tag = queries.tag_get(workspace=ws, tag_id=_int(request.POST.get("tag_id")))
    added = services.tag_contacts(workspace=ws, tag=tag, segment=segment)
    messages.success(
        request, _("已为 %(n)s 位成员新打上标签「%(tag)s」。") % {"n": added, "tag": tag.name}
    )
    return redirect("console:audiences:segment", segment_id=segment.id)


@require_POST
@console_view(roles=WRITE_ROLES)
def segment_delete(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = queries.segment_get(workspace=request.workspace, segment_id=segment_id)
    services.segment_delete(workspace=request.workspace, segment=segment, actor=request.user)
    messages.success(request, _("人群「%s」已删除。") % segment.name)
    return redirect("console:audiences:segments")


def _int(value: str | None) -> int:
    """An id from a form; anything else is an id nothing has, so the lookup answers 404."""
    return int(value) if value and value.isdigit() else 0


# --- tags ---------------------------------------------------------------------------------------


def _tags_page(request: HttpRequest, status: int = 200, **extra: Any) -> HttpResponse:
    ws = request.workspace
    return render(
        request,
        "audiences/tags.html",
        {
            "groups": queries.tag_groups_with_tags(workspace=ws),
            "tags": queries.tags_list(workspace=ws),
            "can_write": request.membership.role in WRITE_ROLES,
            **extra,
        },
        status=status,
    )


@console_view()
def tags_page(request: HttpRequest) -> HttpResponse:
    return _tags_page(request)


def _tag_write(request: HttpRequest, write: Any) -> HttpResponse:
    """Runs one tag write; a refusal is shown on the tags page, success goes back to it."""
    try:
        done = write()
    except ValidationFailed as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, done)
    return redirect("console:audiences:tags")


@require_POST
@console_view(roles=WRITE_ROLES)
def tag_group_create(request: HttpRequest) -> HttpResponse:
    name = request.POST.get("name", "")

    def write() -> str:
        group = services.tag_group_create(workspace=request.workspace, name=name)
        return _("标签组「%s」已创建。") % group.name

    return _tag_write(request, write)


@require_POST
@console_view(roles=WRITE_ROLES)
def tag_group_rename(request: HttpRequest, group_id: int) -> HttpResponse:
    group = queries.tag_group_get(workspace=request.workspace, group_id=group_id)

    def write() -> str:
        services.tag_group_rename(
            workspace=request.workspace, group=group, name=request.POST.get("name", "")
        )
        return _("标签组已改名为「%s」。") % group.name

    return _tag_write(request, write)


@require_POST
@console_view(roles=WRITE_ROLES)
def tag_group_delete(request: HttpRequest, group_id: int) -> HttpResponse:
    group = queries.tag_group_get(workspace=request.workspace, group_id=group_id)

    def write() -> str:
        services.tag_group_delete(workspace=request.workspace, group=group, actor=request.user)
        return _("标签组「%s」已删除。") % group.name

    return _tag_write(request, write)


@require_POST
@console_view(roles=WRITE_ROLES)
def tag_create(request: HttpRequest, group_id: int) -> HttpResponse:
    group = queries.tag_group_get(workspace=request.workspace, group_id=group_id)

    def write() -> str:
        tag = services.tag_create(
            workspace=request.workspace,
            group=group,
            name=request.POST.get("name", ""),
            color=request.POST.get("color", "#6b7280"),
        )
        return _("标签「%s」已创建。") % tag.name

    return _tag_write(request, write)


@require_POST
@console_view(roles=WRITE_ROLES)
def tag_rename(request: HttpRequest, tag_id: int) -> HttpResponse:
    tag = queries.tag_get(workspace=request.workspace, tag_id=tag_id)

    def write() -> str:
        services.tag_update(
            workspace=request.workspace,
            tag=tag,
            name=request.POST.get("name", ""),
            color=request.POST.get("color", tag.color),
            rule=tag.rule,
        )
        return _("标签已改名为「%s」。") % tag.name

    return _tag_write(request, write)


@require_POST
@console_view(roles=WRITE_ROLES)
def tag_delete(request: HttpRequest, tag_id: int) -> HttpResponse:
    tag = queries.tag_get(workspace=request.workspace, tag_id=tag_id)

    def write() -> str:
        services.tag_delete(workspace=request.workspace, tag=tag, actor=request.user)
        return _("标签「%s」已删除。") % tag.name

    return _tag_write(request, write)


def _problem_lines(problems: list) -> list[str]:
    """The first lines of an uploaded list that named nobody, as the operator reads them."""
    return [
        PROBLEM_MESSAGES[(p.column, p.reason)] % {"line": p.line, "value": p.shown}
        for p in problems[:MAX_PROBLEMS_SHOWN]
    ]


def _read_list(upload: Any) -> tuple[str, list[str]]:
    """(column, values) from an uploaded one-column CSV whose first line names the column.
    Excel in China saves GBK, so that is tried when the file is not UTF-8."""
    if upload is None:
        raise ValidationFailed("invalid", _("请选择要上传的文件。"), path="file")
    if upload.size > MAX_UPLOAD_BYTES:
        raise ValidationFailed("too_large", _("文件不能超过 5 MB。"), path="file")
    raw = upload.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gbk", errors="replace")
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0][0].strip().lower() if rows and rows[0] else ""
    column = LIST_COLUMNS.get(header)
    if column is None:
        raise ValidationFailed(
            "invalid", _("第一行须为列名：phone、member_no 或 contact_id。"), path="file"
        )
    return column, [row[0] if row else "" for row in rows[1:]]


@require_POST
@console_view(roles=WRITE_ROLES)
def tag_upload(request: HttpRequest) -> HttpResponse:
    ws = request.workspace
    tag = queries.tag_get(workspace=ws, tag_id=_int(request.POST.get("tag_id")))
    try:
        column, values = _read_list(request.FILES.get("file"))
        tagged, problems = services.tag_contacts_from_list(
            workspace=ws, tag=tag, column=column, values=values
        )
    except ValidationFailed as exc:
        return _tags_page(request, 422, upload_error=exc.message)
    report = {
        "tag": tag,
        "tagged": tagged,
        "problems": _problem_lines(problems),
        "more": max(0, len(problems) - MAX_PROBLEMS_SHOWN),
        "problem_count": len(problems),
    }
    return _tags_page(request, upload=report)


# --- a contact's tags ---------------------------------------------------------------------------


def _contact_tags(request: HttpRequest, membership: Membership, contact_id: int) -> HttpResponse:
    ws = request.workspace
    contact = contacts_queries.contact_get(
        workspace=ws, contact_id=contact_id, membership=membership
    )
    mine = list(queries.tags_for_contact(workspace=ws, contact=contact))
    taken = {t.id for t in mine}
    return render(
        request,
        "audiences/_contact_tags.html",
        {
            "contact": contact,
            "contact_tags": mine,
            "available": [t for t in queries.tags_list(workspace=ws) if t.id not in taken],
            "can_write": membership.role in WRITE_ROLES,
        },
    )


@console_view()
def contact_tags(request: HttpRequest, contact_id: int) -> HttpResponse:
    """The tags panel of a contact's page, loaded into it by htmx."""
    return _contact_tags(request, request.membership, contact_id)


@require_POST
@console_view(roles=WRITE_ROLES)
def contact_tag_add(request: HttpRequest, contact_id: int) -> HttpResponse:
    ws, membership = request.workspace, request.membership
    contact = contacts_queries.contact_get(
        workspace=ws, contact_id=contact_id, membership=membership
    )
    tag = queries.tag_get(workspace=ws, tag_id=_int(request.POST.get("tag_id")))
    services.tag_contacts(workspace=ws, tag=tag, contact_ids=[contact.id])
    return _contact_tags(request, membership, contact.id)


@require_POST
@console_view(roles=WRITE_ROLES)
def contact_tag_remove(request: HttpRequest, contact_id: int, tag_id: int) -> HttpResponse:
    ws, membership = request.workspace, request.membership
    contact = contacts_queries.contact_get(
        workspace=ws, contact_id=contact_id, membership=membership
    )
    tag = queries.tag_get(workspace=ws, tag_id=tag_id)
    services.untag_contacts(workspace=ws, tag=tag, contact_ids=[contact.id])
    return _contact_tags(request, membership, contact.id)


@require_POST
@console_view(roles=WRITE_ROLES)
def segment_upload(request: HttpRequest) -> HttpResponse:
    """A static segment from an uploaded list; unknown lines are listed, the rest kept."""
    try:
        column, values = _read_list(request.FILES.get("file"))
        segment, problems = services.segment_create_from_list(
            workspace=request.workspace,
            name=request.POST.get("name", ""),
            column=column,
            values=values,
            actor=request.user,
        )
    except ValidationFailed as exc:
        return render(
            request,
            "audiences/segments.html",
            {
                "segments": queries.segments_list(workspace=request.workspace),
                "can_write": True,
                "upload_error": exc.message,
            },
            status=422,
        )
    note = _("已从名单建立人群「%(name)s」：%(n)d 位客户，%(bad)d 行未能识别。") % {
        "name": segment.name,
        "n": segment.size,
        "bad": len(problems),
    }
    messages.success(request, " ".join([note, *_problem_lines(problems)]))
    return redirect("console:audiences:segment", segment_id=segment.id)
