"""The console's channels page (渠道与护栏): the ways messages go out — an SMS gateway, an
SMTP relay, a webhook, the development console — and the workspace's guardrails (frequency caps
per channel kind, quiet hours, the global daily cap).

Owners and operators change them; analysts read them; staff do not see them (a store does not
decide how HQ's messages leave). Secrets are never sent back to the browser: the form shows a
mask, and a mask sent back keeps the stored secret. Every change is audited."""

from __future__ import annotations

import json
from datetime import time
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from siyu.console.access import console_view
from siyu.contacts.models import ConsentChannel
from siyu.errors import ValidationFailed
from siyu.messaging import queries, services
from siyu.messaging.models import ChannelKind
from siyu.tenancy.models import Role

READ_ROLES = (Role.OWNER, Role.OPERATOR, Role.ANALYST)
WRITE_ROLES = (Role.OWNER, Role.OPERATOR)

#: What a new channel of each kind is offered with: its required settings and the usual options.
EXAMPLE_SETTINGS = {
    ChannelKind.CONSOLE: {},
    ChannelKind.WEBHOOK: {"url": "https://example.com/siyu-hook", "secret": "", "timeout": 10},
    ChannelKind.EMAIL: {
        "host": "smtp.example.com",
        "port": 587,
        "starttls": True,
        "username": "",
        "password": "",
        "from": "brand@example.com",
    },
    ChannelKind.SMS: {
        "url": "https://sms-gateway.example.com/send",
        "secret": "",
        "fields": {"to": "mobile", "text": "content", "idempotency_key": "out_id"},
        "params": {"sign": "【品牌】"},
        "ok_field": "code",
        "ok_value": "0",
        "id_field": "msg_id",
    },
}


def _settings(request: HttpRequest) -> Any:
    text = request.POST.get("settings", "").strip() or "{}"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            "channel_settings_invalid",
            _("设置不是有效的 JSON：第 %(line)d 行第 %(col)d 列，%(msg)s。")
            % {"line": exc.lineno, "col": exc.colno, "msg": exc.msg},
            path="settings",
        ) from exc


def _rate(request: HttpRequest) -> str:
    return request.POST.get("rate_per_second", "").strip() or "10"


def _page(request: HttpRequest, *, status: int = 200, **extra: Any) -> HttpResponse:
    ws = request.workspace
    caps = queries.cap_settings_for(workspace=ws)
    channels = [
        {
            "channel": c,
            "settings": json.dumps(
                services.settings_masked(c.settings), ensure_ascii=False, indent=2
            ),
        }
        for c in queries.channels_list(workspace=ws)
    ]
    context = {
        "channels": channels,
        "kinds": ChannelKind.choices,
        "consents": ConsentChannel.choices,
        "examples": [
            (label, json.dumps(EXAMPLE_SETTINGS[kind], ensure_ascii=False, indent=2))
            for kind, label in ChannelKind.choices
        ],
        "caps": caps,
        "cap_rows": [
            (kind, label, caps.daily_caps.get(kind), caps.weekly_caps.get(kind))
            for kind, label in ChannelKind.choices
        ],
        "can_write": request.membership.role in WRITE_ROLES,
        "form": {},
        **extra,
    }
    return render(request, "messaging/channels.html", context, status=status)


@console_view(roles=READ_ROLES)
def channels(request: HttpRequest) -> HttpResponse:
    return _page(request)


@require_POST
@console_view(roles=WRITE_ROLES)
def channel_new(request: HttpRequest) -> HttpResponse:
    kind = request.POST.get("kind", "")
    try:
        channel = services.channel_create(
            workspace=request.workspace,
            kind=kind,
            name=request.POST.get("name", ""),
            settings=_settings(request),
            consent_channel=request.POST.get("consent_channel") or None,
            require_consent=bool(request.POST.get("require_consent")),
            rate_per_second=_rate(request),
            actor=request.user,
        )
    except ValidationFailed as exc:
        return _page(request, status=422, error=exc.message, error_path=exc.path, form=request.POST)
    messages.success(request, _("渠道「%s」已添加。") % channel.name)
    return redirect("console:messaging:channels")


@require_POST
@console_view(roles=WRITE_ROLES)
def channel_edit(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = queries.channel_get(workspace=request.workspace, channel_id=channel_id)
    try:
        services.channel_update(
            workspace=request.workspace,
            channel=channel,
            name=request.POST.get("name", ""),
            settings=_settings(request),
            consent_channel=request.POST.get("consent_channel", ""),
            require_consent=bool(request.POST.get("require_consent")),
            rate_per_second=_rate(request),
            enabled=bool(request.POST.get("enabled")),
            actor=request.user,
        )
    except ValidationFailed as exc:
        return _page(
            request, status=422, error=exc.message, error_path=exc.path, editing=channel_id
        )
    messages.success(request, _("渠道「%s」已保存。") % channel.name)
    return redirect("console:messaging:channels")


def _cap(request: HttpRequest, name: str) -> int | None:
    text = request.POST.get(name, "").strip()
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ValidationFailed("bad_cap", _("%s 须为不小于 0 的整数。") % text, path=name)
    return value


def _time(request: HttpRequest, name: str) -> time:
    try:
        return time.fromisoformat(request.POST.get(name, ""))
    except ValueError as exc:
        raise ValidationFailed("bad_time", _("请填写 时:分，例如 21:00。"), path=name) from exc


@require_POST
@console_view(roles=WRITE_ROLES)
def guardrails(request: HttpRequest) -> HttpResponse:
    try:
        daily, weekly = {}, {}
        for kind in ChannelKind.values:
            for caps, prefix in ((daily, "daily_"), (weekly, "weekly_")):
                cap = _cap(request, prefix + kind)
                if cap is not None:
                    caps[kind] = cap
        global_cap = _cap(request, "global_daily_cap")
        if global_cap == 0:
            raise ValidationFailed(
                "bad_cap", _("全局日上限至少为 1；留空表示不设上限。"), path="global_daily_cap"
            )
        services.cap_settings_set(
            workspace=request.workspace,
            daily_caps=daily,
            weekly_caps=weekly,
            quiet_start=_time(request, "quiet_start"),
            quiet_end=_time(request, "quiet_end"),
            global_daily_cap=global_cap,
            actor=request.user,
        )
    except ValidationFailed as exc:
        return _page(request, status=422, error=exc.message, error_path=exc.path)
    messages.success(request, _("发送护栏已保存，新排队的消息按新规则检查。"))
    return redirect("console:messaging:channels")
