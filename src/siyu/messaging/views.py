"""The console's messaging pages: the content library (内容库) — a filtered list, a form with a
live preview for a sample contact, publishing — and the outbox (发送记录) with its counts per
status and per suppression reason, one message's timeline, and a CSV export.

Who may do what. Library: owners and operators write HQ templates (and stores'); a staff member
writes their own store's and uses published HQ ones; analysts read. Outbox: every role reads (a
staff member only the messages to their store's contacts); owners, operators and analysts
export, and every export is audited."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from siyu.audiences.models import LifecycleStage
from siyu.commerce import queries as commerce_queries
from siyu.commerce.models import Product
from siyu.console.access import console_view
from siyu.errors import DomainError, ValidationFailed
from siyu.errors import PermissionDenied as DomainPermissionDenied
from siyu.messaging import library_queries, queries, rendering, services
from siyu.messaging.models import (
    ChannelKind,
    MessageStatus,
    MessageTemplate,
    SuppressReason,
    TemplateScene,
    TemplateStatus,
)
from siyu.tenancy.models import Role

LIBRARY_WRITE_ROLES = (Role.OWNER, Role.OPERATOR, Role.STAFF)
EXPORT_ROLES = (Role.OWNER, Role.OPERATOR, Role.ANALYST)
PAGE_SIZE = 50

#: What each suppression reason means, for the people reading the counts.
REASON_EXPLANATIONS = {
    SuppressReason.OPTED_OUT: gettext_lazy("客户已退订该渠道，不再发送。"),
    SuppressReason.NO_CONSENT: gettext_lazy("渠道要求客户授权，该客户尚未授权。"),
    SuppressReason.NO_ADDRESS: gettext_lazy("客户没有该渠道需要的手机号或邮箱。"),
    SuppressReason.FREQUENCY_CAP: gettext_lazy(
        "客户当天或近 7 天在该渠道已收到上限条数（频次上限）。"
    ),
    SuppressReason.GLOBAL_DAILY_CAP: gettext_lazy("工作区当天的发送总量已达上限。"),
    SuppressReason.CHANNEL_DISABLED: gettext_lazy("渠道已停用。"),
}
STATUS_EXPLANATIONS = {
    MessageStatus.QUEUED: gettext_lazy("等待发送（含免打扰时段内顺延的消息）。"),
    MessageStatus.SENDING: gettext_lazy("已被发送进程领取，正在发送。"),
    MessageStatus.SENT: gettext_lazy("渠道已接收。"),
    MessageStatus.DELIVERED: gettext_lazy("渠道回执：已送达。"),
    MessageStatus.READ: gettext_lazy("渠道回执：已读。"),
    MessageStatus.CLICKED: gettext_lazy("渠道回执：已点击。"),
    MessageStatus.FAILED: gettext_lazy("多次重试后仍失败，或渠道明确拒绝。"),
    MessageStatus.SUPPRESSED: gettext_lazy("被护栏拦截，未发送；原因见下。"),
}


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


# --- content library -----------------------------------------------------------------------------


def _library_choices() -> dict[str, Any]:
    return {
        "scenes": TemplateScene.choices,
        "stages": LifecycleStage.choices,
        "kinds": ChannelKind.choices,
        "statuses": TemplateStatus.choices,
    }


@console_view()
def library(request: HttpRequest) -> HttpResponse:
    ws, membership = request.workspace, request.membership
    filters = {
        key: request.GET.get(key, "").strip()
        for key in ("scene", "lifecycle_stage", "channel_kind", "status", "owner")
    }
    rows = list(library_queries.templates_list(workspace=ws, membership=membership, **filters))
    for row in rows:
        row.editable = library_queries.can_edit(row, membership)
    return render(
        request,
        "messaging/library.html",
        {
            "templates": rows,
            "filters": filters,
            "can_create": membership.role in LIBRARY_WRITE_ROLES,
            "is_staff": membership.role == Role.STAFF,
            **_library_choices(),
        },
    )


def _form_values(request: HttpRequest, template: MessageTemplate | None) -> dict[str, Any]:
    if request.method == "POST":
        keys = (
            "name",
            "channel_kind",
            "subject",
            "body",
            "scene",
            "lifecycle_stage",
            "product_id",
            "miniprogram_appid",
            "miniprogram_path",
            "image_url",
            "store_id",
            "preview_contact_id",
            "preview_coupon",
            "preview_link",
        )
        return {key: request.POST.get(key, "") for key in keys}
    if template is None:
        return {"channel_kind": ChannelKind.CONSOLE}
    return {
        "name": template.name,
        "channel_kind": template.channel_kind,
        "subject": template.subject,
        "body": template.body,
        "scene": template.scene,
        "lifecycle_stage": template.lifecycle_stage,
        "product_id": str(template.product_id or ""),
        "miniprogram_appid": template.miniprogram_appid,
        "miniprogram_path": template.miniprogram_path,
        "image_url": template.image_url,
        "store_id": str(template.store_id or ""),
    }


def _preview_context(request: HttpRequest, values: dict[str, Any]) -> dict[str, Any]:
    """The live preview: the texts rendered for a sample contact (one the member may see), with
    the sample coupon and link typed beside the form and the chosen product's name."""
    ws, membership = request.workspace, request.membership
    contact = library_queries.preview_contact(
        workspace=ws, membership=membership, contact_id=_int(values.get("preview_contact_id"))
    )
    product = _product(request, values.get("product_id"))
    constants = {
        "coupon": values.get("preview_coupon") or "COUPON",
        "link": values.get("preview_link") or "https://example.com",
    }
    if product is not None:
        constants["product"] = product.name
    context: dict[str, Any] = {"contact": contact, "product": product}
    try:
        subject = rendering.normalise(values.get("subject", ""), field="subject")
        body = rendering.normalise(values.get("body", ""), field="body")
    except ValidationFailed as exc:
        context["preview_error"] = exc.message
        return context
    context["subject"], context["body"] = library_queries.preview(
        subject, body, contact=contact, constants=constants
    )
    context["miniprogram"] = (values.get("miniprogram_appid"), values.get("miniprogram_path"))
    return context


