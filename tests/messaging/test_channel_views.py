"""The channels and guardrails page: an operator adds and edits the ways out and the caps from
the console, secrets never come back to the browser, every change is audited, and bad input is
a form error that names the field and changes nothing."""

import html
import json
from datetime import time

import pytest

from siyu.messaging import queries, services
from siyu.messaging.models import ChannelConfig
from siyu.tenancy.models import AuditLog
from tests import factories

URL = "/messaging/channels/"
SMS = {
    "url": "https://gw.example/send",
    "secret": "s3cret-gateway-key",
    "fields": {"to": "mobile"},
}


def login(client, ws, role="operator"):
    user = factories.member(ws, role)
    client.force_login(user)
    return user


@pytest.mark.django_db
def test_operator_adds_an_sms_channel_and_its_secret_is_never_shown(client, ws):
    login(client, ws)
    response = client.post(
        "/messaging/channels/new/",
        {"kind": "sms", "name": "阿里云短信", "settings": json.dumps(SMS), "rate_per_second": "20"},
    )
    assert response.status_code == 302
    channel = ChannelConfig.objects.get(workspace=ws, name="阿里云短信")
    assert (channel.kind, channel.settings, channel.rate_per_second) == ("sms", SMS, 20.0)
    assert channel.consent_channel == "sms"  # the kind's own consent by default
    page = client.get(URL).content.decode()
    assert "阿里云短信" in page and "s3cret-gateway-key" not in page and "••••••" in page
    log = AuditLog.objects.get(workspace=ws, action="messaging.channel_create")
    assert log.data["settings"]["secret"] == "••••••" and "s3cret" not in json.dumps(log.data)


@pytest.mark.django_db
def test_editing_with_the_mask_keeps_the_secret_and_can_disable(client, ws):
    login(client, ws)
    channel = services.channel_create(workspace=ws, kind="sms", name="短信", settings=SMS)
    shown = services.settings_masked(channel.settings)
    response = client.post(
        f"/messaging/channels/{channel.id}/",
        {
            "name": "短信（主）",
            "settings": json.dumps({**shown, "params": {"sign": "【鲜果】"}}),
            "consent_channel": "sms",
            "require_consent": "1",
            "rate_per_second": "5",
        },
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "短信（主）" and channel.settings["secret"] == "s3cret-gateway-key"
    assert channel.settings["params"] == {"sign": "【鲜果】"}
    assert channel.require_consent and not channel.enabled and channel.rate_per_second == 5.0
    assert AuditLog.objects.filter(workspace=ws, action="messaging.channel_update").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"kind": "sms", "name": "x", "settings": "{"}, "设置不是有效的 JSON"),
        ({"kind": "sms", "name": "x", "settings": "{}"}, "A sms channel needs settings: url."),
        ({"kind": "fax", "name": "x", "settings": "{}"}, "Unknown channel kind 'fax'."),
        ({"kind": "console", "name": "", "settings": "{}"}, "A channel needs a name."),
        (
            {"kind": "console", "name": "x", "settings": "{}", "rate_per_second": "0"},
            "rate_per_second must be above 0.",
        ),
        ({"kind": "console", "name": "x", "settings": "[1]"}, "settings must be a JSON object."),
    ],
)
def test_bad_channels_are_refused_with_a_clear_error(client, ws, form, message):
    login(client, ws)
    response = client.post("/messaging/channels/new/", form)
    assert response.status_code == 422
    assert message in html.unescape(response.content.decode())
    assert not ChannelConfig.objects.filter(workspace=ws).exists()


@pytest.mark.django_db
def test_a_taken_name_is_refused(client, ws):
    login(client, ws)
    services.channel_create(workspace=ws, kind="console", name="开发", settings={})
    response = client.post(
        "/messaging/channels/new/", {"kind": "console", "name": "开发", "settings": "{}"}
    )
    assert response.status_code == 422
    assert "A channel named '开发' exists already." in html.unescape(response.content.decode())


@pytest.mark.django_db
def test_guardrails_are_saved_and_bad_ones_change_nothing(client, ws):
    login(client, ws, role="owner")
    form = {
        "daily_sms": "2",
        "weekly_sms": "5",
        "daily_email": "",
        "quiet_start": "22:30",
        "quiet_end": "07:30",
        "global_daily_cap": "50000",
    }
    assert client.post("/messaging/channels/guardrails/", form).status_code == 302
    caps = queries.cap_settings_for(workspace=ws)
    assert (caps.daily_caps, caps.weekly_caps) == ({"sms": 2}, {"sms": 5})
    assert (caps.quiet_start, caps.quiet_end, caps.global_daily_cap) == (
        time(22, 30),
        time(7, 30),
        50000,
    )
    assert AuditLog.objects.filter(workspace=ws, action="messaging.guardrails").exists()
    for bad, message in (
        ({"daily_sms": "-1"}, "-1 须为不小于 0 的整数。"),
        ({"quiet_start": "25:00"}, "请填写 时:分"),
        ({"global_daily_cap": "0"}, "全局日上限至少为 1"),
    ):
        response = client.post("/messaging/channels/guardrails/", {**form, **bad})
        assert response.status_code == 422 and message in response.content.decode()
    caps = queries.cap_settings_for(workspace=ws)
    assert caps.daily_caps == {"sms": 2} and caps.global_daily_cap == 50000


@pytest.mark.django_db
def test_analysts_read_staff_do_not_see_and_other_workspaces_are_not_found(client, ws, other_ws):
    theirs = services.channel_create(workspace=other_ws, kind="console", name="别家", settings={})
    login(client, ws, role="analyst")
    page = client.get(URL)
    assert page.status_code == 200 and "保存护栏" not in page.content.decode()
    assert "别家" not in page.content.decode()
    assert client.post("/messaging/channels/new/", {"kind": "console"}).status_code == 403
    client.logout()
    login(client, ws, role="operator")
    response = client.post(f"/messaging/channels/{theirs.id}/", {"name": "mine", "settings": "{}"})
    assert response.status_code == 404
    client.logout()
    login(client, ws, role="staff")
    assert client.get(URL).status_code == 403


@pytest.mark.django_db
def test_a_secret_inside_the_gateway_params_is_masked_and_kept_too(client, ws):
    login(client, ws)
    settings = {**SMS, "params": {"sign": "【鲜果】", "api_key": "acct-key-42"}}
    channel = services.channel_create(workspace=ws, kind="sms", name="短信", settings=settings)
    page = client.get(URL).content.decode()
    assert "acct-key-42" not in page and "【鲜果】" in page
    shown = services.settings_masked(channel.settings)
    assert shown["params"] == {"sign": "【鲜果】", "api_key": "••••••"}
    client.post(
        f"/messaging/channels/{channel.id}/",
        {"name": "短信", "settings": json.dumps(shown), "rate_per_second": "10", "enabled": "1"},
    )
    channel.refresh_from_db()
    assert channel.settings == settings
