"""Channels and guardrails over the API: what an integrator setting up a gateway from a script
sees — secrets answered masked and kept on update, bad input a 422 naming the field, another
workspace's channel not found, every change audited with the key that made it."""

import pytest

from siyu.messaging import services
from siyu.messaging.models import ChannelConfig
from siyu.tenancy.models import AuditLog

SMS = {"url": "https://gw.example/send", "secret": "gw-secret", "params": {"api_key": "k-42"}}
JSON = {"content_type": "application/json"}


@pytest.mark.django_db
def test_add_list_and_update_a_channel_without_resending_its_secrets(ws, api):
    added = api.post(
        "/api/v1/channels", {"kind": "sms", "name": "短信网关", "settings": SMS}, **JSON
    )
    assert added.status_code == 200, added.json()
    body = added.json()
    assert body["settings"] == {
        "url": "https://gw.example/send",
        "secret": "••••••",
        "params": {"api_key": "••••••"},
    }
    assert body["consent_channel"] == "sms" and body["enabled"] is True
    assert api.get("/api/v1/channels").json() == [body]
    changed = api.put(
        f"/api/v1/channels/{body['id']}",
        {
            "name": "短信网关",
            "settings": body["settings"],
            "consent_channel": "sms",
            "rate_per_second": 3,
            "enabled": False,
        },
        **JSON,
    )
    assert changed.status_code == 200 and changed.json()["enabled"] is False
    stored = ChannelConfig.objects.get(pk=body["id"])
    assert stored.settings == SMS and stored.rate_per_second == 3
    log = AuditLog.objects.filter(workspace=ws, action="messaging.channel_update").get()
    assert log.actor_api_key_id is not None and "gw-secret" not in str(log.data)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "code", "path"),
    [
        ({"kind": "sms", "name": "x", "settings": {}}, "channel_settings_missing", "settings"),
        ({"kind": "fax", "name": "x"}, "unknown_channel_kind", "kind"),
        ({"kind": "console", "name": " "}, "channel_name_missing", "name"),
        ({"kind": "console", "name": "x", "rate_per_second": 0}, "bad_rate", "rate_per_second"),
        (
            {"kind": "console", "name": "x", "consent_channel": "pigeon"},
            "unknown_consent_channel",
            "consent_channel",
        ),
    ],
)
def test_a_bad_channel_answers_422_naming_the_field(ws, api, payload, code, path):
    answer = api.post("/api/v1/channels", payload, **JSON)
    assert answer.status_code == 422
    assert (answer.json()["code"], answer.json()["path"]) == (code, path)
    assert not ChannelConfig.objects.filter(workspace=ws).exists()


@pytest.mark.django_db
def test_settings_that_are_not_an_object_are_refused_by_the_schema(ws, api):
    answer = api.post("/api/v1/channels", {"kind": "console", "name": "x", "settings": [1]}, **JSON)
    assert answer.status_code == 422
    assert not ChannelConfig.objects.filter(workspace=ws).exists()


@pytest.mark.django_db
def test_another_workspaces_channel_is_not_found(ws, other_ws, api):
    theirs = services.channel_create(workspace=other_ws, kind="console", name="别家", settings={})
    answer = api.put(f"/api/v1/channels/{theirs.id}", {"name": "mine"}, **JSON)
    assert answer.status_code == 404
    assert api.get("/api/v1/channels").json() == []
    theirs.refresh_from_db()
    assert theirs.name == "别家"


@pytest.mark.django_db
def test_guardrails_read_and_change(ws, api):
    assert api.get("/api/v1/messages/guardrails").json() == {
        "daily_caps": {"sms": 1, "email": 1},
        "weekly_caps": {"sms": 3, "email": 3},
        "quiet_start": "21:00:00",
        "quiet_end": "08:00:00",
        "global_daily_cap": None,
    }
    wanted = {
        "daily_caps": {"sms": 2},
        "weekly_caps": {"sms": 4},
        "quiet_start": "22:00:00",
        "quiet_end": "07:30:00",
        "global_daily_cap": 100000,
    }
    assert api.put("/api/v1/messages/guardrails", wanted, **JSON).json() == wanted
    assert api.get("/api/v1/messages/guardrails").json() == wanted
    bad = api.put("/api/v1/messages/guardrails", {**wanted, "global_daily_cap": 0}, **JSON)
    assert bad.status_code == 422 and bad.json()["path"] == "global_daily_cap"
    bad = api.put("/api/v1/messages/guardrails", {**wanted, "daily_caps": {"fax": 1}}, **JSON)
    assert bad.status_code == 422 and bad.json()["code"] == "bad_cap"
    assert api.get("/api/v1/messages/guardrails").json() == wanted