def _product(request: HttpRequest, product_id: str | None) -> Product | None:
    pid = _int(product_id)
    if pid is None:
        return None
    return commerce_queries.products_list(workspace=request.workspace).filter(id=pid).first()


def _form(
    request: HttpRequest,
    template: MessageTemplate | None,
    values: dict[str, Any],
    *,
    status: int = 200,
    error: DomainError | None = None,
) -> HttpResponse:
    ws, membership = request.workspace, request.membership
    return render(
        request,
        "messaging/template_form.html",
        {
            "template": template,
            "values": values,
            "products": commerce_queries.products_list(workspace=ws),
            "stores": commerce_queries.stores_list(workspace=ws),
            "can_choose_store": membership.role in library_queries.HQ_ROLES,
            "error": error.message if error else "",
            "error_path": (error.path or "") if error else "",
            "variables": rendering.VARIABLES,
            **_library_choices(),
            **_preview_context(request, values),
        },
        status=status,
    )


def _save(request: HttpRequest, template: MessageTemplate | None) -> HttpResponse:
    ws, membership = request.workspace, request.membership
    values = _form_values(request, template)
    extra: dict[str, Any] = {}
    if membership.role in library_queries.HQ_ROLES:
        store_id = _int(values.get("store_id"))
        extra["store"] = (
            commerce_queries.stores_list(workspace=ws).filter(id=store_id).first()
            if store_id
            else None
        )
    try:
        product_id = _int(values.get("product_id"))
        product = _product(request, values.get("product_id"))
        if product_id is not None and product is None:
            raise ValidationFailed("product_not_found", _("没有这个商品。"), path="product")
        saved = services.template_save(
            workspace=ws,
            template=template,
            name=values.get("name", ""),
            channel_kind=values.get("channel_kind", ""),
            subject=values.get("subject", ""),
            body=values.get("body", ""),
            scene=values.get("scene", ""),
            lifecycle_stage=values.get("lifecycle_stage", ""),
            product=product,
            miniprogram_appid=values.get("miniprogram_appid", ""),
            miniprogram_path=values.get("miniprogram_path", ""),
            image_url=values.get("image_url", ""),
            image=request.FILES.get("image"),
            clear_image=bool(request.POST.get("clear_image")),
            actor=membership,
            must_be_new=template is None,
            **extra,
        )
    except DomainPermissionDenied as exc:
        raise PermissionDenied(exc.message) from exc
    except ValidationFailed as exc:
        return _form(request, template, values, status=422, error=exc)
    messages.success(request, _("内容「%s」已保存。") % saved.name)
    return redirect("console:messaging:library")


