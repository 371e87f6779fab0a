"""Small request builders shared by the API tests."""

from __future__ import annotations

from typing import Any

from django.test import Client

PHONE = "13812345678"


def post(client: Client, url: str, body: Any):
    return client.post(url, body, content_type="application/json")


def put(client: Client, url: str, body: Any):
    return client.put(url, body, content_type="application/json")


def errors(response) -> list[dict[str, str]]:
    assert response.status_code == 422, response.content
    return response.json()["errors"]


def event(event_id: str, phone: str = PHONE, **kw) -> dict:
    return {
        "event_id": event_id,
        "type": kw.pop("type", "page_view"),
        "contact": {"kind": "phone", "value": phone},
        "occurred_at": kw.pop("occurred_at", "2026-03-01T10:00:00+08:00"),
        **kw,
    }


def order(order_no: str, phone: str = PHONE, **kw) -> dict:
    return {
        "order_no": order_no,
        "contact": {"kind": "phone", "value": phone},
        "channel": kw.pop("channel", "mini_program"),
        "paid_at": kw.pop("paid_at", "2026-03-01T12:30:00+08:00"),
        "items": kw.pop("items", [{"sku": "FRUIT-1", "quantity": 1, "unit_price": "19.90"}]),
        **kw,
    }
