import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from siyu.contacts.models import Contact
from siyu.tenancy.models import ApiKey
from siyu.tenancy.services import api_key_create, api_key_revoke
from tests import factories


@pytest.mark.django_db
def test_request_without_key_is_refused_with_401():
    response = Client().get("/api/v1/workspace")
    assert response.status_code == 401
    assert response.json() == {
        "code": "unauthorized",
        "detail": "Missing, unknown or revoked API key.",
    }


@pytest.mark.django_db
def test_unknown_key_is_refused(ws):
    api_key_create(workspace=ws, name="real")
    response = Client(headers={"Authorization": "Bearer sy_deadbeef_not-a-real-key"}).get(
        "/api/v1/workspace"
    )
    assert response.status_code == 401


@pytest.mark.django_db
def test_revoked_key_is_refused_and_writes_nothing(ws):
    key, raw = api_key_create(workspace=ws, name="old")
    api_key_revoke(workspace=ws, key_id=key.id)
    client = Client(headers={"X-API-Key": raw})
    response = client.post(
        "/api/v1/contacts",
        [{"identities": [{"kind": "phone", "value": "13812345678"}]}],
        content_type="application/json",
    )
    assert response.status_code == 401
    assert Contact.objects.count() == 0


@pytest.mark.django_db
def test_whoami_names_the_keys_workspace_with_either_header(ws):
    key, raw = api_key_create(workspace=ws, name="pos")
    expected = {"slug": ws.slug, "name": ws.name, "time_zone": "Asia/Shanghai", "currency": "CNY"}
    assert Client(headers={"X-API-Key": raw}).get("/api/v1/workspace").json() == expected
    assert (
        Client(headers={"Authorization": f"Bearer {raw}"}).get("/api/v1/workspace").json()
        == expected
    )
    assert ApiKey.objects.get(id=key.id).last_used_at is not None


@pytest.mark.django_db
def test_openapi_lists_every_endpoint_without_a_key():
    response = Client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths) >= {
        "/api/v1/workspace",
        "/api/v1/contacts",
        "/api/v1/contacts/{contact_id}",
        "/api/v1/contacts/{contact_id}/consent",
        "/api/v1/events",
        "/api/v1/orders",
        "/api/v1/orders/{order_no}",
        "/api/v1/orders/{order_no}/refunds",
        "/api/v1/products",
        "/api/v1/stores",
        "/api/v1/staff",
    }
    assert set(paths["/api/v1/contacts"]) == {"get", "post"}
    assert (
        paths["/api/v1/events"]["post"]["requestBody"]["content"]["application/json"]["schema"][
            "maxItems"
        ]
        == 1000
    )


@pytest.mark.django_db
def test_docs_page_loads_no_cdn_and_its_assets_ship_with_siyu():
    response = Client().get("/api/docs")
    html = response.content.decode()
    assert response.status_code == 200
    assert not re.search(r"https?://", html)
    assets = re.findall(r'(?:src|href)="/static/([^"]+)"', html)
    assert "ninja/swagger-ui-bundle.js" in assets
    assert all(finders.find(path) for path in assets)
    assert '"url": "/api/v1/openapi.json"' in html


@pytest.mark.django_db
def test_a_key_sees_only_its_own_workspace(ws, other_ws):
    _, raw = api_key_create(workspace=other_ws, name="b")
    factories.contact(ws, phone="13812345678")
    response = Client(headers={"X-API-Key": raw}).get("/api/v1/contacts")
    assert response.json() == {"items": [], "next_cursor": None}