@console_view(roles=LIBRARY_WRITE_ROLES)
def template_new(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return _save(request, None)
    return _form(request, None, _form_values(request, None))


@console_view(roles=LIBRARY_WRITE_ROLES)
def template_edit(request: HttpRequest, template_id: int) -> HttpResponse:
    template = library_queries.template_get(
        workspace=request.workspace, template_id=template_id, membership=request.membership
    )
    if not library_queries.can_edit(template, request.membership):
        raise PermissionDenied
    if request.method == "POST":
        return _save(request, template)
    return _form(request, template, _form_values(request, template))


@require_POST
@console_view()
def template_preview(request: HttpRequest) -> HttpResponse:
    """The form's live preview (htmx); nothing is saved, so every role may preview."""
    values = {key: request.POST.get(key, "") for key in request.POST}
    return render(request, "messaging/_preview.html", _preview_context(request, values))


@require_POST
@console_view(roles=LIBRARY_WRITE_ROLES)
def template_publish(request: HttpRequest, template_id: int) -> HttpResponse:
    template = library_queries.template_get(
        workspace=request.workspace, template_id=template_id, membership=request.membership
    )
    try:
        services.template_publish(
            workspace=request.workspace, template=template, actor=request.membership
        )
    except DomainPermissionDenied as exc:
        raise PermissionDenied(exc.message) from exc
    messages.success(request, _("内容「%s」已发布，门店可以使用。") % template.name)
    return redirect("console:messaging:library")


@console_view()
def template_image(request: HttpRequest, template_id: int) -> FileResponse:
    """An uploaded image, to whoever may see its template."""
    template = library_queries.template_get(
        workspace=request.workspace, template_id=template_id, membership=request.membership
    )
    if not template.image:
        raise Http404("no image")
    return FileResponse(template.image.open("rb"))


# --- outbox --------------------------------------------------------------------------------------


def _outbox_filters(request: HttpRequest) -> tuple[queries.OutboxFilter, dict[str, str]]:
    raw = {
        key: request.GET.get(key, "").strip()
        for key in ("status", "channel", "reason", "journey", "step", "day")
    }
    try:
        day = date.fromisoformat(raw["day"]) if raw["day"] else None
    except ValueError:
        day, raw["day"] = None, ""
    filters = queries.OutboxFilter(
        status=raw["status"] if raw["status"] in MessageStatus.values else "",
        channel_id=_int(raw["channel"]),
        suppress_reason=raw["reason"] if raw["reason"] in SuppressReason.values else "",
        journey_id=_int(raw["journey"]),
        journey_step=raw["step"][:64],
        day=day,
    )
    return filters, raw


@console_view()
def outbox(request: HttpRequest) -> HttpResponse:
    ws, membership = request.workspace, request.membership
    filters, raw = _outbox_filters(request)
    rows = queries.outbox_filtered(workspace=ws, membership=membership, filters=filters)
    page = queries.outbox_page(rows, before_id=_int(request.GET.get("before")), size=PAGE_SIZE)
    by_status, by_reason = queries.outbox_summary(rows)
    status_labels = dict(MessageStatus.choices)
    reason_labels = dict(SuppressReason.choices)
    query = "&".join(f"{k}={v}" for k, v in raw.items() if v)
    return render(
        request,
        "messaging/outbox.html",
        {
            "messages_page": page,
            "older": page[-1].id if len(page) == PAGE_SIZE else None,
            "query": query,
            "raw": raw,
            "status_counts": [
                (s, status_labels[s], n, STATUS_EXPLANATIONS[s]) for s, n in by_status.items()
            ],
            "reason_counts": [
                (r, reason_labels[r], n, REASON_EXPLANATIONS[r]) for r, n in by_reason.items()
            ],
            "total": sum(by_status.values()),
            "channels": queries.channels_list(workspace=ws),
            "statuses": MessageStatus.choices,
            "reasons": SuppressReason.choices,
            "can_export": membership.role in EXPORT_ROLES,
        },
    )


@console_view()
def message_detail(request: HttpRequest, message_id: int) -> HttpResponse:
    message = queries.message_get(
        workspace=request.workspace, message_id=message_id, membership=request.membership
    )
    timeline = [
        (_("入队"), message.queued_at),
        (_("计划发送"), message.scheduled_at),
        (_("已发送"), message.sent_at),
        (_("已送达"), message.delivered_at),
        (_("已读"), message.read_at),
        (_("已点击"), message.clicked_at),
    ]
    return render(
        request,
        "messaging/message.html",
        {
            "message": message,
            "timeline": timeline,
            "reason_explanation": REASON_EXPLANATIONS.get(message.suppress_reason, ""),
        },
    )


class _Echo:
    """csv.writer writes into this and gets the line back, so rows stream as they are made."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(rows: Iterator[list[str]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    # The byte order mark makes Excel, which most operators open exports in, read UTF-8 Chinese.
    yield "\ufeff" + writer.writerow(queries.OUTBOX_EXPORT_HEADER)
    for row in rows:
        yield writer.writerow(row)


@require_POST
@console_view(roles=EXPORT_ROLES)
def outbox_export(request: HttpRequest) -> StreamingHttpResponse:
    """The filtered outbox as CSV (filters in the query string, like the page's)."""
    ws, membership = request.workspace, request.membership
    filters, raw = _outbox_filters(request)
    rows = queries.outbox_filtered(workspace=ws, membership=membership, filters=filters)
    services.outbox_export_record(
        workspace=ws,
        actor=request.user,
        rows=rows.count(),
        filters={k: v for k, v in raw.items() if v},
    )
    response = StreamingHttpResponse(
        _csv_lines(queries.outbox_export_rows(rows, zone=timezone.get_current_timezone())),
        content_type="text/csv; charset=utf-8",
    )
    stamp = timezone.localdate().strftime("%Y%m%d")
    response["Content-Disposition"] = f'attachment; filename="outbox-{stamp}.csv"'
    return response
